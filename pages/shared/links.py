"""Page state in the URL: a link restores the view its sender saw.

A page calls ``restore`` for a widget before drawing it (only a browser session that has not set
that widget yet takes the link's value, so the link never fights the visitor), and ``record`` after
it, which keeps the value in ``st.query_params``. ``share_link`` shows the address to copy. A link
is typed by anyone: a value that does not parse or is not offered is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlencode

import streamlit as st


def flag(text: str) -> bool:
    """A link's boolean ("1" or "0")."""
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def restore(key: str, param: str, parse: Callable[[str], Any] = str, allowed: Collection | None = None,
            within: tuple[float, float] | None = None) -> bool:
    """Put the link's ``param`` into the widget state ``key``, once per session; whether it did."""
    if key in st.session_state or param not in st.query_params:
        return False
    try:
        value = parse(st.query_params[param])
    except (ValueError, TypeError, KeyError):
        return False
    if (allowed is not None and value not in allowed) or (within is not None and not within[0] <= value <= within[1]):
        return False
    st.session_state[key] = value
    return True


def record(**values: Any) -> None:
    """Keep these values in the URL (None removes one); booleans as 1/0."""
    for param, value in values.items():
        if value is None:
            st.query_params.pop(param, None)
        else:
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            if st.query_params.get(param) != text:
                st.query_params[param] = text


def share_link(upload: bool = False) -> None:
    """A "Copy link" popover with this view's address; with an uploaded image, the note that it stays here."""
    base = st.context.url or ""  # None where no browser asked (a script run without one)
    address = f"{base}?{urlencode(st.query_params.to_dict())}" if st.query_params else base
    with st.popover("Copy link", icon=":material/link:"):
        st.caption("This view's address: opening it in another browser shows the same settings and image.")
        st.code(address, language=None, wrap_lines=True)
        if upload:
            st.warning("Your uploaded image cannot travel in a link: whoever opens it sees the settings, "
                       "and uploads the image again.", icon=":material/cloud_off:")
