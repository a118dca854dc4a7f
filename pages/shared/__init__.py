"""Widgets shared by the pages: the one image-input path, model pickers, cached loaders."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import torch
from PIL import Image

from core import checkpoints, data, display, export, images, memo, models, paths
from core.models.summary import layer_table
from pages.shared import links

UPLOAD_TYPES = [suffix.lstrip(".") for suffix in images.IMAGE_SUFFIXES]
SOURCE_PARAMS = {"test": "Test set", "sample": "Sample photo", "upload": "Upload"}  # in a link -> on the page


@dataclass
class ChosenImage:
    image: Image.Image  # RGB
    caption: str
    label: int | None = None  # the true class, for dataset images
    index: int | None = None
    source: str = "test set"  # "test set", "sample photo" or "upload"
    key: str = ""  # which image it is (an upload's SHA-1, a photo's name, a dataset and index): results' cache key


def test_set(name: str) -> data.ImageDataset:
    """The test split of ``name`` from the current data folder (raises DatasetNotFoundError)."""
    return _test_set(name, str(paths.data_root().resolve()))


@st.cache_resource(show_spinner="Loading the test set...")
def _test_set(name: str, root: str) -> data.ImageDataset:
    # Keyed by the folder too: a different CIFAR_LAB_DATA (a test's empty one) must not get another's copy.
    return data.load_dataset(name, "test", root)


@st.cache_resource(show_spinner="Loading the model...", max_entries=8)
def load_model(path: str, modified: float):
    """A checkpoint's (model, meta), cached by path and modification time."""
    return checkpoints.load(path)


def pick_checkpoint(task: str, key: str, prefer_dataset: str = "cifar10") -> dict | None:
    """A selectbox over every checkpoint of ``task``, shipped and user-trained, opening on the best one trained
    on ``prefer_dataset`` (visitors bring photos, not digits); None if there are none."""
    metas = checkpoints.best_first(checkpoints.list_checkpoints(task), prefer_dataset)
    if not metas:
        return None
    names = [m["path"] for m in metas]
    links.restore(key, "model", {m["name"]: m["path"] for m in metas}.__getitem__)
    chosen = st.selectbox("Model", names, key=key,
                          format_func=lambda path: display.checkpoint_label(metas[names.index(path)]))
    meta = metas[names.index(chosen)]
    links.record(model=meta["name"])
    return meta


def model_of(meta: dict):
    """The checkpoint's (model, meta); a file that changed into something unusable stops the page with a message."""
    path = Path(meta["path"])
    try:
        return load_model(str(path), path.stat().st_mtime)
    except (checkpoints.CheckpointError, OSError) as error:
        st.error(f"This checkpoint cannot be loaded: {error}", icon=":material/error:")
        st.stop()


def image_input(key: str, dataset: str, opening: tuple[int, str]) -> ChosenImage | None:
    """Test-set gallery, bundled sample photos or an upload; None (with a message) if nothing usable.

    Opens on the test set when ``dataset`` is there, else on the bundled photos, so a fresh clone
    with no datasets shows a result at once; ``opening`` is the test image index and sample photo it
    starts on."""
    known = dataset in data.DATASETS  # a model trained on your images has no test set here
    default = "Test set" if known and data.find_source(dataset, "test") is not None else "Sample photo"
    offered = ["Test set", "Sample photo", "Upload"] if known else ["Sample photo", "Upload"]
    source_key = f"{key}-source" if known else f"{key}-source-own"
    links.restore(source_key, "source", SOURCE_PARAMS.__getitem__, allowed=offered)
    source = st.segmented_control("Image source", offered, default=default, required=True, key=source_key)
    links.record(source={v: k for k, v in SOURCE_PARAMS.items()}[source])
    if source != "Test set":
        links.record(image=None, cls=None)
    if source != "Sample photo":
        links.record(photo=None)
    if source == "Upload":
        upload = st.file_uploader("Upload an image", type=UPLOAD_TYPES, key=f"{key}-upload",
                                  help=f"{images.SUPPORTED}, up to {images.MAX_BYTES / 2**20:.0f} MB and "
                                       f"{images.MAX_PIXELS / 1e6:.0f} megapixels.")
        if upload is None:
            st.info("Choose an image file to upload.", icon=":material/upload:")
            return None
        try:
            payload = upload.getvalue()
            digest = memo.digest(payload)
            return ChosenImage(decoded_upload(payload, digest), upload.name, source="upload", key=f"upload:{digest}")
        except images.ImageError as error:
            st.error(f"{upload.name}: {error}", icon=":material/broken_image:")
            return None
    if source == "Sample photo":
        links.restore(f"{key}-sample", "photo", allowed=images.SAMPLE_PHOTOS)
        st.session_state.setdefault(f"{key}-sample", opening[1])  # through the state, which a link may have set
        name = st.selectbox("Sample photo", list(images.SAMPLE_PHOTOS), key=f"{key}-sample")
        links.record(photo=name)
        return ChosenImage(images.sample_photo(name), f"{name} (scikit-image sample photo)", source="sample photo",
                           key=f"sample:{name}")
    try:
        testset = test_set(dataset)
    except data.DatasetNotFoundError as error:
        st.warning(f"{error}\n\nOr press **Get the datasets** on the Home page.", icon=":material/folder_off:")
        return None
    left, right = st.columns([2, 1])
    links.restore(f"{key}-class", "cls", allowed=testset.classes)
    choice = left.selectbox("Class", ["any class", *testset.classes], key=f"{key}-class")
    index_key = f"{key}-index"
    links.restore(index_key, "image", int, within=(0, len(testset) - 1))
    if index_key not in st.session_state:
        st.session_state[index_key] = min(opening[0], len(testset) - 1)
    if right.button("Random image", icon=":material/shuffle:", key=f"{key}-random", width="stretch"):
        st.session_state[index_key] = random.choice(testset.indices_of(None if choice == "any class" else choice))
    index = int(st.number_input("Test image #", 0, len(testset) - 1, key=index_key))
    links.record(image=index, cls=None if choice == "any class" else choice)
    label = int(testset.labels[index])
    return ChosenImage(images.to_rgb(testset.picture(index)), f"test image #{index}: {testset.classes[label]}", label,
                       index, key=f"{dataset}:test:{index}")


def decoded_upload(payload: bytes, digest: str) -> Image.Image:
    """``payload`` decoded once per session: a 40-megapixel upload takes seconds to decode, and every widget
    change reruns the page. One entry, so a visitor holds at most one decoded upload (8-bit RGB)."""
    cache = st.session_state.setdefault("decoded-upload", memo.ResultCache(max_entries=1))
    image = cache.get(digest)
    if image is None:
        image = images.load_image(payload)
        cache.put(digest, image)
    return image


def explain_model(model, meta: dict, in_channels: int) -> None:
    """The "How this model works" body: the architecture's summary, a layer table generated from the model,
    its size and the command that trained it."""
    arch = models.get_architecture(meta["architecture"])
    st.markdown(f"**{arch.title}**. {arch.summary}")
    spec = data.DATASETS.get(meta["dataset"])
    side = spec.size if spec else 32  # the shapes it was trained at: 28 x 28 for MNIST models
    weights = Path(meta["path"])
    st.dataframe(layers_of(str(weights), weights.stat().st_mtime, in_channels, side, model), hide_index=True,
                 height=300)
    st.caption(f"{meta['num_params']:,} parameters. Trained with: `{meta['recipe'].get('command', 'unknown')}`")
    model_downloads(model, meta)


@st.cache_data(show_spinner=False, max_entries=32)
def layers_of(path: str, modified: float, in_channels: int, side: int, _model) -> pd.DataFrame:
    """The layer table of the checkpoint at ``path`` as saved at ``modified``: a forward pass with hooks, made
    once per checkpoint for every visitor rather than on every rerun of the page below the expander."""
    return pd.DataFrame(layer_table(_model, torch.zeros(1, in_channels, side, side)))


def model_downloads(model, meta: dict) -> None:
    """Take the model away: its weights, its sidecar, and an ONNX export made when asked for."""
    weights = Path(meta["path"])
    modified = weights.stat().st_mtime
    row = st.columns(3)
    row[0].download_button("Weights (.safetensors)", weights.read_bytes, file_name=weights.name,
                           mime="application/octet-stream", on_click="ignore", icon=":material/download:",
                           key=f"download-weights-{meta['name']}")
    row[1].download_button("Sidecar (.json)", weights.with_suffix(".json").read_bytes,
                           file_name=weights.with_suffix(".json").name, mime="application/json", on_click="ignore",
                           icon=":material/download:", key=f"download-sidecar-{meta['name']}")
    row[2].download_button("ONNX export", lambda: onnx_file(str(weights), modified),
                           file_name=f"{weights.stem}.onnx", mime="application/octet-stream", on_click="ignore",
                           icon=":material/download:", key=f"download-onnx-{meta['name']}",
                           help="Made when you click (10 to 20 seconds). The same as "
                                f"`python -m core.export {meta['name']} --out {weights.stem}.onnx`.")
    st.caption(f"ONNX: {export.model_input(model, meta).describe()}.")


@st.cache_data(show_spinner=False, max_entries=4)
def onnx_file(path: str, modified: float) -> bytes:
    """One checkpoint version's ONNX export, kept for the next visitor who asks."""
    return export.onnx_bytes(path)


def comparison(before: Image.Image, after: Image.Image, before_label: str, after_label: str) -> None:
    """A before/after view whose divider is dragged in the browser, without a rerun per step."""
    st.iframe(images.comparison_html(before, after, before_label, after_label), height="content")
