"""core.download against a local HTTP server: small archives in the real layouts, no network needed."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import struct
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from core import data, download
from core.download import Archive

CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


@contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """The base URL of a local HTTP server serving ``folder``, for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder and the base URL of a local HTTP server serving it."""
    folder = tmp_path / "served"
    folder.mkdir()
    with http_server(folder) as url:
        yield folder, url


@pytest.fixture
def closed_port_url() -> str:
    """A local URL nothing listens on: connecting is refused, as when there is no network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def archive_of(folder: Path, filename: str, payload: bytes, url: str) -> Archive:
    (folder / filename).write_bytes(payload)
    return Archive(filename, hashlib.md5(payload).hexdigest(), len(payload), (url + filename,))


def tar_gz(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def small_cifar_tar() -> tuple[bytes, dict[str, bytes]]:
    """A CIFAR-10 python archive in the official layout, with 4 images per batch."""
    rng = np.random.default_rng(0)
    files = {f"cifar-10-batches-py/{name}": pickle.dumps({
        b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}) for name in CIFAR_FILES}
    files["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": list(data.DATASETS["cifar10"].classes)})
    return tar_gz(files), files


def idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x803, *images.shape) + images.tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x801, len(labels)) + labels.tobytes()


def small_mnist_archives(folder: Path, url: str,
                         rng: np.random.Generator) -> tuple[list[Archive], dict[str, np.ndarray]]:
    """The four gzip files of an MNIST-style dataset (5 train, 3 test images), served from ``folder``."""
    images = {"train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "t10k": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)}
    labels = {split: rng.integers(0, 10, len(images[split]), dtype=np.uint8) for split in images}
    files = [
        archive_of(folder, f"{split}-{kind}.gz", gzip.compress(content), url)
        for split in images
        for kind, content in (("images-idx3-ubyte", idx_images(images[split])),
                              ("labels-idx1-ubyte", idx_labels(labels[split])))
    ]
    return files, {**{f"{split}-images": images[split] for split in images},
                   **{f"{split}-labels": labels[split] for split in images}}


def small_catalogue(folder: Path, url: str) -> dict[str, list[Archive]]:
    """Small archives for all three datasets in their real layouts; Fashion-MNIST's served from a sub-folder
    because its file names are MNIST's."""
    rng = np.random.default_rng(2)
    (folder / "fashion").mkdir(exist_ok=True)
    return {
        "cifar10": [archive_of(folder, "cifar-10-python.tar.gz", small_cifar_tar()[0], url)],
        "mnist": small_mnist_archives(folder, url, rng)[0],
        "fashion_mnist": small_mnist_archives(folder / "fashion", url + "fashion/", rng)[0],
    }


def no_temporary_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_cifar_archive_is_fetched_checked_and_unpacked(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    payload, files = small_cifar_tar()
    catalogue = {"cifar10": [archive_of(folder, "cifar-10-python.tar.gz", payload, url)]}
    root, calls = tmp_path / "data", []
    fetched = download.download_datasets(["cifar10"], root, catalogue=catalogue,
                                         progress=lambda what, done, total: calls.append((what, done, total)))
    assert fetched == ["cifar10"]
    for name, content in files.items():
        assert (root / name).read_bytes() == content
    assert download.installed("cifar10", root)
    assert calls[-1] == ("Unpacking CIFAR-10", len(payload), len(payload))
    assert any(what == "CIFAR-10 (cifar-10-python.tar.gz)" for what, _, _ in calls)
    assert no_temporary_files(root) and not (root / "cifar-10-python.tar.gz").exists()
    # Already there: nothing is fetched again, not even contacted.
    assert download.download_datasets(["cifar10"], root, mirror="http://127.0.0.1:1/") == []


def test_mnist_files_are_ungzipped_where_core_data_reads_them(served: tuple[Path, str], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_CACHE", str(tmp_path / "cache"))
    folder, url = served
    files, arrays = small_mnist_archives(folder, url, np.random.default_rng(1))
    catalogue = {"mnist": files}
    root = tmp_path / "data"
    assert download.download_datasets(["mnist"], root, catalogue=catalogue) == ["mnist"]
    test = data.load_dataset("mnist", "test", root)
    assert torch.equal(test.images[:, 0], torch.from_numpy(arrays["t10k-images"]))
    assert test.labels.tolist() == arrays["t10k-labels"].tolist()
    assert len(data.load_dataset("mnist", "train", root)) == 5
    assert no_temporary_files(root) and not list(root.rglob("*.gz"))


def test_a_second_mirror_is_tried_when_the_first_fails(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    payload, _ = small_cifar_tar()
    good = archive_of(folder, "cifar-10-python.tar.gz", payload, url)
    tried = Archive(good.filename, good.md5, good.size, (url + "missing/" + good.filename, *good.urls))
    assert download.download_datasets(["cifar10"], tmp_path / "data", catalogue={"cifar10": [tried]}) == ["cifar10"]


def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    payload, _ = small_cifar_tar()
    genuine = archive_of(folder, "cifar-10-python.tar.gz", payload, url)
    altered = Archive(genuine.filename, "0" * 32, genuine.size, genuine.urls)
    root = tmp_path / "data"
    with pytest.raises(download.ChecksumError, match="not the published file"):
        download.download_datasets(["cifar10"], root, catalogue={"cifar10": [altered]})
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("entries,links", [
    ({"cifar-10-batches-py/../../escaped": b"x"}, None),
    ({"/etc/cifar-lab-escaped": b"x"}, None),
    ({"cifar-10-batches-py/test_batch": b"x"}, {"cifar-10-batches-py/data_batch_1": "/etc/passwd"}),
    ({"somewhere-else/test_batch": b"x"}, None),
], ids=["dot-dot", "absolute", "symlink", "other-folder"])
def test_an_archive_reaching_outside_its_folder_is_refused(served: tuple[Path, str], tmp_path: Path,
                                                           entries: dict[str, bytes], links: dict | None) -> None:
    folder, url = served
    hostile = archive_of(folder, "cifar-10-python.tar.gz", tar_gz(entries, links), url)
    root = tmp_path / "deep" / "data"
    with pytest.raises(download.DownloadError, match="Refusing an archive"):
        download.download_datasets(["cifar10"], root, catalogue={"cifar10": [hostile]})
    assert list(root.iterdir()) == [] and not list(tmp_path.rglob("*escaped*"))


def test_offline_is_one_clear_sentence(closed_port_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.MIRROR_ENV, closed_port_url)  # the official archive list, fetched from nowhere
    with pytest.raises(download.OfflineError) as caught:
        download.download_datasets(["mnist"], tmp_path / "data")
    assert str(caught.value) == "No internet connection here: the datasets cannot be downloaded."
    assert closed_port_url + "train-images-idx3-ubyte.gz" in caught.value.details
    assert no_temporary_files(tmp_path)


def test_the_command_line_says_offline_and_shows_the_manual_route(closed_port_url: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert download.main(["fashion_mnist", "--root", str(tmp_path), "--mirror", closed_port_url]) == 1
    err = capsys.readouterr().err
    assert download.OFFLINE_MESSAGE in err
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in err
    assert str(tmp_path.resolve() / "FashionMNIST" / "raw") in err


def test_the_progress_line_says_what_is_downloading_and_how_far() -> None:
    assert download.progress_line("cifar-10-python.tar.gz", 12_300_000, 170_498_071) == \
        (12_300_000 / 170_498_071, "Downloading cifar-10-python.tar.gz: 12.3 of 170.5 MB")
    assert download.progress_line("Unpacking cifar-10-python.tar.gz", 5, 5) == \
        (1.0, "Unpacking cifar-10-python.tar.gz...")
    assert download.progress_line("train-images-idx3-ubyte.gz", 10, 0)[0] == 1.0  # a size the server did not say
    assert download.progress_line("x", 200, 100)[0] == 1.0


def test_official_archives_come_from_torchvision_with_sizes() -> None:
    (cifar,) = download.archives("cifar10")
    assert cifar.urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
    assert (cifar.md5, cifar.size) == ("c58f30108f718f92721af3b95e74349a", 170_498_071)
    mnist = download.archives("mnist")
    assert len(mnist) == 4 and all(len(a.urls) >= 1 and len(a.md5) == 32 for a in mnist)
    assert download.describe_sizes(["cifar10", "mnist", "fashion_mnist"]) == \
        "CIFAR-10 (170 MB), MNIST (12 MB) and Fashion-MNIST (31 MB)"
    with pytest.raises(ValueError, match="Unknown dataset"):
        download.archives("imagenet")


def test_a_download_stopped_midway_leaves_nothing_behind(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    catalogue = {"cifar10": [archive_of(folder, "cifar-10-python.tar.gz", small_cifar_tar()[0], url)]}

    def stop(what: str, done: int, total: int) -> None:
        raise KeyboardInterrupt  # what a visitor leaving the page (Streamlit's rerun) or Ctrl-C does

    root = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        download.download_datasets(["cifar10"], root, catalogue=catalogue, progress=stop)
    assert list(root.iterdir()) == []


def test_an_unwritable_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(download.DownloadError, match="Cannot create the data folder"):
        download.download_datasets(["mnist"], blocked / "data", mirror="http://127.0.0.1:1/")
