"""Training runs the server supervises: each one a child process, never a thread of the web server.

``JOBS.start(config, owner=...)`` launches ``python -m core.train`` with a live-state file and
refuses a second run while one is alive. A thread per job waits for the child; the Train page
polls ``snapshot()``, which reads the child's live file. If the child dies (killed for memory,
SIGKILL, a crash), the server keeps serving, the run reads as failed with the reason the exit
status tells, the checkpoint of its last completed epoch stays, and the slot is free again.
Only the session that started a run may stop it (unless the owner rule is switched off).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core import paths
from core.own_data import UPLOAD_FOLDER
from core.train.config import ServerLimits, TrainConfig, config_to_argv
from core.train.runs import RunStore

STOP_GRACE_SECONDS = 30.0  # a child that ignores SIGTERM this long (stuck loading data) is killed
WATCH_INTERVAL = 0.25  # seconds between checks of the child's resident memory
LOG_TAIL_CHARS = 2000


class TrainerBusy(RuntimeError):
    """A training job is already running on this server."""


class NotOwner(PermissionError):
    """Someone else's run: only the session that started it may stop it."""


def resident_mb(pid: int) -> float | None:
    """A process's resident memory in MB, from /proc (None where unreadable)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def death_message(returncode: int, memory_limit_mb: float | None, killed_for_memory: bool,
                  stop_requested: bool) -> str:
    """Why a training process ended without reporting an end of its own, in words."""
    if killed_for_memory:
        return (f"The training process went over this server's memory limit of {memory_limit_mb:,.0f} MB and was "
                "stopped; try a smaller batch size or width.")
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        if -returncode == signal.SIGKILL and not stop_requested:
            return "The training process was killed (SIGKILL), probably out of memory."
        if -returncode == signal.SIGKILL:
            return "The training process did not stop when asked and was killed."
        return f"The training process ended by signal {name}."
    return f"The training process exited with status {returncode} without finishing."


def new_job_folder() -> Path:
    """A fresh folder for one run's live state, log and uploaded images."""
    folder = paths.app_home() / "jobs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def time_left(loop_elapsed: float, steps_done: int, steps_left: int, budget_left: float | None) -> float | None:
    """Seconds until the training loop ends: at its pace so far, or when its time budget runs out, if sooner.

    A capped run (the Space's 8 minutes) decays its schedule by the clock and ends on it, often long before
    its last step: the pace alone would promise a visitor hours.
    """
    if steps_done <= 0:
        return None
    at_pace = loop_elapsed / steps_done * steps_left
    return at_pace if budget_left is None else min(at_pace, max(0.0, budget_left))


class Job:
    """One supervised training process and what the server knows of it."""

    def __init__(self, config: TrainConfig, owner: str | None = None, store: RunStore | None = None,
                 memory_limit_mb: float | None = None, folder: Path | None = None) -> None:
        self.config = config
        self.owner = owner
        self.store = store or RunStore()
        self.memory_limit_mb = memory_limit_mb
        self.folder = folder or new_job_folder()  # removed when the run ends, uploaded images with it
        self.live_path = self.folder / "live.json"
        self.log_path = self.folder / "log.txt"
        self.started = time.time()
        self.lock = threading.Lock()
        self.stop_requested = False
        self.killed_for_memory = False
        self.returncode: int | None = None
        self.peak_rss_mb: float | None = None
        self._ended_state: dict[str, Any] | None = None  # the summary kept once the child is gone
        self._cache: tuple[int, dict[str, Any]] | None = None
        argv = [sys.executable, "-m", "core.train", *config_to_argv(config), "--live-file", str(self.live_path),
                "--run-store", str(self.store.path)]
        if memory_limit_mb:
            argv += ["--memory-limit-mb", f"{memory_limit_mb:g}"]
        with open(self.log_path, "wb") as log:
            # Its own session: a signal meant for the server (Ctrl-C) does not reach the run, and back.
            self.process = subprocess.Popen(argv, cwd=paths.REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            env=os.environ | {"CIFAR_LAB_SUPERVISOR_PID": str(os.getpid())})
        self.thread = threading.Thread(target=self._supervise, name="cifar-lab-training-supervisor", daemon=True)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    # ---- supervision (its own thread) ----------------------------------------------------------------
    def _supervise(self) -> None:
        pid = self.process.pid
        while True:
            waited, status, usage = os.wait4(pid, os.WNOHANG)
            if waited:
                break
            if self.memory_limit_mb and (resident_mb(pid) or 0) > self.memory_limit_mb:
                self.killed_for_memory = True
                self._signal(signal.SIGKILL)
            time.sleep(WATCH_INTERVAL)
        self.process.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
        self.returncode = self.process.returncode
        self.peak_rss_mb = usage.ru_maxrss / 1024
        self._conclude()

    def _conclude(self) -> None:
        """Keep the run's summary, record an end the child could not record, free the slot."""
        state = self._read_live()
        reported = state.get("status") in ("finished", "stopped", "diverged", "failed")
        if self.killed_for_memory or not reported:
            # Stopped before its signal handler was in place (still importing): a stop, not a failure.
            stopped_early = self.stop_requested and self.returncode == -signal.SIGTERM
            state["status"] = "stopped" if stopped_early else "failed"
            state["message"] = "Stopped by request before training began." if stopped_early else death_message(
                self.returncode or 0, self.memory_limit_mb, self.killed_for_memory, self.stop_requested)
            if not stopped_early and not self.killed_for_memory and self.returncode and self.returncode > 0:
                state["message"] += " " + self.log_tail(300)
            state["ended"] = time.time()
            if state.get("run_id") is not None:
                epochs = len(state.get("history", []))
                state["message"] += f" The checkpoint of epoch {epochs} is kept." if epochs else ""
                self.store.finish(state["run_id"], state["status"], state["message"], {}, state.get("checkpoint"),
                                  time.time() - self.started)
        elif state.get("status") == "failed" and "can't allocate memory" in state.get("message", ""):
            state["message"] = (f"The run needed more memory than this server allows ({self.memory_limit_mb:,.0f} MB);"
                                " try a smaller batch size or width.")
        state["peak_rss_mb"] = self.peak_rss_mb
        with self.lock:
            self._ended_state = state
        shutil.rmtree(self.folder, ignore_errors=True)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self.process.pid, signum)

    def _read_live(self) -> dict[str, Any]:
        """The child's last live state (cached by file version); an empty start before it wrote one."""
        try:
            stat = self.live_path.stat()
            if self._cache is None or self._cache[0] != stat.st_mtime_ns:
                self._cache = (stat.st_mtime_ns, json.loads(self.live_path.read_text()))
            return dict(self._cache[1])
        except (OSError, ValueError):  # not written yet, or being replaced
            return dict(self._cache[1]) if self._cache else {"status": "starting", "message": "Starting..."}

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of the child's output (its error, when it failed)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        return (errors[-1] if errors else "\n".join(lines[-3:]))[-chars:]

    # ---- control (any thread) ----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the child to stop after its current batch; kill it if it has not within the grace time."""
        if not self.running:
            return
        self.stop_requested = True
        self._signal(signal.SIGTERM)
        timer = threading.Timer(STOP_GRACE_SECONDS, lambda: self.running and self._signal(signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the live state, with elapsed time, ETA and speed."""
        with self.lock:
            ended = self._ended_state
        state = dict(ended) if ended is not None else self._read_live()
        running = ended is None
        if running and self.stop_requested and state.get("status") in ("starting", "running"):
            state["message"] = "Stopping after the current batch..."
        now = state.get("ended") or time.time()
        loop_started = state.get("loop_started")
        loop_elapsed = now - loop_started if loop_started else 0.0
        step, total = state.get("step", 0), state.get("total_steps", 0)
        done = step - state.get("start_step", 0)
        eta = None
        if running and state.get("status") == "running":
            budget_left = self.started + self.config.max_minutes * 60 - now if self.config.max_minutes else None
            eta = time_left(loop_elapsed, done, total - step, budget_left)
        return {
            "status": state.get("status", "starting"), "message": state.get("message", ""),
            "config": self.config.to_dict(), "history": list(state.get("history", [])),
            "batch_losses": list(state.get("batch_losses", [])), "step": step, "total_steps": total,
            "epoch": state.get("epoch", 0), "device": state.get("device", ""), "checkpoint": state.get("checkpoint"),
            "test_metrics": dict(state.get("test_metrics", {})), "run_id": state.get("run_id"),
            "elapsed": now - self.started, "eta": eta,
            "images_per_second": state.get("images_seen", 0) / loop_elapsed if loop_elapsed > 0 else 0.0,
            "running": running, "owner": self.owner, "pid": self.process.pid,
            "peak_rss_mb": state.get("peak_rss_mb"), "panel": state.get("panel"),
        }


class JobManager:
    """The server's single training slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: Job | None = None

    def start(self, config: TrainConfig, store: RunStore | None = None, limits: ServerLimits | None = None,
              owner: str | None = None, own_images: Callable[[Path], object] | None = None) -> Job:
        """Validate ``config``, apply the server's limits and start it, unless a job is running (TrainerBusy).

        ``limits`` default to ``ServerLimits.from_env()``: a public deployment caps every run here,
        including its estimated memory, and the child runs under the memory cap. ``own_images``
        writes a visitor's class folders into the folder it is given (core.own_data, raising
        OwnDataError on bad input); the run then trains on them, and they go when the run ends.
        """
        limits = ServerLimits.from_env() if limits is None else limits
        with self._lock:
            if self._job is not None and self._job.running:
                raise TrainerBusy("A training run is already in progress on this server; watch it below or "
                                  "wait for it to finish.")
            folder = new_job_folder()
            try:
                if own_images is not None:
                    images = folder / UPLOAD_FOLDER
                    images.mkdir()
                    config = replace(config, dataset=str(images)).validate()  # settings first, then the files
                    own_images(images)
                job = Job(limits.apply(config.validate()), owner, store, limits.max_memory_mb, folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._job = job
            return job

    def current(self) -> Job | None:
        """The running job, or the last one to have run (only its summary is kept)."""
        return self._job

    def may_stop(self, owner: str | None, limits: ServerLimits | None = None) -> bool:
        """Whether ``owner`` (a browser session) may stop the current run."""
        job = self._job
        if job is None:
            return False
        limits = ServerLimits.from_env() if limits is None else limits
        return not limits.owner_only_stop or job.owner is None or job.owner == owner

    def stop(self, owner: str | None = None, limits: ServerLimits | None = None) -> None:
        """Stop the current run; NotOwner if ``owner`` did not start it and the owner rule holds."""
        if self._job is None:
            return
        if not self.may_stop(owner, limits):
            raise NotOwner("Only the visitor who started this run can stop it.")
        self._job.stop()


JOBS = JobManager()
