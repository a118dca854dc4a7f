"""One trainer for every task: ``Trainer(TrainConfig(...)).fit()``, or ``python -m core.train``."""

from core.train.config import PRESETS, ConfigError, TrainConfig, preset
from core.train.engine import Callback, EpochRecord, RunResult, Trainer, evaluate

__all__ = ["PRESETS", "Callback", "ConfigError", "EpochRecord", "RunResult", "TrainConfig", "Trainer", "evaluate",
           "preset"]
