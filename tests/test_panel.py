"""Watching a model learn: the panel of validation images, its per-epoch guesses, live and in the run store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import torch

from core.train import Trainer
from core.train import panel as watched
from core.train.callbacks import LiveFile
from core.train.runs import RunRecorder, RunStore
from tests.test_train import tiny


def test_the_panel_spreads_over_the_classes_in_a_fixed_order() -> None:
    labels = torch.tensor([2, 0, 0, 1, 2, 1, 0, 2, 1, 0])
    assert watched.choose(labels, 8) == [1, 3, 0, 2, 5, 4, 6, 8]  # first of each class, then the seconds, ...
    assert watched.choose(torch.tensor([0, 0, 1]), 8) == [0, 2, 1]  # fewer images than the panel: all of them
    assert watched.choose(torch.tensor([], dtype=torch.long), 8) == []


def test_images_survive_the_round_trip_and_rows_say_what_is_right() -> None:
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    panel = watched.describe(images, torch.tensor([1, 0]), ["cat", "dog"])
    decoded = watched.decode(panel["images"][0])
    assert torch.equal(torch.from_numpy(np.array(decoded)).permute(2, 0, 1), images[0])
    rows = watched.rows(panel, [[1, 0.9], [1, 0.6]])
    assert [(r["truth"], r["predicted"], r["correct"]) for r in rows] == [("dog", "dog", True), ("cat", "dog", False)]
    assert "predicted" not in watched.rows(panel, None)[0]  # before the first epoch: truth only
    assert watched.right_count(panel, [[1, 0.9], [1, 0.6]]) == 1
    assert watched.right_count(panel, [[1, 0.9], [0, 0.6]]) == 2
    assert watched.right_count(panel, [[0, 0.9]]) == 0  # a shorter list counts what it has


def test_predict_gives_the_top_class_and_its_probability_and_leaves_the_mode_alone() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    model.train()
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    guesses = watched.predict(model, images)
    probabilities = model(images.float() / 255).softmax(1)
    assert [g[0] for g in guesses] == probabilities.argmax(1).tolist()
    assert all(abs(g[1] - p) < 1e-3 for g, p in zip(guesses, probabilities.max(1).values.tolist(), strict=True))
    assert model.training


def test_a_run_records_the_panels_guesses_every_epoch_live_and_in_the_store(tmp_path: Path, data_root: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    recorder = RunRecorder(store)
    live = LiveFile(tmp_path / "live.json", recorder)
    result = Trainer(tiny(tmp_path, epochs=3), [recorder, live]).fit()
    assert result.status == "finished"
    assert all(len(record.panel) == 8 for record in result.history)
    assert len(live.state["panel"]["images"]) == 8 and len(set(live.state["panel"]["labels"])) == 8
    assert [len(e["panel"]) for e in live.state["history"]] == [8, 8, 8]
    run = store.get(recorder.run_id)
    assert run["panel"] == live.state["panel"]
    assert [e["panel"] for e in run["epochs"]] == [r.panel for r in result.history]
    # Probabilities are the softmax's top, and the guesses move as the model learns.
    assert all(0.0 < p <= 1.0 for e in run["epochs"] for _, p in e["panel"])
    assert run["epochs"][0]["panel"] != run["epochs"][-1]["panel"]


def test_a_denoising_run_has_no_panel(tmp_path: Path, data_root: Path) -> None:
    live = LiveFile(tmp_path / "live.json")
    config = tiny(tmp_path, task="denoising", arch="conv_dae", arch_args={}, dataset="mnist", epochs=1, lr=0.001,
                  noise="gaussian", noise_level=0.3)
    Trainer(config, [live]).fit()
    assert live.state["panel"] is None and live.state["history"][0]["panel"] is None


def test_a_store_made_before_the_panel_gains_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, task TEXT NOT NULL,"
            " arch TEXT NOT NULL, dataset TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',"
            " config TEXT NOT NULL, command TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '', checkpoint TEXT,"
            " test_metrics TEXT NOT NULL DEFAULT '{}', host TEXT NOT NULL, pid INTEGER NOT NULL, started REAL NOT NULL,"
            " ended REAL, seconds REAL);"
            "INSERT INTO runs (name, task, arch, dataset, status, config, host, pid, started)"
            " VALUES ('old', 'classification', 'fastnet', 'cifar10', 'finished', '{}', 'h', 1, 0);")
    store = RunStore(path)
    [run] = store.runs()
    assert run["name"] == "old" and run["panel"] is None and run["epochs"] == []
    store.create("new", {"task": "classification", "arch": "fastnet", "dataset": "cifar10"}, "", "cpu", None,
                 {"images": [], "labels": [], "classes": []})
    assert store.runs()[0]["panel"] == {"images": [], "labels": [], "classes": []}
