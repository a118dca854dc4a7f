"""Home page in real headless Chromium."""

from __future__ import annotations

import re

from tests.e2e.conftest import open_page, screenshot, streamlit_server, wait_until_idle


def test_home_renders_in_chromium(page, app_url: str) -> None:
    open_page(page, app_url)
    main = page.locator('[data-testid="stMainBlockContainer"]')
    assert main.locator("h1").first.inner_text().strip() == "CIFAR Lab"
    page.get_by_text("Open Colorize on this image").first.wait_for(timeout=120_000)  # the showcase, computed once
    wait_until_idle(page)
    text = main.inner_text()
    for heading in ("Device", "Datasets", "Checkpoints"):
        assert heading in text
    assert "Running on CPU" in text
    page.wait_for_selector('[data-testid="stDataFrame"]')
    shot = screenshot(page, "home")
    assert "Traceback" not in text and not page.locator('[data-testid="stException"]').count()
    assert page.console_errors == []
    assert shot.stat().st_size > 10_000
    # The showcase's denoising pair, followed into its page: the same image, noise and numbers there.
    assert "Open Classify on this image" in text and "Grad-CAM: where it looked for" in text
    noisy_psnr = re.search(r"PSNR (\d+\.\d\d) → (\d+\.\d\d) dB", text)
    assert noisy_psnr, text
    page.get_by_text("Open Denoise on this image").click()
    page.get_by_text("Noisy PSNR").first.wait_for(timeout=120_000)
    wait_until_idle(page)
    denoise_text = main.inner_text()
    assert "test image #1: ship" in denoise_text and f"{noisy_psnr[1]} dB" in denoise_text
    assert f"{noisy_psnr[2]} dB" in denoise_text and page.console_errors == []


def test_a_deep_link_on_a_fresh_server_goes_through_the_router(browser, tmp_path) -> None:
    # Streamlit treats pages/ as a legacy multipage folder until app.py first runs;
    # the first visitor's deep link must still get the app's navigation.
    with streamlit_server(tmp_path, "streamlit-deep-link") as url:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_page(page, url, "train")
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Home" in nav and "Train" in nav and "app" not in nav.split()
        assert page.locator("h1").first.inner_text().strip() == "Train"
        context.close()
