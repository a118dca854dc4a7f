"""Every shipped number is traceable: each metric names the bench/ command that measured it, and the README's
results tables say what the sidecars hold."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from core import noise

REPO = Path(__file__).resolve().parent.parent
SIDECARS = {path.stem: json.loads(path.read_text()) for path in sorted((REPO / "checkpoints").glob("*.json"))}
PER_NOISE = re.compile(rf"^(test_psnr_dataset|test_psnr|test_ssim|ms_per_image)_({'|'.join(noise.KINDS)})([0-9.]+)$")
# Which benchmark owns which sidecar keys: a key no benchmark writes has no business in a shipped sidecar.
OWNERS = {
    "bench/classify.py": re.compile(r"^(test_accuracy|test_accuracy_tta|latency_ms|latency_with_saliency_ms|"
                                    r"throughput_batch256)$"),
    "bench/denoise.py": PER_NOISE,
    "bench/colorize.py": re.compile(r"^(test_psnr_dataset|test_ssim|test_ciede2000|test_colorfulness|"
                                    r"test_colorfulness_share|test_classifier_accuracy|test_accuracy_recovered|"
                                    r"ms_per_image|(test|photos)_psnr_dataset_hints[0-9]+)$"),
    "bench/unsure.py": re.compile(r"^test_unsure_below(_tta)?$"),
}


def script_of(command: str) -> str:
    words = shlex.split(command)
    assert words[0] == "python" and words[1].startswith("bench/"), f"not a benchmark command: {command!r}"
    assert (REPO / words[1]).is_file(), f"{words[1]} does not exist"
    return words[1]


@pytest.mark.parametrize("name", sorted(SIDECARS))
def test_every_metric_names_the_benchmark_command_that_measured_it(name: str) -> None:
    meta = SIDECARS[name]
    assert isinstance(meta["measured_by"], dict) and set(meta["measured_by"]) == set(meta["metrics"]), \
        "every metric, and only metrics, must carry its command"
    for key, command in meta["measured_by"].items():
        script = script_of(command)
        assert OWNERS[script].match(key), f"{key} is not one of {script}'s numbers"
    for section in ("probes", "robustness"):
        if section in meta:
            script_of(meta[section]["measured_by"])


def readme_table(headers: str) -> list[dict[str, str]]:
    """The README table whose header row starts with ``headers`` ("a | b"), as dicts by header."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {headers} |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)))
    return rows


def agrees(cell: str, value: float, decimals: int) -> bool:
    """Whether a README cell shows ``value`` at ``decimals`` places: sidecars keep 3 or 4 decimals and the
    benchmarks print from the unrounded number, so a value on a rounding edge may go either way."""
    return abs(float(cell) - value) <= 0.5 * 10**-decimals + 6e-4


def shipped_rows(rows: list[dict[str, str]], column: str) -> list[tuple[dict[str, str], dict]]:
    found = [(row, SIDECARS[row[column]]["metrics"]) for row in rows if row[column] in SIDECARS]
    assert found, f"no shipped checkpoint in the table's {column} column"
    return found


def test_the_classification_table_is_what_the_sidecars_hold() -> None:
    table = readme_table("checkpoint | architecture | parameters | test accuracy")
    for row, metrics in shipped_rows(table, "checkpoint"):
        assert row["test accuracy"] == f"{metrics['test_accuracy']:.2%}"
        assert row["with TTA"] == f"{metrics['test_accuracy_tta']:.2%}"
        assert row["latency, 1 image"] == f"{metrics['latency_ms']:.1f} ms"
        assert row["with saliency"] == f"{metrics['latency_with_saliency_ms']:.1f} ms"
        assert row["throughput (batch 256)"] == f"{metrics['throughput_batch256']} img/s"


def test_the_unsure_table_is_what_the_sidecars_hold() -> None:
    table = readme_table("checkpoint | prediction | threshold")
    for row, metrics in shipped_rows(table, "checkpoint"):
        key = "test_unsure_below_tta" if row["prediction"] == "with TTA" else "test_unsure_below"
        assert row["threshold"] == f"{metrics[key]:.3f}"
        assert row["CIFAR-10 test images below it"] == "5.0%"  # the threshold's definition


def test_the_denoising_table_is_what_the_sidecars_hold() -> None:
    checked = 0
    for row, metrics in shipped_rows(readme_table("dataset | noise | method"), "method"):
        settings = {}
        for key in metrics:
            match = PER_NOISE.match(key)
            if match:
                settings[noise.NoiseSpec(match[2], float(match[3])).label()] = f"{match[2]}{match[3]}"
        suffix = settings[row["noise"]]
        assert agrees(row["PSNR, mean per image (dB)"], metrics[f"test_psnr_{suffix}"], 2), (row, suffix)
        assert agrees(row["PSNR of the MSE (dB)"], metrics[f"test_psnr_dataset_{suffix}"], 2), (row, suffix)
        assert agrees(row["SSIM"], metrics[f"test_ssim_{suffix}"], 4), (row, suffix)
        checked += 1
    assert checked >= 15  # every learned denoiser at every setting it is listed for


def test_the_colorization_table_is_what_the_sidecars_hold() -> None:
    for row, metrics in shipped_rows(readme_table("method | PSNR of the MSE (dB) | SSIM | CIEDE2000"), "method"):
        assert row["PSNR of the MSE (dB)"] == f"{metrics['test_psnr_dataset']:.2f}"
        assert row["SSIM"] == f"{metrics['test_ssim']:.4f}"
        assert row["CIEDE2000"] == f"{metrics['test_ciede2000']:.2f}"
        assert row["classifier accuracy"] == f"{metrics['test_classifier_accuracy']:.2%}"
        assert row["accuracy lost to grey, won back"] == f"{metrics['test_accuracy_recovered']:.0%}"


def test_the_hint_table_is_what_the_sidecars_hold() -> None:
    rows = readme_table("hints | interpolation (IDW over the true luma)")
    names = [name for name in rows[0] if name in SIDECARS]
    assert "unet-colorizer-hint-refiner" in names
    for row in rows:
        count = int(row["hints"])
        for name in names:
            metrics = SIDECARS[name]["metrics"]
            key = "test_psnr_dataset" if count == 0 else f"test_psnr_dataset_hints{count}"
            assert agrees(row[name], metrics[key], 2), (name, count)


def test_the_recognition_table_is_what_the_sidecars_hold() -> None:
    columns = {"Gaussian σ 25": ("gaussian", 25.0), "Gaussian σ 50": ("gaussian", 50.0),
               "salt and pepper 0.07 (whole pixels)": ("salt_pepper", 0.07),
               "salt and pepper 0.07 (per channel)": ("salt_pepper_channels", 0.07)}
    for row in readme_table("classifier | clean"):
        curves = SIDECARS[row["classifier"]]["robustness"]["curves"]
        assert row["clean"] == f"{curves['gaussian'][0]['noisy']:.1%}"
        for column, (kind, level) in columns.items():
            point = next(p for p in curves[kind] if p["level"] == level)
            assert row[column] == f"{point['noisy']:.1%} / {point['denoised']:.1%}", (row["classifier"], column)
