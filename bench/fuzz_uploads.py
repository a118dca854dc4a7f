"""Fuzz the upload path: 1,000+ generated files through ``core.images.load_image`` and every page's processing.

The corpus is deterministic (seeded) and covers what a public demo gets sent: every PIL mode
in every supported format and size down to 1x1, 16-bit, palettes with transparency, animated
images, all eight EXIF orientations, truncated and bit-flipped files, decompression bombs
(headers claiming 20,000 x 20,000 and more), zero-sized images, non-images renamed ``.png``
and empty files. Each file must end as a decoded image that the Classify, Denoise and
Colorize pages' ``core`` calls then process, or as a clear ``ImageError`` message: never an
exception, a hang (each file runs under an alarm) or a large memory rise.

Usage: python bench/fuzz_uploads.py [--json] [--limit N]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import signal
import struct
import sys
import time
import traceback
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image

from core import classify, colorize, denoise, images, models
from core.noise import NoiseSpec

FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp", "AVIF": "avif"}
MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "PA", "I", "I;16", "F", "CMYK", "YCbCr", "LAB", "HSV", "RGBX")
SIZES = ((1, 1), (3, 5), (32, 32), (97, 61))
SECONDS_PER_FILE = 60  # far above any real file's time: only a hang reaches it
MEMORY_LIMIT_MB = 1024


@dataclass
class Outcome:
    category: str
    name: str
    result: str  # "decoded", "refused" (a clear ImageError) or "crashed"
    message: str
    seconds: float


# ---- the corpus -------------------------------------------------------------------------------------------------
def _pattern(size: tuple[int, int], seed: int) -> np.ndarray:
    """A colour gradient with some texture, so compressors and converters have real work.

    Built in uint8 from broadcast rows and columns, so making a large one costs little memory:
    the memory the fuzz run measures is the upload path's, not the generator's.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    across = (np.arange(width, dtype=np.int64) * 255 // max(width, 1)).astype(np.uint8)
    down = (np.arange(height, dtype=np.int64) * 255 // max(height, 1)).astype(np.uint8)
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = across[None, :]
    image[..., 1] = down[:, None]
    image[..., 2] = across[None, :] // 2 + down[:, None] // 2
    image ^= rng.integers(0, 32, (height, width, 1), dtype=np.uint8)
    return image


def _image_in_mode(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rgb = Image.fromarray(_pattern(size, seed), "RGB")
    if mode in ("I", "I;16"):
        return Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257).astype(np.uint16 if mode == "I;16"
                                                                                     else np.int32))
    if mode == "F":
        return Image.fromarray(np.asarray(rgb.convert("L"), np.float32) / 7.0)
    if mode == "PA":
        return rgb.convert("P").convert("PA")
    return rgb.convert(mode)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # Pillow 12 warns that writing some modes (I as PNG) will end in Pillow 13
        warnings.simplefilter("ignore", DeprecationWarning)
        image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def valid_files() -> Iterator[tuple[str, str, bytes]]:
    """Every mode x format x size that Pillow can write (combinations it cannot write are skipped)."""
    for fmt, extension in FORMATS.items():
        for mode in MODES:
            for index, size in enumerate(SIZES):
                try:
                    payload = _encode(_image_in_mode(mode, size, index), fmt)
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                yield "valid: mode x format x size", f"{mode}-{size[0]}x{size[1]}.{extension}", payload


def special_files() -> Iterator[tuple[str, str, bytes]]:
    """16-bit, palette transparency, animation, EXIF orientation, multi-page and large real images."""
    gradient = _pattern((40, 24), 1)
    sixteen = (gradient[..., 0].astype(np.uint16) * 257)
    yield "special", "16-bit.png", _encode(Image.fromarray(sixteen), "PNG")
    yield "special", "16-bit.tif", _encode(Image.fromarray(sixteen), "TIFF")
    yield "special", "float.tif", _encode(Image.fromarray(gradient[..., 1].astype(np.float32) * 1e6), "TIFF")
    yield "special", "nan-float.tif", _encode(Image.fromarray(np.full((8, 8), np.nan, np.float32)), "TIFF")
    palette = Image.fromarray(gradient).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    yield "special", "palette-transparency.png", _encode(palette, "PNG", transparency=0)
    yield "special", "palette-transparency.gif", _encode(palette, "GIF", transparency=0)
    frames = [Image.fromarray(_pattern((30, 20), seed)) for seed in range(5)]
    for fmt, extension in (("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png"), ("TIFF", "tif")):
        yield "special", f"animated-or-multipage.{extension}", _encode(frames[0], fmt, save_all=True,
                                                                        append_images=frames[1:], duration=80)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        for fmt, extension in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif")):
            yield "special", f"exif-{orientation}.{extension}", _encode(Image.fromarray(gradient), fmt, exif=exif)
    bad_exif = Image.Exif()
    bad_exif[0x0112] = 99
    yield "special", "exif-orientation-99.jpg", _encode(Image.fromarray(gradient), "JPEG", exif=bad_exif)
    yield "special", "progressive.jpg", _encode(Image.fromarray(gradient), "JPEG", progressive=True)
    yield "special", "cmyk.jpg", _encode(Image.fromarray(gradient).convert("CMYK"), "JPEG")
    yield "special", "large-3000x2000.png", _encode(Image.fromarray(_pattern((3000, 2000), 3)), "PNG")
    yield "special", "wide-8000x4.png", _encode(Image.fromarray(_pattern((8000, 4), 4)), "PNG")
    yield "special", "tall-3x9000.jpg", _encode(Image.fromarray(_pattern((3, 9000), 5)), "JPEG")


def _png(width: int, height: int, row: bytes, rows: int = 1, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """A PNG written by hand, so its header can claim any size; its data is ``row`` repeated ``rows`` times."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    deflate = zlib.compressobj(9)
    data = b"".join(deflate.compress(row) for _ in range(rows)) + deflate.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def bomb_files() -> Iterator[tuple[str, str, bytes]]:
    """Headers that claim huge or zero sizes, and a real 40-megapixel-plus image of zeros."""
    for width, height in ((20_000, 20_000), (100_000, 100_000), (2**31 - 1, 1), (65_535, 65_535), (10_000, 5_000)):
        yield "bomb or zero size", f"bomb-{width}x{height}.png", _png(width, height, b"\0" * 4096)
    row = b"\0" + b"\0" * 3 * 8000  # filter byte, then 8,000 black RGB pixels
    yield "bomb or zero size", "real-8000x6000-zeros.png", _png(8000, 6000, row, rows=6000)
    for width, height in ((0, 10), (10, 0), (0, 0)):
        yield "bomb or zero size", f"zero-{width}x{height}.png", _png(width, height, b"")
    gif = bytearray(_encode(Image.new("P", (4, 4)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65_535, 65_535)
    yield "bomb or zero size", "bomb-screen.gif", bytes(gif)
    bmp = bytearray(_encode(Image.new("RGB", (4, 4)), "BMP"))
    bmp[18:26] = struct.pack("<ii", 50_000, 50_000)
    yield "bomb or zero size", "bomb.bmp", bytes(bmp)
    bmp[18:26] = struct.pack("<ii", 0, 4)
    yield "bomb or zero size", "zero-width.bmp", bytes(bmp)
    jpeg = bytearray(_encode(Image.new("RGB", (16, 16)), "JPEG"))
    marker = jpeg.find(b"\xff\xc0")
    jpeg[marker + 5:marker + 9] = struct.pack(">HH", 60_000, 60_000)
    yield "bomb or zero size", "bomb.jpg", bytes(jpeg)
    tiff = _encode(Image.new("L", (1, 1)), "TIFF")
    for tag in (256, 257):  # ImageWidth, ImageLength: both claim 30,000
        for kind in (3, 4):  # SHORT or LONG, whichever Pillow wrote
            tiff = tiff.replace(struct.pack("<HHII", tag, kind, 1, 1), struct.pack("<HHII", tag, 4, 1, 30_000))
    assert tiff.count(struct.pack("<I", 30_000)) == 2
    yield "bomb or zero size", "bomb.tif", tiff
    webp = bytearray(_encode(Image.new("RGB", (16, 16)), "WEBP", lossless=True))
    webp[21:25] = struct.pack("<I", 0x3FFF | (0x3FFF << 14))  # VP8L: 16,384 x 16,384
    yield "bomb or zero size", "bomb.webp", bytes(webp)


def damaged_files(seeds: list[tuple[str, bytes]], rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    """Each seed file truncated at several points and with bytes overwritten at random."""
    for name, payload in seeds:
        for fraction in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
            cut = max(1, int(len(payload) * fraction))
            yield "truncated", f"truncated-{fraction:.2f}-{name}", payload[:cut]
        for attempt in range(8):
            damaged = bytearray(payload)
            for _ in range(rng.choice((1, 4, 32))):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            yield "bytes overwritten", f"flipped-{attempt}-{name}", bytes(damaged)


def not_images(rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    payloads = {
        "empty.png": b"",
        "text.png": b"just some notes, renamed\n" * 20,
        "html.png": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
        "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000"><rect/></svg>',
        "pdf.png": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
        "zip.png": b"PK\x03\x04" + bytes(40),
        "elf.png": b"\x7fELF\x02\x01\x01" + bytes(60),
        "pickle.png": b"\x80\x04\x95" + b"cos\nsystem\n(S'echo owned'\ntR.",
        "json.png": json.dumps({"image": [[0, 1], [1, 0]]}).encode(),
        "png-signature-only.png": b"\x89PNG\r\n\x1a\n",
        "jpeg-markers-only.jpg": b"\xff\xd8\xff\xd9",
        "gif-header-only.gif": b"GIF89a",
        "bmp-header-only.bmp": b"BM" + bytes(12),
        "tiff-header-only.tif": b"II*\x00\x08\x00\x00\x00",
        "webp-header-only.webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        "ico.png": _encode(Image.new("RGB", (16, 16)), "ICO"),
        "ppm.png": _encode(Image.new("RGB", (16, 16)), "PPM"),
    }
    for name, payload in payloads.items():
        yield "not an image, or another format", name, payload
    for index in range(40):
        yield "random bytes", f"random-{index}.png", rng.randbytes(rng.choice((1, 7, 100, 5000)))


def corpus() -> Iterator[tuple[str, str, bytes]]:
    """Every generated file as (category, name, bytes); the same files on every run."""
    rng = random.Random(20_261_124)
    valid = list(valid_files())
    yield from valid
    special = list(special_files())
    yield from special
    yield from bomb_files()
    seeds = [(name, payload) for _, name, payload in valid if "32x32" in name][::2]
    seeds += [(name, payload) for _, name, payload in special if "large" not in name][::3]
    yield from damaged_files(seeds, rng)
    yield from not_images(rng)


# ---- the checks -------------------------------------------------------------------------------------------------
class PagePaths:
    """The ``core`` calls the Classify, Denoise and Colorize pages make on an uploaded image, with tiny models."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.classifier = models.build("fastnet", width=8).eval()
        self.denoiser = models.build("unet_denoiser", width=8).eval()
        self.colorizer = models.build("unet_colorizer", width=8).eval()
        self.noise = NoiseSpec("gaussian", 25.0)

    def run(self, image) -> None:
        probabilities = classify.probabilities(self.classifier, image)
        classify.overlay(image, classify.saliency(self.classifier, image, int(np.argmax(probabilities))))
        clean, _ = denoise.prepare(image)
        noisy = denoise.make_noisy(clean, self.noise, seed=0)
        denoise.denoise_one("unet", noisy, model=self.denoiser, title="unet", clean=clean)
        denoise.denoise_one("median", noisy, spec=self.noise, clean=clean)
        colorize.colorize_one(self.colorizer, colorize.prepare(image), colorize.WORKING_SIDE)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def check(payload: bytes, pages: PagePaths | None) -> tuple[str, str]:
    """("decoded" | "refused" | "crashed", message) for one uploaded file."""
    try:
        image = images.load_image(payload)
    except images.ImageError as error:
        message = str(error)
        return ("refused", message) if message and "Traceback" not in message else ("crashed", repr(error))
    except Hang:
        raise
    except BaseException as error:
        return "crashed", f"load_image: {''.join(traceback.format_exception_only(error)).strip()}"
    if image.mode != "RGB" or image.width < 1 or image.height < 1:
        return "crashed", f"load_image returned a {image.mode} image of {image.size}"
    if pages is not None:
        try:
            pages.run(image)
        except Hang:
            raise
        except BaseException as error:
            return "crashed", f"page path on {image.size}: {''.join(traceback.format_exception_only(error)).strip()}"
    return "decoded", f"{image.width} x {image.height}"


def run(limit: int | None = None, pages: bool = True) -> dict:
    torch.set_num_threads(1)
    paths = PagePaths() if pages else None
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcomes: list[Outcome] = []
    signal.signal(signal.SIGALRM, _alarm)
    for number, (category, name, payload) in enumerate(corpus()):
        if limit is not None and number >= limit:
            break
        start = time.perf_counter()
        signal.alarm(SECONDS_PER_FILE)
        try:
            result, message = check(payload, paths)
        except Hang:
            result, message = "hung", f"no answer within {SECONDS_PER_FILE} s"
        finally:
            signal.alarm(0)
        outcomes.append(Outcome(category, name, result, message, time.perf_counter() - start))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"outcomes": [asdict(o) for o in outcomes], "baseline_mb": baseline_mb, "peak_mb": peak_mb,
            "memory_rise_mb": peak_mb - baseline_mb}


def table(report: dict) -> str:
    outcomes = [Outcome(**o) for o in report["outcomes"]]
    categories = list(dict.fromkeys(o.category for o in outcomes))
    counts = Counter((o.category, o.result) for o in outcomes)
    lines = ["| files | decoded and processed by every page | refused with a message | crashed or hung "
             "| slowest |", "|---|---:|---:|---:|---:|"]
    for category in [*categories, "all"]:
        chosen = [o for o in outcomes if category in ("all", o.category)]
        bad = sum(counts[(c, r)] for c in categories for r in ("crashed", "hung") if category in ("all", c))
        decoded = sum(o.result == "decoded" for o in chosen)
        refused = sum(o.result == "refused" for o in chosen)
        label = f"**all {len(chosen):,}**" if category == "all" else f"{category} ({len(chosen)})"
        lines.append(f"| {label} | {decoded} | {refused} | {bad} | {max(o.seconds for o in chosen):.2f} s |")
    lines.append(f"\nPeak memory rise over the whole run: {report['memory_rise_mb']:.0f} MB "
                 f"(limit {MEMORY_LIMIT_MB} MB).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--limit", type=int, default=None, help="check only the first N files")
    args = parser.parse_args()
    report = run(args.limit)
    print(json.dumps(report) if args.json else table(report))
    failed = [o for o in report["outcomes"] if o["result"] in ("crashed", "hung")]
    if not args.json:
        for outcome in failed:
            print(f"{outcome['result']}: {outcome['category']} / {outcome['name']}: {outcome['message']}")
    return 1 if failed or report["memory_rise_mb"] > MEMORY_LIMIT_MB else 0


if __name__ == "__main__":
    sys.exit(main())
