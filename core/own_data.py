"""Your own images: a folder of class subfolders (ImageFolder layout), from disk, uploads or a zip.

``read_image_folder`` turns ``PATH/<class>/<image>`` (or ``PATH/train/<class>`` with a
``PATH/test/<class>`` beside it) into uint8 tensors through the same decoder and the same
square crop the Classify page applies to an upload, so a model trains on exactly what it will
see. Unreadable files are skipped and reported by name. ``write_classes`` and ``extract_zip``
build such a folder from a browser's uploads, refusing anything that could hurt the server
(path traversal, zip bombs, too many files) with a message a person can act on.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from core import data, images
from core.classify import InputFormat, model_input

MIN_CLASSES, MAX_CLASSES = 2, 10  # what the Train page offers
MIN_PER_CLASS = 5  # the page's minimum; the command line takes any non-empty class
UPLOAD_FOLDER = "your-images"  # a run's uploaded classes, inside the run's own folder
# Hard limits for anything a browser sends, capped server or not: beyond them a "dataset" is an attack
# or a mistake. A capped server lowers them (ServerLimits: CIFAR_LAB_MAX_UPLOAD_FILES, _MB).
MAX_FILES = 5_000
MAX_TOTAL_MB = 500.0
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per member: images barely compress, bombs compress 1000x
_UNSAFE_NAME = re.compile(r"[\x00-\x1f/\\:*?\"<>|]")


class OwnDataError(ValueError):
    """Images that cannot be trained on; the message says what to change."""


@dataclass
class FolderSplit:
    """One split of an image folder, decoded to the model's input form."""

    images: torch.Tensor  # uint8 N x C x H x W
    labels: torch.Tensor  # int64 N
    classes: list[str]
    skipped: list[str] = field(default_factory=list)  # "class/file: why" for each file that could not be read

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        return {name: int((self.labels == i).sum()) for i, name in enumerate(self.classes)}


def is_image_folder(dataset: str) -> bool:
    """Whether ``dataset`` names a folder (the command line's ``--dataset PATH``) rather than a known dataset."""
    return dataset not in data.DATASETS and Path(dataset).expanduser().is_dir()


def split_folders(root: str | os.PathLike[str]) -> tuple[Path, Path | None]:
    """(training folder, test folder or None): ``root/train`` and ``root/test`` when both hold class folders."""
    root = Path(root).expanduser()
    train, test = root / "train", root / "test"
    if _class_dirs(train) and _class_dirs(test):
        return train, test
    return root, None


def _class_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def read_image_folder(folder: str | os.PathLike[str], fmt: InputFormat | None = None,
                      classes: Sequence[str] | None = None) -> FolderSplit:
    """Decode every image under ``folder/<class>/`` to ``fmt`` (centre-cropped square, resized).

    ``classes`` fixes the class order (a test split must use the training split's); by default the
    subfolders, sorted. Files that are not images, or are damaged, are skipped and listed.
    """
    folder, fmt = Path(folder).expanduser(), fmt or InputFormat()
    if not folder.is_dir():
        raise OwnDataError(f"{folder} is not a folder.")
    found = {p.name: p for p in _class_dirs(folder)}
    names = list(classes) if classes is not None else sorted(found)
    if classes is None and len(names) < MIN_CLASSES:
        raise OwnDataError(f"{folder} needs at least {MIN_CLASSES} class folders (one per class, holding its "
                           f"images); it has {len(names)}.")
    files = [(label, path) for label, name in enumerate(names) if name in found
             for path in sorted(found[name].rglob("*")) if path.is_file() and not path.name.startswith(".")]
    decoded, labels, skipped = [], [], []
    for label, path in files:
        where = f"{names[label]}/{path.relative_to(found[names[label]])}"
        try:
            image = images.load_image(path.read_bytes())
        except (images.ImageError, OSError) as error:
            skipped.append(f"{where}: {error}")
            continue
        array = np.asarray(model_input(image, fmt), dtype=np.uint8)
        decoded.append(torch.from_numpy(array.reshape(fmt.size, fmt.size, fmt.channels).copy()).permute(2, 0, 1))
        labels.append(label)
    if not decoded:
        raise OwnDataError(f"No readable image in the class folders of {folder} ({len(skipped)} files skipped). "
                           f"Use {images.SUPPORTED} files.")
    split = FolderSplit(torch.stack(decoded), torch.tensor(labels, dtype=torch.int64), names, skipped)
    if classes is None:
        empty = [name for name, count in split.counts().items() if count == 0]
        if empty:
            raise OwnDataError(f"These classes have no readable image: {', '.join(empty)}.")
    return split


def holdout(labels: torch.Tensor, share: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices): ``share`` of every class held out, at least one image of
    each class with two or more, so every class is validated and none is left untrained."""
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = 0 if share <= 0 or len(members) < 2 else min(max(round(share * len(members)), 1), len(members) - 1)
        val.append(members[:count])
        train.append(members[count:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


# ---- building a folder from a browser's uploads ----------------------------------------------------------
@dataclass(frozen=True)
class UploadLimits:
    """What one run may bring: files and megabytes in all (a capped server sets lower ones)."""

    max_files: int = MAX_FILES
    max_total_mb: float = MAX_TOTAL_MB
    min_per_class: int = MIN_PER_CLASS


def check_class_names(names: Sequence[str]) -> list[str]:
    """The names, stripped; OwnDataError if fewer than two, more than ten, empty, unsafe or repeated."""
    cleaned = [name.strip() for name in names]
    if not MIN_CLASSES <= len(cleaned) <= MAX_CLASSES:
        raise OwnDataError(f"Make between {MIN_CLASSES} and {MAX_CLASSES} classes, not {len(cleaned)}.")
    problems = []
    for position, name in enumerate(cleaned, 1):
        if not name:
            problems.append(f"Class {position} has no name.")
        elif _UNSAFE_NAME.search(name) or name in (".", "..") or name.startswith(".") or len(name) > 64:
            problems.append(f"Class name {name!r} cannot be used: at most 64 characters, without / \\ : * ? \" < > |"
                            " and not starting with a dot.")
    lowered = [name.lower() for name in cleaned if name]
    repeated = sorted({name for name in cleaned if name and lowered.count(name.lower()) > 1})
    if repeated:
        problems.append(f"Each class needs its own name: {', '.join(repeated)} is used twice.")
    if problems:
        raise OwnDataError(" ".join(problems))
    return cleaned


def write_classes(dest: str | os.PathLike[str], classes: Sequence[tuple[str, Sequence[tuple[str, bytes]]]],
                  limits: UploadLimits = UploadLimits()) -> dict[str, int]:
    """Write uploads as ``dest/<class>/<file>``: ``classes`` is (name, [(file name, bytes), ...]) per class.

    Returns the readable image count per class (``verify_folder``); OwnDataError if any check fails.
    """
    names = check_class_names([name for name, _ in classes])
    _check_totals(sum(len(files) for _, files in classes),
                  sum(len(payload) for _, files in classes for _, payload in files) / 2**20, limits)
    dest = Path(dest)
    for name, (_, files) in zip(names, classes, strict=True):
        folder = dest / name
        folder.mkdir(parents=True, exist_ok=True)
        for position, (file_name, payload) in enumerate(files):
            (folder / _stored_name(position, file_name)).write_bytes(payload)
    return verify_folder(dest, limits)


def _stored_name(position: int, file_name: str) -> str:
    """A safe name for an uploaded file: its position, and its suffix where that is an image's."""
    suffix = Path(file_name).suffix.lower()
    return f"{position:05d}{suffix if suffix in images.IMAGE_SUFFIXES else '.img'}"


def verify_folder(dest: str | os.PathLike[str], limits: UploadLimits = UploadLimits()) -> dict[str, int]:
    """Check every file under ``dest/<class>/`` decodes, remove those that do not, and require at least
    ``limits.min_per_class`` images in every class; the count per class, or OwnDataError."""
    counts, unreadable = {}, []
    for folder in _class_dirs(Path(dest)):
        count = 0
        for path in sorted(folder.iterdir()):
            try:
                images.load_image(path.read_bytes())
                count += 1
            except (images.ImageError, OSError) as error:
                unreadable.append(f"{folder.name}: {error}")
                path.unlink(missing_ok=True)
        counts[folder.name] = count
    if len(counts) < MIN_CLASSES:
        raise OwnDataError(f"Make at least {MIN_CLASSES} classes.")
    if empty := [name for name, count in counts.items() if count == 0]:
        raise OwnDataError(f"These classes have no images: {', '.join(empty)}."
                           + (f" Unreadable files: {'; '.join(unreadable[:5])}." if unreadable else ""))
    if short := [f"{name} ({count})" for name, count in counts.items() if count < limits.min_per_class]:
        why = f" Unreadable: {'; '.join(unreadable[:5])}." if unreadable else ""
        raise OwnDataError(f"Every class needs at least {limits.min_per_class} images; these have fewer readable "
                           f"ones: {', '.join(short)}.{why}")
    return counts


def _check_totals(files: int, megabytes: float, limits: UploadLimits) -> None:
    if files > limits.max_files:
        raise OwnDataError(f"{files:,} files is too many: at most {limits.max_files:,} per run here.")
    if megabytes > limits.max_total_mb:
        raise OwnDataError(f"{megabytes:,.0f} MB is too much: at most {limits.max_total_mb:,.0f} MB of images per "
                           "run here.")


def extract_zip(payload: bytes, dest: str | os.PathLike[str], limits: UploadLimits = UploadLimits()) -> dict[str, int]:
    """Unpack a zip of class folders into ``dest/<class>/``, checked before a byte is written.

    Accepts ``class/file`` members, or one top folder holding the class folders. Refuses paths
    that leave the folder, links, too many files, too many bytes once unpacked, and members that
    unpack to far more than they take in the zip (a zip bomb). Returns the file count per class.
    """
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except (zipfile.BadZipFile, ValueError) as error:
        raise OwnDataError(f"This is not a zip file we can read ({error}).") from None
    members = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", info.filename):
            raise OwnDataError(f"The zip holds {info.filename!r}, a path outside its own folder: refused.")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise OwnDataError(f"The zip holds a link ({info.filename}): refused.")
        hidden = any(part.startswith((".", "__MACOSX")) for part in path.parts)
        if info.is_dir() or hidden:
            continue
        if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO and info.file_size > 2**20:
            raise OwnDataError(f"{info.filename} unpacks to {info.file_size / info.compress_size:,.0f} times its "
                               "packed size, which images never do: refused as a zip bomb.")
        members.append((path, info))
    _check_totals(len(members), sum(info.file_size for _, info in members) / 2**20, limits)
    depth = {len(path.parts) for path, _ in members}
    tops = {path.parts[0] for path, _ in members}
    strip = 1 if depth == {3} and len(tops) == 1 else 0  # zip/<top folder>/<class>/<file>
    if not members or {len(path.parts) - strip for path, _ in members} != {2}:
        raise OwnDataError("The zip must hold one folder per class with that class's images inside "
                           "(class/image.png), optionally inside one top folder; nothing else.")
    per_class: dict[str, list[tuple[str, zipfile.ZipInfo]]] = {}
    for path, info in members:
        per_class.setdefault(path.parts[strip], []).append((path.name, info))
    names = check_class_names(sorted(per_class))
    dest = Path(dest)
    budget = int(limits.max_total_mb * 2**20)
    try:
        for name in names:
            folder = dest / name
            folder.mkdir(parents=True, exist_ok=True)
            for position, (file_name, info) in enumerate(per_class[name]):
                target = folder / _stored_name(position, file_name)
                # Stream with a running budget: a member's declared size can lie, its bytes cannot.
                with archive.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(2**20):
                        budget -= len(chunk)
                        if budget < 0:
                            raise OwnDataError(f"The zip unpacks to more than {limits.max_total_mb:,.0f} MB: refused.")
                        sink.write(chunk)
    except OwnDataError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
        shutil.rmtree(dest, ignore_errors=True)
        raise OwnDataError(f"The zip is damaged or encrypted and could not be unpacked ({error}).") from None
    return verify_folder(dest, limits)
