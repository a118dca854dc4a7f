"""Colorize page in real headless Chromium: a test image, then a large photo upload, then the download."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from tests.e2e.conftest import ARTIFACTS, open_page, screenshot, wait_until_idle


def main_text(page) -> str:
    return page.locator('[data-testid="stMainBlockContainer"]').inner_text()


def test_large_photo_upload_is_colorized_measured_and_downloadable(page, app_url: str) -> None:
    from core.images import sample_photo

    open_page(page, app_url, "colorize")
    # Captions arrive with their images, which a busy server may serve after the metrics below them.
    page.get_by_text("Original: test image #48: horse").first.wait_for(timeout=120_000)
    wait_until_idle(page)
    assert "CIEDE2000" in main_text(page)
    screenshot(page, "colorize")

    photo = ARTIFACTS / "upload-astronaut-large.png"
    sample_photo("Astronaut").resize((1600, 1600)).save(photo)
    page.get_by_role("radio", name="Upload").or_(page.get_by_role("button", name="Upload")).first.click()
    wait_until_idle(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(photo))
    page.get_by_text("Original: upload-astronaut-large.png").first.wait_for(timeout=120_000)
    wait_until_idle(page)
    text = main_text(page)
    assert "vs grey" in text and "Traceback" not in text
    screenshot(page, "colorize-large-upload")

    with page.expect_download() as download_info:
        page.get_by_role("button", name=re.compile("Download the colorized image")).click()
    saved = ARTIFACTS / "colorized-download.png"
    download_info.value.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(saved).size == (1600, 1600)  # full resolution, not the working size
    assert page.console_errors == []


def test_clicked_hints_show_as_dots_and_can_be_undone_and_cleared(page, app_url: str) -> None:
    open_page(page, app_url, "colorize")
    page.get_by_text("Original: test image #48: horse").first.wait_for(timeout=120_000)
    wait_until_idle(page)
    # Open the model list and take a colorizer that listens to hints.
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Model").get_by_role("combobox").click()
    page.get_by_role("option").filter(has_text="tiny-hints").first.click()
    page.get_by_text("No hints yet").first.wait_for(timeout=60_000)
    wait_until_idle(page)

    # Paint with the picker's colour (teal) rather than the original's, so the dots are surely coloured.
    page.get_by_text("Take each hint's colour from the original").click()
    wait_until_idle(page)
    picture = page.frame_locator('iframe[title*="streamlit_image_coordinates"]').locator("img")
    picture.wait_for()
    box = picture.bounding_box()
    for count, (fx, fy) in enumerate([(0.2, 0.8), (0.7, 0.25), (0.5, 0.5)], start=1):
        picture.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
        page.get_by_text(f"{count} hint{'s' * (count != 1)} placed").first.wait_for(timeout=60_000)
        wait_until_idle(page)
    screenshot(page, "colorize-hints")
    # The dots are drawn into the picture: its pixels at the third click are no longer grey.
    dot = picture.evaluate("""(img, [fx, fy]) => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        const x = Math.floor(fx * img.naturalWidth), y = Math.floor(fy * img.naturalHeight);
        const [r, g, b] = context.getImageData(x, y, 1, 1).data;
        return [r, g, b];
    }""", [0.7, 0.25])
    assert max(dot) - min(dot) > 8, dot  # a colour, not the grey underneath

    page.get_by_role("button", name="Undo").click()
    page.get_by_text("2 hints placed").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("No hints yet").first.wait_for(timeout=60_000)
    assert "Traceback" not in main_text(page) and page.console_errors == []


def test_a_link_with_hints_colours_a_photo_with_the_shipped_hint_model(page, app_url: str) -> None:
    # What a shared link carries: a sample photo, the shipped hint refiner and eight hints in the original's colours.
    from core import colorize, hints
    from core.images import sample_photo

    given = colorize.prepare(sample_photo("Astronaut"))
    height, width = colorize.working_shape(*given.luma.shape[1:], colorize.HINT_WORKING_SIDE)  # the page's for hints
    points = [(0.45, 0.8), (0.15, 0.85), (0.55, 0.35), (0.08, 0.15), (0.2, 0.3), (0.85, 0.3), (0.8, 0.9), (0.35, 0.6)]
    placed = [hints.Hint(x, y, hints.true_colour(given.original, x, y, height, width)) for x, y in points]
    query = urlencode({"source": "sample", "photo": "Astronaut", "model": "unet-colorizer-hint-refiner",
                       "hints": hints.to_text(placed)})
    open_page(page, app_url, f"colorize?{query}")
    page.get_by_text("8 hints placed").first.wait_for(timeout=120_000)
    page.get_by_text("Colorized: unet-colorizer-hint-refiner").first.wait_for(timeout=120_000)
    wait_until_idle(page)
    gain = re.search(r"([+-][0-9.]+) dB vs grey", main_text(page))
    assert gain and float(gain.group(1)) > 3, gain  # the suit's orange and the flag's colours (+5.4 dB measured)
    # The picture: the hints on the grey photo above, the result and its gain at the bottom.
    page.get_by_text("dB vs grey").first.evaluate("element => element.scrollIntoView({block: 'end'})")
    screenshot(page, "colorize-hints-photo")
    assert "Traceback" not in main_text(page) and page.console_errors == []
