"""How a checkpoint, a training run and their measurements read to a person: table rows, metrics in words.

Sidecars hold raw keys (``test_psnr_gaussian25``); this is the one place that turns them into
"Gaussian σ=25: 28.60 dB" for the Home table and the model pickers.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from core import checkpoints, data, noise


def summary_row(meta: dict[str, Any]) -> dict[str, Any]:
    """One checkpoint as a flat row for tables: name, task, architecture, data, metrics, size."""
    order = list(METRIC_FORMATS)
    keys = sorted(meta["metrics"], key=lambda k: (order.index(k) if k in order else len(order), k))
    shown = [format_metric(key, meta["metrics"][key]) for key in keys]
    metrics = ", ".join(text for text in shown if text)
    return {
        "name": meta["name"],
        "task": meta["task"],
        "architecture": meta["architecture"],
        "dataset": meta["dataset"],
        "test metrics": metrics or "not measured",
        "parameters": f"{meta['num_params'] / 1e6:.2f}M",
        "shipped": checkpoints.is_shipped(meta["path"]),
    }


METRIC_FORMATS = {  # sidecar key -> how a person reads it; keys mapped to None are left out of summaries
    "test_accuracy": "accuracy {:.2%}",
    "test_accuracy_tta": "with TTA {:.2%}",
    "test_psnr": "PSNR {:.2f} dB",
    "test_psnr_dataset": "PSNR (set) {:.2f} dB",
    "latency_ms": "{:.1f} ms per image",
    "latency_with_saliency_ms": None,
    "test_colorfulness_share": "colourfulness {:.0%} of the originals'",
    "test_ssim": None,
    "test_ciede2000": None,
    "test_colorfulness": None,
    "test_classifier_accuracy": None,
    "test_accuracy_recovered": None,
    "ms_per_image": None,
    "throughput_batch256": None,
    "test_unsure_below": None,
    "test_unsure_below_tta": None,
}


# bench/denoise.py's per-setting keys, e.g. test_psnr_gaussian25 or test_ssim_salt_pepper0.07
_PER_NOISE = re.compile(rf"^(?P<metric>test_psnr_dataset|test_psnr|test_ssim|ms_per_image)_"
                        rf"(?P<kind>{'|'.join(noise.KINDS)})(?P<level>[0-9.]+)$")
# bench/colorize.py --hints: test_psnr_dataset_hints10 (CIFAR-10), photos_psnr_dataset_hints20 (photos)
_PER_HINTS = re.compile(r"^(?P<where>test|photos)_psnr_dataset_hints(?P<count>[0-9]+)$")


def format_metric(key: str, value: Any) -> str:
    """One sidecar metric in words; "" for those too fine for a summary."""
    per_noise = _PER_NOISE.match(key)
    if per_noise:  # a summary keeps the per-image PSNR of each setting; SSIM, set PSNR and timings are too fine
        if per_noise["metric"] != "test_psnr":
            return ""
        return f"{noise.NoiseSpec(per_noise['kind'], float(per_noise['level'])).label()}: {value:.2f} dB"
    per_hints = _PER_HINTS.match(key)
    if per_hints:  # the headline already is the no-hint figure; one more row says what hints add
        count = int(per_hints["count"])
        return f"with {count} hints: {value:.2f} dB" if per_hints["where"] == "test" and count == 10 else ""
    if key in METRIC_FORMATS:
        template = METRIC_FORMATS[key]
        return template.format(value) if template else ""
    return f"{key.removeprefix('test_')} {value:.4g}" if isinstance(value, float) else f"{key} {value}"


METRIC_LABELS = {"accuracy": "accuracy", "psnr": "PSNR (dB)", "psnr_dataset": "PSNR of the set's MSE (dB)"}


def metric_title(metric: str) -> str:
    """A headline metric's label to head a chart or a tile: capitalised, its acronyms kept."""
    label = METRIC_LABELS[metric]
    return label[:1].upper() + label[1:]


def metric_name(metric: str) -> str:
    """A headline metric's name without its unit, for a sentence or a tile ("PSNR of the set's MSE")."""
    return METRIC_LABELS[metric].removesuffix(" (dB)")


def format_headline(metric: str, value: float | None) -> str:
    """A headline metric's value as a person reads it (91.20%, 23.62 dB); a dash until there is one."""
    if value is None:
        return "–"
    return f"{value:.2%}" if metric == "accuracy" else f"{value:.2f} dB"


def headline_metric(task: str) -> str:
    """The metric a task's runs are judged by (validation and test), as the trainer names it."""
    return {"classification": "accuracy", "denoising": "psnr", "colorization": "psnr_dataset"}[task]


def format_duration(seconds: float | None) -> str:
    """Elapsed time as a clock reads it (4:05, 1:02:03); a dash when unknown."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def checkpoint_label(meta: dict[str, Any]) -> str:
    """How a checkpoint reads in a selector: name, headline metrics, size, origin."""
    row = summary_row(meta)
    origin = "" if row["shipped"] else " · trained here"
    return f"{meta['name']} ({row['test metrics']}, {row['parameters']} parameters{origin})"


def result_file_name(caption: str, suffix: str) -> str:
    """A safe PNG file name for a page's result: the image's caption ("test image #3: cat", "photo.jpg"),
    shortened, without its extension or characters file systems refuse, then ``suffix``."""
    stem = Path(caption).stem.replace(" ", "_").replace("#", "").replace(":", "")[:40] or "image"
    return f"{stem}-{suffix}.png"


def run_row(run: dict[str, Any]) -> dict[str, Any]:
    """One recorded training run (``core.train.runs.RunStore``'s form) as a row of the Train page's table;
    its test result is the task's headline metric, as the run's tiles show it, or empty if it has none."""
    config = run["config"]
    metric = headline_metric(run["task"])
    test = run["test_metrics"].get(f"test_{metric}")
    return {
        "id": run["id"], "name": run["name"], "task": run["task"], "architecture": run["arch"],
        "dataset": data.title(run["dataset"]), "status": run["status"], "epochs": len(run["epochs"]),
        "planned": config.get("epochs"), "batch": config.get("batch_size"), "optimizer": config.get("optimizer"),
        # Six digits: a rate scaled for the batch (1.465e-3 x 1000) reads 1.465, not 1.4649999999999999.
        "lr": None if config.get("lr") is None else float(f"{config['lr']:.6g}"),
        "train images": config.get("subset") or "all",
        "test": "" if test is None else f"{metric_name(metric)} {format_headline(metric, test)}",
        "duration": format_duration(run["seconds"]),
        "started": datetime.fromtimestamp(run["started"]).strftime("%Y-%m-%d %H:%M"),
    }


def run_progress(snapshot: dict[str, Any]) -> tuple[float, str]:
    """A run's progress bar (``Job.snapshot()``'s form): the share of its steps done, and the line under it
    ("Epoch 2 of 6 · step 40 of 270 · elapsed 0:12 · ETA 1:03")."""
    planned = snapshot["config"]["epochs"]
    step, total = snapshot["step"], snapshot["total_steps"]
    fraction = min(step / total, 1.0) if total else 0.0
    return fraction, (f"Epoch {min(snapshot['epoch'] + 1, planned)} of {planned} · step {step} of {total} · "
                      f"elapsed {format_duration(snapshot['elapsed'])} · ETA {format_duration(snapshot['eta'])}")


def run_summary(snapshot: dict[str, Any]) -> str:
    """What a run trains, as Markdown: "`fastnet` on CIFAR-10, 6 epochs, device: CPU (2 threads)"."""
    config = snapshot["config"]
    return (f"`{config['arch']}` on {data.title(config['dataset'])}, {config['epochs']} epochs, "
            f"device: {snapshot['device'] or '…'}")
