"""The Home page, through Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import checkpoints, models, paths

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def run_home() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_home_shows_device_datasets_and_empty_checkpoints(app_home: Path, data_root: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "SHIPPED_CHECKPOINTS", app_home / "no-shipped")
    app = run_home()
    assert app.title[0].value == "CIFAR Lab"
    assert any("Running on **CPU" in m.value for m in app.markdown)
    table = app.dataframe[0].value
    assert len(table) == 6 and table["found"].all()
    assert any("No checkpoints are installed yet" in i.value for i in app.info)


def test_home_lists_checkpoints_and_skipped_files(app_home: Path, data_root: Path) -> None:
    checkpoints.save(models.build("resnet18", width=8), paths.user_checkpoints() / "home-test",
                     {"name": "home-test", "task": "classification", "architecture": "resnet18",
                      "arch_args": {"width": 8}, "dataset": "cifar10",
                      "metrics": {"test_accuracy": 0.9123}, "measured_by": "pytest", "recipe": {}})
    (paths.user_checkpoints() / "old.pth").write_bytes(b"\x80\x04pickle")
    app = run_home()
    table = app.dataframe[1].value
    row = table[table["name"] == "home-test"].iloc[0]
    assert row["test metrics"] == "accuracy 91.23%" and row["parameters"] == "0.18M"
    assert any("old.pth" in w.value and "safetensors" in w.value for w in app.warning)


def test_home_explains_missing_datasets(app_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "empty"))
    app = run_home()
    assert not app.dataframe[0].value["found"].any()
    warnings = " ".join(w.value for w in app.warning)
    assert "CIFAR-10 was not found" in warnings and "CIFAR_LAB_DATA" in warnings
