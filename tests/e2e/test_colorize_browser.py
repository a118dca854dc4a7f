"""Colorize page in real headless Chromium: a test image, then a large photo upload, then the download."""

from __future__ import annotations

import re

from tests.e2e.conftest import ARTIFACTS, open_page, screenshot, wait_until_idle


def main_text(page) -> str:
    return page.locator('[data-testid="stMainBlockContainer"]').inner_text()


def test_large_photo_upload_is_colorized_measured_and_downloadable(page, app_url: str) -> None:
    from core.images import sample_photo

    open_page(page, app_url, "colorize")
    # Captions arrive with their images, which a busy server may serve after the metrics below them.
    page.get_by_text("Original: test image #0: cat").first.wait_for(timeout=120_000)
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
