"""Training speed of a binned colorizer: the chroma-bin loss by its definition against ``core.color``'s.

The binned colorizers classify each pixel's chroma into 441 bins, so their loss reads 441 values per
pixel. By its definition (``soft_bin_targets``: dense Gaussian soft targets against a log-softmax) it
builds several N x 441 x H x W float tensors; ``ChromaBinLoss`` computes the same loss and gradient
from the targets' two separable factors, a few images at a time. The two are timed interleaved in one
process, alone (forward and backward) and inside a whole training step of the U-Net colorizer (the
Train page's colorization preset: batch 256, Adam, channels-last, bf16 autocast where the CPU has fast
bf16). In the "definition" step the decoded RGB also stays in autograd, as it did before
``Colorizer.rgb_trains``. Machines here differ 2x from day to day: the ratio is the figure.

Usage: python bench/chroma_loss.py [--batch 256 --repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core import color, devices, models


def definition_loss(logits: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """The plain chroma-bin cross-entropy as ``soft_bin_targets`` defines it."""
    targets = color.soft_bin_targets(color.chroma(rgb.float()), color.chroma_bin_centres())
    return -(targets * torch.log_softmax(logits.float(), dim=1)).sum(1).mean()


def seconds(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    amp = devices.amp_dtype(device)
    images = torch.rand(args.batch, 3, 32, 32)
    fast_loss = color.ChromaBinLoss(rebalance=False)
    model = models.build("unet_colorizer", binned=True).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    autocast = torch.autocast("cpu", amp, enabled=amp is not None)
    logits = (torch.randn(args.batch, 441, 32, 32) * 3).to(amp or torch.float32)
    logits = logits.contiguous(memory_format=torch.channels_last)

    def loss_alone(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def work() -> None:
            given = logits.detach().requires_grad_(True)
            loss(given, images).backward()
        return work

    def training_step(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], rgb_trains: bool):
        def work() -> None:
            model.rgb_trains = rgb_trains
            with autocast:
                output = model(color.luma(images).contiguous(memory_format=torch.channels_last))
                value = loss(output[:, 3:], images)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
        return work

    given = logits.float()
    agree = abs(float(definition_loss(given, images)) - float(fast_loss(given, images)))
    cases = {
        "loss alone (forward and backward)": (loss_alone(definition_loss), loss_alone(fast_loss)),
        "training step of the U-Net colorizer": (training_step(definition_loss, True),
                                                 training_step(fast_loss, False)),
    }
    print(f"{devices.cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"autocast {amp or 'off'}; batch {args.batch} of 32 x 32; the losses differ by {agree:.1e}")
    print("\n| what | by the definition (s, median) | core.color (s, median) | speed-up | images/s, then and now |")
    print("|---|---:|---:|---:|---:|")
    for name, (before, after) in cases.items():
        before(), after()  # warm-up: allocator and first kernels
        times = [(seconds(before), seconds(after)) for _ in range(args.repeats)]
        old, new = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"| {name} | {old:.3f} | {new:.3f} | **{old / new:.2f}x** | "
              f"{args.batch / old:.0f} → {args.batch / new:.0f} |")


if __name__ == "__main__":
    main()
