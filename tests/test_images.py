"""core.images.load_image: every mode becomes RGB; bad files become clear ImageErrors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.images import ImageError, download_png, is_grayscale, load_image, to_pil, to_tensor


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(mode: str = "RGB", size: tuple[int, int] = (12, 8)) -> Image.Image:
    width, height = size
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    array[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    array[..., 2] = 128
    return Image.fromarray(array, "RGB").convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "F", "YCbCr"])
def test_every_mode_becomes_rgb(mode: str) -> None:
    fmt = {"I": "TIFF", "F": "TIFF", "CMYK": "TIFF", "YCbCr": "JPEG"}.get(mode, "PNG")
    image = load_image(encode(gradient(mode), fmt))
    assert image.mode == "RGB" and image.size == (12, 8)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    array = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    image = load_image(encode(Image.fromarray(array)))
    values = np.asarray(image)[..., 0]
    assert values.min() == 0 and values.max() == 255 and 100 < values.mean() < 155


def test_transparency_is_flattened_onto_white() -> None:
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.asarray(load_image(encode(clear))).min() == 255
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert np.asarray(load_image(encode(palette))).min() == 255


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image = load_image(encode(gradient("RGB", (40, 20)), "JPEG", exif=exif.tobytes()))
    assert image.size == (20, 40)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    pixel = load_image(buffer.getvalue()).getpixel((2, 2))
    assert pixel[0] > 200 and pixel[2] < 50


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP", "AVIF"])
def test_common_formats_decode(fmt: str) -> None:
    assert load_image(encode(gradient(), fmt)).size == (12, 8)


def test_empty_file() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_not_an_image() -> None:
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"%PDF-1.7 this is a document, renamed to .png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "AVIF"])
def test_truncated_file(fmt: str) -> None:
    payload = encode(gradient("RGB", (64, 64)), fmt)
    with pytest.raises(ImageError, match="damaged or incomplete"):
        load_image(payload[: len(payload) // 2])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # A 20,000 x 20,000 PNG compresses to a few hundred KB but would decode to 1.2 GB.
    bomb = encode(Image.new("L", (20_000, 20_000)))
    assert len(bomb) < 2**20
    with pytest.raises(ImageError, match="400,000,000 pixels; the limit is 40 megapixels"):
        load_image(bomb)
    with pytest.raises(ImageError, match="8,000 x 8,000 pixels"):
        load_image(encode(Image.new("L", (8_000, 8_000))))


def test_too_many_bytes() -> None:
    with pytest.raises(ImageError, match="limit is 1 MB"):
        load_image(b"\0" * (2 * 2**20), max_bytes=2**20)


def test_grayscale_detection() -> None:
    assert is_grayscale(gradient("L").convert("RGB"))
    assert not is_grayscale(gradient("RGB"))


def test_tensor_round_trip() -> None:
    image = gradient()
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 8, 12) and tensor.min() >= 0 and tensor.max() <= 1
    assert np.array_equal(np.asarray(to_pil(tensor)), np.asarray(image))


def test_png_bytes_round_trip() -> None:
    from core.images import png_bytes

    image = Image.new("RGB", (5, 3), (10, 20, 30))
    data = png_bytes(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(data)).getpixel((4, 2)) == (10, 20, 30)


def test_download_png_is_the_image_losslessly() -> None:
    image = torch.rand(3, 3, 5)
    decoded = np.asarray(Image.open(io.BytesIO(download_png(image))))
    assert decoded.shape == (3, 5, 3)
    assert np.array_equal(decoded, np.asarray(to_pil(image)))
