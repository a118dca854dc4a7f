"""The app's pages, one Streamlit script each, and the router that ``app.py`` runs."""

from pathlib import Path

import streamlit as st

from core import warmup

_HERE = Path(__file__).resolve().parent


def navigate() -> None:
    """Set the page up and run the page the visitor asked for."""
    warmup.freeze_imports()  # the first run in this process loads core for every page; see core.warmup
    st.set_page_config(page_title="CIFAR Lab", page_icon=":material/science:", layout="wide")
    pages = [
        st.Page(_HERE / "home.py", title="Home", icon=":material/home:", default=True),
        st.Page(_HERE / "classify.py", title="Classify", icon=":material/category:"),
        st.Page(_HERE / "denoise.py", title="Denoise", icon=":material/auto_fix_high:"),
        st.Page(_HERE / "colorize.py", title="Colorize", icon=":material/palette:"),
        st.Page(_HERE / "train.py", title="Train", icon=":material/model_training:"),
    ]
    st.navigation(pages).run()


def ensure_routed() -> None:
    """Route a request that reached a page without going through ``app.py``.

    Streamlit serves a folder named ``pages/`` beside the entry script in its legacy
    multipage mode until the first ``st.navigation`` call in the process, so a
    visitor whose first request is a deep link (``/train``) on a fresh server would
    get the page without the app's router and settings. Running the router here,
    in the same script run (so a pressed button stays pressed), then stopping,
    serves the page as ``app.py`` would.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        navigate()
        st.stop()
