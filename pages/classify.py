"""Classify: a CIFAR-10 class for any image, with probabilities, saliency and a test-set view."""

import os
import time

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from core import checkpoints, classify, data, denoise, images, inside, noise, paths, showcase
from core.charts import confusion_cell, confusion_figure, probability_bars, probe_figure, robustness_figure
from pages import ensure_routed
from pages.shared import explain_model, image_input, links, model_of, pick_checkpoint, test_set

ensure_routed()

st.title("Classify")
st.markdown(
    "Which class is in the picture? The CIFAR-10 models know ten; a model trained on the Train page's "
    "\"Your images\" knows yours. Pick a test image, a sample photo or upload your own: the model sees it as a "
    "32 x 32 image, shown next to the original."
)

meta = pick_checkpoint("classification", key="classify-model")
if meta is None:
    st.info(
        "No classification checkpoint is installed yet. Train one on the **Train** page (the Quick preset "
        "takes about ten minutes on a CPU) and it appears here as soon as it finishes.", icon=":material/inventory_2:")
    st.stop()
model, meta = model_of(meta)
classes = checkpoints.class_names(meta)  # the checkpoint's own: digits for MNIST, yours for your images
fmt = classify.InputFormat.of(meta)  # grey 28 x 28 for MNIST models: what the model was trained on
note = classify.input_note(meta)
if note:
    st.info(note, icon=":material/filter_b_and_w:")
if "resnet18" not in {m["architecture"] for m in checkpoints.list_checkpoints("classification")}:
    st.caption("ResNet-18 (CIFAR form) ships as an architecture without a checkpoint: on two CPU cores it "
               "trains at about 80 minutes an epoch. Train it on the Train page where a GPU is available.")

# The gallery shows the checkpoint's own test set.
chosen = image_input("classify", meta["dataset"], showcase.IMAGES["classify"])
if chosen is None:
    st.stop()

links.restore("classify-tta", "tta", links.flag)
tta = st.toggle("Test-time augmentation (average over flips and 1-pixel shifts)", key="classify-tta")
links.restore("classify-testset", "testset", links.flag)
links.record(tta=tta, testset=st.session_state.get("classify-testset", False))
links.share_link(upload=chosen.source == "upload")


@st.cache_data(show_spinner=False, max_entries=512)
def prediction(path: str, modified: float, image_key: str, tta: bool, _image: Image.Image
               ) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Probabilities, familiarity, Grad-CAM and the seconds they took, kept for every visitor: a page opened
    again, or the same image asked for by another visitor, costs nothing (a few kB per entry)."""
    start = time.perf_counter()
    found, familiarity_ = classify.probabilities_and_familiarity(model, _image, tta=tta, fmt=fmt)
    heat_map = classify.saliency(model, _image, int(np.argmax(found)), fmt=fmt)
    return found, familiarity_, heat_map, time.perf_counter() - start


probabilities, familiarity, heat, elapsed = prediction(
    meta["path"], os.path.getmtime(meta["path"]), f"{paths.data_root().resolve()}|{chosen.key}", tta, chosen.image)
best = int(np.argmax(probabilities))

original, seen_column, saliency_column, right = st.columns([1, 1, 1, 2.2])
original.image(chosen.image, caption=chosen.caption, width="stretch")
seen = images.enlarged(classify.model_input(chosen.image, fmt))
seen_column.image(seen, caption=f"What the model sees ({fmt.size} x {fmt.size}{', grey' if fmt.channels == 1 else ''})",
                  width="stretch")
saliency_column.image(classify.overlay(chosen.image, heat, fmt=fmt), caption=f"Grad-CAM: where it looked for "
                      f"\"{classes[best]}\"", width="stretch")
with right:
    st.markdown(f"Prediction: {classify.prediction_text(probabilities, classes, chosen.label)}")
    if classify.is_unsure(familiarity, meta, tta):
        st.warning(classify.unsure_note(classes, data.title(meta["dataset"])), icon=":material/help:")
    st.plotly_chart(probability_bars(probabilities, classes), key="classify-bars", config={"displaylogo": False})
    st.caption(f"Prediction and saliency map in {elapsed * 1000:.0f} ms on this server's CPU.")

@st.cache_data(show_spinner=f"Fitting a linear probe per block ({inside.PAGE_PROBE_IMAGES:,} training and "
               f"{inside.PAGE_PROBE_IMAGES:,} test images)...", max_entries=8)
def measured_probes(path: str, modified: float, dataset: str) -> dict[str, float]:
    train, test, count = data.load_dataset(dataset, "train"), test_set(dataset), inside.PAGE_PROBE_IMAGES
    return inside.probe_accuracies(model, train.images[:count], train.labels[:count], test.images[:count],
                                   test.labels[:count])


def inside_view(model, meta: dict, image, fmt: classify.InputFormat, classes: list[str]) -> None:
    """Activation maps per block (channels ranked by mean activation, all reachable), the first layer's
    filters, the shape block by block, and how well each block's features already separate the classes."""
    views = inside.activations(model, image, fmt)
    shapes, filters = st.columns([1, 1.4])
    shapes.dataframe(inside.shape_table(model, views, fmt), hide_index=True)
    filters.image(inside.filters_image(inside.first_filters(model)),
                  caption="The first layer's filters, each stretched to its own range: what it looks for first")
    probes = meta.get("probes", {}).get("accuracy")
    if probes:
        st.plotly_chart(probe_figure(probes, 1 / len(classes)), key="classify-probes", config={"displaylogo": False})
        st.caption(f"A linear classifier on each block's features averaged over space, fitted on "
                   f"{meta['probes']['train_images']:,} training images, scored on {meta['probes']['test_images']:,} "
                   f"test images (`{meta['probes']['measured_by']}`).")
    elif meta["dataset"] in data.DATASETS and st.button("Measure which classes each block separates (linear probes)",
                                                        key="classify-probe"):
        try:
            probes = measured_probes(meta["path"], os.path.getmtime(meta["path"]), meta["dataset"])
            st.plotly_chart(probe_figure(probes, 1 / len(classes)), key="classify-probes",
                            config={"displaylogo": False})
        except data.DatasetNotFoundError as error:
            st.warning(str(error))
    for index, view in enumerate(views):
        channels, height, width = view.shape
        st.markdown(f"**{view.name}** ({view.kind}): {channels} channels of {height} x {width}")
        start = st.slider("From channel rank", 0, (channels - 1) // 16 * 16, 0, 16, key=f"classify-rank-{index}",
                          help="Channels ranked by their mean activation on this image; 16 shown at a time.") \
            if channels > 16 else 0
        st.image(inside.maps_image(view, start), caption=f"Channels ranked {start + 1} to "
                 f"{min(start + 16, channels)} of {channels} by mean activation (brighter: stronger)")


with st.expander("How this model works"):
    explain_model(model, meta, meta["arch_args"].get("in_channels", 3))

links.restore("classify-inside", "inside", links.flag)
if st.toggle("Inside the network: what every block makes of this image", key="classify-inside"):
    links.record(inside=True)
    inside_view(model, meta, chosen.image, fmt, classes)
else:
    links.record(inside=None)



def noise_trial(image, spec: noise.NoiseSpec, denoiser_name: str) -> None:
    """The image with the curves' noise and after their denoiser, and what this model says of each."""
    by_name = {m["name"]: m for m in checkpoints.list_checkpoints("denoising")}
    denoiser = model_of(by_name[denoiser_name])[0] if denoiser_name in by_name else None  # else the median filter
    clean = images.to_tensor(classify.model_input(image, fmt))[0]
    noisy, restored = denoise.noisy_and_restored(clean, spec, denoiser)
    said = classify.verdicts(model, [clean, noisy, restored], classes, fmt, meta)
    for column, picture, verdict, what in zip(
            st.columns(3), (clean, noisy, restored), said,
            ("as it is", spec.label(), f"denoised by {denoiser_name}"), strict=True):
        column.image(images.shown(picture, 128), width=128)
        column.markdown(f"{what}: {classify.verdict_text(*verdict)}")


robustness = meta.get("robustness")
if robustness:
    with st.expander("Noise versus recognition: its accuracy as noise grows, and with a denoiser in front"):
        kinds = list(robustness["curves"])
        kind = st.segmented_control("Noise", kinds, default=kinds[0], format_func=noise.TITLES.get, required=True,
                                    key="classify-robustness-kind")
        points = robustness["curves"][kind]
        level = st.select_slider("Put this noise on the image", [None, *(p["level"] for p in points)], None,
                                 format_func=lambda v: "none" if v is None else f"{v:g}", key=f"classify-noise-{kind}",
                                 help="At the model's input size, as the curves were measured; then the "
                                      "curves' denoiser cleans it.")
        st.plotly_chart(robustness_figure(points, noise.LEVEL_TITLES[kind], level),
                        key="classify-robustness", config={"displaylogo": False})
        if level is not None:
            noise_trial(chosen.image, noise.NoiseSpec(kind, level), points[-1]["denoiser"])
        st.caption(f"{robustness['images']:,} CIFAR-10 test images, noise seed {robustness['noise_seed']}; the "
                   f"denoiser is the one the Denoise page opens on for that noise (`{robustness['measured_by']}`).")

st.subheader("Test-set view")
if meta["dataset"] not in data.DATASETS:
    recorded = meta["metrics"].get("test_accuracy")
    scored = "" if recorded is None else f" It scored {recorded:.1%} on {meta.get('evaluated_on', 'its test images')}."
    st.info(f"Trained on your images ({', '.join(classes)}), so there is no test set here to browse.{scored}",
            icon=":material/photo_library:")
    st.stop()


@st.cache_data(show_spinner="Classifying all 10,000 test images (once per checkpoint)...", max_entries=8)
def test_results(path: str, modified: float, dataset: str) -> classify.TestSetResult:
    return classify.evaluate_test_set(model, test_set(dataset))


if st.toggle("Show accuracy, confusion matrix and mistakes on the full test set", key="classify-testset"):
    try:
        results = test_results(meta["path"], os.path.getmtime(meta["path"]), meta["dataset"])
    except data.DatasetNotFoundError as error:
        st.warning(str(error))
        st.stop()
    columns = st.columns(3)
    columns[0].metric("Test accuracy", f"{results.accuracy:.2%}")
    columns[1].metric("Errors", f"{results.errors:,}")
    recorded = meta["metrics"].get("test_accuracy")
    columns[2].metric("Recorded in the checkpoint", "–" if recorded is None else f"{recorded:.2%}")
    sureness = results.sure_and_unsure(meta)
    if sureness is not None:  # how far the "Unsure" warning can be trusted, on the images with known answers
        unsure_share, sure_accuracy, unsure_accuracy = sureness
        columns = st.columns(3)
        columns[0].metric("Unsure answers", f"{unsure_share:.1%}", help="Answers the page would call unsure: the "
                          "model responds to the image more weakly than to 95% of the test images.")
        columns[1].metric("Accuracy when sure", f"{sure_accuracy:.2%}")
        columns[2].metric("Accuracy when unsure", f"{unsure_accuracy:.2%}")
    matrix = results.confusion()
    event = st.plotly_chart(confusion_figure(matrix, results.classes), key="classify-confusion",
                            on_select="rerun", selection_mode="points", config={"displaylogo": False})
    per_class = pd.DataFrame({"class": results.classes, "accuracy": results.per_class_accuracy()})
    st.dataframe(per_class, hide_index=True, column_config={
        "accuracy": st.column_config.ProgressColumn("accuracy", format="percent", min_value=0, max_value=1)})
    # The pair shown: chosen in the two lists, which a click on a cell sets (on a touch screen the chart takes a
    # tap for a hover first, so the lists are the sure way there). They open on the commonest confusion.
    pair_keys = (f"classify-true-{meta['name']}", f"classify-predicted-{meta['name']}")
    points = event.selection.points if event and event.selection else []
    clicked = confusion_cell(points[0], len(results.classes)) if points else None
    if clicked is not None and clicked != st.session_state.get("classify-clicked-cell"):
        for key, index in zip(pair_keys, clicked, strict=True):
            st.session_state[key] = results.classes[index]
    st.session_state["classify-clicked-cell"] = clicked
    for key, index in zip(pair_keys, results.most_confused(), strict=True):
        st.session_state.setdefault(key, results.classes[index])
    left, right = st.columns(2)
    true_class = results.classes.index(left.selectbox("True class", results.classes, key=pair_keys[0]))
    predicted = results.classes.index(right.selectbox("Predicted as", results.classes, key=pair_keys[1]))
    indices = results.indices(true_class, predicted)
    what = "correctly classified" if true_class == predicted else f"predicted as {results.classes[predicted]}"
    st.markdown(f"**{len(indices)} {results.classes[true_class]} images {what}** "
                "(click a cell of the matrix, or choose the pair above)")
    testset = test_set(meta["dataset"])
    shown = indices[:24]
    if len(shown):
        # A row that wraps, where columns would stack on a phone's screen into one image per line.
        with st.container(horizontal=True):
            for index in shown:
                with st.container(width=84, gap=None):
                    st.image(testset.picture(index), width="stretch")
                    st.button(f"#{index}", key=f"classify-explain-{index}", type="tertiary",
                              help="Why? Its top 3 classes and where the model looked",
                              on_click=st.session_state.__setitem__, args=("classify-explain", int(index)))
        explained = st.session_state.get("classify-explain")
        if explained in shown:
            mistake = images.to_rgb(testset.picture(explained))
            probabilities = classify.probabilities(model, mistake, fmt=fmt)
            top = classify.top_classes(probabilities, classes, 3)
            st.markdown(f"**Test image #{explained}**, a {classes[int(testset.labels[explained])]}: "
                        + ", ".join(f"{name} {p:.1%}" for name, p in top))
            seen_column, heat_column, bars_column = st.columns([1, 1, 2])
            seen_column.image(images.enlarged(classify.model_input(mistake, fmt)), caption="What the model sees",
                              width="stretch")
            heat = classify.saliency(model, mistake, classes.index(top[0][0]), fmt=fmt)
            heat_column.image(classify.overlay(mistake, heat, fmt=fmt), width="stretch",
                              caption=f"Grad-CAM: where it looked for \"{top[0][0]}\"")
            bars_column.plotly_chart(probability_bars(np.array([p for _, p in top]), [n for n, _ in top]),
                                     key="classify-explain-bars", config={"displaylogo": False})
