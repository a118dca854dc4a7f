"""core.warmup: the server loads core once and freezes it, so Streamlit's per-run collection stays cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# In a child process: freezing is for the whole process, and the test session's objects must stay collectable.
CHILD = """
import gc, sys
from core import warmup
before = gc.get_freeze_count()
warmup.EVERY_VISIT = (*warmup.EVERY_VISIT, "not_a_module_of_this_app")  # a missing library breaks no page
assert warmup.freeze_imports() is True
assert warmup.freeze_imports() is False
missing = [name for name in (*warmup.modules(), "captum.attr") if name not in sys.modules]
assert not missing, missing
assert gc.get_freeze_count() > before + 100_000, gc.get_freeze_count()
class Cycle:
    pass
node = Cycle(); node.me = node; del node  # garbage made after the freeze is still collected
assert gc.collect() >= 1
print("ok")
"""


def test_freeze_imports_loads_every_core_module_once_skips_what_is_missing_and_garbage_is_still_collected() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_every_core_module_is_listed_except_entry_points() -> None:
    from core import warmup

    listed = warmup.modules()
    assert {"core.denoise", "core.train.jobs", "core.models.unet"} <= set(listed)
    assert not [name for name in listed if name.endswith("__main__")]
