"""The run store: every training run's config, status and per-epoch metrics in SQLite.

One file in the app's data folder, so history survives restarts. Every write is a
transaction; a connection is opened per call, so any thread may use the store.
A run left "running" by a process that no longer exists reads as "interrupted".
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths

if TYPE_CHECKING:  # the trainer imports this module: its types are for annotations only
    import torch

    from core.train.engine import EpochRecord, RunResult, Trainer

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    task TEXT NOT NULL,
    arch TEXT NOT NULL,
    dataset TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    command TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    checkpoint TEXT,
    test_metrics TEXT NOT NULL DEFAULT '{}',
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    seconds REAL,
    panel TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL NOT NULL,
    val_loss REAL,
    train_metrics TEXT NOT NULL,
    val_metrics TEXT NOT NULL,
    seconds REAL NOT NULL,
    images_per_second REAL NOT NULL,
    lr REAL NOT NULL,
    panel TEXT,
    PRIMARY KEY (run_id, epoch)
);
"""
ADDED_COLUMNS = {"runs": ("panel",), "epochs": ("panel",)}  # stores made before these columns get them


class RunStore:
    """Runs and their epochs in one SQLite file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else paths.app_home() / "runs.sqlite3"
        with closing(self._connect()) as connection, connection:
            connection.executescript(SCHEMA)
            for table, columns in ADDED_COLUMNS.items():
                present = {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
                for column in columns:
                    if column not in present:
                        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")  # readers never block the training thread's writes
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with closing(self._connect()) as connection, connection:  # commits, or rolls back on error
            return connection.execute(sql, params).lastrowid

    def create(self, name: str, config: dict[str, Any], command: str, device: str, checkpoint: str | None,
               panel: dict[str, Any] | None = None) -> int:
        """A new running run; ``panel`` is the classifier's watched validation images (core.train.panel)."""
        return self._write(
            "INSERT INTO runs (name, task, arch, dataset, status, config, command, device, checkpoint, host, pid,"
            " started, panel) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, config["task"], config["arch"], config["dataset"], json.dumps(config), command, device,
             checkpoint, socket.gethostname(), os.getpid(), time.time(), json.dumps(panel) if panel else None),
        )

    def add_epoch(self, run_id: int, record: Any) -> None:
        values = asdict(record)
        self._write(
            "INSERT OR REPLACE INTO epochs (run_id, epoch, train_loss, val_loss, train_metrics, val_metrics, seconds,"
            " images_per_second, lr, panel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, values["epoch"], values["train_loss"], values["val_loss"], json.dumps(values["train_metrics"]),
             json.dumps(values["val_metrics"]), values["seconds"], values["images_per_second"], values["lr"],
             json.dumps(values["panel"]) if values.get("panel") is not None else None),
        )

    def finish(self, run_id: int, status: str, message: str, test_metrics: dict[str, float],
               checkpoint: str | None, seconds: float) -> None:
        self._write(
            "UPDATE runs SET status = ?, message = ?, test_metrics = ?, checkpoint = ?, ended = ?, seconds = ?"
            " WHERE id = ?",
            (status, message, json.dumps(test_metrics), checkpoint, time.time(), seconds, run_id),
        )

    def runs(self, limit: int = 100, task: str | None = None) -> list[dict[str, Any]]:
        """The newest runs first, each with its epochs; only ``task``'s runs when it is given."""
        if task is None:
            return self._select("ORDER BY id DESC LIMIT ?", (limit,))
        return self._select("WHERE task = ? ORDER BY id DESC LIMIT ?", (task, limit))

    def get(self, run_id: int) -> dict[str, Any] | None:
        """One run by its id, or None."""
        return next(iter(self._select("WHERE id = ?", (run_id,))), None)

    def _select(self, clause: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with closing(self._connect()) as connection:
            rows = [dict(r) for r in connection.execute(f"SELECT * FROM runs {clause}", params)]
            for row in rows:
                row["config"] = json.loads(row["config"])
                row["test_metrics"] = json.loads(row["test_metrics"])
                row["panel"] = json.loads(row["panel"]) if row["panel"] else None
                row["epochs"] = [
                    {**dict(e), "train_metrics": json.loads(e["train_metrics"]),
                     "val_metrics": json.loads(e["val_metrics"]),
                     "panel": json.loads(e["panel"]) if e["panel"] else None}
                    for e in connection.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (row["id"],))
                ]
                if row["status"] == "running" and not _alive(row["host"], row["pid"]):
                    row["status"], row["message"] = "interrupted", "The training process ended without finishing."
        return rows


def history_csv(run: dict[str, Any]) -> str:
    """A run's per-epoch history as CSV: losses, every train and validation metric, learning rate, speed."""
    train_keys = sorted({key for epoch in run["epochs"] for key in epoch["train_metrics"]})
    val_keys = sorted({key for epoch in run["epochs"] for key in epoch["val_metrics"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "val_loss", *(f"train_{k}" for k in train_keys),
                     *(f"val_{k}" for k in val_keys), "lr", "seconds", "images_per_second"])
    for epoch in run["epochs"]:
        writer.writerow([epoch["epoch"], epoch["train_loss"], "" if epoch["val_loss"] is None else epoch["val_loss"],
                         *(epoch["train_metrics"].get(k, "") for k in train_keys),
                         *(epoch["val_metrics"].get(k, "") for k in val_keys),
                         epoch["lr"], epoch["seconds"], epoch["images_per_second"]])
    return buffer.getvalue()


def batch_csv(batch_losses: list) -> str:
    """The per-batch training losses a live run recorded, as CSV (step, loss); long runs keep every 2^k-th."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "train_loss"])
    writer.writerows((int(step), float(loss)) for step, loss in batch_losses)
    return buffer.getvalue()


def _alive(host: str, pid: int) -> bool:
    if host != socket.gethostname():
        return True  # another machine's process: we cannot tell, so trust the record
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunRecorder:
    """A trainer callback that records the run in a RunStore (rank 0 only)."""

    def __init__(self, store: RunStore | None = None) -> None:
        self.store = store or RunStore()
        self.run_id: int | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.is_main:
            from core import devices

            self.run_id = self.store.create(trainer.name, trainer.config.to_dict(), trainer.command,
                                            devices.describe(trainer.device), str(trainer.checkpoint_path),
                                            getattr(trainer, "panel", None))

    def on_batch_end(self, trainer: Trainer, step: int, loss: torch.Tensor, batch_size: int) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        if self.run_id is not None:
            self.store.add_epoch(self.run_id, record)

    def on_finish(self, trainer: Trainer, result: RunResult) -> None:
        if self.run_id is not None:
            self.store.finish(self.run_id, result.status, result.message, result.test_metrics, result.checkpoint,
                              result.seconds)
