"""Trainer callbacks for the terminal."""

from __future__ import annotations

import sys

from core.train.engine import Callback, EpochRecord, RunResult, Trainer


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
