"""Shared test set-up: real datasets from CIFAR_LAB_DATA, a throw-away app home.

Datasets are read from ``$CIFAR_LAB_DATA`` (``.ci/run`` sets it to ../shared/data),
falling back to ../shared/data beside the checkout. Decoded datasets are cached in
the repository's ignored ``.cache/`` so repeated runs skip the PNG decoding.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("CIFAR_LAB_DATA", str(REPO.parent / "shared" / "data"))
    os.environ["CIFAR_LAB_HOME"] = tempfile.mkdtemp(prefix="cifar-lab-home-")
    os.environ.setdefault("CIFAR_LAB_CACHE", str(REPO / ".cache" / "datasets"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets; missing data fails under CI and skips elsewhere."""
    root = Path(os.environ["CIFAR_LAB_DATA"])
    if not (root / "cifar10" / "test").is_dir() and not (root / "cifar-10-batches-py").is_dir():
        message = f"real datasets not found in {root} (set CIFAR_LAB_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty app data folder for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("CIFAR_LAB_HOME", str(home))
    return home
