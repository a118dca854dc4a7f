"""Denoise: add noise to an image, take it out with a model or a classical baseline, and measure."""

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from core import checkpoints, classify, data, denoise, display, images, memo, noise, showcase
from pages import ensure_routed
from pages.shared import comparison, explain_model, image_input, links, model_of

ensure_routed()

DATASETS = ("cifar10", "mnist", "fashion_mnist")
STEPS = {"gaussian": 1.0, "salt_pepper": 0.01, "salt_pepper_channels": 0.01, "poisson": 1.0, "speckle": 0.01}
# Results kept per visitor, as 8-bit images: at most 4 x 12 MB for 4-megapixel ones (compare mode's list of
# results is one entry, so its bytes are capped too, always keeping the newest).
MEMO_SIZE = 4
MEMO_BYTES = MEMO_SIZE * denoise.MAX_PIXELS * 3

st.title("Denoise")
st.markdown(
    "Add noise of a chosen kind and strength to an image, remove it with a trained model or a classical "
    "baseline, and measure how close the result comes to the clean original (PSNR in dB with peak 1, and SSIM)."
)

metas = checkpoints.list_checkpoints("denoising")
by_path = {meta["path"]: meta for meta in metas}
options = [*by_path, *denoise.BASELINES]


def option_label(option: str) -> str:
    return display.checkpoint_label(by_path[option]) if option in by_path else denoise.BASELINES[option].title


results_cache = st.session_state.setdefault("denoise-results", memo.ResultCache(MEMO_SIZE, MEMO_BYTES))


def follow_default(spec: noise.NoiseSpec, clean: torch.Tensor, test_dataset: str | None) -> None:
    """Open on the denoiser measured best for this noise; a new kind of noise brings its own default, and a
    new strength moves the choice along unless the visitor picked a denoiser of their own."""
    best = denoise.default_method(metas, spec, clean.shape[0], test_dataset, clean.shape[1] * clean.shape[2])
    state = st.session_state
    followed = state.get("denoise-method-default")  # (kind, method) this page chose last time
    if (state.get("denoise-method") not in options or followed is None or followed[0] != spec.kind
            or state["denoise-method"] == followed[1]):
        state["denoise-method"] = best
    state["denoise-method-default"] = (spec.kind, best)


source_column, settings_column = st.columns([1, 1], gap="large")
with source_column:
    links.restore("denoise-dataset", "data", allowed=DATASETS)
    dataset = st.selectbox("Test images from", DATASETS, format_func=lambda name: data.DATASETS[name].title,
                           key="denoise-dataset")
    chosen = image_input("denoise", dataset, showcase.IMAGES["denoise"])
clean = None
with settings_column:
    already_noisy = chosen is not None and chosen.source == "upload" and st.checkbox(
        "My photo is already noisy: denoise it as it is", key="denoise-already-noisy",
        help="There is no clean original then, so the result is shown without PSNR or SSIM; the noise level is "
             "estimated from the photo.")
    row = st.columns(2)
    links.restore("denoise-kind", "noise", allowed=noise.KINDS)
    kind = row[0].selectbox("Noise", noise.KINDS, format_func=noise.TITLES.get, key="denoise-kind",
                            disabled=already_noisy)
    low, high, default = noise.RANGES[kind]
    links.restore(f"denoise-level-{kind}", "level", float, within=(low, high))
    level = row[1].slider("Strength", float(low), float(high), float(default), step=STEPS[kind],
                          key=f"denoise-level-{kind}", disabled=already_noisy,
                          help="Gaussian: sigma on the 0-255 scale. Salt and pepper: fraction of pixels (or of "
                               "channel values) hit. Poisson: photons at full white (lower is noisier). Speckle: "
                               "relative sigma.")
    links.restore("denoise-seed", "seed", int, within=(0, 2**31 - 1))
    seed = int(st.number_input("Noise seed", 0, 2**31 - 1, 0, key="denoise-seed", disabled=already_noisy))
    by_name = {meta["name"]: path for path, meta in by_path.items()} | {name: name for name in denoise.BASELINES}
    if links.restore("denoise-method", "denoiser", by_name.__getitem__, allowed=options):
        st.session_state["denoise-method-default"] = (kind, None)  # the link's choice, not this page's default
    spec = noise.NoiseSpec(kind, level)
    if chosen is not None:
        clean, resized_note = denoise.prepare(chosen.image)
        if already_noisy:
            photo_key = chosen.key or memo.digest(clean.numpy().tobytes())
            estimated = st.session_state.get("denoise-sigma")  # (photo, sigma): only the latest photo's
            if estimated is None or estimated[0] != photo_key:
                estimated = st.session_state["denoise-sigma"] = (photo_key, denoise.estimate_noise_sigma(clean))
            sigma = estimated[1]
            spec = noise.NoiseSpec("gaussian", round(sigma, 1))
            st.caption(f"Estimated noise in your photo: **σ ≈ {sigma:.1f}** on the 0-255 scale (a wavelet "
                       "estimate, as Gaussian noise; a clean photo reads a few units). BM3D is given this level.")
        follow_default(spec, clean, dataset if chosen.source == "test set" else None)
    method = st.selectbox("Denoiser", options, format_func=option_label, key="denoise-method",
                          help="Opens on the denoiser measured best for the chosen noise (never one trained for "
                               "another kind); pick any other to compare.")
    strength = st.slider("Denoising strength", 0.0, 1.0, 1.0, 0.05, key="denoise-strength",
                         help="From your photo as it is (0) to the denoiser's full result (1): gentle denoising "
                              "keeps more texture.") if already_noisy else 1.0
    links.restore("denoise-compare", "compare", links.flag)
    compare = st.toggle("Compare every denoiser on this image", key="denoise-compare")
    links.record(data=dataset, noise=kind, level=level, seed=seed, compare=compare,
                 denoiser=by_path[method]["name"] if method in by_path else method)
    links.share_link(upload=chosen is not None and chosen.source == "upload")
    if not metas:
        st.caption("No denoising checkpoint is installed: only the classical baselines are offered. Train one on "
                   "the **Train** page and it appears here.")

if chosen is None or clean is None:
    st.stop()

if resized_note:
    st.info(resized_note, icon=":material/photo_size_select_large:")
noisy = clean if already_noisy else denoise.make_noisy(clean, spec, seed)
reference = None if already_noisy else clean
pixels = clean.shape[1] * clean.shape[2]


# Which noisy image this is, without hashing its pixels on every rerun: the image's identity and the noise.
noisy_key = (chosen.key or memo.digest(noisy.numpy().tobytes()), already_noisy,
             spec.level if already_noisy else (kind, level, seed))


def method_key(option: str) -> tuple:
    """A method and, for a checkpoint, its file's version: a retrained model must not show the old result."""
    return option, Path(option).stat().st_mtime if option in by_path else 0


def run(option: str) -> denoise.Denoised:
    """Denoise with ``option``, remembered per image, noise and method so sliders elsewhere stay quick."""
    return results_cache.get_or_compute((noisy_key, method_key(option)), lambda: compute(option))


def compute(option: str) -> denoise.Denoised:
    """Denoise with ``option``, with a progress bar for images of several tiles."""
    if option in by_path:
        model, meta = model_of(by_path[option])
        bar = st.progress(0.0, text=f"Denoising with {meta['name']}...") if pixels > denoise.TILE**2 else None
        result = denoise.denoise_one(option, noisy, model=model, title=meta["name"], clean=reference,
                                     progress=(lambda done: bar.progress(done, text=f"Tiles: {done:.0%}"))
                                     if bar else None)
        if bar:
            bar.empty()
    else:
        with st.spinner(f"Running {denoise.BASELINES[option].title}..."):
            result = denoise.denoise_one(option, noisy, spec=spec, clean=reference)
    return result


noisy_psnr, noisy_ssim = denoise.score(noisy, reference)
st.divider()

if compare:
    runnable, skipped = denoise.comparison_plan(metas, spec, clean.shape[0],
                                                dataset if chosen.source == "test set" else None, pixels)
    results = results_cache.get_or_compute(("compare", noisy_key, tuple(map(method_key, runnable))),
                                           lambda: [compute(option) for option in runnable])
    columns = st.columns(len(results) + 1)
    columns[0].image(images.shown(noisy), caption="Noisy input" if reference is None else
                     f"Noisy: {spec.label()} · {noisy_psnr:.2f} dB · SSIM {noisy_ssim:.3f}", width="stretch")
    for column, result in zip(columns[1:], results, strict=True):
        metric = "" if result.psnr is None else f" · {result.psnr:.2f} dB · SSIM {result.ssim:.3f}"
        column.image(images.shown(result.image), caption=f"{result.title}{metric} · {result.seconds * 1000:.0f} ms",
                     width="stretch")
    st.dataframe(pd.DataFrame(denoise.comparison_rows(results, noisy_psnr)), hide_index=True, column_config={
        "PSNR (dB)": st.column_config.NumberColumn(format="%.2f"),
        "gain (dB)": st.column_config.NumberColumn(format="%+.2f"),
        "SSIM": st.column_config.NumberColumn(format="%.3f"),
        "time (ms)": st.column_config.NumberColumn(format="%.0f"),
    })
    if skipped:
        st.caption("Not run: " + " ".join(skipped))
    st.stop()

reason = denoise.unavailable_reason(method, spec, pixels)
if reason:
    # The reason names what is missing (a Gaussian level, or a smaller image); the way out is the same.
    st.warning(f"{reason} Choose another denoiser.", icon=":material/block:")
    st.stop()
result = run(method)
if strength < 1.0:
    result = dataclasses.replace(result, image=denoise.blend(noisy, result.image, strength))

if reference is None:
    left, right = st.columns(2)
    left.image(images.shown(noisy), caption="Your photo, as uploaded", width="stretch")
    right.image(images.shown(result.image), caption=f"Denoised by {result.title} at strength {strength:.0%} (no clean "
                "reference: no metrics)", width="stretch")
else:
    columns = st.columns(3)
    columns[0].image(images.shown(clean), caption=f"Clean: {chosen.caption}", width="stretch")
    columns[1].image(images.shown(noisy), caption=f"Noisy: {spec.label()}", width="stretch")
    columns[2].image(images.shown(result.image), caption=f"Denoised: {result.title}", width="stretch")
    numbers = st.columns(5)
    numbers[0].metric("Noisy PSNR", f"{noisy_psnr:.2f} dB")
    numbers[1].metric("Noisy SSIM", f"{noisy_ssim:.3f}")
    numbers[2].metric("Denoised PSNR", f"{result.psnr:.2f} dB", delta=f"{result.psnr - noisy_psnr:+.2f} dB")
    numbers[3].metric("Denoised SSIM", f"{result.ssim:.3f}", delta=f"{result.ssim - noisy_ssim:+.3f}")
    numbers[4].metric("Time", f"{result.seconds * 1000:.0f} ms")
    judge = checkpoints.best_classifier_of(dataset if chosen.source == "test set" else "cifar10")
    if judge is not None:  # does denoising give recognition back?
        classifier, judge = model_of(judge)
        said = classify.verdicts(classifier, [clean, noisy, result.image], checkpoints.class_names(judge),
                                 classify.InputFormat.of(judge), judge)
        for column, verdict, what in zip(columns, said, ("clean", "noisy", "denoised"), strict=True):
            column.markdown(f"{judge['name']} on the {what} image: {classify.verdict_text(*verdict)}")

st.caption("Before / after: drag across the image to compare the noisy input (left) with the result (right).")
comparison(images.shown(noisy), images.shown(result.image), "noisy", "denoised")
st.download_button("Download the denoised image (PNG)", images.download_png(result.image),
                   file_name=display.result_file_name(chosen.caption, "denoised"),
                   mime="image/png", on_click="ignore", icon=":material/download:", key="denoise-download")

with st.expander("How this model works"):
    if method in by_path:
        model, meta = model_of(by_path[method])
        explain_model(model, meta, meta["arch_args"].get("in_channels", 3))
    else:
        baseline = denoise.BASELINES[method]
        st.markdown(f"**{baseline.title}**. {baseline.summary} No training: it is a fixed algorithm.")
