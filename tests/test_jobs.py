"""The server's training supervisor: runs are child processes; their deaths, limits and owners."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core import checkpoints
from core.train import ConfigError, TrainConfig
from core.train.config import ServerLimits
from core.train.jobs import Job, JobManager, NotOwner, time_left
from core.train.resources import estimate
from core.train.runs import RunStore

TINY = dict(arch="staged_cnn", arch_args={"variant": "baseline", "width": 8}, subset=256, val_size=64, batch_size=32)


def wait_until(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_run_is_a_child_process_and_keeps_only_its_summary(tmp_path: Path, data_root: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    job = JobManager().start(TrainConfig(**TINY, epochs=2, out=str(tmp_path), name="child"), store,
                             limits=ServerLimits())
    assert job.process.pid != os.getpid()
    wait_until(lambda: not job.running)
    snap = job.snapshot()
    assert snap["status"] == "finished", snap["message"]
    assert len(snap["history"]) == 2 and snap["batch_losses"] and snap["test_metrics"]["test_accuracy"] > 0
    assert snap["peak_rss_mb"] > 100  # read from the kernel when the child was reaped
    # The server holds no model, optimizer or data of a finished run: the state is plain numbers and text.
    assert not any(isinstance(value, torch.nn.Module | torch.Tensor) for value in vars(job).values())
    assert not job.folder.exists()
    assert [r["status"] for r in store.runs()] == ["finished"]


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling class")
def test_a_run_only_takes_the_cpu_time_the_visitors_leave(tmp_path: Path, data_root: Path) -> None:
    job = JobManager().start(TrainConfig(**TINY, epochs=20, out=str(tmp_path), name="idle"),
                             RunStore(tmp_path / "runs.sqlite3"), limits=ServerLimits())

    def policy() -> int | None:
        try:
            return os.sched_getscheduler(job.process.pid)
        except ProcessLookupError:
            return None
    wait_until(lambda: policy() == os.SCHED_IDLE or not job.running)
    assert policy() == os.SCHED_IDLE
    job.stop()
    wait_until(lambda: not job.running)


def test_a_killed_child_fails_with_its_reason_keeps_its_checkpoint_and_frees_the_slot(
        tmp_path: Path, data_root: Path) -> None:
    manager, store = JobManager(), RunStore(tmp_path / "runs.sqlite3")
    config = TrainConfig(**TINY, epochs=500, out=str(tmp_path), name="killed")
    job = manager.start(config, store, limits=ServerLimits())
    wait_until(lambda: len(job.snapshot()["history"]) >= 1)
    os.kill(job.process.pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    killed_at = time.monotonic()
    wait_until(lambda: not job.running, seconds=10)
    assert time.monotonic() - killed_at < 5
    snap = job.snapshot()
    assert snap["status"] == "failed" and "killed (SIGKILL), probably out of memory" in snap["message"]
    _, meta = checkpoints.load(tmp_path / "killed.safetensors")  # the last completed epoch's checkpoint
    assert meta["architecture"] == "staged_cnn"
    (run,) = store.runs()
    assert run["status"] == "failed" and "SIGKILL" in run["message"] and len(run["epochs"]) >= 1
    again = manager.start(TrainConfig(**TINY, epochs=1, out=str(tmp_path), name="after"), store,
                          limits=ServerLimits())
    wait_until(lambda: not again.running)
    assert again.snapshot()["status"] == "finished"


def test_a_child_over_its_memory_limit_is_stopped_and_says_so(tmp_path: Path, data_root: Path) -> None:
    # 300 MB is below what importing torch alone takes: the watchdog must end the child, not the server.
    job = Job(TrainConfig(**TINY, epochs=500, out=str(tmp_path), name="greedy"), store=RunStore(tmp_path / "r.db"),
              memory_limit_mb=300)
    wait_until(lambda: not job.running, seconds=60)
    snap = job.snapshot()
    assert snap["status"] == "failed" and "memory limit of 300 MB" in snap["message"]


def test_stop_ends_the_child_cleanly_after_a_batch(tmp_path: Path, data_root: Path) -> None:
    job = JobManager().start(TrainConfig(**TINY, epochs=500, out=str(tmp_path), name="stopped"),
                             RunStore(tmp_path / "runs.sqlite3"), limits=ServerLimits())
    wait_until(lambda: job.snapshot()["step"] >= 2)
    job.stop()
    wait_until(lambda: not job.running, seconds=30)
    snap = job.snapshot()
    assert snap["status"] == "stopped" and "Stopped by request" in snap["message"]


def test_only_the_owner_may_stop_unless_the_rule_is_switched_off_locally(tmp_path: Path, data_root: Path) -> None:
    manager = JobManager()
    job = manager.start(TrainConfig(**TINY, epochs=500, out=str(tmp_path), name="owned"),
                        RunStore(tmp_path / "runs.sqlite3"), limits=ServerLimits(), owner="alice")
    try:
        local_open = ServerLimits.from_env({"CIFAR_LAB_ANYONE_CAN_STOP": "1"})
        capped_open = ServerLimits.from_env({"CIFAR_LAB_ANYONE_CAN_STOP": "1", "CIFAR_LAB_MAX_MINUTES": "5"})
        assert manager.may_stop("alice", ServerLimits()) and not manager.may_stop("bob", ServerLimits())
        assert manager.may_stop("bob", local_open)
        assert not manager.may_stop("bob", capped_open)  # a public server keeps runs to their owners
        with pytest.raises(NotOwner):
            manager.stop("bob", ServerLimits())
        assert job.running and not job.stop_requested
        manager.stop("alice", ServerLimits())
        wait_until(lambda: not job.running, seconds=60)
    finally:
        job.stop()
    assert job.snapshot()["status"] == "stopped"


def test_caps_on_parameters_and_estimated_memory_refuse_what_cannot_fit() -> None:
    limits = ServerLimits.from_env({"CIFAR_LAB_MAX_PARAMS": "12000000", "CIFAR_LAB_MAX_MEMORY_MB": "6000"})
    huge = TrainConfig(arch="resnet18", arch_args={"width": 128}, batch_size=8192)
    with pytest.raises(ConfigError) as refused:
        limits.apply(huge)
    text = " ".join(refused.value.problems)
    assert "at most 12M parameters; this one has 44.7M" in text and "more than the 6,000 MB" in text
    assert estimate(huge).peak_mb > 100_000
    small = TrainConfig(**TINY, epochs=1)
    assert limits.apply(small) == small  # no time cap here: nothing else changes
    assert "12M parameters" in limits.describe() and "6,000 MB of memory" in limits.describe()


def test_the_estimate_grows_with_batch_and_width() -> None:
    base = estimate(TrainConfig(arch="fastnet", arch_args={"width": 32}, batch_size=256))
    assert estimate(TrainConfig(arch="fastnet", arch_args={"width": 32}, batch_size=1024)).peak_mb > base.peak_mb
    wider = estimate(TrainConfig(arch="fastnet", arch_args={"width": 64}, batch_size=256))
    assert wider.params > 3 * base.params and wider.peak_mb > base.peak_mb


def test_a_run_stops_by_itself_when_its_server_is_gone(tmp_path: Path, data_root: Path) -> None:
    # A stand-in server starts a supervised run and exits at once: the run must not train on, orphaned.
    live = tmp_path / "live.json"
    starter = (
        "import os, subprocess, sys\n"
        "from core.train.config import config_to_argv\n"
        "from core.train import TrainConfig\n"
        f"config = TrainConfig(**{TINY!r}, epochs=500, out={str(tmp_path)!r}, name='orphan')\n"
        "child = subprocess.Popen([sys.executable, '-m', 'core.train', *config_to_argv(config), '--no-record',"
        f" '--live-file', {str(live)!r}], start_new_session=True, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL, env=os.environ | {'CIFAR_LAB_SUPERVISOR_PID': str(os.getpid())})\n"
        "print(child.pid)\n"
    )
    done = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    pid = int(done.stdout.split()[-1])
    wait_until(lambda: live.exists() and json.loads(live.read_text())["status"] not in ("starting", "running"),
               seconds=120)
    assert json.loads(live.read_text())["status"] == "stopped"
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(),
               seconds=30)


def test_a_capped_run_promises_no_more_time_than_its_budget() -> None:
    # 53 of 4,675 steps in 150 s: at that pace more than 3 hours, but the cap ends it in 330 s.
    assert time_left(150.0, 53, 4622, None) == pytest.approx(150 / 53 * 4622)
    assert time_left(150.0, 53, 4622, 330.0) == 330.0
    assert time_left(150.0, 53, 10, 330.0) == pytest.approx(150 / 53 * 10)  # the last steps come first
    assert time_left(150.0, 53, 4622, -2.0) == 0.0  # past the cap: the run is finishing its last batch
    assert time_left(0.0, 0, 4675, 330.0) is None  # no pace yet
