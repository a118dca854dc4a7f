"""Small real checkpoints for page tests: tiny models trained for a few seconds on real data."""

from __future__ import annotations

from pathlib import Path

from core import checkpoints
from core.train import TrainConfig, Trainer


def tiny_classifier(folder: Path, name: str, width: int = 8, variant: str = "baseline") -> Path:
    """A staged CNN trained for one epoch on 512 CIFAR-10 images; returns its weights path."""
    config = TrainConfig(task="classification", arch="staged_cnn", arch_args={"variant": variant, "width": width},
                         dataset="cifar10", epochs=1, batch_size=128, subset=512, val_size=128, lr=0.05,
                         schedule="constant", seed=1, out=str(folder), name=name)
    result = Trainer(config).fit()
    assert result.status == "finished", result.message
    checkpoints.load(result.checkpoint)  # it must load
    return Path(result.checkpoint)


def tiny_denoiser(folder: Path, name: str, arch: str = "unet_denoiser", width: int = 8, noise: str = "gaussian",
                  dataset: str = "cifar10", grey: bool = False) -> Path:
    """A width-8 denoiser trained for one epoch on 256 CIFAR-10 images (or ``dataset``'s; in grey if asked)
    with Gaussian sigma 25 (or ``noise``)."""
    config = TrainConfig(task="denoising", arch=arch, arch_args={"width": width, "depth": 2}, dataset=dataset,
                         epochs=1, batch_size=64, subset=256, val_size=64, optimizer="adam", lr=2e-3,
                         schedule="constant", noise=noise, noise_level=25.0, seed=1, out=str(folder), name=name,
                         grey=grey)
    result = Trainer(config).fit()
    assert result.status == "finished", result.message
    checkpoints.load(result.checkpoint)
    return Path(result.checkpoint)


def tiny_colorizer(folder: Path, name: str, binned: bool = False, hints: bool = False) -> Path:
    """A width-8 U-Net colorizer (taking colour hints, if asked) trained for one epoch on 256 CIFAR-10 images."""
    config = TrainConfig(task="colorization", arch="unet_colorizer",
                         arch_args={"width": 8, "depth": 2, "binned": binned, "hints": hints}, dataset="cifar10",
                         epochs=1, batch_size=64, subset=256, val_size=64, optimizer="adam", lr=2e-3,
                         schedule="constant", loss="chroma_ce" if binned else "mse", seed=1, out=str(folder), name=name)
    result = Trainer(config).fit()
    assert result.status == "finished", result.message
    checkpoints.load(result.checkpoint)
    return Path(result.checkpoint)


def open_page(home: Path, page: str, monkeypatch, timeout: float = 180):
    """An AppTest of ``page`` (e.g. "pages/denoise.py") with ``home`` as the app's home and no shipped
    checkpoints, so only the checkpoints the test made are listed; fails on any exception."""
    from streamlit.testing.v1 import AppTest

    from core import paths

    monkeypatch.setenv("CIFAR_LAB_HOME", str(home))
    monkeypatch.setattr(paths, "SHIPPED_CHECKPOINTS", home / "no-shipped")
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=timeout)
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app
