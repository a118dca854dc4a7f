"""Denoise page in real headless Chromium: move the sliders, switch to compare mode, download a result."""

from __future__ import annotations

import re

from tests.e2e.conftest import ARTIFACTS, open_page, screenshot, wait_until_idle


def metric_value(page, label: str) -> float:
    card = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    text = card.locator('[data-testid="stMetricValue"]').inner_text()
    return float(re.search(r"-?\d+(\.\d+)?", text).group())


def test_sliders_compare_mode_and_download(page, app_url: str) -> None:
    open_page(page, app_url, "denoise")
    page.get_by_text("Noisy PSNR").first.wait_for(timeout=120_000)
    weak = metric_value(page, "Noisy PSNR")
    assert 20 < weak < 30
    screenshot(page, "denoise")

    # Drag the strength slider up with the keyboard, as a person using arrow keys would.
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Strength").get_by_role("slider")
    thumb.focus()
    for _ in range(20):
        thumb.press("ArrowRight")
    wait_until_idle(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stMetric\"]')].some(m => m.innerText.includes"
        "('Noisy PSNR') && parseFloat(m.querySelector('[data-testid=\"stMetricValue\"]').innerText) < "
        f"{weak - 2})", timeout=60_000)
    assert metric_value(page, "Noisy PSNR") < weak - 2

    with page.expect_download() as download_info:
        page.get_by_role("button", name=re.compile("Download the denoised image")).click()
    saved = ARTIFACTS / "denoised-download.png"
    download_info.value.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.get_by_text("Compare every denoiser on this image").click()
    page.get_by_text(re.compile(r"^BM3D · \d")).first.wait_for(timeout=180_000)
    wait_until_idle(page)
    captions = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert "Median filter 3x3 ·" in captions and "tiny-unet ·" in captions
    assert "Traceback" not in captions and page.console_errors == []
    screenshot(page, "denoise-compare")
