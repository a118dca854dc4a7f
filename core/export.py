"""Take a model out of CIFAR Lab: an ONNX file any runtime can load, with the input it expects stated.

Command line: ``python -m core.export NAME --format onnx --out FILE [--height H --width W]``.

Every model normalises inside itself, so the exported graph takes exactly what CIFAR Lab's
models take: N x C x H x W float32 images in [0, 1]. The batch size is free; the height and
width are fixed at export (the dataset's own size unless asked otherwise), because the
U-Nets pad odd sizes in a way that depends on the size, and a graph that guessed wrong
would be silently off at the border.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core import checkpoints, data, fileio, models

FORMATS = ("onnx",)
OUTPUTS = {
    "classification": "logits, N x {classes} (softmax gives the class probabilities)",
    "denoising": "the denoised images, N x {channels} x H x W floats in [0, 1]",
    "colorization": "RGB images, N x 3 x H x W floats in [0, 1]",
}


class ExportError(RuntimeError):
    """An export that cannot be done here; the message says why and what to do."""


@dataclass(frozen=True)
class ModelInput:
    """What an exported model takes and gives back."""

    channels: int
    height: int
    width: int
    output: str

    def describe(self) -> str:
        return (f"input 'images': N x {self.channels} x {self.height} x {self.width} float32 in [0, 1] "
                f"(normalisation is inside the model); output: {self.output}")


def model_input(model: nn.Module, meta: dict[str, Any], height: int | None = None,
                width: int | None = None) -> ModelInput:
    """The input a checkpoint's model takes: its channels, and the dataset's size unless given."""
    channels = models.input_channels(model)
    spec = data.DATASETS.get(meta.get("dataset", ""))
    default = spec.size if spec else 32
    height, width = height or default, width or default
    if meta["task"] == "classification" and (height, width) != (default, default):
        raise ExportError(f"A classifier takes {default} x {default} images; export it at that size.")
    if not (8 <= height <= 4096 and 8 <= width <= 4096):
        raise ExportError(f"Height and width must be between 8 and 4096 pixels, not {height} x {width}.")
    classes = len(meta.get("classes") or (spec.classes if spec else ())) or "classes"
    output = OUTPUTS.get(meta["task"], "N x ... floats").format(classes=classes, channels=channels)
    return ModelInput(channels, height, width, output)


def export_onnx(name_or_path: str | Path, out: str | Path, *, height: int | None = None,
                width: int | None = None) -> ModelInput:
    """Write a checkpoint's model as ONNX (opset 18, dynamic batch) to ``out``, atomically."""
    model, meta = checkpoints.load(name_or_path)
    spec = model_input(model, meta, height, width)
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it; a clear message beats its ImportError)
    except ImportError:
        raise ExportError("ONNX export needs the onnx and onnxscript packages: "
                          "pip install -r requirements.txt") from None
    example = torch.rand(2, spec.channels, spec.height, spec.width)
    out = Path(out)
    staging = fileio.temp_path(out)
    try:
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():  # the exporter narrates every step
            program = torch.onnx.export(model.eval(), (example,), input_names=["images"], output_names=["output"],
                                        dynamic_shapes=({0: "batch"},), dynamo=True, opset_version=18)
        program.save(str(staging))
        staging.replace(out)
    except Exception as error:
        staging.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise ExportError(f"Could not write {out}: {error}") from None
        raise ExportError(f"{meta['name']} could not be exported to ONNX: {str(error).splitlines()[0]}") from error
    return spec


def onnx_bytes(name_or_path: str | Path, *, height: int | None = None, width: int | None = None) -> bytes:
    """A checkpoint's ONNX export as bytes, for a download button."""
    with tempfile.TemporaryDirectory(prefix="cifar-lab-onnx-") as folder:
        target = Path(folder) / "model.onnx"
        export_onnx(name_or_path, target, height=height, width=width)
        return target.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.export", description="Export a CIFAR Lab checkpoint.")
    parser.add_argument("name", help="a checkpoint's name (see the app's model lists) or its .safetensors path")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--out", required=True, help="the file to write")
    parser.add_argument("--height", type=int, help="image height the graph takes (default: the dataset's)")
    parser.add_argument("--width", type=int, help="image width the graph takes (default: the dataset's)")
    args = parser.parse_args(argv)
    try:
        spec = export_onnx(args.name, args.out, height=args.height, width=args.width)
    except (ExportError, checkpoints.CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {spec.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
