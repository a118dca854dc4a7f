"""The Home page, through Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import checkpoints, download, models, paths
from tests.test_download import http_server, no_temporary_files, small_catalogue

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


def test_home_offers_the_missing_datasets_with_their_sizes(app_home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "empty"))
    app = run_home()
    assert not app.dataframe[0].value["found"].any()
    text = " ".join(m.value for m in app.markdown)
    assert "CIFAR-10 (170 MB), MNIST (12 MB) and Fashion-MNIST (31 MB)" in text
    assert any(b.label == "Get the datasets" for b in app.button)
    # The manual route waits in an expander instead of a wall of yellow boxes.
    assert "CIFAR-10 was not found" in text and "CIFAR_LAB_DATA" in text and "make data" in text
    assert not app.warning and not app.error


def test_get_the_datasets_offline_says_so_and_shows_the_manual_route(app_home: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:1/")  # nothing listens there: as if offline
    app = run_home()
    next(b for b in app.button if b.label == "Get the datasets").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert [w.value for w in app.warning] == ["No internet connection here: the datasets cannot be downloaded."]
    manual = next(m.value for m in app.markdown if m.value.startswith("To get them by hand"))
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in manual
    assert str((tmp_path / "empty").resolve() / "FashionMNIST" / "raw") in manual
    assert not (tmp_path / "empty").exists() or no_temporary_files(tmp_path / "empty")


def test_get_the_datasets_downloads_them_and_the_table_shows_them(app_home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root, served = tmp_path / "empty", tmp_path / "served"
    served.mkdir()
    monkeypatch.setenv("CIFAR_LAB_DATA", str(root))
    app = run_home()
    with http_server(served) as url:
        catalogue = small_catalogue(served, url)  # small archives in the real layouts, in place of the official ones
        monkeypatch.setattr(download, "archives", lambda name: tuple(catalogue[name]))
        next(b for b in app.button if b.label == "Get the datasets").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.dataframe[0].value["found"].all()
    assert any(s.value.startswith("Downloaded CIFAR-10, MNIST, Fashion-MNIST") for s in app.success)
    assert not any(b.label == "Get the datasets" for b in app.button)
    assert no_temporary_files(root)
