"""The Home page, through Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import checkpoints, download, models, paths
from tests.test_download import http_server, no_temporary_files, small_catalogue

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def run_home() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_home_shows_device_datasets_and_empty_checkpoints(app_home: Path, data_root: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "SHIPPED_CHECKPOINTS", app_home / "no-shipped")
    app = run_home()
    assert app.title[0].value == "CIFAR Lab"
    assert any("Running on **CPU" in m.value for m in app.markdown)
    table = app.dataframe[0].value
    assert len(table) == 6 and table["found"].all()
    assert any("No checkpoints are installed yet" in i.value for i in app.info)


def test_home_lists_checkpoints_and_skipped_files(app_home: Path, data_root: Path) -> None:
    checkpoints.save(models.build("resnet18", width=8), paths.user_checkpoints() / "home-test",
                     {"name": "home-test", "task": "classification", "architecture": "resnet18",
                      "arch_args": {"width": 8}, "dataset": "cifar10",
                      "metrics": {"test_accuracy": 0.9123}, "measured_by": {"test_accuracy": "pytest"}, "recipe": {}})
    (paths.user_checkpoints() / "old.pth").write_bytes(b"\x80\x04pickle")
    app = run_home()
    table = app.dataframe[1].value
    row = table[table["name"] == "home-test"].iloc[0]
    assert row["test metrics"] == "accuracy 91.23%" and row["parameters"] == "0.18M"
    assert any("old.pth" in w.value and "safetensors" in w.value for w in app.warning)


def test_home_offers_the_missing_datasets_with_their_sizes(app_home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "empty"))
    app = run_home()
    assert not app.dataframe[0].value["found"].any()
    text = " ".join(m.value for m in app.markdown)
    assert "CIFAR-10 (170 MB), MNIST (12 MB) and Fashion-MNIST (31 MB)" in text
    assert any(b.label == "Get the datasets" for b in app.button)
    # The manual route waits in an expander instead of a wall of yellow boxes.
    assert "CIFAR-10 was not found" in text and "CIFAR_LAB_DATA" in text and "make data" in text
    assert not app.warning and not app.error


def test_get_the_datasets_offline_says_so_and_shows_the_manual_route(app_home: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:1/")  # nothing listens there: as if offline
    app = run_home()
    next(b for b in app.button if b.label == "Get the datasets").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert [w.value for w in app.warning] == ["No internet connection here: the datasets cannot be downloaded."]
    manual = next(m.value for m in app.markdown if m.value.startswith("To get them by hand"))
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in manual
    assert str((tmp_path / "empty").resolve() / "FashionMNIST" / "raw") in manual
    assert not (tmp_path / "empty").exists() or no_temporary_files(tmp_path / "empty")


def test_get_the_datasets_downloads_them_and_the_table_shows_them(app_home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root, served = tmp_path / "empty", tmp_path / "served"
    served.mkdir()
    monkeypatch.setenv("CIFAR_LAB_DATA", str(root))
    app = run_home()
    with http_server(served) as url:
        catalogue = small_catalogue(served, url)  # small archives in the real layouts, in place of the official ones
        monkeypatch.setattr(download, "archives", lambda name: tuple(catalogue[name]))
        next(b for b in app.button if b.label == "Get the datasets").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.dataframe[0].value["found"].all()
    assert any(s.value.startswith("Downloaded CIFAR-10, MNIST, Fashion-MNIST") for s in app.success)
    assert not any(b.label == "Get the datasets" for b in app.button)
    assert no_temporary_files(root)


def test_home_opens_with_a_live_example_of_each_page_linked_into_it(app_home: Path, data_root: Path) -> None:
    app = run_home()
    markdown = [m.value for m in app.markdown]
    assert "**Classify** · `fastnet-cifar10`" in markdown and "**cat**, 94.6%" in markdown
    assert "**Denoise** · `unet-gaussian-cifar10`" in markdown
    assert "**Colorize** · `unet-colorizer-faithful`" in markdown
    captions = [element.proto.imgs[0].caption for element in app.get("image")]
    assert captions[:2] == ["test image #0: cat", 'Grad-CAM: where it looked for "cat"']
    links = [link.proto for link in app.get("page_link")]
    assert [link.label for link in links[:3]] == [f"Open {page} on this image" for page in ("Classify", "Denoise",
                                                                                             "Colorize")]
    assert links[3].label == "Train a model in the browser and watch it learn"
    assert "image=0" in links[0].query_string and "denoiser=unet-gaussian-cifar10" in links[1].query_string


def test_the_showcase_numbers_are_the_pages_own(data_root: Path) -> None:
    from core import checkpoints, classify, denoise, showcase
    from core.images import to_tensor

    made = {example.page: example for example in showcase.examples()}
    denoised = made["denoise"]
    image, _, _ = showcase.example_image("denoise")
    clean = to_tensor(image)[0]
    noisy = denoise.make_noisy(clean, showcase.DENOISE_NOISE, showcase.DENOISE_SEED)
    model, _ = checkpoints.load(denoised.checkpoint)
    again = denoise.denoise_one("model", noisy, model=model.eval(), title="again", clean=clean)
    assert abs(again.psnr - denoised.extra["psnr"]) < 1e-4 and denoised.extra["psnr"] > denoised.extra["noisy_psnr"] + 5
    colorized = made["colorize"]
    assert colorized.extra["psnr"] > colorized.extra["gray_psnr"]
    fastnet, _ = checkpoints.load("fastnet-cifar10")
    image, _, _ = showcase.example_image("classify")
    assert made["classify"].summary == f"**cat**, {classify.probabilities(fastnet, image).max():.1%}"


def test_without_datasets_the_showcase_uses_the_bundled_photos(tmp_path: Path, monkeypatch) -> None:
    from core import showcase

    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "no-data"))
    image, caption, query = showcase.example_image("classify")
    assert caption == "Chelsea the cat" and query == {"source": "sample", "photo": "Chelsea the cat"}
    assert image.size[0] > 100
