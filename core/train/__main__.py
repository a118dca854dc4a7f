"""Command line: ``python -m core.train --task classification --arch resnet18 --dataset cifar10 --epochs 10``.

Also runs under ``torchrun --nproc_per_node N python -m core.train ...`` (DDP). Ends
with one line, ``test <metric>=<value>``; exits 2 on a bad configuration.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import types
from dataclasses import MISSING, fields
from typing import Any, get_args

from core import devices
from core.train.callbacks import ProgressBar
from core.train.config import ConfigError, TrainConfig
from core.train.engine import Trainer
from core.train.runs import RunRecorder


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
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = vars(build_parser().parse_args(argv))
    record = not args.pop("no_record")
    args["arch_args"] = dict(args.pop("arch_arg"))
    try:
        config = TrainConfig(**args).validate()
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    devices.configure_threads()
    command = "python -m core.train " + " ".join(shlex.quote(a) for a in argv)
    callbacks = [ProgressBar()] + ([RunRecorder()] if record else [])
    trainer = Trainer(config, callbacks, command=command)
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
