"""Bounded per-visitor memory: a small LRU of results, stored as 8-bit images.

A public demo keeps what it computed for a visitor while their session lives, so that moving
an unrelated slider does not run a model again. Kept as float32 at full resolution, one
4-megapixel result takes 48 MB; 16 of them per visitor took 770 MB. ``ResultCache`` holds
at most a few entries and stores every float image in [0, 1] as uint8 (4x smaller, and
exactly what the page shows and offers to download: ``images.to_pil`` rounds to 8 bits too).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image


def digest(payload: bytes) -> str:
    """The SHA-1 of ``payload`` in hex: the key of an upload, whatever its file name."""
    return hashlib.sha1(payload, usedforsecurity=False).hexdigest()


@dataclasses.dataclass(frozen=True)
class _Quantized:
    """A float image in [0, 1] kept as uint8; ``numpy`` says which kind to give back."""

    data: torch.Tensor
    numpy: bool


def quantize(value: Any) -> Any:
    """``value`` with every floating tensor or array (assumed in [0, 1]) replaced by an 8-bit copy.

    Looks inside dataclasses, lists, tuples and dicts; everything else is kept as it is.
    """
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return _Quantized((value.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8), numpy=False)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return _Quantized(torch.from_numpy((np.clip(value, 0, 1) * 255 + 0.5).astype(np.uint8)), numpy=True)
    return _map(value, quantize)


def dequantize(value: Any) -> Any:
    """The inverse of ``quantize``, up to 8-bit rounding: float32 in [0, 1] again."""
    if isinstance(value, _Quantized):
        restored = value.data.float().div_(255)
        return restored.numpy() if value.numpy else restored
    return _map(value, dequantize)


def _map(value: Any, fn: Callable[[Any], Any]) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: fn(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, (list, tuple)):
        return type(value)(fn(item) for item in value)
    if isinstance(value, dict):
        return {key: fn(item) for key, item in value.items()}
    return value


def nbytes(value: Any) -> int:
    """Bytes held by the images in ``value`` (tensors, arrays and PIL images, also inside containers)."""
    if isinstance(value, _Quantized):
        return nbytes(value.data)
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, Image.Image):
        return value.width * value.height * len(value.getbands())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return sum(nbytes(item) for item in value)
    if isinstance(value, dict):
        return sum(nbytes(item) for item in value.values())
    return 0


class ResultCache:
    """At most ``max_entries`` results (and, if given, about ``max_bytes`` of images), least recently
    used evicted first. Float images are stored as uint8 and given back as float32.

    The newest entry is always kept, even alone over ``max_bytes``: the page is showing it.
    """

    def __init__(self, max_entries: int = 4, max_bytes: int | None = None) -> None:
        if max_entries < 1:
            raise ValueError("A cache needs room for at least one entry.")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()  # key -> (stored value, its bytes)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.keys())

    def keys(self) -> list[Hashable]:
        """Keys from the least to the most recently used."""
        return list(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of image data held now."""
        return sum(size for _, size in self._entries.values())

    def stored(self, key: Hashable) -> Any:
        """The value as kept (quantized), without touching its recency: for tests and memory reports."""
        return self._entries[key][0]

    def get(self, key: Hashable) -> Any | None:
        """The value under ``key`` (float images restored), now the most recently used; None if absent."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return dequantize(self._entries[key][0])

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` as the most recently used, evicting the least recently used."""
        stored = quantize(value)
        self._entries[key] = (stored, nbytes(stored))
        self._entries.move_to_end(key)
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or (
                self.max_bytes is not None and self.nbytes > self.max_bytes)):
            self._entries.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value, or ``compute()``'s, kept (quantized) for next time and returned as computed."""
        found = self.get(key)
        if found is not None:
            return found
        value = compute()
        self.put(key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
