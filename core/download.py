"""Fetching the datasets from their official sites, checked against their published MD5 checksums.

``download_datasets`` streams each archive into a temporary file (reporting progress), refuses it
unless its MD5 matches, and unpacks it into the layout ``core.data`` reads: CIFAR-10's
``cifar-10-batches-py/`` folder, MNIST's and Fashion-MNIST's un-gzipped files in ``<Name>/raw/``.
Files appear under their final names only when whole. ``python -m core.download`` (``make data``)
does the same from the shell.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core import data, paths
from core.fileio import temp_path

MIRROR_ENV = "CIFAR_LAB_DATA_MIRROR"  # a base URL serving the archives by file name, used instead of the official sites
OFFLINE_MESSAGE = "No internet connection here: the datasets cannot be downloaded."
CHUNK = 1 << 20
TIMEOUT_S = 30

# torchvision lists the official URLs and MD5s but not the sizes, which the Home page states before a download.
_SIZES = {
    ("cifar10", "cifar-10-python.tar.gz"): 170_498_071,
    ("mnist", "train-images-idx3-ubyte.gz"): 9_912_422,
    ("mnist", "train-labels-idx1-ubyte.gz"): 28_881,
    ("mnist", "t10k-images-idx3-ubyte.gz"): 1_648_877,
    ("mnist", "t10k-labels-idx1-ubyte.gz"): 4_542,
    ("fashion_mnist", "train-images-idx3-ubyte.gz"): 26_421_880,
    ("fashion_mnist", "train-labels-idx1-ubyte.gz"): 29_515,
    ("fashion_mnist", "t10k-images-idx3-ubyte.gz"): 4_422_102,
    ("fashion_mnist", "t10k-labels-idx1-ubyte.gz"): 5_148,
}

# (what is being fetched, bytes done, bytes in all) over everything one call downloads
DownloadProgress = Callable[[str, int, int], None]


class DownloadError(RuntimeError):
    """A dataset could not be downloaded or unpacked; the message says why."""


class OfflineError(DownloadError):
    """No server could be reached at all: this machine has no internet connection."""

    def __init__(self, details: str) -> None:
        super().__init__(OFFLINE_MESSAGE)
        self.details = details  # the underlying errors, for logs


class ChecksumError(DownloadError):
    """A downloaded file's MD5 is not the published one; it was deleted."""


@dataclass(frozen=True)
class Archive:
    """One file to download: its name, published MD5, size in bytes and the URLs to try in turn."""

    filename: str
    md5: str
    size: int
    urls: tuple[str, ...]


def archives(name: str) -> tuple[Archive, ...]:
    """The official archives of dataset ``name``, with torchvision's URLs and checksums."""
    import torchvision.datasets

    if name not in data.DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(data.DATASETS)}.")
    cls = getattr(torchvision.datasets, data.DATASETS[name].torchvision_class)
    if hasattr(cls, "resources"):  # MNIST-style: several gzip files, each on every mirror
        return tuple(Archive(file, md5, _SIZES[name, file], tuple(mirror + file for mirror in cls.mirrors))
                     for file, md5 in cls.resources)
    return (Archive(cls.filename, cls.tgz_md5, _SIZES[name, cls.filename], (cls.url,)),)


def download_size(name: str) -> int:
    """Bytes to download for dataset ``name``."""
    return sum(archive.size for archive in archives(name))


def _format_mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e6:.1f} MB"


def describe_sizes(names: Iterable[str]) -> str:
    """E.g. "CIFAR-10 (170 MB), MNIST (12 MB) and Fashion-MNIST (31 MB)"."""
    parts = [f"{data.DATASETS[n].title} ({_format_mb(download_size(n))})" for n in names]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def progress_line(what: str, done: int, total: int) -> tuple[float, str]:
    """A download's progress bar from ``download_datasets``'s report: the share done, and its line
    ("Downloading cifar-10-python.tar.gz: 12.3 of 170.5 MB", or "Unpacking ..." as it is reported)."""
    fraction = min(1.0, done / total) if total else 1.0
    if what.startswith("Unpacking"):
        return fraction, f"{what}..."
    return fraction, f"Downloading {what}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"


def installed(name: str, root: str | Path | None = None) -> bool:
    """Whether both splits of ``name`` are already readable under ``root``."""
    return all(data.find_source(name, split, root) is not None for split in data.SPLITS)


def manual_route(name: str) -> str:
    """Which files to fetch by hand for ``name``, from where, and what to do with them."""
    found = archives(name)
    if len(found) == 1:
        return f"download {found[0].urls[0]} yourself and unpack it"
    base = found[0].urls[0].removesuffix(found[0].filename)
    return f"download {', '.join(a.filename for a in found)} from {base} yourself and un-gzip them"


# One download at a time per process: two visitors pressing the button fetch the files once.
_LOCK = threading.Lock()


def download_datasets(
    names: Iterable[str] | None = None,
    root: str | Path | None = None,
    *,
    progress: DownloadProgress | None = None,
    mirror: str | None = None,
    catalogue: Mapping[str, Sequence[Archive]] | None = None,
) -> list[str]:
    """Download and unpack the datasets ``names`` (default: all) that ``root`` lacks; returns those fetched.

    ``mirror`` (or ``$CIFAR_LAB_DATA_MIRROR``) is a base URL tried instead of the official sites;
    ``catalogue`` replaces the official archive list (tests serve small archives). Raises
    OfflineError when no server answers, ChecksumError when a file is not the published one and
    DownloadError for anything else; whatever was already unpacked stays.
    """
    names = list(names) if names is not None else list(data.DATASETS)
    root = Path(root) if root is not None else paths.data_root()
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    with _LOCK:
        needed = [name for name in names if not installed(name, root)]
        plan = {name: _with_mirror(catalogue[name] if catalogue is not None else archives(name), mirror)
                for name in needed}
        total = sum(archive.size for files in plan.values() for archive in files)
        report = progress or (lambda what, done, total: None)
        done = 0
        if plan:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DownloadError(f"Cannot create the data folder {root}: {error}") from error
        for name, files in plan.items():
            title = data.DATASETS[name].title
            fetched: list[tuple[Archive, Path]] = []
            try:
                for archive in files:
                    what = f"{title} ({archive.filename})"
                    start = done
                    fetched.append((archive, _fetch(archive, root, lambda n, w=what, s=start: report(w, s + n, total))))
                    done = start + archive.size
                report(f"Unpacking {title}", done, total)
                for archive, file in fetched:
                    _unpack(name, archive, file, root)
            except OSError as error:  # network errors are DownloadErrors by now: this is a read-only or full disk
                raise DownloadError(f"Could not write {title} into {root}: {error}") from error
            finally:
                for _, file in fetched:
                    file.unlink(missing_ok=True)
            if not installed(name, root):
                raise DownloadError(f"The files downloaded for {title} did not contain both of its splits.")
        return needed


def _with_mirror(files: Sequence[Archive], mirror: str | None) -> list[Archive]:
    if not mirror:
        return list(files)
    return [Archive(a.filename, a.md5, a.size, (f"{mirror.rstrip('/')}/{a.filename}",)) for a in files]


class _Unreachable(Exception):
    """The server could not be reached at all (no route, no DNS, refused, timed out)."""


def _fetch(archive: Archive, folder: Path, report: Callable[[int], None]) -> Path:
    """``archive`` in a temporary file in ``folder``, from the first URL that serves it whole and unaltered."""
    failures: list[str] = []
    unreachable = 0
    bad_checksum = False
    for url in archive.urls:
        tmp = temp_path(folder / archive.filename)
        try:
            digest = _stream(url, tmp, archive.size, report)
        except _Unreachable as error:
            tmp.unlink(missing_ok=True)
            unreachable += 1
            failures.append(f"{url}: {error}")
            continue
        except (OSError, http.client.HTTPException, ValueError) as error:  # HTTP errors, broken transfers
            tmp.unlink(missing_ok=True)
            failures.append(f"{url}: {error}")
            continue
        except BaseException:  # a stopped page (Streamlit's rerun) or Ctrl-C leaves no temporary file behind
            tmp.unlink(missing_ok=True)
            raise
        if digest == archive.md5:
            return tmp
        tmp.unlink(missing_ok=True)
        bad_checksum = True
        failures.append(f"{url}: MD5 {digest}, expected {archive.md5}")
    if unreachable == len(archive.urls):
        raise OfflineError("; ".join(failures))
    if bad_checksum:
        raise ChecksumError(f"{archive.filename} is not the published file (damaged or altered in transit), "
                            f"so it was deleted: {'; '.join(failures)}.")
    raise DownloadError(f"Could not download {archive.filename}: {'; '.join(failures)}.")


def _stream(url: str, target: Path, expected: int, report: Callable[[int], None]) -> str:
    """Copy ``url`` into ``target`` chunk by chunk; returns the MD5 of the bytes written."""
    try:
        # Some hosts refuse urllib's default User-Agent (torchvision names itself for the same reason).
        request = urllib.request.Request(url, headers={"User-Agent": "cifar-lab"})
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as error:  # DNS failure, refused, no route, timeout
        raise _Unreachable(getattr(error, "reason", error)) from error
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    with response, open(target, "wb") as handle:
        while chunk := response.read(CHUNK):
            done += len(chunk)
            # A server sending far more than the published size is not sending the dataset: stop before the disk fills.
            if done > 2 * expected + CHUNK:
                raise ValueError(f"sent more than twice the expected {expected:,} bytes")
            digest.update(chunk)
            handle.write(chunk)
            report(done)
        handle.flush()
        os.fsync(handle.fileno())
    return digest.hexdigest()


def _unpack(name: str, archive: Archive, file: Path, root: Path) -> None:
    if archive.filename.endswith((".tar.gz", ".tgz")):
        _untar(name, file, root)
    elif archive.filename.endswith(".gz"):
        _gunzip(name, archive.filename.removesuffix(".gz"), file, root)
    else:
        raise DownloadError(f"Do not know how to unpack {archive.filename}.")


def _gunzip(name: str, stem: str, file: Path, root: Path) -> None:
    """Un-gzip ``file`` to the path core.data reads for ``stem`` (e.g. MNIST/raw/train-images-idx3-ubyte)."""
    wanted = [rel for files in data.DATASETS[name].torchvision_files.values() for rel in files
              if PurePosixPath(rel).name == stem]
    if not wanted:
        raise DownloadError(f"{stem} is not one of the files {data.DATASETS[name].title} is read from.")
    target = root / wanted[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        with gzip.open(file, "rb") as source, open(tmp, "wb") as handle:
            shutil.copyfileobj(source, handle, CHUNK)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DownloadError(f"Could not un-gzip {stem}: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)


def _untar(name: str, file: Path, root: Path) -> None:
    """Unpack the folders ``name`` is read from (e.g. cifar-10-batches-py/) out of a tar archive.

    Only plain files and folders inside those folders are accepted: an absolute path, a ``..``, a link
    or a device anywhere in the archive refuses the whole archive. Each folder is unpacked beside its
    final place and renamed into it, so readers never see half of it.
    """
    tops = {PurePosixPath(rel).parts[0] for files in data.DATASETS[name].torchvision_files.values() for rel in files}
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-", suffix=".tmp"))
    try:
        try:
            with tarfile.open(file, "r:*") as tar:
                members = tar.getmembers()
                for member in members:
                    _check_member(member, tops)
                tar.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DownloadError(f"Could not unpack the {data.DATASETS[name].title} archive: {error}") from error
        for top in sorted(tops):
            fresh, final = staging / top, root / top
            if not fresh.is_dir():
                raise DownloadError(f"The {data.DATASETS[name].title} archive has no {top}/ folder.")
            try:
                if final.exists():  # an incomplete earlier copy: set it aside, then swap
                    final.rename(staging / f"{top}.old")
                fresh.rename(final)
            except OSError as error:  # e.g. another process put its copy there in between
                raise DownloadError(f"Could not move {top}/ into {root}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_member(member: tarfile.TarInfo, tops: set[str]) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] not in tops:
        raise DownloadError(f"Refusing an archive with the entry {member.name!r}: it points outside "
                            f"{', '.join(sorted(tops))}/.")
    if not (member.isfile() or member.isdir()):
        raise DownloadError(f"Refusing an archive with the entry {member.name!r}: links and devices are not data.")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.download [names]``: fetch the missing datasets into ``$CIFAR_LAB_DATA`` (default ./data)."""
    parser = argparse.ArgumentParser(prog="python -m core.download", description="Download the datasets missing "
                                     "from $CIFAR_LAB_DATA (default ./data), checksums verified.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"datasets to fetch ({', '.join(data.DATASETS)}); default all")
    parser.add_argument("--root", type=Path, default=None, help="data folder (default $CIFAR_LAB_DATA or ./data)")
    parser.add_argument("--mirror", default=None, help=f"base URL to fetch from instead (or ${MIRROR_ENV})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in data.DATASETS]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}; choose from {', '.join(data.DATASETS)}")
    names = args.names or list(data.DATASETS)
    root = args.root if args.root is not None else paths.data_root()
    missing = [n for n in names if not installed(n, root)]
    if not missing:
        print(f"Already in {root.resolve()}: {', '.join(data.DATASETS[n].title for n in names)}.")
        return 0
    print(f"Downloading {describe_sizes(missing)} into {root.resolve()}.")
    try:
        with _tqdm_progress() as report:
            download_datasets(missing, root, progress=report, mirror=args.mirror)
    except OfflineError as error:
        print(error, *(data.how_to_get(n, root) for n in missing), sep="\n", file=sys.stderr)
        return 1
    except DownloadError as error:
        print(f"Download failed: {error}", file=sys.stderr)
        return 1
    print(f"Done: {', '.join(data.DATASETS[n].title for n in missing)} in {root.resolve()}.")
    return 0


@contextmanager
def _tqdm_progress() -> Iterator[DownloadProgress]:
    from tqdm import tqdm

    with tqdm(total=0, unit="B", unit_scale=True, file=sys.stderr) as bar:
        def report(what: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_description(what, refresh=False)
            bar.update(min(done, total) - bar.n)

        yield report


if __name__ == "__main__":
    sys.exit(main())
