"""The Colorize page, through Streamlit's AppTest: test images, a large upload, grey uploads, download."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import colorize, hints
from core.images import sample_photo
from tests.factories import open_page, tiny_colorizer


@pytest.fixture(scope="module")
def home_with_colorizers(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    home = tmp_path_factory.mktemp("colorize-home")
    tiny_colorizer(home / "checkpoints", "tiny-faithful")
    tiny_colorizer(home / "checkpoints", "tiny-vivid", binned=True)
    return home


@pytest.fixture
def app(home_with_colorizers: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_page(home_with_colorizers, "pages/colorize.py", monkeypatch)


def metric(app: AppTest, label: str):
    return next(m for m in app.metric if m.label == label)


def upload(app: AppTest, name: str, payload: bytes) -> None:
    app.segmented_control[0].set_value("Upload").run()
    app.get("file_uploader")[0].set_value((name, payload, "image/png")).run()


def captions(app: AppTest) -> str:
    return " ".join(image.caption for element in app.get("image") for image in element.proto.imgs)


def test_a_test_image_is_measured_against_its_original(app: AppTest) -> None:
    psnr = metric(app, "PSNR")
    assert 10 < float(psnr.value.split()[0]) < 60 and "vs grey" in psnr.delta
    assert float(metric(app, "CIEDE2000").value) >= 0
    assert "Original: test image #48: horse" in captions(app)


def test_switching_models_reruns_the_colorizer(app: AppTest) -> None:
    box = next(s for s in app.selectbox if s.label == "Model")
    labels = [str(option) for option in box.options]
    assert any("tiny-faithful" in label for label in labels) and any("tiny-vivid" in label for label in labels)
    box.select_index(next(i for i, label in enumerate(labels) if "tiny-vivid" in label)).run()
    assert not app.exception
    assert "Colorized: tiny-vivid" in captions(app)
    assert any("temperature" in m.value for m in app.markdown)  # the binned model explains its decoding


def test_a_large_photo_upload_keeps_its_size_and_is_measured(app: AppTest) -> None:
    buffer = io.BytesIO()
    sample_photo("Astronaut").resize((1600, 1600)).save(buffer, format="PNG")
    upload(app, "astronaut.png", buffer.getvalue())
    assert not app.exception
    assert float(metric(app, "PSNR").value.split()[0]) > 10
    assert "Original: astronaut.png" in captions(app)
    app.slider[0].set_value(128).run()  # the working size
    assert not app.exception


def test_a_grey_upload_is_colorized_without_metrics(app: AppTest) -> None:
    buffer = io.BytesIO()
    sample_photo("Coffee").convert("L").resize((120, 80)).save(buffer, format="PNG")
    upload(app, "grey.png", buffer.getvalue())
    assert not app.exception
    assert not any(m.label == "PSNR" for m in app.metric)
    assert "no colour original: no metrics" in captions(app)


def test_a_bad_upload_gets_a_message(app: AppTest) -> None:
    upload(app, "broken.png", b"\x89PNG\r\n\x1a\n truncated")
    assert not app.exception
    assert any("broken.png" in e.value for e in app.error)


def test_download_and_how_it_works(app: AppTest) -> None:
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels == ["Download the colorized image (PNG)", "Weights (.safetensors)", "Sidecar (.json)", "ONNX export"]
    # A download must not rerun the page: a rerun could retire the file before the browser fetched it.
    assert all(button.proto.ignore_rerun for button in app.get("download_button"))
    assert any("ONNX: input 'images': N x 1 x 32 x 32" in c.value for c in app.caption)
    assert any("chroma" in m.value and "lightness" in m.value for m in app.markdown)
    layers = app.dataframe[0].value
    assert {"layer", "output shape", "parameters"} <= set(layers.columns)


def test_clicks_place_hints_that_change_the_colours_and_can_be_undone_and_cleared(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_colorizer(tmp_path / "checkpoints", "tiny-hints", hints=True)
    app = open_page(tmp_path, "pages/colorize.py", monkeypatch)
    assert any(s.label == "Model" and "tiny-hints" in str(s.value) for s in app.selectbox)
    assert any("No hints yet" in m.value for m in app.markdown)
    plain = metric(app, "PSNR").value

    def click(x: int, y: int, when: int) -> None:
        # What the click-to-pick component reports: a point of the image as shown, and when it was clicked.
        app.session_state["colorize-click"] = {"x": x, "y": y, "width": 256, "height": 256, "unix_time": when}
        app.run()
        assert not app.exception, [e.value for e in app.exception]

    # With the original's true colours (the default on a test image), two clicks give two hints.
    click(40, 200, 1)
    click(200, 60, 2)
    assert any("2 hints" in m.value for m in app.markdown)
    click(200, 60, 2)  # the same click reported again on a rerun adds nothing
    assert any("2 hints" in m.value for m in app.markdown)
    # The result shown was colorized with both hints (they are part of what it is cached under).
    newest = app.session_state["colorize-results"].keys()[-1]
    assert len(newest[-1]) == 2 and all(isinstance(h, hints.Hint) for h in newest[-1])
    # A painted colour instead of the true one.
    app.toggle(key="colorize-true-colour").set_value(False).run()
    app.color_picker(key="colorize-hint-colour").set_value("#ff00ff").run()
    click(128, 128, 3)
    board = app.session_state["colorize-hints"]
    assert len(board.hints) == 3 and board.hints[-1].hex() == "#ff00ff"
    app.button(key="colorize-hint-undo").click().run()
    assert any("2 hints" in m.value for m in app.markdown)
    app.button(key="colorize-hint-clear").click().run()
    assert any("No hints yet" in m.value for m in app.markdown)
    assert metric(app, "PSNR").value == plain  # no hints: the model's own colours again
    # Another image starts with no hints.
    click(10, 10, 4)
    app.number_input[0].set_value(1).run()
    assert any("No hints yet" in m.value for m in app.markdown) and not app.exception


def test_a_model_without_hints_says_how_to_get_them(app: AppTest) -> None:
    assert any("pick a model that takes colour hints" in c.value for c in app.caption)
    assert not any("Colour hints" in h.value for h in app.subheader)


def test_a_hint_model_opens_at_the_finer_working_size_and_a_plain_one_at_its_own(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_colorizer(tmp_path / "checkpoints", "a-plain")
    tiny_colorizer(tmp_path / "checkpoints", "b-hints", hints=True)
    app = open_page(tmp_path, "pages/colorize.py", monkeypatch)

    def size() -> int:
        return app.slider(key="colorize-working-side").value

    def box():
        return next(s for s in app.selectbox if s.label == "Model")

    labels = [str(option) for option in box().options]

    def pick(name: str) -> None:
        box().select_index(next(i for i, label in enumerate(labels) if name in label)).run()
        assert not app.exception, [e.value for e in app.exception]

    # The plain model opens first although the hint model measures better: no empty hint board above the result.
    assert "a-plain" in str(box().value) and size() == colorize.WORKING_SIDE == 32
    pick("b-hints")
    assert size() == colorize.HINT_WORKING_SIDE == 48
    pick("a-plain")
    assert size() == colorize.WORKING_SIDE == 32
    app.slider(key="colorize-working-side").set_value(96).run()
    assert size() == 96 and app.query_params["size"] in ("96", ["96"])  # a size the visitor picks is kept...
    pick("b-hints")
    assert size() == 48  # ...until the kind of model changes
