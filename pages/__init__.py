"""The app's pages, one Streamlit script each, and the router that ``app.py`` runs."""

from pathlib import Path

import streamlit as st

from core import warmup

_HERE = Path(__file__).resolve().parent
# Each page: its script, title and icon. The router and Home's links into the pages read the same entries.
PAGES = {
    "home": ("home.py", "Home", ":material/home:"),
    "classify": ("classify.py", "Classify", ":material/category:"),
    "denoise": ("denoise.py", "Denoise", ":material/auto_fix_high:"),
    "colorize": ("colorize.py", "Colorize", ":material/palette:"),
    "train": ("train.py", "Train", ":material/model_training:"),
}


def page_link_target(page: str) -> str:
    """A page's script as ``st.page_link`` takes it: relative to the app's root, where ``app.py`` is."""
    return f"pages/{PAGES[page][0]}"


def navigate() -> None:
    """Set the page up and run the page the visitor asked for."""
    warmup.freeze_imports()  # the first run in this process loads core for every page; see core.warmup
    st.set_page_config(page_title="CIFAR Lab", page_icon=":material/science:", layout="wide")
    pages = [st.Page(_HERE / script, title=title, icon=icon, default=page == "home")
             for page, (script, title, icon) in PAGES.items()]
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
