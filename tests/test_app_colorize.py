"""The Colorize page, through Streamlit's AppTest: test images, a large upload, grey uploads, download."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

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
    assert "Original: test image #0: cat" in captions(app)


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
    buttons = app.get("download_button")
    assert len(buttons) == 1 and "Download the colorized image" in buttons[0].proto.label
    assert any("chroma" in m.value and "lightness" in m.value for m in app.markdown)
    layers = app.dataframe[0].value
    assert {"layer", "output shape", "parameters"} <= set(layers.columns)
