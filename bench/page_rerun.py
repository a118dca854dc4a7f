"""How fast the Denoise and Colorize pages answer a slider move, as the server sees it.

Runs the page in Streamlit's AppTest (the page's own script, no browser) with the shipped checkpoints, on
test image #0 (32x32) or, with ``--photo``, on an uploaded photo (the Space's largest: scaled to the pages'
4-megapixel cap unless ``--keep-size``), then moves a slider to values it has not had yet (so nothing is
answered from the page's cache) and times each full rerun: on Denoise the strength (new noise, denoising,
metrics), on Colorize the working size (colorizing, metrics); both draw the comparison and make the
download's PNG. The browser's own round trip is not included.

Usage: python bench/page_rerun.py [--page denoise|colorize] [--model NAME] [--photo PATH] [--moves 20]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image
from streamlit.testing.v1 import AppTest

from core import denoise, devices, images

APP = str(Path(__file__).resolve().parent.parent / "app.py")
# (the slider moved, the model picker, the default model, the slider's first value, step and how many values
# it has from there): each move goes to a value not yet seen, so no rerun is answered from the page's cache
PAGES = {"denoise": ("Strength", "Denoiser", "unet-gaussian-cifar10", 26.0, 1.0, 200),  # opens at 25
         "colorize": ("Working size (pixels, longer side)", "Model", "unet-colorizer-faithful", 48, 16, 14)}  # at 32


def upload_bytes(path: str, keep_size: bool) -> tuple[bytes, str]:
    """The photo as PNG bytes, scaled up or down to the pages' cap unless ``keep_size``, and its size in words."""
    photo = images.load_image(Path(path).read_bytes())
    if not keep_size:
        scale = math.sqrt(denoise.MAX_PIXELS * 0.99 / (photo.width * photo.height))
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    return images.png_bytes(photo), f"{Path(path).name} at {photo.width}x{photo.height}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", choices=sorted(PAGES), default="denoise")
    parser.add_argument("--model", help="the checkpoint to pick (default: the page's usual one)")
    parser.add_argument("--photo", help="upload this photo instead of using test image #0")
    parser.add_argument("--keep-size", action="store_true", help="upload the photo at its own size")
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    slider_label, picker_label, default_model, first_value, step, values = PAGES[args.page]
    model = args.model or default_model
    app = AppTest.from_file(APP, default_timeout=300)
    app.switch_page(f"pages/{args.page}.py").run()
    shown = "test image #0 (32x32)"
    if args.photo:
        payload, shown = upload_bytes(args.photo, args.keep_size)
        app.segmented_control[0].set_value("Upload").run()
        app.get("file_uploader")[0].set_value(("photo.png", payload, "image/png")).run()
    picker = next(box for box in app.selectbox if box.label == picker_label)
    picker.select_index(next(i for i, label in enumerate(picker.options) if model in str(label))).run()
    timings = []
    for move in range(args.moves):
        slider = next(slider for slider in app.slider if slider.label == slider_label)
        slider.set_value(first_value + step * (move % values))
        start = time.perf_counter()
        app.run()
        timings.append((time.perf_counter() - start) * 1000)
        if app.exception:
            raise SystemExit(f"The page failed: {app.exception[0].value}")
    print(f"CPU: {devices.cpu_model()}; {devices.describe()}; model {model}; {args.moves} slider moves on {shown}.\n")
    print("| page | action | median | 95th percentile | slowest |")
    print("|---|---|---:|---:|---:|")
    ordered = sorted(timings)
    print(f"| {args.page.title()} | move the {slider_label.split(' (')[0].lower()} slider | "
          f"{statistics.median(timings):.0f} ms | {ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms "
          f"| {ordered[-1]:.0f} ms |")


if __name__ == "__main__":
    main()
