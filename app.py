"""CIFAR Lab: a router over the pages in pages/ (run with `streamlit run app.py`)."""

import streamlit as st

st.set_page_config(page_title="CIFAR Lab", page_icon=":material/science:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
]
st.navigation(pages).run()
