"""Home: what CIFAR Lab does, the device, the datasets found and the installed checkpoints."""

import pandas as pd
import streamlit as st

from core import checkpoints, data, devices
from pages import ensure_routed

ensure_routed()

st.title("CIFAR Lab")
st.markdown(
    "Deep learning on small images, measured. Every model here is trained by this project's own "
    "trainer, and every number is measured on the full test set by a script in `bench/`.\n\n"
    "- **Classify**: name the CIFAR-10 class of a test image, a sample photo or your own upload, with "
    "class probabilities, a saliency map and a full test-set view.\n"
    "- **Denoise**: add noise of a chosen kind and strength, remove it with a trained model or a classical "
    "baseline (median, BM3D), and compare PSNR and SSIM side by side.\n"
    "- **Colorize**: give a colorizer only the grey version of an image and compare its colours with the "
    "original (PSNR, SSIM, CIEDE2000, colourfulness).\n"
    "- **Train**: train any model (classifiers, denoisers, colorizers) in the browser and watch its "
    "curves live; the result is usable on the other pages at once."
)

st.subheader("Device")
st.write(f"Running on **{devices.describe()}**.")

st.subheader("Datasets")
status = data.dataset_status()
st.dataframe(
    pd.DataFrame([{"dataset": r["title"], "split": r["split"], "found": r["found"],
                   "where": r["source"] if r["found"] else "missing"} for r in status]),
    hide_index=True,
    width="stretch",
)
missing = {r["dataset"]: r["source"] for r in status if not r["found"]}
for message in missing.values():
    st.warning(message, icon=":material/folder_off:")

st.subheader("Checkpoints")
metas, problems = checkpoints.scan_checkpoints()
if metas:
    st.dataframe(pd.DataFrame([checkpoints.summary_row(m) for m in metas]), hide_index=True, width="stretch")
else:
    st.info(
        "No checkpoints are installed yet. Shipped checkpoints live in `checkpoints/`; "
        "models you train on the Train page appear here as soon as they finish.",
        icon=":material/inventory_2:",
    )
for problem in problems:
    st.warning(f"Skipped {problem.path.name}: {problem.message}", icon=":material/warning:")
