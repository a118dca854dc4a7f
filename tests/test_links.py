"""Share what you see: every page keeps its state in the URL, and a link restores it in a new session."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import hints, showcase
from tests.factories import tiny_classifier, tiny_colorizer, tiny_denoiser
from tests.test_own_data import picture


def by_label(elements, label: str):
    return next(e for e in elements if e.label == label)


def linked(home: Path, page: str, monkeypatch, **params: str):
    """A fresh session (a new browser) opening ``page`` with ``params`` in its address."""
    from streamlit.testing.v1 import AppTest

    from core import paths

    monkeypatch.setenv("CIFAR_LAB_HOME", str(home))
    monkeypatch.setattr(paths, "SHIPPED_CHECKPOINTS", home / "no-shipped")
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=180)
    app.switch_page(page)
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def link_text(app) -> str:
    """The address the "Copy link" popover offers."""
    return next(c.value for c in app.code if "?" in c.value)


def test_hints_travel_as_text_and_bad_text_is_refused() -> None:
    placed = [hints.Hint(0.25, 0.5, (1.0, 0.0, 0.0)), hints.Hint.from_hex(0.9, 0.1, "#2a9d8f")]
    text = hints.to_text(placed)
    assert text == "0.2500,0.5000,ff0000;0.9000,0.1000,2a9d8f"
    back = hints.from_text(text)
    assert [(h.x, h.y, h.hex()) for h in back] == [(h.x, h.y, h.hex()) for h in placed]
    for bad in ("1.5,0.2,ff0000", "0.1,0.2", "0.1,0.2,zzzzzz", "a,b,c", ";".join(["0.1,0.1,000000"] * 201)):
        with pytest.raises(ValueError):
            hints.from_text(bad)


def test_a_denoise_link_restores_image_noise_and_denoiser_and_the_page_keeps_it_current(
        tmp_path: Path, data_root: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    tiny_denoiser(home / "checkpoints", "tiny-unet")
    app = linked(home, "pages/denoise.py", monkeypatch, data="cifar10", source="test", image="42",
                 noise="salt_pepper", level="0.1", seed="7", denoiser="median")
    assert by_label(app.selectbox, "Noise").value == "salt_pepper"
    assert by_label(app.slider, "Strength").value == pytest.approx(0.1)
    assert by_label(app.number_input, "Noise seed").value == 7
    assert by_label(app.number_input, "Test image #").value == 42
    assert by_label(app.selectbox, "Denoiser").value == "median"  # the link's choice, not the page's default
    address = link_text(app)
    for part in ("noise=salt_pepper", "level=0.1", "seed=7", "image=42", "denoiser=median", "source=test"):
        assert part in address
    # The visitor moves on: the address follows.
    by_label(app.number_input, "Test image #").set_value(5).run()
    assert app.query_params["image"] == ["5"] or app.query_params["image"] == "5"
    by_label(app.selectbox, "Denoiser").set_value(str(home / "checkpoints" / "tiny-unet.safetensors")).run()
    assert "denoiser=tiny-unet" in link_text(app)


def test_a_link_that_makes_no_sense_is_ignored(tmp_path: Path, data_root: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    app = linked(home, "pages/denoise.py", monkeypatch, noise="lava", level="banana", image="999999",
                 seed="-3", denoiser="../../etc/passwd", source="floppy", compare="maybe")
    assert by_label(app.selectbox, "Noise").value == "gaussian"
    assert by_label(app.number_input, "Noise seed").value == 0
    assert by_label(app.number_input, "Test image #").value == showcase.IMAGES["denoise"][0]  # the page's own
    assert not app.error


def test_a_classify_link_restores_the_model_and_sample_photo(tmp_path: Path, data_root: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    tiny_classifier(home / "checkpoints", "tiny-a")
    tiny_classifier(home / "checkpoints", "tiny-b", width=12)
    app = linked(home, "pages/classify.py", monkeypatch, model="tiny-b", source="sample", photo="Coffee", tta="1")
    assert by_label(app.selectbox, "Model").value.endswith("tiny-b.safetensors")
    assert by_label(app.selectbox, "Sample photo").value == "Coffee"
    assert app.toggle[0].value is True
    assert "model=tiny-b" in link_text(app) and "photo=Coffee" in link_text(app)
    upload = linked(home, "pages/classify.py", monkeypatch, source="upload")
    upload.get("file_uploader")[0].set_value(("mine.png", picture((200, 40, 40), (40, 40), 0), "image/png")).run()
    assert any("cannot travel in a link" in w.value for w in upload.warning)
    assert "source=upload" in link_text(upload)


def test_a_colorize_link_restores_working_size_and_colour_hints(tmp_path: Path, data_root: Path,
                                                                 monkeypatch) -> None:
    home = tmp_path / "home"
    tiny_colorizer(home / "checkpoints", "tiny-hints", hints=True)
    placed = "0.2500,0.5000,ff0000;0.7500,0.2500,00ff00"
    app = linked(home, "pages/colorize.py", monkeypatch, source="test", image="3", size="64", hints=placed)
    assert by_label(app.slider, "Working size (pixels, longer side)").value == 64
    assert any(m.value.startswith("**2 hints** placed") for m in app.markdown)
    assert f"hints={placed.replace(',', '%2C').replace(';', '%3B')}" in link_text(app)
    next(b for b in app.button if b.label == "Clear").click().run()
    assert "hints=" not in link_text(app)  # cleared hints leave the address, and stay cleared


def test_a_train_link_restores_the_task_and_the_runs_shown(tmp_path: Path, monkeypatch) -> None:
    app = linked(tmp_path / "home", "pages/train.py", monkeypatch, task="your images", runs="denoising")
    assert by_label(app.selectbox, "Task").value == "your images"
    assert by_label(app.selectbox, "Show runs of").value == "denoising"
    assert app.query_params["task"] in ("your images", ["your images"])


def test_per_batch_losses_download_as_csv() -> None:
    from core.train.runs import batch_csv

    assert batch_csv([(1, 2.5), (2, 2.25)]) == "step,train_loss\n1,2.5\n2,2.25\n"
