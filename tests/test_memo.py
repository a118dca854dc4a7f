"""core.memo: the bounded per-visitor result cache and the upload key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from core import memo
from core.denoise import Denoised


@dataclass
class Result:
    image: torch.Tensor
    score: float


def test_digest_is_the_sha1_of_the_bytes() -> None:
    assert memo.digest(b"abc") == hashlib.sha1(b"abc").hexdigest()
    assert memo.digest(b"abc") != memo.digest(b"abd")


def test_float_images_are_stored_as_uint8_and_given_back_as_float() -> None:
    cache = memo.ResultCache(max_entries=2)
    image = torch.rand(3, 20, 30)
    cache.put("a", Result(image, 1.5))
    stored = cache.stored("a")
    assert stored.image.data.dtype == torch.uint8 and stored.score == 1.5
    back = cache.get("a")
    assert back.image.dtype == torch.float32 and back.image.shape == (3, 20, 30)
    assert (back.image - image).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit rounding, nothing worse
    assert cache.nbytes == 3 * 20 * 30


def test_arrays_lists_and_pil_images_are_kept() -> None:
    cache = memo.ResultCache(max_entries=3)
    cache.put("array", np.full((4, 4), 0.5, dtype=np.float32))
    cache.put("list", [torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    picture = Image.new("RGB", (5, 4), (1, 2, 3))
    cache.put("picture", picture)
    array = cache.get("array")
    assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array[0, 0] == pytest.approx(128 / 255)
    assert [t.tolist() for t in cache.get("list")] == [[[[0.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]]
    assert cache.get("picture") is picture  # already 8-bit: kept as it is
    assert cache.nbytes == 16 + 8 + 5 * 4 * 3


def test_size_is_bounded_and_the_least_recently_used_goes_first() -> None:
    cache = memo.ResultCache(max_entries=3)
    for key in "abc":
        cache.put(key, torch.zeros(1, 2, 2))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("d", torch.zeros(1, 2, 2))
    assert cache.keys() == ["c", "a", "d"] and "b" not in cache and cache.get("b") is None
    cache.put("c", torch.ones(1, 2, 2))  # replacing a key refreshes it too
    cache.put("e", torch.zeros(1, 2, 2))
    assert cache.keys() == ["d", "c", "e"] and len(cache) == 3


def test_get_or_compute_computes_once() -> None:
    cache = memo.ResultCache()
    calls = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return torch.full((1, 2, 2), 0.25)

    first = cache.get_or_compute(("image", 25.0), compute)
    second = cache.get_or_compute(("image", 25.0), compute)
    assert len(calls) == 1 and torch.allclose(first, second, atol=1 / 255)


def test_a_byte_budget_evicts_but_keeps_the_newest() -> None:
    cache = memo.ResultCache(max_entries=10, max_bytes=100)
    cache.put("a", torch.zeros(60, dtype=torch.uint8))
    cache.put("b", torch.zeros(60, dtype=torch.uint8))
    assert cache.keys() == ["b"]
    cache.put("huge", torch.zeros(500, dtype=torch.uint8))  # alone over budget, but the page is showing it
    assert cache.keys() == ["huge"]


def test_cache_memory_for_four_megapixel_results_stays_bounded() -> None:
    """Sixteen float32 results of 4 megapixels took 770 MB per visitor; now at most entries x H x W x 3 bytes."""
    height, width, entries = 2000, 2000, 4
    cache = memo.ResultCache(max_entries=entries)
    for setting in range(6):
        result = Denoised("model", "Model", torch.rand(3, height, width), seconds=0.1, psnr=30.0, ssim=0.9)
        cache.put(("upload-sha1", setting), result)
        assert cache.nbytes <= entries * height * width * 3
    assert len(cache) == entries and cache.nbytes == entries * height * width * 3
    assert all(cache.stored(key).image.data.dtype == torch.uint8 for key in cache)


def test_at_least_one_entry() -> None:
    with pytest.raises(ValueError):
        memo.ResultCache(max_entries=0)
