"""CIFAR Lab: run with `streamlit run app.py`. The router and the page list live in pages/."""

from pages import navigate

navigate()
