"""Where CIFAR Lab reads and writes files.

Three places, each overridable by an environment variable so a deployment (or a
test) can move them without touching code:

- ``CIFAR_LAB_DATA``: datasets (read), default ``./data``.
- ``CIFAR_LAB_HOME``: the app's own data folder (user checkpoints, run history),
  default ``~/.cifar_lab``.
- ``CIFAR_LAB_CACHE``: decoded-dataset cache, default ``$CIFAR_LAB_HOME/cache``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CHECKPOINTS = REPO_ROOT / "checkpoints"


def data_root() -> Path:
    """The folder datasets are looked for in."""
    return Path(os.environ.get("CIFAR_LAB_DATA") or "data").expanduser()


def app_home() -> Path:
    """The app's writable data folder (created on demand)."""
    home = Path(os.environ.get("CIFAR_LAB_HOME") or Path.home() / ".cifar_lab").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def cache_dir() -> Path:
    """Where decoded datasets are cached as tensor files."""
    path = Path(os.environ.get("CIFAR_LAB_CACHE") or app_home() / "cache").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_checkpoints() -> Path:
    """Where checkpoints trained by users go (never into the repository)."""
    path = app_home() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path
