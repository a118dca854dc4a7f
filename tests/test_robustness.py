"""bench/robustness.py: accuracy against noise, its end points, and the curves on the Classify page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from core import checkpoints, data
from core.noise import RANGES

REPO = Path(__file__).resolve().parent.parent


def bench():
    spec = importlib.util.spec_from_file_location("robustness_bench", REPO / "bench" / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curves_start_at_clean_accuracy_and_noise_costs_accuracy(data_root: Path) -> None:
    robustness = bench()
    for kind, levels in robustness.LEVELS.items():
        low, high, _ = RANGES[kind]
        assert all(low <= level <= high for level in levels)
    curves = robustness.measure(200)
    assert set(curves) == {"fastnet-cifar10", "intermediate-block-cifar10", "staged-advanced-cifar10"}
    test = data.load_dataset("cifar10", "test")
    model, _ = checkpoints.load("fastnet-cifar10")
    clean_accuracy = robustness.accuracy(model.eval(), test.images[:200].float().div(255), test.labels[:200])
    fastnet = curves["fastnet-cifar10"]
    assert fastnet["gaussian"][0]["level"] == 0 and fastnet["gaussian"][0]["noisy"] == clean_accuracy
    assert fastnet["salt_pepper"][0]["noisy"] == clean_accuracy
    strongest = fastnet["gaussian"][-1]
    assert strongest["noisy"] < clean_accuracy - 0.3  # sigma 100 destroys recognition...
    assert strongest["denoised"] > strongest["noisy"]  # ...and the denoiser gives some of it back
    assert fastnet["salt_pepper"][2]["denoised"] > fastnet["salt_pepper"][2]["noisy"] + 0.2
    noisy = [p["noisy"] for p in fastnet["gaussian"]]
    assert noisy[0] > noisy[1] > noisy[2] and min(noisy) < 0.3  # falls as noise grows, to near chance
