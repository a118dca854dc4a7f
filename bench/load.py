"""Load: several headless Chromium sessions classify, denoise and colorize while a training job runs.

Starts ``streamlit run app.py`` with a fresh app folder, starts the Train page's Quick
classification preset from one browser tab, then lets ``--sessions`` other tabs (each its
own browser context, so its own Streamlit session) loop over the three image pages at
once. Every action is timed from the click or navigation until Streamlit is idle and the
page's result is on screen. An error is an exception box, a "Traceback", an ``st.error``,
a browser page error or a timeout. Prints the per-action median and 95th percentile.

Usage: python bench/load.py [--sessions 3] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, streamlit_server  # the same server and browser as tests

ACTION_TIMEOUT_MS = 180_000
IDLE = ("() => { const w = document.querySelector('[data-testid=\"stStatusWidget\"]');"
        " return !w || !(w.innerText.includes('Running') || w.innerText.includes('Stop')); }")


async def wait_idle(page) -> None:
    await page.wait_for_function(IDLE, timeout=ACTION_TIMEOUT_MS)
    await page.wait_for_timeout(150)


async def problems_on(page) -> list[str]:
    found = []
    if await page.locator('[data-testid="stException"]').count():
        found.append("exception box")
    for box in await page.locator('[data-testid="stAlertContentError"]').all_inner_texts():
        found.append(f"error: {box[:120]}")
    if "Traceback" in await page.locator('[data-testid="stMainBlockContainer"]').inner_text():
        found.append("traceback")
    return found


class Session:
    """One visitor: a browser context with its own Streamlit session, and its timings."""

    def __init__(self, browser, url: str, number: int) -> None:
        self.browser, self.url, self.number = browser, url, number
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    async def timed(self, action: str, steps) -> None:
        start = time.perf_counter()
        try:
            await steps()
            await wait_idle(self.page)
            found = await problems_on(self.page)
            if found:
                self.errors.append(f"session {self.number}, {action}: {'; '.join(found)}")
        except Exception as error:  # a timeout or a missing element is an error of the app under load
            self.errors.append(f"session {self.number}, {action}: {type(error).__name__}: {str(error)[:160]}")
        self.timings[action].append(time.perf_counter() - start)

    async def open(self, path: str, ready_text: str) -> None:
        await self.page.goto(f"{self.url}/{path}")
        await self.page.get_by_text(ready_text).first.wait_for(timeout=ACTION_TIMEOUT_MS)

    async def run(self, rounds: int) -> None:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = await context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(f"session {self.number}: page error {error}"))
        page = self.page
        for _ in range(rounds):
            await self.timed("classify: open the page", lambda: self.open("classify", "Prediction:"))
            await self.timed("classify: a random test image", lambda: page.get_by_role(
                "button", name="Random image").click())
            await self.timed("denoise: open the page", lambda: self.open("denoise", "Noisy PSNR"))

            async def stronger_noise() -> None:
                thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Strength").get_by_role("slider")
                await thumb.focus()
                for _ in range(3):
                    await thumb.press("ArrowRight")
            await self.timed("denoise: move the strength slider", stronger_noise)
            await self.timed("colorize: open the page", lambda: self.open("colorize", "CIEDE2000"))
            await self.timed("colorize: a random test image", lambda: page.get_by_role(
                "button", name="Random image").click())
        await context.close()


async def start_training(browser, url: str) -> tuple[object, object]:
    """Press Start training on the Train page's default (Quick classification) preset; return its tab."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/train")
    await page.get_by_role("button", name="Start training").click()
    await page.get_by_text("Training...").first.wait_for(timeout=ACTION_TIMEOUT_MS)
    return context, page


async def stop_training(page) -> str:
    text = await page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    if "Stop" in text:
        await page.get_by_role("button", name="Stop").first.click()
        await page.get_by_text("Stopped").first.wait_for(timeout=ACTION_TIMEOUT_MS)
    return await page.locator('[data-testid="stMainBlockContainer"]').inner_text()


async def measure(url: str, sessions: int, rounds: int) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        train_context, train_page = await start_training(browser, url)
        visitors = [Session(browser, url, n + 1) for n in range(sessions)]
        start = time.perf_counter()
        await asyncio.gather(*(visitor.run(rounds) for visitor in visitors))
        elapsed = time.perf_counter() - start
        still_training = "Training..." in await train_page.locator('[data-testid="stMainBlockContainer"]').inner_text()
        await stop_training(train_page)
        await train_context.close()
        await browser.close()
    timings: dict[str, list[float]] = defaultdict(list)
    for visitor in visitors:
        for action, seconds in visitor.timings.items():
            timings[action].extend(seconds)
    return {"sessions": sessions, "rounds": rounds, "seconds": elapsed, "training_ran_throughout": still_training,
            "timings": timings, "errors": [e for v in visitors for e in v.errors]}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def table(report: dict) -> str:
    lines = [f"{report['sessions']} concurrent sessions x {report['rounds']} rounds, a Quick classification training "
             f"running throughout: {report['training_ran_throughout']}; {report['seconds']:.0f} s in all.\n",
             "| action | count | median | 95th percentile | slowest |", "|---|---:|---:|---:|---:|"]
    for action, values in report["timings"].items():
        lines.append(f"| {action} | {len(values)} | {statistics.median(values):.1f} s | "
                     f"{percentile(values, 0.95):.1f} s | {max(values):.1f} s |")
    count = sum(len(v) for v in report["timings"].values())
    lines.append(f"\n{count} actions, {len(report['errors'])} errors.")
    lines.extend(f"- {error}" for error in report["errors"])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cifar-lab-load-") as home, streamlit_server(Path(home), "load-server") \
            as url:
        report = asyncio.run(measure(url, args.sessions, args.rounds))
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if report["errors"] or not report["training_ran_throughout"] else 0


if __name__ == "__main__":
    sys.exit(main())
