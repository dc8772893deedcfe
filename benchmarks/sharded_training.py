"""The train stage under a sharding engine's accelerate config on GPUs, against the same stage unsharded.

    python benchmarks/sharded_training.py TASK [WORKDIR] [--config fsdp|deepspeed-zero2] [--processes N]
                                          [--one-gpu]
        # configs/accelerate/<config>.yaml (default fsdp); N processes, one per GPU (default: all GPUs);
        # --one-gpu: the N processes (default 2) share GPU 0 over gloo (benchmarks/ranks_on_one_gpu.py),
        # so that FULL_SHARD and ZeRO partition across ranks where one GPU is lent;
        # WORKDIR: a new or empty folder for the three runs (default: a new temporary one, kept)

Needs a finished embedded run's train inputs for TASK (``<datasets>/TASK/train`` manifest and prompts,
``<encoded>/TASK``, the folders dvc.yaml's vars name; exit status 3 when they are absent) and CUDA.
Three runs of ``stages/train.py`` with MLflow off:

1. ``reference``: with one process, the stage run plainly (no launcher: bf16 base, fp32 LoRA); with N
   processes, plain DDP (``configs/accelerate/ddp.yaml``, the same N ranks, transport and clips);
2. ``sharded``: ``accelerate launch --config_file configs/accelerate/<config>.yaml --num_processes N``;
3. ``sharded`` again into the same folder: it must resume from the final checkpoint (the engine's own
   sharded state), take no step and write the same LoRA bytes.

The sharded LoRA must have the reference's keys, shapes and adapter metadata; how far its values are
from the reference's is reported (FSDP keeps the frozen base in fp32 and computes in bf16, DeepSpeed
trains a bf16 module from fp32 master weights; the reference has a bf16 base and an fp32 LoRA, so they
are not bitwise equal). Prints one JSON line; with ``$OUT`` set writes it to
``$OUT/sharded-<config>-<N>[-one-gpu].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from progrestore.model.specification import LORA_WEIGHTS, TRAIN_METRICS, TRAIN_RUN_LOG

REPO = Path(__file__).resolve().parents[1]
INPUTS_ABSENT = 3  # bench_gpu_offline.sh skips the check then


def train_inputs(task: str) -> tuple[Path, Path]:
    """(datasets, encoded) as dvc.yaml names them; exits with INPUTS_ABSENT when TASK's are not there."""
    from progrestore.layout import pipeline_path

    datasets, encoded = (REPO / pipeline_path(name, REPO / "dvc.yaml") for name in ("datasets", "encoded"))
    needed = [datasets / task / "train" / "manifest.jsonl", encoded / task / "video.safetensors"]
    missing = [str(path.relative_to(REPO)) for path in needed if not path.is_file()]
    if missing:
        print(f"sharded training: skipped, no {' or '.join(missing)} (run dvc repro first)", file=sys.stderr)
        raise SystemExit(INPUTS_ABSENT)
    return datasets, encoded


def train(task: str, inputs: tuple[Path, Path], out: Path, launcher: list[str]) -> float:
    datasets, encoded = inputs
    command = [*launcher, "stages/train.py", task, "--datasets", str(datasets), "--encoded", str(encoded)]
    command += ["--out", str(out)]
    env = os.environ | {
        "PROGRESTORE_MLFLOW": "off",
        "PYTHONPATH": f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}",
    }
    began = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-8000:])
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode})")
    return time.perf_counter() - began


def compare(reference: Path, sharded: Path) -> dict:
    """Keys, shapes and metadata must match; the values are reported as the relative distance of each
    trained matrix (||sharded - reference|| / ||reference - its seeded start||, worst over the LoRA's B
    matrices, which start at zero)."""
    from safetensors import safe_open

    with (
        safe_open(str(reference / LORA_WEIGHTS), "pt") as a,
        safe_open(str(sharded / LORA_WEIGHTS), "pt") as b,
    ):
        keys = sorted(a.keys())
        assert keys == sorted(b.keys()), "the sharded run's LoRA has other keys"
        assert a.metadata() == b.metadata(), (a.metadata(), b.metadata())
        relative = []
        for key in keys:
            x, y = a.get_tensor(key).float(), b.get_tensor(key).float()
            assert x.shape == y.shape, (key, x.shape, y.shape)
            if "lora_B" in key:
                relative.append(float((x - y).norm() / x.norm()))
    return {"keys": len(keys), "lora_B_relative_difference_max": max(relative)}


def working_folder(given: Path | None) -> Path:
    """``given`` if it is new or empty (nothing of the user's is overwritten), else a new temporary folder."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="progrestore-sharded-"))
    if given.exists() and not given.is_dir():
        raise SystemExit(f"sharded_training: {given} is a file; give a new or empty folder")
    if given.exists() and any(given.iterdir()):
        raise SystemExit(f"sharded_training: {given} already holds files; give a new or empty folder")
    given.mkdir(parents=True, exist_ok=True)
    return given.resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument(
        "workdir", type=Path, nargs="?", help="a new or empty folder (default: a temporary one)"
    )
    parser.add_argument("--config", choices=("fsdp", "deepspeed-zero2"), default="fsdp")
    parser.add_argument("--processes", type=int, default=0, help="processes (default: one per GPU)")
    parser.add_argument(
        "--one-gpu", action="store_true", help="the processes (default 2) share GPU 0 over gloo"
    )
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("sharded_training: needs CUDA (accelerate drops FSDP and DeepSpeed on CPU)")
    inputs = train_inputs(args.task)
    processes = args.processes or (2 if args.one_gpu else torch.cuda.device_count())
    work = working_folder(args.workdir)

    def launch(config: str) -> list[str]:
        command = [sys.executable, "-m", "accelerate.commands.launch"]
        command += ["--config_file", f"configs/accelerate/{config}.yaml"]
        command += ["--num_processes", str(processes), "--main_process_port", "29537"]
        return command + ([str(REPO / "benchmarks" / "ranks_on_one_gpu.py")] if args.one_gpu else [])

    reference = ("plain", [sys.executable]) if processes == 1 else ("ddp", launch("ddp"))
    row = {"card": torch.cuda.get_device_name(), "config": args.config, "processes": processes}
    row["transport"] = f"gloo, {processes} ranks on GPU 0" if args.one_gpu else "accelerate's (NCCL)"
    row |= {"task": args.task, "workdir": str(work), "reference": reference[0]}
    row["reference_s"] = train(args.task, inputs, work / "reference", reference[1])
    row["sharded_s"] = train(args.task, inputs, work / "sharded", launch(args.config))
    first = (work / "sharded" / LORA_WEIGHTS).read_bytes()
    row["resume_s"] = train(args.task, inputs, work / "sharded", launch(args.config))
    reference_record = json.loads((work / "reference" / TRAIN_METRICS).read_text())
    sharded_record = json.loads((work / "sharded" / TRAIN_METRICS).read_text())
    checkpoints = work / "sharded" / "checkpoints"
    files = sorted(str(p.relative_to(checkpoints)) for p in checkpoints.rglob("*") if p.is_file())
    row |= {
        "resumed_from": json.loads((work / "sharded" / TRAIN_RUN_LOG).read_text())["resumed_from"],
        "resume_same_bytes": (work / "sharded" / LORA_WEIGHTS).read_bytes() == first,
        "checkpoint_files": files,
        "loss_reference": reference_record["final_loss_mean10"],
        "loss_sharded": sharded_record["final_loss_mean10"],
        **compare(work / "reference", work / "sharded"),
    }
    print(json.dumps(row), flush=True)
    if os.environ.get("OUT"):
        name = f"sharded-{args.config}-{processes}{'-one-gpu' if args.one_gpu else ''}.json"
        Path(os.environ["OUT"], name).write_text(json.dumps(row, indent=1))
    assert row["resumed_from"] == sharded_record["steps"], (
        "the second run did not resume its final checkpoint"
    )
    assert row["resume_same_bytes"], "the resumed run wrote other LoRA bytes"


if __name__ == "__main__":
    main()
