"""Run by tests/test_train.py, alone or under torchrun: train briefly, then save this rank's weights.

Usage: python tests/ddp_worker.py OUT_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch.distributed as dist
from safetensors.torch import save_file

from core.checkpoints import state_dict_for_saving
from core.train import TrainConfig, Trainer

out = Path(sys.argv[1])
config = TrainConfig(
    task="classification", arch="staged_cnn", arch_args={"variant": "baseline", "width": 8}, dataset="cifar10",
    epochs=2, batch_size=64, subset=512, val_size=256, optimizer="sgd", lr=0.05, schedule="cosine",
    augment=True, seed=7, out=str(out), name="ddp", channels_last=False,
    amp=False,  # compared to 1e-4 with a single process: bf16 (on a CPU with AMX) rounds too coarsely for that
)
torch_threads = int(os.environ.get("WORKER_THREADS", "1"))
import torch  # noqa: E402

torch.set_num_threads(torch_threads)
trainer = Trainer(config)
result = trainer.fit()
assert result.status == "finished", result.message
save_file(state_dict_for_saving(trainer.model), str(out / f"rank{trainer.rank}.safetensors"))
if dist.is_initialized():
    dist.destroy_process_group()
print(f"rank {trainer.rank} of {trainer.world_size}: {result.test_metrics}")
