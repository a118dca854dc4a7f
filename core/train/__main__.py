"""Command line: ``python -m core.train --task classification --arch resnet18 --dataset cifar10 --epochs 10``.

Also runs under ``torchrun --nproc_per_node N python -m core.train ...`` (DDP). Ends
with one line, ``test <metric>=<value>``; exits 2 on a bad configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import sys
import threading
import types
from dataclasses import MISSING, fields
from typing import Any, get_args

from core import devices
from core.train.callbacks import LiveFile, ProgressBar
from core.train.config import ConfigError, TrainConfig, config_to_command
from core.train.engine import Trainer
from core.train.runs import RunRecorder, RunStore


def _parse_arch_arg(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--arch-arg takes KEY=VALUE, not {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.train", description="Train a CIFAR Lab model.")
    defaults = TrainConfig()
    for field in fields(TrainConfig):
        if field.name == "arch_args":
            continue
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        kinds = [k for k in get_args(field.type) if k is not type(None)] if isinstance(field.type, types.UnionType) \
            else [field.type]
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(getattr(kinds[0], "__name__", str(kinds[0])),
                                                                          kinds[0])
        if isinstance(kind, str):  # postponed annotations: "int | None" and friends
            kind = int if kind.startswith("int") else float if kind.startswith("float") else \
                bool if kind == "bool" else str
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=kind, default=default if default is not MISSING else None)
    parser.add_argument("--arch-arg", action="append", type=_parse_arch_arg, default=[], metavar="KEY=VALUE",
                        help="an architecture option, e.g. --arch-arg width=32 (repeatable)")
    parser.add_argument("--no-record", action="store_true", help="do not record the run in the run store")
    supervision = parser.add_argument_group("supervision (the Train page's server sets these)")
    supervision.add_argument("--live-file", default=None, help="keep the run's live state in this JSON file")
    supervision.add_argument("--run-store", default=None, help="record the run in this SQLite file")
    supervision.add_argument("--memory-limit-mb", type=float, default=None,
                             help="fail allocations beyond this much memory (plus interpreter overhead)")
    return parser


# The address space a process may hold beyond its resident limit before allocations fail: thread stacks
# and the torch libraries' private mappings, which are reserved but mostly never resident (measured: about
# 800 MB of data segment against 714 MB resident right after importing torch).
ADDRESS_HEADROOM_MB = 1024
SUPERVISED_NICENESS = 19  # where the idle scheduling class is missing (not Linux)


def yield_to_visitors() -> str:
    """Run this process only on CPU time the web server's visitors leave: Linux's idle scheduling class, else the
    lowest niceness. On two cores, niceness 10 still took a tenth of a busy CPU from the visitors' pages (its
    threads weigh about a tenth of theirs each); an idle-class process weighs a third of a hundredth and
    still trains at full speed whenever no visitor is acting. Returns which of the two it got."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "idle"
    except (AttributeError, OSError):
        os.nice(SUPERVISED_NICENESS)
        return f"niceness {SUPERVISED_NICENESS}"


def limit_memory(megabytes: float) -> None:
    """Make allocations past ``megabytes`` (plus headroom) fail with MemoryError instead of taking the machine."""
    limit = int((megabytes + ADDRESS_HEADROOM_MB) * 2**20)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def stop_when_orphaned(stop: threading.Event, interval: float = 1.0) -> None:
    """Stop the run, cleanly, once the server that started it is gone (its own session outlives it).

    The server names itself in ``CIFAR_LAB_SUPERVISOR_PID``: had it died while this process was still
    importing torch, ``getppid()`` would already be the adopting process.
    """
    parent = int(os.environ.get("CIFAR_LAB_SUPERVISOR_PID") or os.getppid())

    def watch() -> None:
        while not stop.wait(interval):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch, name="cifar-lab-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = vars(build_parser().parse_args(argv))
    record = not args.pop("no_record")
    live_file, run_store, memory_limit = args.pop("live_file"), args.pop("run_store"), args.pop("memory_limit_mb")
    args["arch_args"] = dict(args.pop("arch_arg"))
    try:
        config = TrainConfig(**args).validate()
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if memory_limit:
        limit_memory(memory_limit)
    if live_file:  # under the web server: its visitors' page runs come before the background training
        yield_to_visitors()
    devices.configure_threads()
    # A supervised run records the command that reproduces it, without the supervisor's own flags.
    command = config_to_command(config) if live_file else \
        "python -m core.train " + " ".join(shlex.quote(a) for a in argv)
    recorder = RunRecorder(RunStore(run_store) if run_store else None) if record else None
    callbacks = [ProgressBar(), *([recorder] if recorder else [])]
    if live_file:
        callbacks.append(LiveFile(live_file, recorder))
    stop = threading.Event()
    # SIGTERM (the Train page's Stop, or `kill`) ends the run after the current batch, keeping its checkpoint.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if live_file:
        stop_when_orphaned(stop)
    trainer = Trainer(config, callbacks, stop_event=stop, command=command)
    try:
        result = trainer.fit()
    except Exception as error:
        print(f"error: training failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if not trainer.is_main:
        return 0 if result.status == "finished" else 1
    print(f"checkpoint {result.checkpoint}", file=sys.stderr)
    if result.status != "finished":
        print(f"{result.status}: {result.message}", file=sys.stderr)
        return 1
    headline = f"test_{trainer.task.headline}"
    print(f"test {trainer.task.headline}={result.test_metrics[headline]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
