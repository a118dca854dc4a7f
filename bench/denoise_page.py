"""How fast the Denoise page answers a slider move on a 32x32 CIFAR-10 image, as the server sees it.

Runs the page in Streamlit's AppTest (the page's own script, no browser) with the shipped checkpoints,
picks a denoiser, then moves the strength slider step by step and times each full rerun: new noise,
denoising, metrics and the page's widgets. The browser's own round trip is not included.

Usage: python bench/denoise_page.py [--model NAME] [--moves 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamlit.testing.v1 import AppTest

from core import devices

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-gaussian-cifar10")
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    app = AppTest.from_file(APP, default_timeout=120)
    app.switch_page("pages/denoise.py").run()
    denoiser = next(box for box in app.selectbox if box.label == "Denoiser")
    denoiser.select_index(next(i for i, label in enumerate(denoiser.options) if args.model in str(label))).run()
    strength = next(slider for slider in app.slider if slider.label == "Strength")
    timings = []
    for move in range(args.moves):
        strength.set_value(10.0 + move)
        start = time.perf_counter()
        app.run()
        timings.append((time.perf_counter() - start) * 1000)
        if app.exception:
            raise SystemExit(f"The page failed: {app.exception[0].value}")
        strength = next(slider for slider in app.slider if slider.label == "Strength")
    print(f"Device: {devices.describe()}; model {args.model}; {args.moves} slider moves on test image #0 (32x32).\n")
    print("| page | action | median | 95th percentile | slowest |")
    print("|---|---|---:|---:|---:|")
    ordered = sorted(timings)
    print(f"| Denoise | move the strength slider | {statistics.median(timings):.0f} ms "
          f"| {ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms | {ordered[-1]:.0f} ms |")


if __name__ == "__main__":
    main()
