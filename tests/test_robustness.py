"""bench/robustness.py: accuracy against noise, its end points, and the curves on the Classify page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

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


def test_classify_draws_the_curves_and_the_point_of_the_noise_put_on_the_image(app_home: Path, data_root: Path) -> None:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    app.switch_page("pages/classify.py").run()
    assert not app.exception, [e.value for e in app.exception]
    charts = lambda: [c.proto.spec for c in app.get("plotly_chart")]  # noqa: E731
    assert any("denoised (" in spec for spec in charts()) and not any("this image" in s for s in charts())
    slider = next(s for s in app.select_slider if s.label == "Put this noise on the image")
    slider.set_value(50.0).run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("this image" in spec for spec in charts())  # the vertical mark at sigma 50
    said = [m.value for m in app.markdown if ": **" in m.value]
    assert any(s.startswith("as it is: **") for s in said) and any(s.startswith("Gaussian σ=50: **") for s in said)
    assert any(s.startswith("denoised by unet-gaussian-cifar10: **") for s in said)


def test_noise_on_one_image_is_seeded_and_the_denoiser_cleans_it() -> None:
    from core import denoise
    from core.noise import NoiseSpec

    clean = torch.linspace(0, 1, 32).expand(3, 32, 32).clone()  # smooth, as a median filter expects
    noisy, restored = denoise.noisy_and_restored(clean, NoiseSpec("salt_pepper", 0.1), None)
    again, _ = denoise.noisy_and_restored(clean, NoiseSpec("salt_pepper", 0.1), None)
    assert torch.equal(noisy, again) and not torch.equal(noisy, clean)
    assert (restored - clean).abs().mean() < (noisy - clean).abs().mean()  # the median filter
    unchanged, _ = denoise.noisy_and_restored(clean, NoiseSpec("gaussian", 0.0), None)
    assert torch.equal(unchanged, clean)
