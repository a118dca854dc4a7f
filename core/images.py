"""The one path every page uses to turn uploaded bytes into an image.

Anyone can upload anything to a public demo, so ``load_image`` checks size in
bytes and pixels *before* decoding (a 20,000 x 20,000 PNG can be a few KB),
decodes with Pillow, applies EXIF orientation, flattens transparency onto white
and converts every mode to 8-bit RGB. Every failure is an ``ImageError`` whose
message a person can act on.
"""

from __future__ import annotations

import base64
import html
import io
import re
import struct
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 25 * 2**20
MAX_PIXELS = 40_000_000  # about 7,300 x 5,500; decoded RGB stays under 120 MB
# The formats an upload may be in, by name, with their file name suffixes: Pillow decodes them all (AVIF,
# which phones and browsers save more and more, through the libavif its wheels bundle).
FORMATS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "GIF": (".gif",), "WebP": (".webp",),
           "TIFF": (".tif", ".tiff"), "BMP": (".bmp",), "AVIF": (".avif",)}
IMAGE_SUFFIXES = tuple(suffix for suffixes in FORMATS.values() for suffix in suffixes)
SUPPORTED = ", ".join(list(FORMATS)[:-1]) + " or " + list(FORMATS)[-1]


class ImageError(ValueError):
    """An upload that cannot be used; ``str(error)`` is meant for the user."""


def load_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``data`` into an 8-bit RGB PIL image, or raise ImageError saying why not."""
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > max_bytes:
        raise ImageError(
            f"The file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB."
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) on moderately large images; we apply our own limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width < 1 or height < 1:
                raise ImageError("The image has no pixels.")
            if width * height > max_pixels:
                raise ImageError(
                    f"The image is {width:,} x {height:,} pixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels. Please upload a smaller image."
                )
            image.seek(0)  # animated images: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        # Pillow refuses images over twice its own limit before we see their size.
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageError(
            f"The image has {pixels}; the limit is {max_pixels / 1e6:.0f} megapixels. "
            "Please upload a smaller image."
        ) from None
    except UnidentifiedImageError:
        if data[4:12] in (b"ftypavif", b"ftypavis"):  # an AVIF's header, with too little after it to decode
            raise ImageError("The image file is damaged or incomplete and could not be decoded.") from None
        raise ImageError(f"This file is not an image we can read. Please upload a {SUPPORTED} file.") from None
    # RuntimeError: libavif reports a damaged AVIF so ("Decoding of color planes failed").
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, RuntimeError, struct.error) as error:
        raise ImageError(f"The image file is damaged or incomplete and could not be decoded ({error}).") from None
    except MemoryError:
        raise ImageError("The image is too large to decode.") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is flattened onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit / 32-bit / float images to 8 bits (Pillow would clip them to white)."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    else:
        array = array / (65535.0 if array.max() > 255 or image.mode.startswith("I;16") else 255.0)
    array = np.nan_to_num(np.clip(array, 0.0, 1.0))
    return Image.fromarray((array * 255.0 + 0.5).astype(np.uint8), mode="L")


def colour_lut(scale: str = "Turbo") -> np.ndarray:
    """A plotly colour scale as a 256 x 3 lookup table (float32, 0-255): index it with 8-bit values."""
    from plotly.colors import sample_colorscale, unlabel_rgb

    return np.array([unlabel_rgb(c) for c in sample_colorscale(scale, np.linspace(0, 1, 256))], dtype=np.float32)


def is_grayscale(image: Image.Image, tolerance: int = 2) -> bool:
    """True when every pixel's R, G and B agree within ``tolerance``."""
    array = np.asarray(image.convert("RGB"), dtype=np.int16)
    return bool(np.abs(array - array[..., :1]).max() <= tolerance)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as a float tensor in [0, 1], 1 x C x H x W."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255)


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """A float tensor in [0, 1] (C x H x W or 1 x C x H x W) as a PIL image."""
    tensor = tensor.detach().cpu()
    if tensor.ndim == 4:
        tensor = tensor[0]
    array = (tensor.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def png_bytes(image: Image.Image, compress_level: int = 6) -> bytes:
    """``image`` encoded as PNG, for downloads (``compress_level`` 0 to 9: zlib's effort)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def download_png(image: torch.Tensor) -> bytes:
    """``image`` (C x H x W in [0, 1]) as PNG bytes for a page's download button.

    A page encodes its result on every rerun (each slider step, each hint), whether or not anyone downloads it,
    so zlib's lowest effort: for a 4-megapixel result 0.18 s instead of 0.78 s, for 17% more bytes. (Why not
    encode on the click instead: README, "Large photos".)
    """
    return png_bytes(to_pil(image), compress_level=1)


def shown(tensor: torch.Tensor, side: int = 256) -> Image.Image:
    """A float image tensor as the pages show it: a PIL image, a small one enlarged so its pixels show."""
    return enlarged(to_pil(tensor), side)


def enlarged(image: Image.Image, side: int = 256) -> Image.Image:
    """A small image scaled up by a whole factor with nearest-neighbour, so its real pixels show."""
    factor = side // max(image.size)
    if factor < 2:
        return image
    return image.resize((image.width * factor, image.height * factor), resample=Image.Resampling.NEAREST)


def for_clicking(image: Image.Image, side: int = 640) -> Image.Image:
    """``image`` at a size made for pointing at: a small one enlarged, a large one shrunk to ``side`` pixels."""
    if max(image.size) <= side:
        return enlarged(image, side // 2)
    scale = side / max(image.size)
    return image.resize((max(round(image.width * scale), 1), max(round(image.height * scale), 1)),
                        resample=Image.Resampling.LANCZOS)


COMPARISON_MAX_SIDE = 1024  # the comparison is for the eye: larger results are sent scaled down
COMPARISON_SHOWN_WIDTH = (384, 640)  # smallest and largest width, in CSS pixels, of the comparison


def _data_url(image: Image.Image) -> str:
    """A data URL of ``image``: PNG when small (exact pixels), JPEG at quality 92 when large (a tenth the bytes)."""
    buffer = io.BytesIO()
    large = image.width * image.height > 512 * 512
    image.convert("RGB").save(buffer, format="JPEG" if large else "PNG", **({"quality": 92} if large else {}))
    return f"data:image/{'jpeg' if large else 'png'};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def comparison_html(before: Image.Image, after: Image.Image, before_label: str = "before",
                    after_label: str = "after", width: int | None = None) -> str:
    """A self-contained page that shows ``before`` left and ``after`` right of a divider the visitor drags.

    The divider moves in the browser (pointer events drive a clip path), so dragging costs the server
    nothing. On a touch screen only a sideways drag moves it: a vertical swipe over the image scrolls the
    page (``touch-action: pan-y``) and leaves the divider where it was (a range input under the finger
    jumped to it). A transparent range input over the image keeps the divider reachable from the keyboard.
    """
    before = before.convert("RGB")
    after = after.convert("RGB").resize(before.size, resample=Image.Resampling.NEAREST)
    scale = min(1.0, COMPARISON_MAX_SIDE / max(before.size))
    if scale < 1:
        size = (max(round(before.width * scale), 1), max(round(before.height * scale), 1))
        before, after = (im.resize(size, resample=Image.Resampling.LANCZOS) for im in (before, after))
    # Tiny images (CIFAR-10's 32 px) are enlarged to a comfortable size to drag across; photos fit the column.
    shown_width = width or min(COMPARISON_SHOWN_WIDTH[1], max(COMPARISON_SHOWN_WIDTH[0], before.width))
    labels = [html.escape(label) for label in (before_label, after_label)]
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; font-family: sans-serif; }}
.compare {{ position: relative; width: {shown_width}px; max-width: 100%; user-select: none; touch-action: pan-y;
  cursor: ew-resize; }}
.compare:focus-within {{ outline: 2px solid #4c6ef5; outline-offset: 2px; }}
.compare img {{ display: block; width: 100%; image-rendering: pixelated; }}
.compare .after {{ position: absolute; inset: 0; clip-path: inset(0 0 0 50%); }}
.compare .divider {{ position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; margin-left: -1px;
  background: #fff; box-shadow: 0 0 3px #000; pointer-events: none; }}
.compare .label {{ position: absolute; top: 6px; padding: 2px 6px; font-size: 13px; color: #fff;
  background: rgba(0, 0, 0, .55); border-radius: 3px; pointer-events: none; }}
.compare input {{ position: absolute; inset: 0; width: 100%; height: 100%; margin: 0; opacity: 0;
  pointer-events: none; }}
</style></head><body>
<div class="compare">
  <img class="before" draggable="false" alt="{labels[0]}" src="{_data_url(before)}">
  <img class="after" draggable="false" alt="{labels[1]}" src="{_data_url(after)}">
  <div class="divider"></div>
  <span class="label" style="left: 6px">{labels[0]}</span>
  <span class="label" style="right: 6px">{labels[1]}</span>
  <input type="range" min="0" max="100" step="1" value="50" aria-label="Drag to compare {labels[0]} and {labels[1]}">
</div>
<script>
const root = document.querySelector(".compare");
const slider = root.querySelector("input");
function show(percent) {{
  root.querySelector(".after").style.clipPath = `inset(0 0 0 ${{percent}}%)`;
  root.querySelector(".divider").style.left = `${{percent}}%`;
  slider.value = percent;
}}
function under(event) {{
  const box = root.getBoundingClientRect();
  return Math.min(100, Math.max(0, (event.clientX - box.left) / box.width * 100)).toFixed(1);
}}
// A mouse moves the divider at once; a finger only once it has gone further sideways than up or down,
// so a swipe that scrolls the page past the image leaves the divider where it was.
let start = null, dragging = false;
slider.addEventListener("input", () => show(slider.value));
root.addEventListener("dragstart", (event) => event.preventDefault());  // a mouse drags the divider, not the image
root.addEventListener("pointerdown", (event) => {{
  root.setPointerCapture(event.pointerId);
  start = {{x: event.clientX, y: event.clientY}};
  dragging = event.pointerType === "mouse";
  if (dragging) show(under(event));
}});
root.addEventListener("pointermove", (event) => {{
  if (start === null) return;
  const dx = Math.abs(event.clientX - start.x), dy = Math.abs(event.clientY - start.y);
  if (!dragging && dx > 4 && dx > dy) dragging = true;
  if (dragging) show(under(event));
}});
for (const end of ["pointerup", "pointercancel"]) {{
  root.addEventListener(end, () => {{ start = null; dragging = false; }});
}}
</script></body></html>"""


def shrink_to(image: Image.Image, max_pixels: int) -> tuple[Image.Image, str | None]:
    """``image`` scaled down (Lanczos) to at most ``max_pixels``, and a sentence saying so if it was."""
    if image.width * image.height <= max_pixels:
        return image, None
    scale = (max_pixels / (image.width * image.height)) ** 0.5
    size = (max(int(image.width * scale), 1), max(int(image.height * scale), 1))
    note = (f"The image was scaled down from {image.width} x {image.height} to {size[0]} x {size[1]} pixels "
            f"to stay under {max_pixels / 1e6:g} megapixels.")
    return image.resize(size, resample=Image.Resampling.LANCZOS), note


SAMPLE_PHOTOS = {  # public-domain photos shipped with scikit-image, none of them from CIFAR-10
    "Chelsea the cat": "chelsea",
    "Astronaut": "astronaut",
    "Coffee": "coffee",
    "Rocket": "rocket",
}


def sample_photo(name: str) -> Image.Image:
    """A bundled sample photo (from the installed scikit-image) as an RGB image."""
    import skimage.data

    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"Unknown sample photo {name!r}; choose one of {', '.join(SAMPLE_PHOTOS)}.")
    return to_rgb(Image.fromarray(getattr(skimage.data, SAMPLE_PHOTOS[name])()))
