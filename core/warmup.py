"""Once per server process: load every ``core`` module, then take it out of the garbage collector's way.

Streamlit runs a full garbage collection after every script run (its ``runner.postScriptGC``), and the
Train page's live panel reruns every second for each tab watching a run. With torch, plotly, pandas and
scikit-image loaded, a full collection walks about 450,000 objects: 0.2 s of CPU per run on two cores,
holding the GIL, so every other visitor's page waits behind it. Modules, classes and functions live as
long as the process; ``gc.freeze`` moves them to a generation that collections skip, which brings a full
collection down to milliseconds while it still frees the visitors' own cyclic garbage.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
import threading

import core

# Loaded lazily by core, but on every visit to a page: Grad-CAM on Classify.
EVERY_VISIT = ("captum.attr",)
_lock = threading.Lock()
_done = False


def modules() -> list[str]:
    """Every importable module of ``core`` (not the command-line entry points)."""
    return sorted(info.name for info in pkgutil.walk_packages(core.__path__, "core.")
                  if not info.name.endswith("__main__"))


def freeze_imports() -> bool:
    """Import every ``core`` module and freeze what is alive; only the first call does it (True then)."""
    global _done
    with _lock:
        if _done:
            return False
        for name in (*modules(), *EVERY_VISIT):
            try:
                importlib.import_module(name)
            except ImportError:  # a missing optional library: the page that needs it says so when it runs
                continue
        gc.collect()
        gc.freeze()
        _done = True
        return True
