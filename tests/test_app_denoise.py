"""The Denoise page, through Streamlit's AppTest: sliders, baselines, compare mode, uploads, download."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.images import sample_photo
from tests.factories import open_page, tiny_denoiser

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="module")
def home_with_denoiser(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    home = tmp_path_factory.mktemp("denoise-home")
    tiny_denoiser(home / "checkpoints", "tiny-unet")
    return home


@pytest.fixture
def app(home_with_denoiser: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_page(home_with_denoiser, "pages/denoise.py", monkeypatch)


def metric(app: AppTest, label: str) -> float:
    return float(next(m for m in app.metric if m.label == label).value.split()[0])


def widget(items, label: str):
    return next(w for w in items if w.label.startswith(label))


def test_noise_strength_slider_changes_the_noisy_psnr(app: AppTest) -> None:
    assert "tiny-unet" in str(widget(app.selectbox, "Denoiser").value)
    captions = [image.caption for element in app.get("image") for image in element.proto.imgs]
    assert "Clean: test image #1: ship" in captions  # Home's denoise example, so its link and the page agree
    weak = metric(app, "Noisy PSNR")
    assert 20 < weak < 30  # sigma 25 on a CIFAR-10 image
    assert metric(app, "Denoised PSNR") > 0
    widget(app.slider, "Strength").set_value(50.0).run()
    assert not app.exception
    assert metric(app, "Noisy PSNR") < weak - 3
    widget(app.number_input, "Noise seed").set_value(7).run()
    assert metric(app, "Noisy PSNR") != pytest.approx(weak)


def test_median_on_salt_and_pepper_gains_and_bm3d_is_refused_there(app: AppTest) -> None:
    widget(app.selectbox, "Noise").set_value("salt_pepper").run()
    widget(app.selectbox, "Denoiser").set_value("median").run()
    assert not app.exception
    assert metric(app, "Denoised PSNR") > metric(app, "Noisy PSNR") + 3
    widget(app.selectbox, "Denoiser").set_value("bm3d").run()
    assert any("BM3D is a Gaussian denoiser" in w.value for w in app.warning)


def test_compare_mode_runs_every_denoiser_with_metrics_and_time(app: AppTest) -> None:
    widget(app.toggle, "Compare every denoiser").set_value(True).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["denoiser"]) == ["tiny-unet", "Median filter 3x3", "BM3D"]
    assert table["PSNR (dB)"].notna().all() and (table["time (ms)"] > 0).all()
    bm3d = table.set_index("denoiser").loc["BM3D"]
    assert bm3d["gain (dB)"] > 3  # BM3D on sigma 25 is a strong baseline


def test_already_noisy_upload_is_denoised_without_metrics(app: AppTest) -> None:
    app.segmented_control[0].set_value("Upload").run()
    buffer = io.BytesIO()
    sample_photo("Coffee").resize((96, 64)).save(buffer, format="PNG")
    app.get("file_uploader")[0].set_value(("coffee.png", buffer.getvalue(), "image/png")).run()
    assert not app.exception
    assert metric(app, "Noisy PSNR") > 0  # a clean upload gets noise added and measured
    widget(app.checkbox, "My photo is already noisy").check().run()
    assert not app.exception
    assert not any(m.label == "Denoised PSNR" for m in app.metric)
    captions = " ".join(image.caption for element in app.get("image") for image in element.proto.imgs)
    assert "no clean reference" in captions and "strength 100%" in captions
    estimate = next(c.value for c in app.caption if "Estimated noise" in c.value)
    assert float(estimate.split("σ ≈ ")[1].split("*")[0]) < 10  # the sample photo is clean
    widget(app.slider, "Denoising strength").set_value(0.3).run()
    assert not app.exception
    captions = " ".join(image.caption for element in app.get("image") for image in element.proto.imgs)
    assert "strength 30%" in captions
    widget(app.selectbox, "Denoiser").set_value("bm3d").run()  # given the estimated level
    assert not app.exception
    assert [w.value for w in app.warning if "cannot travel in a link" not in w.value] == []


def test_a_bad_upload_gets_a_message(app: AppTest) -> None:
    app.segmented_control[0].set_value("Upload").run()
    app.get("file_uploader")[0].set_value(("noise.png", b"not an image at all", "image/png")).run()
    assert not app.exception
    assert any("noise.png" in e.value for e in app.error)


def test_the_result_can_be_downloaded_as_png(app: AppTest) -> None:
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels[0] == "Download the denoised image (PNG)"
    # A download must not rerun the page: a rerun could retire the file before the browser fetched it.
    assert all(button.proto.ignore_rerun for button in app.get("download_button"))
    assert labels[1:] in ([], ["Weights (.safetensors)", "Sidecar (.json)", "ONNX export"])  # none for a baseline


def test_expander_explains_the_model_with_a_layer_table(app: AppTest) -> None:
    assert any("U-Net" in m.value and "skip connections" in m.value for m in app.markdown)
    layers = app.dataframe[0].value
    assert {"layer", "output shape", "parameters"} <= set(layers.columns)



def test_results_are_kept_bounded_as_uint8_and_an_upload_is_decoded_once(
        app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import images

    decoded = []
    real = images.load_image
    monkeypatch.setattr(images, "load_image", lambda payload, **kw: decoded.append(1) or real(payload, **kw))
    app.segmented_control[0].set_value("Upload").run()
    buffer = io.BytesIO()
    sample_photo("Coffee").resize((96, 64)).save(buffer, format="PNG")
    app.get("file_uploader")[0].set_value(("coffee.png", buffer.getvalue(), "image/png")).run()
    for strength in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0):
        widget(app.slider, "Strength").set_value(strength).run()
        assert not app.exception
    assert len(decoded) == 1  # seven reruns, one decode
    cache = app.session_state["denoise-results"]
    assert len(cache) == 4  # the last four settings, not sixteen
    assert all(cache.stored(key).image.data.dtype == torch.uint8 for key in cache)
    assert cache.nbytes == 4 * 64 * 96 * 3
    widget(app.slider, "Strength").set_value(60.0).run()  # the newest result comes back from the cache
    assert len(cache) == 4 and metric(app, "Denoised PSNR") > 0


@pytest.fixture(scope="module")
def home_with_two_kinds(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    home = tmp_path_factory.mktemp("denoise-kinds")
    tiny_denoiser(home / "checkpoints", "tiny-gaussian")
    tiny_denoiser(home / "checkpoints", "tiny-impulse", noise="impulse")
    return home


def test_the_default_denoiser_follows_the_kind_of_noise(home_with_two_kinds: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(home_with_two_kinds, "pages/denoise.py", monkeypatch)

    def chosen() -> str:
        return str(widget(app.selectbox, "Denoiser").value)

    assert "tiny-gaussian" in chosen()
    for kind, expected in (("salt_pepper", "tiny-impulse"), ("salt_pepper_channels", "tiny-impulse"),
                           ("poisson", "median"), ("gaussian", "tiny-gaussian")):
        widget(app.selectbox, "Noise").set_value(kind).run()
        assert not app.exception
        assert expected in chosen(), kind
    # A visitor's own pick stays while the strength moves; a new kind of noise brings its default back.
    widget(app.selectbox, "Denoiser").set_value("median").run()
    widget(app.slider, "Strength").set_value(40.0).run()
    assert chosen() == "median"
    widget(app.selectbox, "Noise").set_value("salt_pepper").run()
    assert "tiny-impulse" in chosen()


def test_a_grey_photo_opens_on_the_grey_photo_denoiser_never_the_digit_one(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    tiny_denoiser(home / "checkpoints", "tiny-digits", dataset="mnist")
    app = open_page(home, "pages/denoise.py", monkeypatch)
    app.segmented_control[0].set_value("Upload").run()
    buffer = io.BytesIO()
    sample_photo("Coffee").convert("L").resize((96, 64)).save(buffer, format="PNG")
    upload = ("coffee-grey.png", buffer.getvalue(), "image/png")
    app.get("file_uploader")[0].set_value(upload).run()
    assert not app.exception
    assert str(widget(app.selectbox, "Denoiser").value) == "bm3d"  # an MNIST denoiser would ruin a photo
    tiny_denoiser(home / "checkpoints", "tiny-grey", grey=True)
    app = open_page(home, "pages/denoise.py", monkeypatch)
    app.segmented_control[0].set_value("Upload").run()
    app.get("file_uploader")[0].set_value(upload).run()
    assert not app.exception
    assert "tiny-grey" in str(widget(app.selectbox, "Denoiser").value)
    assert metric(app, "Denoised PSNR") > 0


def test_the_best_classifier_says_what_it_sees_in_the_clean_noisy_and_denoised_image(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import checkpoints, classify, data, showcase
    from tests.factories import tiny_classifier

    home = tmp_path / "home"
    tiny_denoiser(home / "checkpoints", "tiny-unet")
    tiny_classifier(home / "checkpoints", "tiny-judge")
    app = open_page(home, "pages/denoise.py", monkeypatch)
    said = [m.value for m in app.markdown if m.value.startswith("tiny-judge on the ")]
    assert [s.split(" image:")[0] for s in said] == [f"tiny-judge on the {w}" for w in ("clean", "noisy", "denoised")]
    model, meta = checkpoints.load(home / "checkpoints" / "tiny-judge.safetensors")
    clean = data.load_dataset("cifar10", "test").images[showcase.IMAGES["denoise"][0]].float().div(255)  # the opening
    verdict, = classify.verdicts(model, [clean], checkpoints.class_names(meta), meta=meta)
    assert said[0].endswith(classify.verdict_text(*verdict))
