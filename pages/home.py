"""Home: what CIFAR Lab does, the device, the datasets (and a button that gets the missing ones), the checkpoints."""

import pandas as pd
import streamlit as st

from core import checkpoints, data, devices, display, download, paths
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
missing = list(dict.fromkeys(r["dataset"] for r in status if not r["found"]))
fetched = st.session_state.pop("home-downloaded", None)
if fetched:
    st.success(f"Downloaded {', '.join(data.DATASETS[n].title for n in fetched)}: every page can use them now.",
               icon=":material/check_circle:")
if missing:
    st.markdown(
        f"Missing: {download.describe_sizes(missing)}. **Get the datasets** downloads them from their official "
        f"sites into `{paths.data_root().resolve()}` (the `CIFAR_LAB_DATA` folder) and checks every file's "
        "MD5 checksum; `make data` does the same from a shell. Until then the pages use the bundled sample photos."
    )
    offline = False
    if st.button("Get the datasets", icon=":material/download:", key="home-get-datasets"):
        bar = st.progress(0.0, text="Connecting...")

        def show(what: str, done: int, total: int) -> None:
            text = f"{what}..." if what.startswith("Unpacking") else \
                f"Downloading {what}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"
            bar.progress(min(1.0, done / total) if total else 1.0, text=text)

        try:
            st.session_state["home-downloaded"] = download.download_datasets(missing, progress=show)
        except download.OfflineError:
            offline = True
            st.warning(download.OFFLINE_MESSAGE, icon=":material/wifi_off:")
        except download.DownloadError as error:
            st.error(f"The download failed: {error}", icon=":material/error:")
        else:
            st.rerun()  # the table above should show the new datasets
        finally:
            bar.empty()
    if offline:
        st.markdown("To get them by hand on a machine with internet:\n\n"
                    + "\n".join(f"- {data.how_to_get(name)}" for name in missing))
    else:
        with st.expander("Or get them by hand"):
            st.markdown("\n".join(f"- {data.how_to_get(name)}" for name in missing))

st.subheader("Checkpoints")
metas, problems = checkpoints.scan_checkpoints()
if metas:
    st.dataframe(pd.DataFrame([display.summary_row(m) for m in metas]), hide_index=True, width="stretch")
else:
    st.info(
        "No checkpoints are installed yet. Shipped checkpoints live in `checkpoints/`; "
        "models you train on the Train page appear here as soon as they finish.",
        icon=":material/inventory_2:",
    )
for problem in problems:
    st.warning(f"Skipped {problem.path.name}: {problem.message}", icon=":material/warning:")
