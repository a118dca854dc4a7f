"""Train page in real headless Chromium: start a tiny run, watch the chart grow, stop it."""

from __future__ import annotations

from tests.e2e.conftest import open_page, screenshot, wait_until_idle

POINTS = """() => {
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    if (!plot || !plot.data) return -1;
    const trace = plot.data.find(t => t.name === 'train loss (epoch)');
    return trace ? trace.x.length : 0;
}"""


def choose(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_idle(page)


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Tab")


def test_start_watch_and_stop_a_run(page, app_url: str) -> None:
    open_page(page, app_url, "train")
    assert page.locator("h1").first.inner_text().strip() == "Train"
    choose(page, "Architecture", "Staged CNN (baseline / intermediate / advanced)")
    choose(page, "variant", "baseline")
    set_number(page, "width", 8)
    set_number(page, "Epochs", 300)
    set_number(page, "Batch size", 64)
    set_number(page, "Training images (0 = all)", 512)
    set_number(page, "Validation images", 128)
    page.get_by_role("button", name="Start training").click()

    page.wait_for_function(f"({POINTS})() >= 2", timeout=120_000)
    first = page.evaluate(POINTS)
    page.wait_for_function(f"({POINTS})() > {first}", timeout=60_000)  # the live chart keeps gaining points
    assert "Running" in page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    screenshot(page, "train-running")

    # Scoped to the page body: Streamlit's own header has a "Stop" button while a script runs.
    main = page.locator('[data-testid="stMainBlockContainer"]')
    main.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped by request").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    text = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert "Stopped" in text and "Traceback" not in text
    assert page.get_by_role("button", name="Start training").is_enabled()
    assert page.console_errors == []
    screenshot(page, "train-stopped")
