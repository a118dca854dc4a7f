"""Atomic file writes: write to a temporary file beside the target, then rename it into place.

A crash or a full disk leaves the previous file whole; readers never see half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_path(target: Path) -> Path:
    """A new, empty temporary file in ``target``'s folder (same filesystem, so the rename is atomic)."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide files from other users of a shared install
    os.close(fd)
    return Path(name)


def atomic_write_bytes(target: Path, payload: bytes) -> None:
    tmp = temp_path(target)
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
