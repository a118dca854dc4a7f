"""Colorize: a grey image back to colour, measured against the original when there is one."""


from pathlib import Path

import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from core import checkpoints, colorize, display, hints, images, memo, showcase
from pages import ensure_routed
from pages.shared import comparison, explain_model, image_input, links, model_of, pick_checkpoint

ensure_routed()

st.title("Colorize")
st.markdown(
    "Give a colorizer only the grey version of an image (its BT.601 lightness) and let it bring the colour back. "
    "A colour image is turned grey first, so the result can be compared with the original; a grey image is "
    "colorized as it is."
)

source_column, settings_column = st.columns([1, 1], gap="large")
with source_column:
    chosen = image_input("colorize", "cifar10", showcase.IMAGES["colorize"])
with settings_column:
    meta = pick_checkpoint("colorization", key="colorize-model")
    if meta is None:
        st.warning("No colorization checkpoint is installed. Train one on the **Train** page and it appears here.",
                   icon=":material/palette:")
    hinted = meta is not None and checkpoints.takes_hints(meta)
    # Moving between a plain and a hint model puts the size back to the new kind's best: one right for the
    # other kind would stay behind otherwise.
    if st.session_state.get("colorize-side-for-hints", hinted) != hinted:
        st.session_state["colorize-working-side"] = colorize.default_working_side(hinted)
    st.session_state["colorize-side-for-hints"] = hinted
    links.restore("colorize-working-side", "size", int, within=(32, 256))
    working_side = st.slider(
        "Working size (pixels, longer side)", 32, 256, colorize.default_working_side(hinted), step=16,
        key="colorize-working-side",
        help="A large photo's colour is predicted at this size and spread over the full-resolution lightness. "
             "The models learned on 32x32 images, so objects should span a few dozen pixels here; a model "
             "guided by hints opens finer, where each hint's colour stops closer to the edges of its region.")
    if meta is not None and not hinted:
        st.caption("To guide the colours with clicks, pick a model that takes colour hints.")

if chosen is None or meta is None:
    st.stop()

given = colorize.prepare(chosen.image)
if given.note:
    st.info(given.note, icon=":material/photo_size_select_large:")
model, meta = model_of(meta)
image_key = chosen.key or memo.digest(given.luma.numpy().tobytes())
board = st.session_state.setdefault("colorize-hints", hints.HintBoard())
board.show(image_key)
if "hints" in st.query_params and not st.session_state.get("colorize-hints-from-link"):
    st.session_state["colorize-hints-from-link"] = True  # once: after that the hints are the visitor's
    try:
        board.hints = hints.from_text(st.query_params["hints"])
    except ValueError:
        st.toast("The link's colour hints could not be read; starting without them.", icon=":material/link_off:")


def place_hints() -> None:
    """Click-to-colour: a click on the grey image adds a hint; the colour comes from the picker or the original."""
    st.divider()
    st.subheader("Colour hints")
    st.caption("Click (or tap) the grey image where you know the colour: the model spreads each hint over the "
               "region it belongs to. Hints are placed on the image the model sees (its working size), so one "
               "click colours a patch, not a pixel.")
    picture, controls = st.columns([3, 2], gap="large")
    with controls:
        true_colours = given.original is not None and st.toggle(
            "Take each hint's colour from the original", value=True, key="colorize-true-colour",
            help="Shows what the model does with correct colours. Switch off to paint your own.")
        picked = st.color_picker("Hint colour", "#2a9d8f", key="colorize-hint-colour", disabled=true_colours)
    working = colorize.working_shape(*given.luma.shape[-2:], working_side)
    colour = (lambda x, y: hints.true_colour(given.original, x, y, *working)) if true_colours \
        else hints.Hint.from_hex(0, 0, picked).rgb
    board.click(st.session_state.get("colorize-click"), colour)
    with controls:
        undo, clear = st.columns(2)
        undo.button("Undo", on_click=board.undo, disabled=not board.hints, icon=":material/undo:",
                    key="colorize-hint-undo", width="stretch")
        clear.button("Clear", on_click=board.clear, disabled=not board.hints, icon=":material/delete:",
                     key="colorize-hint-clear", width="stretch")
        count = len(board.hints)
        st.markdown(f"**{count} hint{'s' * (count != 1)}** placed." if count else "No hints yet: the model "
                    "colours the image on its own.")
    with picture:
        marked = hints.draw(images.for_clicking(images.to_pil(given.luma)), board.hints)
        streamlit_image_coordinates(marked, key="colorize-click", width="stretch", cursor="crosshair",
                                    image_format="JPEG", jpeg_quality=90)


if model.takes_hints:
    place_hints()
links.record(size=working_side, hints=hints.to_text(board.hints) if model.takes_hints and board.hints else None)
links.share_link(upload=chosen.source == "upload")
# Kept per visitor as 8-bit images, a few at most, so the before/after slider does not colorize again.
placed = list(board.hints) if model.takes_hints else []
results_cache = st.session_state.setdefault("colorize-results", memo.ResultCache(max_entries=4))
result_key = (image_key, meta["path"], Path(meta["path"]).stat().st_mtime, working_side, tuple(placed))
with st.spinner("Colorizing..."):
    result = results_cache.get_or_compute(
        result_key, lambda: colorize.colorize_one(model, given, working_side, placed))


gray_image = images.shown(given.luma)
st.divider()
if given.original is None:
    left, right = st.columns(2)
    left.image(gray_image, caption="Your grey image", width="stretch")
    right.image(images.shown(result.image), caption=f"Colorized by {meta['name']} (no colour original: no metrics)",
                width="stretch")
else:
    columns = st.columns(3)
    columns[0].image(gray_image, caption="Grey input (what the model sees)", width="stretch")
    columns[1].image(images.shown(result.image), caption=f"Colorized: {meta['name']}", width="stretch")
    columns[2].image(images.shown(given.original), caption=f"Original: {chosen.caption}", width="stretch")
    numbers = st.columns(5)
    numbers[0].metric("PSNR", f"{result.psnr:.2f} dB", delta=f"{result.psnr - result.gray_psnr:+.2f} dB vs grey",
                      help="Against the original; the grey image itself scores the 'vs grey' baseline.")
    numbers[1].metric("SSIM", f"{result.ssim:.3f}")
    numbers[2].metric("CIEDE2000", f"{result.delta_e:.1f}", help="Mean perceptual colour difference "
                      "from the original (lower is closer; about 2 is just noticeable).")
    numbers[3].metric("Colourfulness", f"{result.colorfulness:.0f} / {result.original_colorfulness:.0f}",
                      help="The result's, then the original's (Hasler and Suesstrunk's measure): 0 is grey, "
                           "natural photos score roughly 20 to 80.")
    numbers[4].metric("Time", f"{result.seconds * 1000:.0f} ms")

st.caption("Before / after: drag across the image to compare the grey input (left) with the colorized result "
           "(right).")
comparison(gray_image, images.shown(result.image), "grey input", "colorized")
st.download_button("Download the colorized image (PNG)", images.download_png(result.image),
                   file_name=display.result_file_name(chosen.caption, "colorized"), mime="image/png",
                   on_click="ignore", icon=":material/download:", key="colorize-download")

with st.expander("How this model works"):
    if meta["arch_args"].get("binned"):
        st.markdown(f"This checkpoint decodes its colour distribution at temperature "
                    f"{meta['arch_args'].get('temperature', 1.0):g}.")
    explain_model(model, meta, 1)
