"""Home: what CIFAR Lab does, the device, the datasets (and a button that gets the missing ones), the checkpoints."""

import pandas as pd
import streamlit as st

from core import checkpoints, data, devices, display, download, paths, showcase
from pages import PAGES, ensure_routed, page_link_target
from pages.shared import load_model

ensure_routed()

st.title("CIFAR Lab")
st.markdown(
    "Deep learning on small images, measured: classify CIFAR-10 images and see where the model looked, remove "
    "noise, bring colour back to grey pictures, and train your own models in the browser. Every model here was "
    "trained by this project's own trainer, and every number is measured by a script in `bench/`. Live, by the "
    "shipped models:"
)

@st.cache_data(show_spinner="Running the shipped models once...", max_entries=2)
def live_examples(shipped: tuple[tuple[str, float], ...], data_root: str, has_cifar: bool) -> list[showcase.Example]:
    # Keyed by the shipped checkpoints' files and the data: computed once per server (and again once the
    # datasets arrive), not per visitor.
    return showcase.examples(lambda path: load_model(path, dict(shipped).get(path, 0.0)))


shipped_files = tuple(sorted((str(p), p.stat().st_mtime) for p in paths.SHIPPED_CHECKPOINTS.glob("*.safetensors")))
try:
    examples = live_examples(shipped_files, str(paths.data_root().resolve()),
                             data.find_source("cifar10", "test") is not None)
except (checkpoints.CheckpointError, OSError) as error:  # a shipped file damaged: the rest of Home still works
    examples = []
    st.warning(f"The live examples could not be made: {error}", icon=":material/warning:")
if examples:
    for column, example in zip(st.columns(len(examples)), examples, strict=True):
        _, title, icon = PAGES[example.page]
        with column.container(border=True):
            st.markdown(f"**{title}** · `{example.checkpoint}`")
            for picture_column, (picture, caption) in zip(st.columns(len(example.pictures)), example.pictures,
                                                          strict=True):
                picture_column.image(picture, caption=caption, width="stretch")
            st.markdown(example.summary)
            st.page_link(page_link_target(example.page), label=f"Open {title} on this image", icon=icon,
                         query_params=example.query)
    st.caption("Live: the shipped models run on these images when the server starts. One image each, picked to "
               "show what a page does; the models' averages over the full test sets are in the table below.")
# A short label: a link's text is cut, not wrapped, on a phone's narrow screen.
st.page_link(page_link_target("train"), label="Train a model in the browser and watch it learn", icon=PAGES["train"][2])
st.caption("A classifier, a denoiser or a colorizer on the datasets below, or a classifier on your own images.")

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
st.caption(f"Under the data folder `{paths.data_root()}` (set `CIFAR_LAB_DATA` to read another).")
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
            fraction, text = download.progress_line(what, done, total)
            bar.progress(fraction, text=text)

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
