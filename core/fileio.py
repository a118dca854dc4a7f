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


def write_synced(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` and flush it to the disk, so a rename after it publishes whole data."""
    with open(path, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(target: Path, payload: bytes, sync: bool = True) -> None:
    """Replace ``target`` with ``payload`` in one step: readers see the old file or the new one.

    ``sync=False`` skips the flush to disk: still atomic for readers, not durable across a power cut
    (for state rewritten every second, such as a run's live progress).
    """
    tmp = temp_path(target)
    try:
        if sync:
            write_synced(tmp, payload)
        else:
            tmp.write_bytes(payload)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
