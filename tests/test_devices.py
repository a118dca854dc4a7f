"""core.devices: CPU fallback, AMP choice and thread settings."""

from __future__ import annotations

import os

import pytest
import torch

from core import devices


def test_picks_cpu_without_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.pick_device().type == "cpu"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert devices.amp_dtype(torch.device("cpu")) is None  # emulated bf16 is slower than fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert devices.amp_dtype(torch.device("cpu")) is torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)  # AMD Zen 4
    assert devices.amp_dtype(torch.device("cpu")) is torch.bfloat16
    assert devices.describe(torch.device("cpu")).startswith("CPU")


def test_prefers_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert devices.amp_dtype(torch.device("cuda")) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert devices.amp_dtype(torch.device("cuda")) is torch.float16


def test_unavailable_preference_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        devices.pick_device("cuda")
    assert devices.pick_device("cpu").type == "cpu"


def test_configure_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        assert devices.configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two runs side by side on two cores: one thread each
        assert devices.configure_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "lots")
        assert devices.configure_threads() == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
