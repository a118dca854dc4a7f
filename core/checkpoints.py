"""Checkpoints: weights in safetensors, metadata in a JSON sidecar of the same name.

Only safetensors are ever read, so loading a checkpoint can never run code (a
pickle can). Writes go to a temporary file in the same folder and are renamed into
place, weights first and sidecar last: a crash or a full disk leaves the previous
checkpoint whole, and a listed sidecar always has its weights.

Shipped checkpoints live in the repository's ``checkpoints/``; those trained by
users go to the app's data folder. ``list_checkpoints`` lists both.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from core import data, models, paths
from core.fileio import atomic_write_bytes, temp_path, write_synced

REQUIRED_FIELDS = ("name", "task", "architecture", "arch_args", "dataset", "metrics",
                   "measured_by", "recipe", "num_params", "created")
# Prefixes that DistributedDataParallel and torch.compile add to parameter names.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
RESUME_SUFFIX = ".resume.safetensors"  # beside a checkpoint: the trainer's state for resuming, not a model


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Problem:
    """A file in a checkpoint folder that was skipped, and why (shown on the Home page)."""

    path: Path
    message: str


def checkpoint_dirs() -> list[Path]:
    """Folders searched for checkpoints: the shipped ones first, then the user's."""
    return [paths.SHIPPED_CHECKPOINTS, paths.user_checkpoints()]


def count_parameters(model: nn.Module) -> int:
    """Every parameter of ``model``, trainable or frozen, as a sidecar's ``num_params`` counts them."""
    return sum(p.numel() for p in model.parameters())


def state_dict_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors, unwrapped from DDP / torch.compile, contiguous and on the CPU."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    model = getattr(model, "_orig_mod", model)
    return {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}


def save(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``path``.safetensors and ``path``.json atomically; returns the full sidecar.

    ``meta`` must hold name, task, architecture, arch_args, dataset; metrics,
    measured_by (metric -> the command that measured it) and recipe default to empty.
    num_params and created are filled in.
    """
    weights_path = Path(path).with_suffix(".safetensors")
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {"metrics": {}, "measured_by": {}, "recipe": {}, **meta}
    sidecar["num_params"] = count_parameters(model)
    sidecar.setdefault("created", datetime.now(UTC).isoformat(timespec="seconds"))
    missing = [name for name in REQUIRED_FIELDS if name not in sidecar]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {', '.join(missing)}")
    payload = json.dumps(sidecar, indent=2, sort_keys=True, default=_json_default).encode()

    # Both files are written in full before either is renamed into place: a full disk or a
    # read-only folder fails here and leaves the previous pair untouched.
    weights_tmp, sidecar_tmp = temp_path(weights_path), None
    try:
        save_file(state_dict_for_saving(model), str(weights_tmp), metadata={"architecture": sidecar["architecture"]})
        sidecar_tmp = temp_path(weights_path.with_suffix(".json"))
        write_synced(sidecar_tmp, payload)
        os.replace(weights_tmp, weights_path)
        os.replace(sidecar_tmp, weights_path.with_suffix(".json"))
    finally:
        weights_tmp.unlink(missing_ok=True)
        if sidecar_tmp is not None:
            sidecar_tmp.unlink(missing_ok=True)
    return sidecar


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def update_metadata(name_or_path: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into a checkpoint's sidecar (atomically); ``metrics`` and ``measured_by`` key by key."""
    weights = resolve(name_or_path)
    sidecar = weights.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    for key, value in fields.items():
        merged = key in ("metrics", "measured_by") and isinstance(meta.get(key), dict)
        meta[key] = {**meta[key], **value} if merged else value
    atomic_write_bytes(sidecar, json.dumps(meta, indent=2, sort_keys=True, default=_json_default).encode())
    return meta


def record_measurements(measured: dict[str, dict[str, Any]], command: str) -> None:
    """Store a benchmark's numbers (path -> metrics) in the sidecars of the shipped checkpoints among them,
    each metric with ``command``: a sidecar says which command measured every number it holds."""
    for path, metrics in measured.items():
        if is_shipped(path):
            update_metadata(path, metrics=metrics, measured_by=dict.fromkeys(metrics, command))


def is_shipped(path: str | Path) -> bool:
    """Whether a checkpoint file is one of the repository's shipped checkpoints (not trained here)."""
    return Path(path).parent == paths.SHIPPED_CHECKPOINTS


def is_plain_name(name: str) -> bool:
    """Whether ``name`` is a checkpoint's name (found in the checkpoint folders), not a path to a file."""
    return bool(name) and Path(name).name == name and not name.startswith(".") and "\\" not in name \
        and Path(name).suffix not in (".json", ".safetensors")


def class_names(meta: dict[str, Any]) -> list[str]:
    """A classifier's class names: its sidecar's own (a model trained on your images), else its dataset's."""
    if meta.get("classes"):
        return list(meta["classes"])
    spec = data.DATASETS.get(meta.get("dataset", ""))
    return list(spec.classes) if spec else [str(i) for i in range(int(meta.get("arch_args", {}).get("num_classes", 0)))]


def resolve(name_or_path: str | Path) -> Path:
    """The weights file for a checkpoint name (searched in checkpoint_dirs) or a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".json", ".safetensors") or candidate.parent != Path("."):
        weights = candidate.with_suffix(".safetensors")
        if weights.is_file():
            return weights
        raise CheckpointError(f"No checkpoint weights at {weights}.")
    for folder in checkpoint_dirs():
        weights = folder / f"{candidate.name}.safetensors"
        if weights.is_file():
            return weights
    raise CheckpointError(f"No checkpoint named {str(name_or_path)!r} in {', '.join(map(str, checkpoint_dirs()))}.")


def read_meta(weights_path: Path) -> dict[str, Any]:
    """Read and check a checkpoint's sidecar (not its weights)."""
    sidecar = weights_path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{weights_path.name} has no JSON sidecar ({sidecar.name}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{sidecar.name} is not valid JSON: {error}.") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{sidecar.name} does not hold a JSON object.")
    missing = [name for name in REQUIRED_FIELDS if name not in meta]
    if missing:
        raise CheckpointError(f"{sidecar.name} lacks the field(s) {', '.join(missing)}.")
    try:
        arch = models.get_architecture(meta["architecture"])
    except ValueError as error:
        raise CheckpointError(f"{sidecar.name}: {error}") from None
    if arch.task != meta["task"]:
        raise CheckpointError(f"{sidecar.name} says task {meta['task']!r}, but {arch.name} is a {arch.task} model.")
    if not isinstance(meta["arch_args"], dict):
        raise CheckpointError(f"{sidecar.name}: arch_args must be a JSON object.")
    return {**meta, "path": str(weights_path)}


def _read_weights(weights_path: Path) -> dict[str, torch.Tensor]:
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights_path.name} is not a readable safetensors file ({error}).") from None
    return {_unwrapped(key): value for key, value in tensors.items()}


def load(name_or_path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a checkpoint's model from its sidecar and load its weights.

    Returns ``(model, meta)`` with the model in eval mode on the CPU. Raises
    CheckpointError naming the file and the problem for anything unusable.
    """
    weights_path = resolve(name_or_path)
    meta = read_meta(weights_path)
    try:
        model = models.build(meta["architecture"], **_offline(meta["arch_args"]))
    except ValueError as error:
        raise CheckpointError(f"{weights_path.with_suffix('.json').name}: {error}") from None
    state = _read_weights(weights_path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0:3]
        raise CheckpointError(
            f"The weights in {weights_path.name} do not fit {meta['architecture']} with "
            f"{meta['arch_args']}: {' '.join(first)}"
        ) from None
    return model.eval(), meta


def _offline(arch_args: dict[str, Any]) -> dict[str, Any]:
    """``arch_args`` without a request for pretrained weights: a checkpoint brings its own, nothing is downloaded."""
    return {**arch_args, "pretrained": False} if arch_args.get("pretrained") else dict(arch_args)


def scan_checkpoints(task: str | None = None) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Usable checkpoint metas (optionally of one task) and the files that were skipped."""
    metas: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for folder in checkpoint_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.is_dir() or path.name.endswith(RESUME_SUFFIX):
                continue  # hidden temporaries, folders, and the trainer's resume state
            if path.suffix == ".safetensors":
                try:
                    meta = read_meta(path)
                    _check_fits(path, meta)
                except CheckpointError as error:
                    problems.append(Problem(path, str(error)))
                    continue
                if task is None or meta["task"] == task:
                    metas.append(meta)
            elif path.suffix in (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"):
                problems.append(Problem(path, f"{path.name} was ignored: only .safetensors checkpoints are "
                                              "loaded, because pickled files can run code when opened."))
            elif path.suffix == ".json" and not path.with_suffix(".safetensors").exists():
                problems.append(Problem(path, f"{path.name} has no weights file beside it."))
    return metas, problems


_FITS: dict[tuple[str, int, int], str | None] = {}  # (path, mtime, size) -> the problem, or None


def _check_fits(weights_path: Path, meta: dict[str, Any]) -> None:
    """The safetensors header parses and its tensor names and shapes are the architecture's.

    Reads only the header, and remembers the answer per file version, so listing stays cheap.
    """
    stat = weights_path.stat()
    key = (str(weights_path), stat.st_mtime_ns, stat.st_size)
    if key not in _FITS:
        _FITS[key] = _fit_problem(weights_path, meta)
    if _FITS[key]:
        raise CheckpointError(_FITS[key])


def _fit_problem(weights_path: Path, meta: dict[str, Any]) -> str | None:
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            names = handle.keys()
            shapes = {_unwrapped(name): tuple(handle.get_slice(name).get_shape()) for name in names}
    except (SafetensorError, OSError, ValueError) as error:
        return f"{weights_path.name} is not a readable safetensors file ({error})."
    try:
        model = models.build(meta["architecture"], **_offline(meta["arch_args"]))
    except (ValueError, TypeError) as error:
        return f"{weights_path.with_suffix('.json').name}: {error}"
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    missing, unexpected = sorted(expected.keys() - shapes.keys()), sorted(shapes.keys() - expected.keys())
    wrong = sorted(name for name in expected.keys() & shapes.keys() if expected[name] != shapes[name])
    if not (missing or unexpected or wrong):
        return None
    details = [f"{len(names)} {what} (e.g. {names[0]})" for what, names in
               (("missing tensors", missing), ("unexpected tensors", unexpected), ("tensors of the wrong shape",
                                                                                   wrong)) if names]
    return (f"The weights in {weights_path.name} do not fit {meta['architecture']} with {meta['arch_args']}: "
            f"{', '.join(details)}.")


def _unwrapped(name: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        name = name.removeprefix(prefix)
    return name


def list_checkpoints(task: str | None = None) -> list[dict[str, Any]]:
    """The metas of every usable checkpoint, shipped and user-trained, optionally of one task."""
    return scan_checkpoints(task)[0]


HEADLINE_METRICS = {"classification": "test_accuracy", "colorization": "test_psnr_dataset"}


def takes_hints(meta: dict[str, Any]) -> bool:
    """Whether a checkpoint's colorizer takes colour hints, read from its sidecar (nothing is loaded)."""
    return bool(meta["arch_args"].get("hints")) or models.get_architecture(meta["architecture"]).takes_hints


def best_first(metas: list[dict[str, Any]], prefer_dataset: str | None = None) -> list[dict[str, Any]]:
    """``metas`` ordered by their task's headline test metric, best first; unmeasured ones keep their order, last.

    A model selector then opens on the most accurate (or most faithful) checkpoint rather than the
    alphabetically first one. With ``prefer_dataset``, that dataset's checkpoints come first: an
    MNIST classifier scores 99% on digits, but it must not become the default for visitors' photos.
    Colorizers that take hints come after those that need none: a page opening on one would show an
    empty hint board above the result, for a model slower and no better on photos without hints.
    """
    def rank(meta: dict[str, Any]) -> tuple[bool, bool, float]:
        value = meta["metrics"].get(HEADLINE_METRICS.get(meta["task"], ""))
        score = -float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf
        hinted = meta["task"] == "colorization" and "architecture" in meta and takes_hints(meta)
        return prefer_dataset is not None and meta.get("dataset") != prefer_dataset, hinted, score
    return sorted(metas, key=rank)


def best_classifier_of(dataset: str) -> dict[str, Any] | None:
    """The installed classifier of ``dataset``'s classes measured best (``best_first``), or None: the judge
    that says what a picture shows (a photo is judged as a CIFAR-10 image, the classes photos can show)."""
    return next(iter(best_first([m for m in list_checkpoints("classification") if m["dataset"] == dataset])), None)
