"""Home page in real headless Chromium."""

from __future__ import annotations

from tests.e2e.conftest import open_page, screenshot


def test_home_renders_in_chromium(page, app_url: str) -> None:
    open_page(page, app_url)
    main = page.locator('[data-testid="stMainBlockContainer"]')
    assert main.locator("h1").first.inner_text().strip() == "CIFAR Lab"
    text = main.inner_text()
    for heading in ("Device", "Datasets", "Checkpoints"):
        assert heading in text
    assert "Running on CPU" in text
    page.wait_for_selector('[data-testid="stDataFrame"]')
    shot = screenshot(page, "home")
    assert "Traceback" not in text and not page.locator('[data-testid="stException"]').count()
    assert page.console_errors == []
    assert shot.stat().st_size > 10_000
