"""A fresh clone with no datasets anywhere: every page opens on the bundled sample photos and shows a
result at once, with the shipped checkpoints; the test set stays selectable and then says how to get it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def fresh_clone(app_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder (so no dataset and no cached copy of one is found) and an empty app home."""
    root = tmp_path / "no-data"
    monkeypatch.setenv("CIFAR_LAB_DATA", str(root))
    return root


def open_page(page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=180)
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def opens_on_a_sample_photo(app: AppTest) -> None:
    assert app.segmented_control[0].value == "Sample photo"
    assert not app.error and not app.warning, [m.value for m in [*app.error, *app.warning]]


def choosing_the_test_set_says_how_to_get_it(app: AppTest) -> None:
    app.segmented_control[0].set_value("Test set").run()
    assert not app.exception
    message = " ".join(w.value for w in app.warning)
    assert "was not found" in message and "make data" in message and "Get the datasets" in message


def test_classify_shows_a_prediction_from_a_sample_photo(fresh_clone: Path) -> None:
    app = open_page("pages/classify.py")
    opens_on_a_sample_photo(app)
    assert any(m.value.startswith("Prediction: **") for m in app.markdown)
    choosing_the_test_set_says_how_to_get_it(app)


def test_denoise_shows_a_denoised_sample_photo_with_metrics(fresh_clone: Path) -> None:
    app = open_page("pages/denoise.py")
    opens_on_a_sample_photo(app)
    labels = {m.label for m in app.metric}
    assert {"Noisy PSNR", "Denoised PSNR", "Denoised SSIM"} <= labels
    choosing_the_test_set_says_how_to_get_it(app)


def test_colorize_shows_a_colorized_sample_photo_with_metrics(fresh_clone: Path) -> None:
    app = open_page("pages/colorize.py")
    opens_on_a_sample_photo(app)
    assert {"PSNR", "SSIM", "CIEDE2000"} <= {m.label for m in app.metric}
    choosing_the_test_set_says_how_to_get_it(app)
