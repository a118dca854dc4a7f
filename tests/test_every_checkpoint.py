"""Every checkpoint the Train page can produce works on every page that lists it.

A module fixture trains a tiny run of every (task, dataset, architecture) the Train form offers
(core.train.config.TASK_DATASETS x core.models.list_architectures), at each architecture's smallest
width, then each page is opened in AppTest with each of its checkpoints, on a test image of the
checkpoint's dataset and on a colour photo. Any exception or st.error fails, naming the checkpoint.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import checkpoints, classify, data, models
from core.images import sample_photo
from core.train import TrainConfig, Trainer
from core.train.config import TASK_DATASETS
from tests.factories import open_page

FEW = 128  # images kept of every split while training: the runs prove shapes, not accuracy


def combos() -> list[tuple[str, str, str, dict]]:
    """(task, dataset, architecture, arch_args) for every pair the form allows, plus the binned colorizers."""
    found = []
    for task, datasets in TASK_DATASETS.items():
        for arch in models.list_architectures(task):
            options = models.get_architecture(arch).options
            smallest = {o.name: int(o.minimum) for o in options if o.name == "width" and o.minimum is not None}
            for dataset in datasets:
                found.append((task, dataset, arch, smallest))
                if any(o.name == "binned" for o in options):
                    found.append((task, dataset, arch, {**smallest, "binned": True}))
    return found


def run_name(task: str, dataset: str, arch: str, arch_args: dict) -> str:
    return f"{task}-{dataset}-{arch}{'-binned' if arch_args.get('binned') else ''}"


def first_images(load: Callable[..., data.ImageDataset]) -> Callable[..., data.ImageDataset]:
    """``load`` keeping only the first FEW images of each split (the trainer's test pass included)."""
    def load_few(*args, **kwargs) -> data.ImageDataset:
        full = load(*args, **kwargs)
        return dataclasses.replace(full, images=full.images[:FEW], labels=full.labels[:FEW])
    return load_few


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Path]:
    """An app home holding one tiny checkpoint of every combination (about a minute on two cores)."""
    home = tmp_path_factory.mktemp("every-checkpoint")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIFAR_LAB_HOME", str(home))
        patch.setattr(data, "load_dataset", first_images(data.load_dataset))
        for task, dataset, arch, arch_args in combos():
            extra = {"noise": "gaussian", "noise_level": 25.0} if task == "denoising" else {}
            if task == "colorization":
                extra = {"loss": "chroma_ce" if arch_args.get("binned") else "mse"}
            config = TrainConfig(task=task, arch=arch, arch_args=arch_args, dataset=dataset, epochs=1, batch_size=32,
                                 subset=64, val_size=0, optimizer="adam", lr=1e-3, schedule="constant", augment=False,
                                 channels_last=False,  # channels-last batch norm is several times slower on a CPU
                                 seed=0, out=str(home / "checkpoints"), name=run_name(task, dataset, arch, arch_args),
                                 **extra)
            result = Trainer(config).fit()
            assert result.status == "finished", (config.name, result.message)
    yield home


def names_of(task: str) -> list[str]:
    return [run_name(*combo) for combo in combos() if combo[0] == task]


def select(app: AppTest, label: str, name: str) -> None:
    """Choose the option of selectbox ``label`` whose text starts with checkpoint ``name``."""
    box = next(s for s in app.selectbox if s.label == label)
    box.select_index(next(i for i, text in enumerate(map(str, box.options)) if text.startswith(f"{name} ("))).run()


def problems(app: AppTest, where: str) -> list[str]:
    """What went wrong on the page, prefixed with ``where``; empty when it rendered cleanly."""
    found = [f"{where}: exception {e.value}" for e in app.exception]
    return found + [f"{where}: error {e.value}" for e in app.error]


def use_photo(app: AppTest) -> None:
    """Switch the page's image source to a colour sample photo."""
    next(s for s in app.segmented_control if s.label == "Image source").set_value("Sample photo").run()


def test_every_combination_is_trained(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR_LAB_HOME", str(home))
    listed = {meta["name"] for meta in checkpoints.list_checkpoints()}
    assert {run_name(*combo) for combo in combos()} <= listed
    assert {"mnist", "fashion_mnist"} <= {combo[1] for combo in combos() if combo[0] == "classification"}


def test_classify_opens_with_every_classifier(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(home, "pages/classify.py", monkeypatch)
    found = []
    for name in names_of("classification"):
        select(app, "Model", name)
        found += problems(app, f"{name} on a test image")
        meta = next(m for m in checkpoints.list_checkpoints("classification") if m["name"] == name)
        verdict = next((m.value for m in app.markdown if m.value.startswith("Prediction:")), "")
        shown_class = verdict.removeprefix("Prediction: **").split("**")[0]
        if shown_class not in data.DATASETS[meta["dataset"]].classes:
            found.append(f"{name}: predicted {shown_class!r}, not one of {meta['dataset']}'s classes")
        note = classify.input_note(meta)
        if note and not any(note in i.value for i in app.info):
            found.append(f"{name}: no note on how it sees photos")
    use_photo(app)
    for name in names_of("classification"):
        select(app, "Model", name)
        found += problems(app, f"{name} on a sample photo")
    assert not found, "\n".join(found)


def test_classify_defaults_to_a_cifar10_classifier(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The MNIST models score far higher, but visitors bring photos: the default stays a CIFAR-10 model.
    app = open_page(home, "pages/classify.py", monkeypatch)
    assert "-cifar10-" in str(next(s for s in app.selectbox if s.label == "Model").value)


def test_classify_test_set_view_uses_the_checkpoints_dataset(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(home, "pages/classify.py", monkeypatch)
    select(app, "Model", "classification-fashion_mnist-staged_cnn")
    next(t for t in app.toggle if "confusion matrix" in t.label).set_value(True).run()
    assert not problems(app, "test-set view")
    per_class = next(d.value for d in app.dataframe if "class" in d.value.columns)
    assert list(per_class["class"]) == list(data.DATASETS["fashion_mnist"].classes)
    assert any(m.label == "Test accuracy" for m in app.metric)


def test_denoise_runs_every_denoiser_on_colour_and_grey(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(home, "pages/denoise.py", monkeypatch)
    found = []
    for dataset in TASK_DATASETS["denoising"]:
        next(s for s in app.selectbox if s.label == "Test images from").set_value(dataset).run()
        for name in names_of("denoising"):
            select(app, "Denoiser", name)
            found += problems(app, f"{name} on a {dataset} test image")
        next(t for t in app.toggle if t.label.startswith("Compare every denoiser")).set_value(True).run()
        found += problems(app, f"compare mode on {dataset}")
        next(t for t in app.toggle if t.label.startswith("Compare every denoiser")).set_value(False).run()
    use_photo(app)
    for name in names_of("denoising"):
        select(app, "Denoiser", name)
        found += problems(app, f"{name} on a sample photo")
    assert not found, "\n".join(found)


def test_colorize_runs_every_colorizer(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(home, "pages/colorize.py", monkeypatch)
    found = []
    for name in names_of("colorization"):
        select(app, "Model", name)
        found += problems(app, f"{name} on a test image")
    use_photo(app)
    for name in names_of("colorization"):
        select(app, "Model", name)
        found += problems(app, f"{name} on a sample photo")
    buffer = io.BytesIO()
    sample_photo("Coffee").convert("L").resize((97, 61)).save(buffer, format="PNG")  # odd sizes, grey
    next(s for s in app.segmented_control if s.label == "Image source").set_value("Upload").run()
    app.get("file_uploader")[0].set_value(("grey.png", buffer.getvalue(), "image/png")).run()
    for name in names_of("colorization"):
        select(app, "Model", name)
        found += problems(app, f"{name} on an odd-sized grey upload")
    assert not found, "\n".join(found)


def test_home_lists_every_checkpoint(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(home, "pages/home.py", monkeypatch)
    assert not problems(app, "home")
