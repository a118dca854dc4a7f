"""Bad input at scale, hostile and broken checkpoints, killed and failing runs, and the server's caps."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import fuzz_uploads
from core import checkpoints, images, models, paths
from core.train import PRESETS, ConfigError, TrainConfig, Trainer, preset
from core.train.__main__ import main as cli_main
from core.train.config import ServerLimits
from core.train.engine import CheckpointWriteError
from core.train.jobs import JobManager
from core.train.resume import resume_path
from core.train.runs import RunStore
from tests.factories import open_page, tiny_classifier, tiny_colorizer, tiny_denoiser

REPO = Path(__file__).resolve().parent.parent


# ---- uploads ----------------------------------------------------------------------------------------------------

def test_a_thousand_generated_files_decode_or_get_a_message() -> None:
    """The whole fuzz corpus, in a fresh process so its memory is measured alone."""
    finished = subprocess.run([sys.executable, "bench/fuzz_uploads.py", "--json"], cwd=REPO, capture_output=True,
                              text=True, timeout=900)
    report = json.loads(finished.stdout)
    outcomes = report["outcomes"]
    assert len(outcomes) >= 1000
    failed = [f"{o['name']}: {o['message']}" for o in outcomes if o["result"] not in ("decoded", "refused")]
    assert failed == []
    assert report["memory_rise_mb"] < fuzz_uploads.MEMORY_LIMIT_MB
    results = {(o["category"], o["result"]) for o in outcomes}
    # Every kind of file was really exercised: valid ones decode, damaged ones are refused (some decode anyway).
    assert ("valid: mode x format x size", "decoded") in results and ("truncated", "refused") in results
    assert ("bomb or zero size", "refused") in results and ("random bytes", "refused") in results
    bombs = [o for o in outcomes if o["name"].startswith("bomb-")]
    assert bombs and all(o["result"] == "refused" and "megapixels" in o["message"] for o in bombs)
    assert finished.returncode == 0


SEEDS = [payload for category, _, payload in fuzz_uploads.corpus() if category == "special"][:12]
PAGES = fuzz_uploads.PagePaths()


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                  max_size=12), cut=st.floats(0.0, 1.0))
def test_mutated_images_never_crash_the_upload_path(seed: bytes, edits: list[tuple[int, int]], cut: float) -> None:
    damaged = bytearray(seed[: max(1, math.ceil(len(seed) * cut))])
    for position, value in edits:
        damaged[position % len(damaged)] = value
    result, message = fuzz_uploads.check(bytes(damaged), PAGES)
    assert result in ("decoded", "refused"), message


@pytest.mark.parametrize("page", ["classify", "denoise", "colorize"])
def test_every_page_answers_hostile_uploads_with_a_message(page: str, tmp_path: Path, data_root: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = {name: payload for _, name, payload in fuzz_uploads.corpus()
              if name in ("bomb-20000x20000.png", "zero-0x10.png", "truncated-0.50-RGBA-32x32.png", "empty.png",
                          "html.png", "pickle.png", "animated-or-multipage.gif", "exif-6.jpg", "16-bit.png")}
    assert len(chosen) == 9
    folder = tmp_path / "checkpoints"
    {"classify": tiny_classifier, "denoise": tiny_denoiser, "colorize": tiny_colorizer}[page](folder, "tiny")
    app = open_page(tmp_path, f"pages/{page}.py", monkeypatch)
    app.get("segmented_control")[0].set_value("Upload").run()
    for name, payload in chosen.items():
        app.get("file_uploader")[0].set_value((name, payload, "image/png")).run()
        assert not app.exception, (name, [e.value for e in app.exception])
        errors = [e.value for e in app.error]
        decodes = name in ("animated-or-multipage.gif", "exif-6.jpg", "16-bit.png")
        assert (errors == []) == decodes, (name, errors)
        assert all(name in e and "Traceback" not in e for e in errors)


# ---- hyperparameters --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", -3, "epochs must be between"), ("epochs", 0, "epochs must be between"),
     ("epochs", 10**9, "epochs must be between"), ("epochs", 2.5, "whole number"), ("epochs", "10", "whole number"),
     ("lr", float("nan"), "lr must be between"), ("lr", float("inf"), "lr must be between"), ("lr", -0.1, "lr must"),
     ("lr", "fast", "lr must be a number"), ("batch_size", 0, "batch_size must"), ("batch_size", True, "whole"),
     ("weight_decay", float("nan"), "weight_decay"), ("subset", -1, "subset"), ("seed", -1, "seed"),
     ("arch", "vgg99", "Unknown architecture 'vgg99'"), ("task", "segmentation", "Unknown task"),
     ("optimizer", "lion", "Unknown optimizer"), ("dataset", "imagenet", "Unknown dataset"),
     ("arch_args", {"width": 10**6}, "width must be between"), ("arch_args", {"depth": 3}, "has no option"),
     ("arch_args", {"width": "wide"}, "width must be between"), ("max_minutes", float("nan"), "max_minutes"),
     ("noise_level", float("nan"), "strength must be between"),
     ("name", "../../etc/passwd", "cannot be used as a file name")],
)
def test_every_bad_setting_is_refused_before_anything_starts(field: str, value: object, message: str) -> None:
    settings_ = dict(task="classification", arch="fastnet", dataset="cifar10", epochs=1)
    settings_[field] = value
    if field == "noise_level":
        settings_.update(task="denoising", arch="conv_dae")
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings_).validate()


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--epochs", "nan"], "invalid int value"), (["--lr", "nan"], "lr must be between"),
     (["--lr", "1e999"], "lr must be between"), (["--batch-size", "-5"], "batch_size must be between"),
     (["--arch", "transformer"], "Unknown architecture"), (["--arch-arg", "width"], "KEY=VALUE"),
     (["--epochs", "99999999"], "epochs must be between")],
)
def test_the_command_line_refuses_bad_values_with_a_message(argv: list[str], message: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli_main(["--arch", "fastnet", *argv])
    except SystemExit as exit_:  # argparse's own type errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


# ---- checkpoints ------------------------------------------------------------------------------------------------

class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_and_broken_checkpoints_are_skipped_and_the_pages_still_work(
        app_home: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    from streamlit.testing.v1 import AppTest

    folder = paths.user_checkpoints()
    marker = app_home / "code-ran"
    for suffix in (".pt", ".pth", ".ckpt", ".pkl"):
        (folder / f"evil{suffix}").write_bytes(pickle.dumps(_Payload(str(marker))))
    good = models.build("fastnet", width=8)
    meta = {"name": "x", "task": "classification", "architecture": "fastnet", "arch_args": {"width": 8},
            "dataset": "cifar10"}
    for name in ("truncated", "not-json", "unknown-arch", "wrong-shapes"):
        checkpoints.save(good, folder / name, {**meta, "name": name})
    weights = folder / "truncated.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    (folder / "not-json.json").write_text("{'python': 'dict'}")
    (folder / "unknown-arch.json").write_text(json.dumps({**meta, "architecture": "vgg99", "name": "u",
                                                          "metrics": {}, "measured_by": None, "recipe": {},
                                                          "num_params": 1, "created": "now"}))
    sidecar = json.loads((folder / "wrong-shapes.json").read_text())
    (folder / "wrong-shapes.json").write_text(json.dumps({**sidecar, "arch_args": {"width": 16}}))
    (folder / "evil.safetensors").write_bytes(pickle.dumps(_Payload(str(marker))))  # a pickle in disguise
    checkpoints.save(good, folder / "good", {**meta, "name": "good"})

    metas, problems = checkpoints.scan_checkpoints("classification")
    assert "good" in {m["name"] for m in metas}
    assert not {m["name"] for m in metas} & {"truncated", "not-json", "unknown-arch", "wrong-shapes", "evil"}
    skipped = {p.path.name: p.message for p in problems}
    assert {"evil.pt", "evil.pth", "evil.ckpt", "evil.pkl", "truncated.safetensors", "not-json.safetensors",
            "unknown-arch.safetensors", "wrong-shapes.safetensors", "evil.safetensors"} <= skipped.keys()
    assert "do not fit fastnet" in skipped["wrong-shapes.safetensors"]
    with pytest.raises(checkpoints.CheckpointError, match="do not fit"):
        checkpoints.load("wrong-shapes")

    home = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not home.exception
    warned = " ".join(w.value for w in home.warning)
    assert "evil.pt was ignored" in warned and "truncated.safetensors" in warned
    classify = open_page(app_home, "pages/classify.py", monkeypatch)  # fails on any exception
    chosen_model = next(box for box in classify.selectbox if box.label == "Model").value
    assert classify.get("plotly_chart") and chosen_model.endswith("good.safetensors")
    assert not marker.exists()


def test_resume_state_files_are_not_listed_as_checkpoints(tmp_path: Path, app_home: Path, data_root: Path) -> None:
    result = Trainer(TrainConfig(arch="staged_cnn", arch_args={"variant": "baseline", "width": 8}, epochs=1,
                                 subset=128, val_size=64, batch_size=64, name="with-state")).fit()
    assert resume_path(result.checkpoint).is_file()
    metas, problems = checkpoints.scan_checkpoints()
    assert "with-state" in {m["name"] for m in metas} and problems == []


# ---- faults -----------------------------------------------------------------------------------------------------

def _cli(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "core.train", "--task", "classification", "--arch", "staged_cnn",
            "--arch-arg", "variant=\"baseline\"", "--arch-arg", "width=16", "--dataset", "cifar10",
            "--subset", "3000", "--val-size", "200", "--batch-size", "50", "--lr", "0.02", "--schedule", "cosine",
            "--out", str(tmp_path / "ckpt"), "--name", "killed", *extra]


def test_sigkill_mid_epoch_leaves_a_loadable_checkpoint_and_resume_finishes(tmp_path: Path, data_root: Path,
                                                                           app_home: Path) -> None:
    env = os.environ | {"CIFAR_LAB_HOME": str(app_home), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_cli(tmp_path, "--epochs", "6"), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    app_home.mkdir(parents=True, exist_ok=True)
    store = RunStore(app_home / "runs.sqlite3")
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runs = store.runs()
            if runs and len(runs[0]["epochs"]) >= 2:
                break
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        epoch_seconds = runs[0]["epochs"][-1]["seconds"]
        time.sleep(epoch_seconds * 0.4)  # well inside the next epoch
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()

    (run,) = store.runs()
    completed = len(run["epochs"])
    assert run["status"] == "interrupted" and 2 <= completed < 6
    _, meta = checkpoints.load(tmp_path / "ckpt" / "killed")
    assert meta["training"]["epochs_completed"] == completed
    assert [r["epoch"] for r in run["epochs"]] == list(range(1, completed + 1))
    assert not list((tmp_path / "ckpt").glob(".*.tmp"))  # killed between saves: no half-written file

    resumed = subprocess.run(_cli(tmp_path, "--epochs", "6", "--resume", str(tmp_path / "ckpt" / "killed")),
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _, meta = checkpoints.load(tmp_path / "ckpt" / "killed")
    assert meta["training"]["epochs_completed"] == 6 and "test_accuracy" in meta["metrics"]
    newest = store.runs()[0]
    assert newest["status"] == "finished" and newest["epochs"][0]["epoch"] == completed + 1


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EROFS])
def test_a_failed_save_fails_the_run_with_a_message_and_keeps_the_previous_checkpoint(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch, failure: int) -> None:
    import core.fileio

    config = TrainConfig(arch="staged_cnn", arch_args={"variant": "baseline", "width": 8}, epochs=3, subset=128,
                         val_size=64, batch_size=64, out=str(tmp_path), name="full-disk")
    saved = {"count": 0}
    real_temp_path = core.fileio.temp_path

    def filling_disk(target: Path) -> Path:
        saved["count"] += 1
        if saved["count"] > 3:  # epoch 1 writes weights, sidecar and resume state; then the disk is full
            raise OSError(failure, os.strerror(failure), str(target))
        return real_temp_path(target)

    monkeypatch.setattr(checkpoints, "temp_path", filling_disk)
    monkeypatch.setattr("core.train.resume.temp_path", filling_disk)
    weights = tmp_path / "full-disk.safetensors"
    trainer = Trainer(config)
    with pytest.raises(CheckpointWriteError, match=os.strerror(failure)):
        trainer.fit()
    _, meta = checkpoints.load(weights)
    assert meta["training"]["epochs_completed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full-disk.json", "full-disk.resume.safetensors",
                                                          "full-disk.safetensors"]


def test_the_cli_reports_a_full_disk_without_a_traceback(tmp_path: Path, data_root: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    def no_space(target: Path) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "temp_path", no_space)
    code = cli_main(["--arch", "staged_cnn", "--arch-arg", "variant=\"baseline\"", "--arch-arg", "width=8",
                     "--epochs", "1", "--subset", "64", "--val-size", "32", "--out", str(tmp_path), "--no-record"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "Traceback" not in err


def _wait(job, seconds: float = 120) -> None:
    job.thread.join(seconds)
    assert not job.running


def test_failed_and_stopped_jobs_release_the_training_slot(tmp_path: Path, data_root: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    manager, store = JobManager(), RunStore(tmp_path / "runs.sqlite3")
    config = TrainConfig(arch="staged_cnn", arch_args={"variant": "baseline", "width": 8}, epochs=50, subset=256,
                         val_size=64, batch_size=32, out=str(tmp_path), name="slot")
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "nothing-here"))
    failed = manager.start(config, store, limits=ServerLimits())
    _wait(failed)
    assert failed.snapshot()["status"] == "failed" and "not found" in failed.snapshot()["message"]
    monkeypatch.setenv("CIFAR_LAB_DATA", str(data_root))
    running = manager.start(config, store, limits=ServerLimits())  # the failed job held nothing
    while running.snapshot()["step"] < 2:
        time.sleep(0.05)
    manager.stop()
    _wait(running)
    assert running.snapshot()["status"] == "stopped"
    finished = manager.start(TrainConfig(**{**config.to_dict(), "epochs": 1}), store, limits=ServerLimits())
    _wait(finished)
    assert finished.snapshot()["status"] == "finished"
    # The failed job died before its data loaded, so only the two runs that trained are recorded.
    assert [r["status"] for r in store.runs()] == ["finished", "stopped"]


# ---- server caps ------------------------------------------------------------------------------------------------

def test_limits_come_from_the_environment_and_refuse_bad_values() -> None:
    limits = ServerLimits.from_env({"CIFAR_LAB_MAX_EPOCHS": "5", "CIFAR_LAB_MAX_MINUTES": "7.5",
                                    "CIFAR_LAB_MAX_TRAIN_IMAGES": "20000"})
    assert limits == ServerLimits(5, 7.5, 20_000) and "5 epochs" in limits.describe()
    assert not ServerLimits.from_env({}).active
    for bad in ("0", "-1", "nan", "lots"):
        with pytest.raises(ValueError, match="CIFAR_LAB_MAX_MINUTES"):
            ServerLimits.from_env({"CIFAR_LAB_MAX_MINUTES": bad})


def test_limits_refuse_big_runs_and_cap_time_on_the_server() -> None:
    limits = ServerLimits(max_epochs=5, max_minutes=7.0, max_train_images=20_000)
    with pytest.raises(ConfigError) as refused:
        limits.apply(TrainConfig(epochs=200, subset=50_000, out="/tmp/elsewhere"))
    assert len(refused.value.problems) == 3
    for reads_a_file in ({"init_from": "/etc/passwd"}, {"teacher": "/tmp/x.safetensors"}, {"resume": "x"}):
        with pytest.raises(ConfigError, match="cannot read other files"):
            limits.apply(TrainConfig(epochs=1, **reads_a_file))
    capped = limits.apply(TrainConfig(epochs=5, subset=None, max_minutes=60, tta=True))
    assert capped.max_minutes == 7.0 and capped.subset == 20_000 and not capped.tta
    assert limits.apply(TrainConfig(epochs=2, subset=100, max_minutes=1)).max_minutes == 1


def test_the_job_manager_enforces_the_environment_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_MAX_EPOCHS", "3")
    with pytest.raises(ConfigError, match="at most 3 epochs"):
        JobManager().start(TrainConfig(epochs=4, subset=100))  # what a crafted request could send


def dockerfile_limits() -> ServerLimits:
    return ServerLimits.from_dockerfile(REPO / "Dockerfile")


def test_the_space_defaults_keep_every_job_under_ten_minutes() -> None:
    limits = dockerfile_limits()
    assert None not in (limits.max_minutes, limits.max_epochs, limits.max_train_images, limits.max_params,
                        limits.max_memory_mb)
    # The cap covers data loading and training; the final test-set evaluation gets the rest of the 10 minutes.
    assert limits.max_minutes <= 8 and limits.owner_only_stop


def test_a_your_images_run_starts_on_the_space_within_its_upload_caps(app_home: Path) -> None:
    from core.own_data import UploadLimits
    from core.train.config import own_images_preset

    limits = dockerfile_limits()
    assert limits.upload_limits() == UploadLimits(max_files=1000, max_total_mb=100)
    uploads = app_home / "jobs" / "run" / "your-images"
    for name in ("cats", "dogs"):
        (uploads / name).mkdir(parents=True)
    capped = limits.apply(own_images_preset(dataset=str(uploads)).validate())
    assert capped.init_from == "fastnet-cifar10" and capped.max_minutes <= limits.max_minutes


@pytest.mark.parametrize(("task", "label"), [(t, label) for t, presets in PRESETS.items() for label in presets])
def test_every_preset_runs_on_the_space(task: str, label: str) -> None:
    config = preset(task, label).validate()
    capped = dockerfile_limits().apply(config)  # raises ConfigError if the Space would refuse it
    assert capped.max_minutes is not None and not capped.tta


def test_the_time_cap_finishes_a_run_with_its_schedule_spent(tmp_path: Path, data_root: Path) -> None:
    config = TrainConfig(arch="staged_cnn", arch_args={"variant": "baseline", "width": 8}, epochs=1000, subset=256,
                         val_size=64, batch_size=32, out=str(tmp_path), name="capped", max_minutes=0.3)
    started = time.monotonic()
    result = Trainer(config).fit()
    assert result.status == "finished" and "Reached the time limit of 0.3 minutes" in result.message
    assert 1 <= result.epochs_completed < 1000 and "test_accuracy" in result.test_metrics
    # The learning rate followed the clock: by the last completed epoch it had decayed most of the way.
    assert result.history[-1].lr < 0.2 * config.lr
    assert (tmp_path / "capped.safetensors").exists()
    assert time.monotonic() - started < 60


def test_hostile_upload_limits_are_on_in_the_streamlit_config() -> None:
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 <= images.MAX_BYTES
    assert config["server"]["fileWatcherType"] == "none" and config["browser"]["gatherUsageStats"] is False
