"""A visitor on a phone: every page fits a 390-pixel touch screen, text uncut, and a tap places a colour hint."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.conftest import new_tab, open_page, screenshot, wait_until_idle

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser) -> Iterator[object]:
    """A tab the size of a phone's screen that answers to touch."""
    with new_tab(browser, **PHONE) as tab:
        yield tab


def sideways_overflow(page) -> int:
    """How many pixels the page is wider than the screen (a phone then scrolls sideways): 0 when it fits.

    Streamlit's main area scrolls by itself, so the document never grows: the main area's own scroll width
    is what a wide element stretches. (A table scrolling inside its own frame does not count.)
    """
    return page.evaluate("() => { const main = document.querySelector('[data-testid=\"stMain\"]');"
                         " return main.scrollWidth - main.clientWidth; }")


def clipped_text(page) -> list[str]:
    """Text cut off by the box around it (a link's label does not wrap: it is clipped), as "widget | text"."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMain"] *')].filter(e => {
        const style = getComputedStyle(e);
        return style.overflowX !== 'visible' && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1
            && e.textContent.trim();
    }).map(e => e.closest('[data-testid]').dataset.testid + ' | ' + e.textContent.slice(0, 80))""")


@pytest.mark.parametrize("path", ["", "classify", "classify?testset=1", "denoise", "colorize", "train"])
def test_every_page_fits_a_phone_screen(phone, app_url: str, path: str) -> None:
    open_page(phone, app_url, path)
    wait_until_idle(phone)
    assert sideways_overflow(phone) <= 0
    assert clipped_text(phone) == []
    assert phone.locator('[data-testid="stException"]').count() == 0
    assert phone.console_errors == []


def test_a_tap_on_the_grey_image_places_a_hint_on_a_phone(phone, app_url: str) -> None:
    open_page(phone, app_url, "colorize?model=tiny-hints")
    phone.get_by_text("No hints yet").first.wait_for(timeout=120_000)
    wait_until_idle(phone)
    picture = phone.frame_locator('iframe[title*="streamlit_image_coordinates"]').locator("img")
    picture.scroll_into_view_if_needed()
    box = picture.bounding_box()
    assert box["width"] <= 390  # shrunk to the screen, so the click's position must be scaled back
    phone.touchscreen.tap(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    phone.get_by_text("1 hint placed").first.wait_for(timeout=60_000)
    wait_until_idle(phone)
    # The hint lands where the finger did: the shared link's hint sits at the picture's centre.
    x, y = (float(v) for v in parse_qs(urlparse(phone.url).query)["hints"][0].split(",")[:2])
    assert abs(x - 0.5) < 0.03 and abs(y - 0.5) < 0.03, (x, y)
    screenshot(phone, "phone-colorize-hint")
    assert sideways_overflow(phone) <= 0 and phone.console_errors == []


def test_a_sideways_drag_moves_the_divider_and_a_swipe_scrolls_past_it(phone, app_url: str) -> None:
    open_page(phone, app_url, "denoise")
    phone.get_by_text("Noisy PSNR").first.wait_for(timeout=120_000)
    frame = phone.frame_locator("iframe").last
    clipped = frame.locator("img.after")
    clipped.wait_for()
    area = frame.locator(".compare")
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    touch = phone.context.new_cdp_session(phone)

    def swipe(x: float, y: float, dx: float, dy: float) -> None:
        """A finger put down at (x, y) and moved by (dx, dy) in ten steps, as Chromium's touch input."""
        touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for step in range(1, 11):
            point = {"x": x + dx * step / 10, "y": y + dy * step / 10}
            touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        phone.wait_for_timeout(500)

    def divider() -> float:
        return float(re.search(r"([\d.]+)%", clipped.evaluate("img => img.style.clipPath")).group(1))

    def scrolled() -> float:
        return phone.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTop")

    middle = box["y"] + box["height"] / 2
    swipe(box["x"] + box["width"] * 0.5, middle, -box["width"] * 0.3, 0)
    assert 15 < divider() < 25
    before = scrolled()
    swipe(box["x"] + box["width"] * 0.7, middle, 0, 200)  # a finger moving down scrolls the page up
    assert 15 < divider() < 25 and scrolled() < before - 100
    assert phone.console_errors == []
