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
