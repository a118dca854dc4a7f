"""End-to-end harness: a real `streamlit run` server and headless Chromium via Playwright.

The browser is Debian's chromium (``make test`` installs it): Playwright's own browser
download needs the internet, which CI does not have.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = os.environ.get("CIFAR_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(home: Path, log_name: str = "streamlit-server", env: dict[str, str] | None = None
                     ) -> Iterator[str]:
    """Run `streamlit run app.py` on a free localhost port with its own app home; yield its URL."""
    port = free_port()
    env = {**os.environ, "CIFAR_LAB_HOME": str(home), **(env or {})}
    with open(ARTIFACTS / f"{log_name}.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while not healthy(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Streamlit did not start; see {ARTIFACTS / log_name}.log")
                time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Streamlit server for the whole session, with two tiny classifiers, a tiny denoiser and a tiny hint
    colorizer installed."""
    from tests.factories import tiny_classifier, tiny_colorizer, tiny_denoiser

    home = tmp_path_factory.mktemp("e2e-home")
    tiny_classifier(home / "checkpoints", "tiny-a", width=8)
    tiny_classifier(home / "checkpoints", "tiny-b", width=12)
    tiny_denoiser(home / "checkpoints", "tiny-unet")
    tiny_colorizer(home / "checkpoints", "tiny-hints", hints=True)
    with streamlit_server(home) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@contextlib.contextmanager
def new_tab(browser, **context_options) -> Iterator[object]:
    """A tab in a fresh browser context; its console errors are collected on ``tab.console_errors``."""
    context = browser.new_context(**context_options)
    tab = context.new_page()
    tab.console_errors = []
    tab.on("pageerror", lambda error: tab.console_errors.append(str(error)))
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def page(browser, app_url: str) -> Iterator[object]:
    """A fresh desktop-sized browser tab."""
    with new_tab(browser, viewport={"width": 1400, "height": 1000}) as tab:
        yield tab


def open_page(page, app_url: str, path: str = "") -> None:
    """Open ``path`` and wait until Streamlit has finished running the script."""
    page.goto(f"{app_url}/{path}")
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1')
    wait_until_idle(page)


def choose(page, label: str, option: str, prefix: bool = False) -> None:
    """Pick ``option`` (with ``prefix``: the option starting so) in the selectbox labelled exactly ``label``."""
    wait_until_idle(page)  # a rerun still under way would close the list as it opens
    label_only = page.locator("label").filter(has_text=re.compile(f"^{re.escape(label)}$"))
    box = page.locator('[data-testid="stSelectbox"]').filter(has=label_only).first
    listed = page.get_by_role("option", name=re.compile("^" + re.escape(option))).first if prefix \
        else page.get_by_role("option", name=option, exact=True)
    # After a drag inside a component's iframe the first click only moves focus back to the page.
    for _ in range(3):
        box.get_by_role("combobox").click()
        try:
            listed.wait_for(timeout=3_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    listed.click()
    wait_until_idle(page)


def wait_until_idle(page) -> None:
    # While the script runs, the status widget shows "Running..." or, in a wide header, a Stop button.
    page.wait_for_function(
        "() => { const w = document.querySelector('[data-testid=\"stStatusWidget\"]');"
        " return !w || !(w.innerText.includes('Running') || w.innerText.includes('Stop')); }"
    )
    page.wait_for_timeout(300)


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
