"""Trainer callbacks: the terminal's progress bar, and the live-state file a supervisor reads."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core import devices
from core.fileio import atomic_write_bytes
from core.train.engine import Callback, EpochRecord, RunResult, Trainer
from core.train.runs import RunRecorder


class ProgressBar(Callback):
    """A tqdm bar over all steps, with the loss, and a line per epoch (rank 0 only)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.bar = None

    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.is_main:
            from tqdm import tqdm

            self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="batch", file=self.stream,
                            desc=f"{trainer.config.arch} on {trainer.config.dataset}", mininterval=1.0)

    def on_batch_end(self, trainer: Trainer, step: int, loss, batch_size: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0:
                self.bar.set_postfix(loss=f"{float(loss):.4f}", epoch=trainer.epoch + 1, refresh=False)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        if self.bar is not None:
            parts = [f"train loss {record.train_loss:.4f}"]
            parts += [f"train {k} {v:.4f}" for k, v in record.train_metrics.items()]
            parts += [f"val {k} {v:.4f}" for k, v in record.val_metrics.items()]
            self.bar.write(f"epoch {record.epoch}: {', '.join(parts)} "
                           f"({record.seconds:.0f} s, {record.images_per_second:.0f} img/s)")

    def on_finish(self, trainer: Trainer, result: RunResult) -> None:
        if self.bar is not None:
            self.bar.close()


class LiveFile(Callback):
    """The run's live state as one JSON file, replaced atomically, for a supervisor in another process.

    The Train page's server never trains: it starts ``python -m core.train --live-file PATH`` and
    reads this file. Batch events are written at most every ``interval`` seconds; epoch and finish
    events at once. The curve keeps at most ``max_points`` batch losses, evenly thinned.
    """

    def __init__(self, path: str | Path, recorder: RunRecorder | None = None, interval: float = 0.5,
                 max_points: int = 2000) -> None:
        self.path = Path(path)
        self.recorder = recorder
        self.interval, self.max_points = interval, max_points
        self.last_write = 0.0
        self.state: dict[str, Any] = {
            "status": "starting", "message": "Loading data...", "history": [], "batch_losses": [], "step": 0,
            "start_step": 0, "total_steps": 0, "epoch": 0, "device": "", "checkpoint": None, "test_metrics": {},
            "run_id": None, "loop_started": None, "images_seen": 0, "ended": None, "peak_rss_mb": None,
            "pid": os.getpid(), "panel": None,
        }
        self._write()

    def _write(self, force: bool = True) -> None:
        now = time.time()
        if not force and now - self.last_write < self.interval:
            return
        self.last_write = now
        atomic_write_bytes(self.path, json.dumps(self.state).encode(), sync=False)

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.is_main:
            return
        self.state.update(
            status="running", message="Training...", total_steps=trainer.total_steps, step=trainer.step,
            start_step=trainer.step, device=devices.describe(trainer.device), checkpoint=str(trainer.checkpoint_path),
            history=[asdict(r) for r in trainer.history], loop_started=time.time(),
            run_id=self.recorder.run_id if self.recorder else None, panel=getattr(trainer, "panel", None))
        self._write()

    def on_batch_end(self, trainer: Trainer, step: int, loss, batch_size: int) -> None:
        if not trainer.is_main:
            return
        losses = self.state["batch_losses"]
        losses.append((step, float(loss)))
        if len(losses) > self.max_points:
            self.state["batch_losses"] = losses[::2]
        self.state["images_seen"] += batch_size
        self.state.update(step=step, epoch=trainer.epoch)
        self._write(force=False)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        if trainer.is_main:
            self.state["history"].append(asdict(record))
            self._write()

    def on_finish(self, trainer: Trainer, result: RunResult) -> None:
        if trainer.is_main:
            self.state.update(status=result.status, message=result.message, test_metrics=result.test_metrics,
                              checkpoint=result.checkpoint, ended=time.time(), peak_rss_mb=peak_rss_mb())
            self._write()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
