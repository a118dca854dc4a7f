"""Load: concurrent headless Chromium visitors classify, denoise and colorize while a capped training runs.

Starts ``streamlit run app.py`` with a fresh app folder and the Space's caps (the
``CIFAR_LAB_*`` variables of the Dockerfile), then, each in its own browser context (so its
own Streamlit session):

1. an *over-large* visitor asks the Train page for ResNet-18 at width 128 with batch 8192: the
   server must refuse it ("This run cannot start") and start nothing. This comes first, as
   while a run is in progress the Start button is disabled for everyone (one run at a time);
2. a *trainer* starts the default preset (Quick classification) and keeps a run going: when
   its run ends (it finished under the minutes cap, or it was killed) it starts it again;
3. ``--sessions`` visitors loop ``--rounds`` times over Classify, Denoise and Colorize;
4. a *chaos* visitor watches that run from its own tab (read-only: "Someone else's run") and,
   once half the visitors' actions are done, SIGKILLs the training child process mid-run, then
   times until its tab reads "killed (SIGKILL)" with "Start training" enabled again (the slot is
   free), and checks the trainer's tab shows the same; the trainer then starts the run again.

A visitor loads the app once and then moves between pages through the sidebar, as people do
(``--navigation reload`` loads every page afresh, a new Streamlit session each time, as the first
measurements did). Every action is timed from the click or navigation until Streamlit is idle and the page's
result is on screen. An error is an exception box, a "Traceback", an unexpected ``st.error``,
a browser page error or a timeout. A thread samples the resident memory of the Streamlit
server process (not of its training child, reported apart) every 0.5 s.

Prints the per-action median, 95th percentile and slowest; the errors; the server's peak RSS;
whether the over-large run was refused; how long after the kill the slot was free; the CPU.
Exits 0 only with no errors, the refusal seen and the slot free again after the kill.

Each visitor first loads the app on Home and sees each page once (timed apart as "first visit": ten
browsers starting with empty caches, loading the frontend and its chart library on the same two cores as
the server, take about 20 s each). The rounds then time the visitors' steps. Between steps a visitor
looks at the page for ``--think`` seconds on average (5; jittered 0.5x to 1.5x, so that the visitors drift
apart), as people do; ``--think 0`` acts back to back, a harsher load than ten people make. ``--ramp``
spreads their arrivals over that many seconds (by default all ten arrive in the same second).

Usage: python bench/load.py [--sessions 10] [--rounds 3] [--navigation sidebar|reload] [--think 5] [--ramp 0]
                            [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.train.jobs import resident_mb
from tests.e2e.conftest import (  # the same server and browser as tests
    CHROMIUM,
    CHROMIUM_FLAGS,
    healthy,
    streamlit_server,
)

REPO = Path(__file__).resolve().parent.parent
ACTION_TIMEOUT_MS = 180_000
TRAINING_BEGINS_MS = 300_000  # from Start training until the child is training (imports, dataset loading)
SLOT_FREE_TIMEOUT_S = 60.0
KEEPER_INTERVAL_S = 3.0
SAMPLE_INTERVAL_S = 0.5
PATH_VARIABLES = {"CIFAR_LAB_DATA", "CIFAR_LAB_HOME", "CIFAR_LAB_CACHE"}  # the container's folders, not caps
OVER_LARGE = {"Architecture": "ResNet-18 (CIFAR form)", "width": 128, "Batch size": 8192}
REFUSAL = "This run cannot start"
ARRIVAL = "first visit: load the app, see each page once"
PAGES = (("classify", "Prediction:"), ("denoise", "Noisy PSNR"), ("colorize", "CIEDE2000"))  # and what shows each
IDLE = ("() => { const w = document.querySelector('[data-testid=\"stStatusWidget\"]');"
        " return !w || !(w.innerText.includes('Running') || w.innerText.includes('Stop')); }")
MAIN = '[data-testid="stMainBlockContainer"]'
IDLE_POLL_MS = 100


# ---- the server's caps and processes ------------------------------------------------------------------
def dockerfile_caps() -> dict[str, str]:
    """The ``CIFAR_LAB_*`` settings of the Dockerfile's ENV lines, less the container's folders."""
    caps = {}
    for line in (REPO / "Dockerfile").read_text().splitlines():
        for word in line.replace("\\", " ").split():
            if word.startswith("CIFAR_LAB_") and "=" in word:
                key, value = word.split("=", 1)
                if key not in PATH_VARIABLES:
                    caps[key] = value
    return caps


def parent_of(pid: int) -> int | None:
    try:
        # The command name, in parentheses, may hold spaces: the fields after its closing one are plain.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def server_pid() -> int:
    """The ``streamlit run`` process this script started (streamlit_server's Popen child)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == os.getpid():
            words = command_line(int(entry.name))
            if "streamlit" in words and "run" in words:
                return int(entry.name)
    raise RuntimeError("the streamlit server process was not found among this process's children")


def training_pids(home: Path) -> list[int]:
    """The training child's process (and any of its own that share its command line), by the app home."""
    found = subprocess.run(["pgrep", "-f", f"core.train .*--live-file {home}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def training_root(home: Path) -> int | None:
    """The training child the server started: the one of ``training_pids`` whose parent is not among them."""
    pids = training_pids(home)
    roots = [pid for pid in pids if parent_of(pid) not in pids]
    return roots[0] if roots else None


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """A process's own CPU seconds (user + system) and those of its children it has reaped, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (all but idle and I/O wait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class CpuShare:
    """Who used the cores between ``start()`` and ``stop()``: the server, its training processes, the rest
    (the visitors' Chromiums and this benchmark's own driver)."""

    def __init__(self, server: int, home: Path) -> None:
        self.server, self.home = server, home

    def _snapshot(self) -> tuple[float, float, float, float]:
        own, reaped = process_cpu_seconds(self.server)
        training = sum(process_cpu_seconds(pid)[0] for pid in training_pids(self.home))
        return time.perf_counter(), machine_busy_seconds(), own, reaped + training

    def start(self) -> None:
        self.begun = self._snapshot()

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        wall, busy, server, training = (b - a for a, b in zip(self.begun, end, strict=True))
        return {"wall": wall, "available": wall * (os.cpu_count() or 1), "busy": busy, "server": server,
                "training": training, "rest": max(busy - server - training, 0.0)}


class MemorySampler(threading.Thread):
    """Every 0.5 s: the server's resident memory, the training child's, and whether a training child is alive."""

    def __init__(self, server: int, home: Path) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.server, self.home = server, home
        self.halt = threading.Event()
        self.server_peak_mb = 0.0
        self.training_peak_mb = 0.0
        self.visitors_phase = False  # set while the visitors run: training coverage is counted then
        self.phase_samples = 0
        self.phase_samples_training = 0

    def run(self) -> None:
        while not self.halt.is_set():
            self.server_peak_mb = max(self.server_peak_mb, resident_mb(self.server) or 0.0)
            pids = training_pids(self.home)
            self.training_peak_mb = max([self.training_peak_mb, *(resident_mb(pid) or 0.0 for pid in pids)])
            if self.visitors_phase:
                self.phase_samples += 1
                self.phase_samples_training += bool(pids)
            self.halt.wait(SAMPLE_INTERVAL_S)

    def now_mb(self) -> float:
        return resident_mb(self.server) or 0.0

    def stop(self) -> None:
        self.halt.set()
        self.join()


# ---- browser helpers -----------------------------------------------------------------------------------
async def wait_idle(page) -> None:
    """Until Streamlit's status widget says no script runs. Checked every 100 ms, not on every animation frame
    (Playwright's default): ten tabs polling at 60 frames a second kept their renderers drawing, on the same two
    cores as the server. A timing can read up to 0.1 s long for it."""
    await page.wait_for_function(IDLE, timeout=ACTION_TIMEOUT_MS, polling=IDLE_POLL_MS)
    await page.wait_for_timeout(150)


async def main_text(page) -> str:
    return await page.locator(MAIN).inner_text()


async def problems_on(page, expected_error: str | None = None) -> list[str]:
    found = []
    if await page.locator('[data-testid="stException"]').count():
        found.append("exception box")
    for box in await page.locator('[data-testid="stAlertContentError"]').all_inner_texts():
        if not (expected_error and box.startswith(expected_error)):
            found.append(f"error: {box[:120]}")
    if "Traceback" in await main_text(page):
        found.append("traceback")
    return found


async def choose(page, label: str, option: str) -> None:
    await page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    await page.get_by_role("option", name=option, exact=True).click()
    await wait_idle(page)


async def set_number(page, label: str, value: int) -> None:
    """Type ``value`` into a number field and check that it holds: a field drawn again by a rerun still under way
    (the architecture's new fields) comes back with its default, so the value is typed again until it stays."""
    field = page.get_by_label(label, exact=True)
    deadline = time.perf_counter() + ACTION_TIMEOUT_MS / 1000
    while True:
        if await field.count() == 1:  # the previous architecture's field lingers until Streamlit drops it as stale
            await field.fill(str(value))
            await field.press("Tab")
            await wait_idle(page)
            if await field.count() == 1 and await field.input_value() == str(value):
                return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{label!r} does not keep {value}: {await field.count()} such fields")
        await asyncio.sleep(0.1)


def status_line(text: str) -> str:
    """The run's status line on the Train page ("Running: Training...", "Failed: ..."), without its icon."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for heading in ("Current run", "Last run"):
        if heading in lines and lines.index(heading) + 1 < len(lines):
            line = lines[lines.index(heading) + 1]
            return line.split(" ", 1)[1] if line.split(" ", 1)[0].islower() else line  # "error Failed: ..."
    return ""


async def slot_free(page) -> bool:
    """Whether this Train tab shows no run in progress and Start training enabled.

    Both: the tab that started a run keeps its Start button enabled until its next full rerun, as the
    form is drawn before the run starts (pressing it then only warns "already in progress").
    """
    text = await main_text(page)
    return ("Last run" in text and "Current run" not in text
            and await page.get_by_role("button", name="Start training").is_enabled(timeout=10_000))


def is_open_action(action: str) -> bool:
    """Whether ``action`` acts on an already open page (the 3 s target), not opening one or loading the app."""
    return "open the page" not in action and action != ARRIVAL


class Visitor:
    """A browser context with its own Streamlit session, its timings and its errors."""

    name = "visitor"
    navigation = "sidebar"  # or "reload": every page opened by its address
    think_s = 0.0  # mean seconds a visitor looks at a result before the next step (--think)

    def __init__(self, browser, url: str, number: int = 0) -> None:
        self.browser, self.url, self.number = browser, url, number
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.context = self.page = None

    @property
    def label(self) -> str:
        return f"{self.name} {self.number}" if self.number else self.name

    async def new_tab(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = await self.context.new_page()
        self.page.set_default_timeout(ACTION_TIMEOUT_MS)  # navigation too: under load "load" takes over 30 s
        self.page.on("pageerror", lambda error: self.errors.append(f"{self.label}: page error {error}"))

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()

    async def timed(self, action: str, steps, expected_error: str | None = None) -> bool:
        """Run ``steps``, wait until the page is idle, check it; record the seconds. Whether all went well."""
        start = time.perf_counter()
        ok = True
        try:
            await steps()
            await wait_idle(self.page)
            found = await problems_on(self.page, expected_error)
            if found:
                ok = False
                self.errors.append(f"{self.label}, {action}: {'; '.join(found)}")
        except Exception as error:  # a timeout or a missing element is an error of the app under load
            ok = False
            self.errors.append(f"{self.label}, {action}: {type(error).__name__}: {str(error)[:160]}")
        self.timings[action].append(time.perf_counter() - start)
        return ok

    async def open(self, path: str, ready_text: str) -> None:
        """Load the app at ``path`` on the first visit; afterwards move there through the sidebar, as people do.

        A sidebar link is a rerun in the same Streamlit session; ``goto`` would reload the whole
        frontend and start a new session on every page, a load no visitor makes."""
        link = self.page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]')
        if self.navigation == "sidebar" and self.page.url.startswith(self.url) and await link.count():
            await link.first.click()
            await self.page.wait_for_url(re.compile(rf"/{path}([?#]|$)"), timeout=ACTION_TIMEOUT_MS)
        else:
            await self.page.goto(f"{self.url}/{path}")
        await self.page.get_by_text(ready_text).first.wait_for(timeout=ACTION_TIMEOUT_MS)

    async def open_train(self) -> None:
        await self.page.goto(f"{self.url}/train")
        await self.page.get_by_role("button", name="Start training").wait_for(timeout=ACTION_TIMEOUT_MS)
        await self.page.get_by_text("Past runs").first.wait_for(timeout=ACTION_TIMEOUT_MS)


class Session(Visitor):
    """One of the ``--sessions`` visitors of the image pages."""

    name = "session"

    @property
    def actions_done(self) -> int:
        return sum(len(v) for action, v in self.timings.items() if action != ARRIVAL)

    async def arrive(self, after: float = 0.0) -> None:
        """Come to the app ``after`` seconds from now: load it on its Home page, as a visitor following a link, and
        see each page once, so that the browser has loaded its code (its charts' library among it)."""
        await asyncio.sleep(after)
        await self.new_tab()

        async def first_visit() -> None:
            await self.page.goto(self.url)
            await self.page.get_by_text("Checkpoints").first.wait_for(timeout=ACTION_TIMEOUT_MS)
            for path, ready_text in PAGES:
                await wait_idle(self.page)
                await self.open(path, ready_text)
        await self.timed(ARRIVAL, first_visit)

    async def run(self, rounds: int) -> None:
        page = self.page

        def showing_it(steps):
            """``steps``, then wait until the address carries the new image or level: the server's rerun has begun
            (the status widget alone can read idle before it does); ``timed`` then waits for the rerun's end."""
            async def act() -> None:
                before = page.url
                await steps()
                await page.wait_for_function("before => location.href !== before", arg=before,
                                             polling=IDLE_POLL_MS, timeout=ACTION_TIMEOUT_MS)
            return act

        async def random_image() -> None:  # one in 10,000 draws the same image again and times out as an error
            await page.get_by_role("button", name="Random image").click()

        async def stronger_noise() -> None:
            thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Strength").get_by_role("slider")
            await thumb.focus()
            for _ in range(3):
                await thumb.press("ArrowRight")

        for _ in range(rounds):
            await self.timed("classify: open the page", lambda: self.open(*PAGES[0]))
            await self.think()
            await self.timed("classify: a random test image", showing_it(random_image))
            await self.think()
            await self.timed("denoise: open the page", lambda: self.open(*PAGES[1]))
            await self.think()
            await self.timed("denoise: move the strength slider", showing_it(stronger_noise))
            await self.think()
            await self.timed("colorize: open the page", lambda: self.open(*PAGES[2]))
            await self.think()
            await self.timed("colorize: a random test image", showing_it(random_image))
            await self.think()
        await self.close()

    async def think(self) -> None:
        """A visitor looks at what the page shows before the next step: ``think_s`` on average, jittered so that
        the visitors drift apart (0 for back-to-back actions, a harsher load than people make)."""
        if self.think_s:
            await asyncio.sleep(self.think_s * random.uniform(0.5, 1.5))


ACTIONS_PER_ROUND = 6


class OverLarge(Visitor):
    """Asks for a run far over the caps: it must be refused, and nothing may start."""

    name = "over-large visitor"

    def __init__(self, browser, url: str, home: Path) -> None:
        super().__init__(browser, url)
        self.home = home
        self.refused = False
        self.refusal = ""

    async def run(self) -> None:
        await self.new_tab()
        page = self.page
        if not await self.timed("train: open the page", self.open_train):
            return

        async def ask() -> None:
            await choose(page, "Architecture", OVER_LARGE["Architecture"])
            await set_number(page, "width", OVER_LARGE["width"])
            await set_number(page, "Batch size", OVER_LARGE["Batch size"])
        try:
            await ask()
        except Exception as error:
            self.errors.append(f"{self.label}, filling the form: {type(error).__name__}: {str(error)[:160]}")
            return

        async def press_start() -> None:
            await page.get_by_role("button", name="Start training").click()
            await page.get_by_text(REFUSAL).first.wait_for(timeout=ACTION_TIMEOUT_MS)
        ok = await self.timed("train: an over-large run is refused", press_start, expected_error=REFUSAL)
        text = await main_text(page)
        boxes = await page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
        self.refusal = next((box for box in boxes if box.startswith(REFUSAL)), "")
        started = training_pids(self.home) or "Training..." in text or "No run has been started" not in text
        if started:
            self.errors.append(f"{self.label}: the over-large run started (or some run did) instead of being refused")
        self.refused = ok and bool(self.refusal) and not started
        await self.close()


class Trainer(Visitor):
    """Starts the default preset (Quick classification) and starts it again whenever its run ends."""

    name = "trainer"

    def __init__(self, browser, url: str, home: Path) -> None:
        super().__init__(browser, url)
        self.home = home
        self.tab = asyncio.Lock()  # the chaos visitor reads this tab too: one of them at a time
        self.starts = 0
        self.restarts: list[str] = []
        self.killed = False  # set by the chaos visitor; the next start is the restart after the kill
        self.seconds_to_training: list[float] = []

    @property
    def start_button(self):
        return self.page.get_by_role("button", name="Start training")

    async def begin(self) -> bool:
        """Open the Train page and start the run; whether it is training."""
        await self.new_tab()
        if not await self.timed("train: open the page", self.open_train):
            return False
        async with self.tab:
            return await self._start("train: start the Quick classification run")

    async def _start(self, action: str) -> bool:
        page = self.page

        async def press_start() -> None:
            await self.start_button.click()
            await page.locator(MAIN).get_by_role("button", name="Stop").wait_for(timeout=ACTION_TIMEOUT_MS)
        clicked = time.perf_counter()
        if not await self.timed(action, press_start):
            return False
        self.starts += 1
        try:  # untimed: the child imports torch and loads the dataset before its first batch
            await page.get_by_text("Training...").first.wait_for(timeout=TRAINING_BEGINS_MS)
        except Exception as error:
            self.errors.append(f"{self.label}: the run did not begin training: {type(error).__name__}: "
                               f"{str(error)[:160]}; the page reads: {(await main_text(page))[-300:]!r}")
            return False
        self.seconds_to_training.append(time.perf_counter() - clicked)
        return True

    async def keep_running(self, done: asyncio.Event) -> None:
        """Until ``done``: whenever the slot is free again (the run ended), start the run again."""
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), KEEPER_INTERVAL_S)
                return
            except TimeoutError:
                pass
            async with self.tab:
                if done.is_set():
                    return
                try:
                    if not await slot_free(self.page):
                        continue
                except Exception:  # the page is mid-rerun: look again later
                    continue
                why = "after the kill" if self.killed else "that ended by itself"
                self.restarts.append(f"{why} ({status_line(await main_text(self.page))[:200]})")
                self.killed = False
                await self._start(f"train: start the run again ({why})")

    async def stop(self) -> str:
        """Stop the run if one is going (the Stop button in the page body, not Streamlit's header one)."""
        stop = self.page.locator(MAIN).get_by_role("button", name="Stop")
        if await stop.count():
            await stop.first.click()
            await self.page.get_by_text("Stopped by request").first.wait_for(timeout=ACTION_TIMEOUT_MS)
        return await main_text(self.page)


class Chaos(Visitor):
    """Watches the trainer's run from its own tab; once half the visitors' actions are done, SIGKILLs the
    training child and times how long until Start training is enabled again on its tab (the slot is free)."""

    name = "chaos visitor"

    def __init__(self, browser, url: str, home: Path, trainer: Trainer, server: int) -> None:
        super().__init__(browser, url)
        self.home, self.trainer, self.server = home, trainer, server
        self.slot_free_after: float | None = None
        self.trainer_saw_it_after: float | None = None
        self.killed_pid: int | None = None
        self.message = ""

    async def watch(self) -> None:
        """Open the Train page during the trainer's run: read-only for this visitor, Start disabled."""
        await self.new_tab()

        async def look() -> None:
            await self.open_train()
            await self.page.get_by_text("Someone else's run").first.wait_for(timeout=ACTION_TIMEOUT_MS)
        if await self.timed("train: open the page (someone else's run)", look):
            if await self.page.locator(MAIN).get_by_role("button", name="Stop").count():
                self.errors.append(f"{self.label}: a Stop button on someone else's run")
            if await self.page.get_by_role("button", name="Start training").is_enabled():
                self.errors.append(f"{self.label}: Start training enabled while someone else's run is in progress")

    async def run(self, sessions: list[Session], total_actions: int) -> None:
        while sum(s.actions_done for s in sessions) < total_actions / 2:
            await asyncio.sleep(0.5)
        trainer, page = self.trainer, self.page
        async with trainer.tab:  # the trainer does not restart the run until this is done
            try:  # mid-run: kill it while it trains
                await trainer.page.get_by_text("Training...").first.wait_for(timeout=TRAINING_BEGINS_MS)
            except Exception:
                self.errors.append(f"{self.label}: the trainer's tab does not show a run training")
            pid = training_root(self.home)
            if pid is None:
                self.errors.append(f"{self.label}: no training child process to kill")
                return
            self.killed_pid = pid
            os.kill(pid, signal.SIGKILL)
            killed = time.perf_counter()
            trainer.killed = True
            try:  # this visitor's tab: the run reads as killed, and Start training is enabled again
                await page.get_by_text("killed (SIGKILL)").first.wait_for(timeout=SLOT_FREE_TIMEOUT_S * 1000)
                while not await slot_free(page):
                    if time.perf_counter() - killed > SLOT_FREE_TIMEOUT_S:
                        raise TimeoutError(f"Start training still disabled {SLOT_FREE_TIMEOUT_S:.0f} s after the kill")
                    await asyncio.sleep(0.1)
                self.slot_free_after = time.perf_counter() - killed
            except Exception as error:
                self.errors.append(f"{self.label}: after the SIGKILL: {type(error).__name__}: {str(error)[:200]}")
            try:  # the trainer's tab: the same, its Stop button gone
                await trainer.page.get_by_text("killed (SIGKILL)").first.wait_for(timeout=SLOT_FREE_TIMEOUT_S * 1000)
                while not await slot_free(trainer.page):
                    if time.perf_counter() - killed > SLOT_FREE_TIMEOUT_S:
                        raise TimeoutError(f"the trainer's tab still shows a run {SLOT_FREE_TIMEOUT_S:.0f} s after "
                                           "the kill")
                    await asyncio.sleep(0.1)
                self.trainer_saw_it_after = time.perf_counter() - killed
                await wait_idle(trainer.page)
            except Exception as error:
                self.errors.append(f"{self.label}: the trainer's tab after the SIGKILL: {type(error).__name__}: "
                                   f"{str(error)[:200]}")
            try:  # a tab that never shows its page again is an error of the app, not of this script
                for tab in (page, trainer.page):
                    text = await main_text(tab)
                    if not status_line(text).startswith("Failed"):
                        self.errors.append(f"{self.label}: the killed run reads {status_line(text)[:120]!r}, "
                                           "not Failed")
                    found = await problems_on(tab)
                    if found:
                        self.errors.append(f"{self.label}, a page after the kill: {'; '.join(found)}")
                self.message = status_line(await main_text(trainer.page))[:200]
            except Exception as error:
                self.errors.append(f"{self.label}: reading the tabs after the kill: {type(error).__name__}: "
                                   f"{str(error)[:200]}")
            if training_pids(self.home):
                self.errors.append(f"{self.label}: training processes left after the kill: {training_pids(self.home)}")
            if parent_of(self.server) is None or not healthy(self.url):
                self.errors.append(f"{self.label}: the server is down after the kill")
        await self.close()


# ---- the benchmark -------------------------------------------------------------------------------------
async def measure(url: str, home: Path, sessions: int, rounds: int, sampler: MemorySampler, ramp_s: float = 0.0
                  ) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        over_large = OverLarge(browser, url, home)
        await over_large.run()  # first: once a run is in progress, Start training is disabled for everyone
        trainer = Trainer(browser, url, home)
        await trainer.begin()
        chaos = Chaos(browser, url, home, trainer, sampler.server)
        await chaos.watch()
        server_before_mb = sampler.now_mb()

        visitors = [Session(browser, url, n + 1) for n in range(sessions)]
        done = asyncio.Event()
        keeper = asyncio.create_task(trainer.keep_running(done))
        # Everyone has the app open before the rounds begin: the first loads of the frontend and of its chart
        # library, ten at once, are timed apart; on the Space each runs in its visitor's own browser, not on the
        # server's two cores, and here a browser context starts with an empty cache.
        await asyncio.gather(*(visitor.arrive(n * ramp_s / sessions) for n, visitor in enumerate(visitors)))
        sampler.visitors_phase = True
        cpu = CpuShare(sampler.server, home)
        cpu.start()
        start = time.perf_counter()
        chaos_task = asyncio.create_task(chaos.run(visitors, sessions * rounds * ACTIONS_PER_ROUND))
        await asyncio.gather(*(visitor.run(rounds) for visitor in visitors))
        elapsed = time.perf_counter() - start
        cpu_share = cpu.stop()
        sampler.visitors_phase = False
        training_at_end = bool(training_pids(home))
        await chaos_task  # it kills once even if the visitors were quicker than it
        done.set()
        await keeper
        async with trainer.tab:
            try:
                await trainer.stop()
            except Exception as error:
                trainer.errors.append(f"trainer: stopping the run at the end: {type(error).__name__}: {error}")
        await trainer.close()
        await browser.close()

    everyone = [over_large, trainer, chaos, *visitors]
    timings: dict[str, list[float]] = defaultdict(list)
    for visitor in everyone:
        for action, seconds in visitor.timings.items():
            timings[action].extend(seconds)
    return {
        "sessions": sessions, "rounds": rounds, "seconds": elapsed, "caps": dockerfile_caps(),
        "timings": timings, "errors": [e for v in everyone for e in v.errors],
        "refused": over_large.refused, "refusal": over_large.refusal,
        "killed_pid": chaos.killed_pid, "slot_free_after_s": chaos.slot_free_after, "kill_message": chaos.message,
        "trainer_saw_the_kill_after_s": chaos.trainer_saw_it_after,
        "training_starts": trainer.starts, "restarts": trainer.restarts,
        "seconds_to_training": trainer.seconds_to_training, "training_at_end": training_at_end,
        "training_coverage": sampler.phase_samples_training / sampler.phase_samples if sampler.phase_samples else 0.0,
        "server_before_visitors_mb": server_before_mb, "cpu_share": cpu_share,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def table(report: dict) -> str:
    caps = ", ".join(f"{k.removeprefix('CIFAR_LAB_')}={v}" for k, v in report["caps"].items())
    lines = [f"{report['sessions']} concurrent visitors x {report['rounds']} rounds of Classify, Denoise and Colorize "
             f"in {report['seconds']:.0f} s, while the Quick classification preset trained on a server capped as "
             f"the Space ({caps}); a training process was alive {report['training_coverage']:.0%} of that time.",
             f"Visitors moved between pages by {'the sidebar' if report['navigation'] == 'sidebar' else 'reloading'}"
             + (f", looking {report['think_s']:g} s on average at each page before the next step."
                if report.get("think_s") else ", acting back to back (no time spent looking).")
             + (f" They arrived one by one over {report['ramp_s']:g} s." if report.get("ramp_s")
                else " All of them arrived in the same second."),
             f"CPU: {report['cpu']}\n",
             "| action | count | median | 95th percentile | slowest |", "|---|---:|---:|---:|---:|"]
    for action, values in report["timings"].items():
        lines.append(f"| {action} | {len(values)} | {statistics.median(values):.1f} s | "
                     f"{percentile(values, 0.95):.1f} s | {max(values):.1f} s |")
    acting = [s for action, values in report["timings"].items() if is_open_action(action) for s in values]
    if acting:
        lines.append(f"\nActing on an open page ({len(acting)} actions): median {statistics.median(acting):.1f} s, "
                     f"95th percentile {percentile(acting, 0.95):.1f} s (target: under 3 s).")
    count = sum(len(v) for v in report["timings"].values())
    lines.append(f"{count} actions, {len(report['errors'])} errors.")
    share = report["cpu_share"]
    lines.append(
        f"CPU while the visitors acted: {share['busy']:,.0f} of {share['available']:,.0f} core-seconds busy "
        f"({share['busy'] / share['available']:.0%}); the Streamlit server {share['server']:,.0f} "
        f"({share['server'] / share['busy']:.0%} of the busy time), its training processes {share['training']:,.0f} "
        f"({share['training'] / share['busy']:.0%}), the rest (the visitors' Chromiums, this driver) "
        f"{share['rest']:,.0f} ({share['rest'] / share['busy']:.0%}); server CPU per visitor action "
        f"{share['server'] / max(count, 1):.2f} s.")
    lines.extend(f"- {error}" for error in report["errors"])
    per_visitor = (report["server_peak_mb"] - report["server_before_visitors_mb"]) / max(report["sessions"], 1)
    lines += [
        f"\nserver peak RSS: {report['server_peak_mb']:,.0f} MB (target: under 4,000 MB); "
        f"{report['server_before_visitors_mb']:,.0f} MB before the visitors came, "
        f"so about {per_visitor:,.0f} MB per visitor at most.",
        f"training child peak RSS: {report['training_peak_mb']:,.0f} MB "
        f"(cap {float(report['caps'].get('CIFAR_LAB_MAX_MEMORY_MB', 'nan')):,.0f} MB).",
        "over-large run: " + ("refused" if report["refused"] else "NOT refused")
        + (f" ({' '.join(report['refusal'].split())[:300]})" if report["refusal"] else ""),
        "killed training child: " + (f"slot free again after {report['slot_free_after_s']:.1f} s "
                                      "(Start training enabled on another visitor's tab)"
                                      if report["slot_free_after_s"] is not None else "slot NOT free again")
        + (f"; the trainer's tab read {report['kill_message']!r} and offered Start training after "
           f"{report['trainer_saw_the_kill_after_s']:.1f} s" if report["trainer_saw_the_kill_after_s"] else "") + ".",
        f"training runs started: {report['training_starts']} (seconds from Start training to the first batch: "
        f"{', '.join(f'{s:.0f}' for s in report['seconds_to_training']) or 'none'}); restarted "
        + ("; ".join(report["restarts"]) or "never") + ".",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw report here")
    parser.add_argument("--navigation", choices=("sidebar", "reload"), default="sidebar",
                        help="how a visitor moves between pages after loading the app: the sidebar's links (one "
                             "session, as people browse) or a fresh load of each page's address (the first rounds)")
    parser.add_argument("--think", type=float, default=5.0,
                        help="mean seconds each visitor looks at a page before the next step (jittered 0.5x to 1.5x; "
                             "0: back to back, a harsher load than people make)")
    parser.add_argument("--ramp", type=float, default=0.0,
                        help="seconds over which the visitors arrive, evenly spaced (0: all in the same second)")
    args = parser.parse_args()
    Visitor.navigation = args.navigation
    Visitor.think_s = args.think
    caps = dockerfile_caps()
    with tempfile.TemporaryDirectory(prefix="cifar-lab-load-") as folder:
        home = Path(folder)
        with streamlit_server(home, "load-server", env=caps) as url:
            sampler = MemorySampler(server_pid(), home)
            sampler.start()
            try:
                report = asyncio.run(measure(url, home, args.sessions, args.rounds, sampler, args.ramp))
            finally:
                sampler.stop()
    from core.devices import cpu_model

    report |= {"navigation": args.navigation, "think_s": args.think, "ramp_s": args.ramp,
               "server_peak_mb": sampler.server_peak_mb,
               "training_peak_mb": sampler.training_peak_mb, "cpu": cpu_model()}
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if report["errors"] or not report["refused"] or report["slot_free_after_s"] is None else 0


if __name__ == "__main__":
    sys.exit(main())
