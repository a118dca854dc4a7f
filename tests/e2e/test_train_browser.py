"""Train page in real headless Chromium: start a tiny run, watch the chart grow, stop it; only its owner
can; a killed training process leaves the server up and the slot free; a capped server refuses a huge run."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import choose, open_page, screenshot, streamlit_server, wait_until_idle

POINTS = """() => {
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    if (!plot || !plot.data) return -1;
    const trace = plot.data.find(t => t.name === 'train loss (epoch)');
    return trace ? trace.x.length : 0;
}"""

AFTER_EPOCH = """() => {
    const found = document.body.innerText.match(/After epoch (\\d+):/);
    return found ? Number(found[1]) : 0;
}"""


def set_number(page, label: str, value: float) -> None:
    field = page.get_by_label(label, exact=True)
    # After a change of architecture the old model's field of the same name lingers for a moment.
    for _ in range(100):
        if field.count() == 1:
            break
        page.wait_for_timeout(100)
    field.fill(str(value))
    field.press("Tab")


def fill_tiny_run(page, epochs: int = 300) -> None:
    choose(page, "Architecture", "Staged CNN (baseline / intermediate / advanced)")
    choose(page, "variant", "baseline")
    set_number(page, "width", 8)
    set_number(page, "Epochs", epochs)
    set_number(page, "Batch size", 64)
    set_number(page, "Training images (0 = all)", 512)
    set_number(page, "Validation images", 128)
    # Adam learns this tiny run within seconds; the README's picture of this page is taken from it.
    choose(page, "Optimizer", "Adam")
    set_number(page, "Learning rate", 0.003)


def main_text(page) -> str:
    return page.locator('[data-testid="stMainBlockContainer"]').inner_text()


def test_start_watch_and_stop_a_run_only_its_owner_can_stop(page, browser, app_url: str) -> None:
    open_page(page, app_url, "train")
    assert page.locator("h1").first.inner_text().strip() == "Train"
    fill_tiny_run(page)
    page.get_by_role("button", name="Start training").click()

    page.wait_for_function(f"({POINTS})() >= 2", timeout=120_000)
    first = page.evaluate(POINTS)
    page.wait_for_function(f"({POINTS})() > {first}", timeout=60_000)  # the live chart keeps gaining points
    assert "Running" in main_text(page)
    # The watched validation images: their guesses are redrawn after every epoch.
    page.wait_for_function(f"({AFTER_EPOCH})() >= 1", timeout=60_000)
    seen = page.evaluate(AFTER_EPOCH)
    page.wait_for_function(f"({AFTER_EPOCH})() > {seen}", timeout=60_000)
    assert page.locator('[data-testid="stImage"]').count() >= 8
    screenshot(page, "train-running")

    # Another visitor (a second browser context: its own session) watches, read-only.
    other_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = other_context.new_page()
        other.set_default_timeout(60_000)
        open_page(other, app_url, "train")
        other.get_by_text("Someone else's run").first.wait_for()
        assert other.locator('[data-testid="stMainBlockContainer"]').get_by_role("button", name="Stop").count() == 0
        assert not other.get_by_role("button", name="Start training").is_enabled()
        screenshot(other, "train-someone-elses-run")
    finally:
        other_context.close()

    # Scoped to the page body: Streamlit's own header has a "Stop" button while a script runs.
    main = page.locator('[data-testid="stMainBlockContainer"]')
    main.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped by request").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    text = main_text(page)
    assert "Stopped" in text and "Traceback" not in text
    # The message comes from the training process; the slot frees when the server has reaped it, a moment later.
    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=30_000)
    page.get_by_text("Replay the epochs").first.wait_for(timeout=30_000)  # the ended run's guesses, epoch by epoch
    page.get_by_text("Replay the epochs").first.scroll_into_view_if_needed()
    screenshot(page, "train-replay")
    assert page.console_errors == []
    screenshot(page, "train-stopped")

    # The stopped run is in the table, with its command to reproduce it and its history as CSV.
    page.get_by_text("Reproduce it from the command line").first.scroll_into_view_if_needed()
    assert "python -m core.train" in main_text(page)
    with page.expect_download() as history:
        page.get_by_role("button", name=re.compile("Per-epoch history")).click()
    lines = Path(history.value.path()).read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,val_loss") and len(lines) >= 2
    screenshot(page, "train-past-runs")


def training_children(marker: str) -> list[int]:
    """Pids of training processes whose command line holds ``marker`` (the server's app home), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # not a process, or gone
            continue
        if "core.train" in words and any(marker in word for word in words) and "--live-file" in words:
            found.append(int(entry.name))
    return found


def test_a_killed_training_process_leaves_the_server_up_and_the_slot_free(page, browser, tmp_path) -> None:
    home = tmp_path / "home"
    with streamlit_server(home, "streamlit-kill") as url:
        open_page(page, url, "train")
        fill_tiny_run(page)
        page.get_by_role("button", name="Start training").click()
        page.wait_for_function(f"({POINTS})() >= 1", timeout=120_000)
        (pid,) = training_children(str(home))
        os.kill(pid, signal.SIGKILL)
        page.get_by_text("killed (SIGKILL)").first.wait_for(timeout=30_000)
        wait_until_idle(page)
        assert "Failed" in main_text(page) and "Traceback" not in main_text(page)
        expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=10_000)  # the slot is free
        screenshot(page, "train-killed")
        open_page(page, url, "classify")  # and every page still serves
        assert "Traceback" not in main_text(page)


def test_a_capped_server_refuses_a_run_too_large_for_it(page, tmp_path) -> None:
    caps = {"CIFAR_LAB_MAX_PARAMS": "12000000", "CIFAR_LAB_MAX_MEMORY_MB": "6000", "CIFAR_LAB_MAX_MINUTES": "8"}
    with streamlit_server(tmp_path / "home", "streamlit-capped", env=caps) as url:
        open_page(page, url, "train")
        choose(page, "Architecture", "ResNet-18 (CIFAR form)")
        set_number(page, "width", 128)
        set_number(page, "Batch size", 8192)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("This run cannot start").first.wait_for(timeout=60_000)
        text = main_text(page)
        assert "at most 12M parameters" in text and "6,000 MB this server allows" in text
        assert "Running" not in text and "Traceback" not in text
        screenshot(page, "train-refused")


def test_your_images_train_a_classifier_that_answers_with_their_names_and_exports(page, app_url: str,
                                                                                   tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime

    from tests.test_own_data import colour_classes, picture

    open_page(page, app_url, "train")
    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=120_000)  # earlier runs over
    choose(page, "Task", "Your images")
    for index, (name, files) in enumerate(colour_classes()):
        page.get_by_label(f"Class {index + 1}", exact=True).fill(name)
        paths = []
        for file_name, payload in files:
            (tmp_path / file_name).write_bytes(payload)
            paths.append(str(tmp_path / file_name))
        page.locator('[data-testid="stFileUploader"] input[type="file"]').nth(index).set_input_files(paths)
        page.get_by_text(files[-1][0]).first.wait_for()
    choose(page, "Start from", "tiny-a")
    set_number(page, "Epochs", 3)
    set_number(page, "New head alone for (epochs)", 1)
    screenshot(page, "train-your-images-form")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Saved as").first.wait_for(timeout=180_000)
    text = main_text(page)
    assert "your images" in text and "Traceback" not in text
    screenshot(page, "train-your-images-finished")
    name = re.search(r"Saved as (\S+?);", text).group(1)

    open_page(page, app_url, "classify")
    choose(page, "Model", name, prefix=True)
    page.get_by_text("Upload", exact=True).first.click()
    (tmp_path / "query-red.png").write_bytes(picture((220, 30, 30), (64, 64), 7))
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(tmp_path / "query-red.png"))
    # Wait for the upload's own prediction: the sample photo's was on the page before, and the rerun that
    # takes the upload shows "Choose an image file" for a moment.
    page.wait_for_function(
        "() => { const t = document.querySelector('[data-testid=\"stMainBlockContainer\"]').innerText;"
        " return /Prediction: (red|blue),/.test(t) && t.includes('query-red.png') && !t.includes('Choose an image')"
        " && t.includes('Trained on your images (blue, red)'); }",
        timeout=60_000)
    wait_until_idle(page)
    text = main_text(page)
    assert re.search(r"Prediction: (red|blue),", text) and "Trained on your images (blue, red)" in text
    screenshot(page, "classify-your-images")
    page.get_by_text("How this model works").first.click()
    page.get_by_text("ONNX: input 'images'").first.wait_for()
    wait_until_idle(page)
    with page.expect_download(timeout=120_000) as onnx:
        page.get_by_role("button", name=re.compile("ONNX export")).click()
    target = tmp_path / onnx.value.suggested_filename
    onnx.value.save_as(target)
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"images": np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)})[0]
    assert logits.shape == (2, 2)  # its own two classes
    assert page.console_errors == []

