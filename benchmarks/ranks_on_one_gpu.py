"""Run a script as one of several ranks that share one GPU, over gloo: ``accelerate launch ...
benchmarks/ranks_on_one_gpu.py SCRIPT ARGS...``.

Why: FSDP's FULL_SHARD and DeepSpeed's partitioning only shard with two or more ranks, and NCCL refuses two
ranks on one device ("Duplicate GPU detected"). Gloo moves CUDA tensors through host memory, so N ranks
on GPU 0 run the engine's real sharding, gathering and sharded checkpoints where one GPU is lent; only
the transport differs from NCCL on N GPUs. accelerate keeps a process group it finds initialised;
accelerate's barriers and DeepSpeed put a rank on ``cuda:LOCAL_RANK``, so every rank is told it is local
rank 0 (files and shards are named by the global rank, which stays).
"""

from __future__ import annotations

import os
import runpy
import sys

import torch.distributed as dist

if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__.splitlines()[0])
    dist.init_process_group("gloo")  # from the launcher's RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
    os.environ["LOCAL_RANK"] = "0"
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
