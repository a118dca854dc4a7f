"""Pick the compute device and the settings that go with it."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA, then Apple's MPS, then the CPU; ``preferred`` ("cpu", "cuda:1", ...) wins if usable."""
    if preferred:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"Device {preferred!r} was asked for, but CUDA is not available here.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"Device {preferred!r} was asked for, but MPS is not available here.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype worth using on ``device``, or None for full precision.

    bf16 on CUDA where the GPU supports it (no loss scaling needed), fp16 on older
    GPUs. On a CPU with native bf16 arithmetic (AMX tiles on Intel Xeon since Sapphire
    Rapids, or AVX512-BF16 on AMD Zen 4 and Intel Cooper Lake) bf16 convolutions run
    in hardware: measured on a 2-core AMD EPYC with AVX512-BF16, 1.8x faster training
    steps for the U-Net, 1.5x for the fast net, 2.4x faster U-Net inference. On other
    CPUs bf16 is emulated and slower than fp32, so autocast stays off there.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AMX tiles or AVX512-BF16), which makes bf16 fast."""
    # torch's probes are private, so guarded: absent means no.
    probes = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(bool(probe and probe()) for probe in probes)


def configure_threads(num_threads: int | None = None) -> int:
    """Use every core for intra-op work (torch defaults to physical cores only), unless
    ``OMP_NUM_THREADS`` asks for fewer: two runs side by side must not fight over the cores."""
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    count = num_threads or (int(requested) if requested.isdigit() and int(requested) > 0 else 0) \
        or os.cpu_count() or 1
    torch.set_num_threads(count)
    return count


def describe(device: torch.device | None = None) -> str:
    """A one-line, human description of the device, for the UI and logs."""
    device = device or pick_device()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"CUDA GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def cpu_model() -> str:
    """The CPU's model name and core count, for benchmark reports (machines here differ 2x in speed)."""
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {os.cpu_count()} cores"
