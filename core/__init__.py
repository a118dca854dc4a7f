"""CIFAR Lab's engine: data, models, checkpoints and training, with no UI code.

Everything the Streamlit pages show is computed here, so a test (or a script) can
call it without a browser.
"""

import warnings

# kornia scripts a few geometry helpers when it is imported, and torch 2.14 (pinned) warns about that on
# every start of the app and each bench script; the colour and SSIM functions used here do not use them.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)

__all__ = ["checkpoints", "data", "devices", "images", "models", "paths"]
