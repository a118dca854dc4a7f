"""Training jobs that belong to the server, not to a browser tab.

One training at a time per process: ``JOBS.start(config)`` runs it in a background
thread (which never touches the UI) and refuses a second while one runs. The live
state is a plain object behind a lock; the Train page polls ``snapshot()``.
Closing a tab changes nothing: the job and its state live in this module.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import asdict
from typing import Any

from core import devices
from core.train.config import ServerLimits, TrainConfig
from core.train.engine import Callback, EpochRecord, RunResult, Trainer
from core.train.runs import RunRecorder, RunStore

MAX_BATCH_POINTS = 2000  # the live loss curve keeps this many points, evenly thinned


class TrainerBusy(RuntimeError):
    """A training job is already running on this server."""


class Job(Callback):
    """One training run in a thread, and its live state."""

    def __init__(self, config: TrainConfig, store: RunStore | None = None) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.status = "starting"
        self.message = "Loading data..."
        self.history: list[dict[str, Any]] = []
        self.batch_losses: list[tuple[int, float]] = []
        self.step, self.total_steps, self.epoch = 0, 0, 0
        self.device = ""
        self.checkpoint: str | None = None
        self.test_metrics: dict[str, float] = {}
        self.run_id: int | None = None
        self.started = time.time()
        self.ended: float | None = None
        self.images_seen = 0
        self._loop_started: float | None = None
        self.recorder = RunRecorder(store)
        self.trainer = Trainer(config, callbacks=[self, self.recorder], stop_event=self.stop_event)
        self.thread = threading.Thread(target=self._run, name="cifar-lab-training", daemon=True)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        try:
            self.trainer.fit()
        except Exception as error:  # the result was already recorded by on_finish; keep the details for logs
            with self.lock:
                self.status, self.message = "failed", f"{type(error).__name__}: {error}"
            traceback.print_exc()

    def stop(self) -> None:
        self.stop_event.set()
        with self.lock:
            if self.status in ("starting", "running"):
                self.message = "Stopping after the current batch..."

    # ---- callback events (training thread) ----------------------------------------------------------
    def on_train_start(self, trainer: Trainer) -> None:
        with self.lock:
            self.status, self.message = "running", "Training..."
            self.total_steps, self.step = trainer.total_steps, trainer.step
            self.device = devices.describe(trainer.device)
            self.checkpoint = str(trainer.checkpoint_path)
            self.history = [asdict(r) for r in trainer.history]
            self.run_id = self.recorder.run_id
            self._loop_started = time.time()
            self._start_step = trainer.step

    def on_batch_end(self, trainer: Trainer, step: int, loss, batch_size: int) -> None:
        value = float(loss)
        with self.lock:
            self.step, self.epoch = step, trainer.epoch
            self.images_seen += batch_size
            self.batch_losses.append((step, value))
            if len(self.batch_losses) > MAX_BATCH_POINTS:
                self.batch_losses = self.batch_losses[::2]

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        with self.lock:
            self.history.append(asdict(record))

    def on_finish(self, trainer: Trainer, result: RunResult) -> None:
        with self.lock:
            self.status, self.message = result.status, result.message
            self.test_metrics = result.test_metrics
            self.checkpoint = result.checkpoint
            self.ended = time.time()

    # ---- reading (any thread) -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the live state, with elapsed time, ETA and speed."""
        with self.lock:
            now = self.ended or time.time()
            elapsed = now - self.started
            loop_elapsed = now - self._loop_started if self._loop_started else 0.0
            done = self.step - getattr(self, "_start_step", 0)
            remaining = self.total_steps - self.step
            eta = loop_elapsed / done * remaining if done and self.status == "running" else None
            return {
                "status": self.status, "message": self.message, "config": self.config.to_dict(),
                "history": list(self.history), "batch_losses": list(self.batch_losses),
                "step": self.step, "total_steps": self.total_steps, "epoch": self.epoch,
                "device": self.device, "checkpoint": self.checkpoint, "test_metrics": dict(self.test_metrics),
                "run_id": self.run_id, "elapsed": elapsed, "eta": eta,
                "images_per_second": self.images_seen / loop_elapsed if loop_elapsed > 0 else 0.0,
                "running": self.thread.is_alive(),
            }


class JobManager:
    """The server's single training slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: Job | None = None

    def start(self, config: TrainConfig, store: RunStore | None = None, limits: ServerLimits | None = None) -> Job:
        """Validate ``config``, apply the server's limits and start it, unless a job is running (TrainerBusy).

        ``limits`` default to ``ServerLimits.from_env()``: a public deployment caps every run here.
        """
        limits = ServerLimits.from_env() if limits is None else limits
        with self._lock:
            if self._job is not None and self._job.running:
                raise TrainerBusy("A training run is already in progress on this server; watch it below or "
                                  "wait for it to finish.")
            job = Job(limits.apply(config.validate()), store)
            self._job = job
            job.thread.start()
            return job

    def current(self) -> Job | None:
        """The running job, or the last one to have run."""
        return self._job

    def stop(self) -> None:
        if self._job is not None:
            self._job.stop()


JOBS = JobManager()
