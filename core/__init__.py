"""CIFAR Lab's engine: data, models, checkpoints and training, with no UI code.

Everything the Streamlit pages show is computed here, so a test (or a script) can
call it without a browser.
"""

__all__ = ["checkpoints", "data", "devices", "images", "models", "paths"]
