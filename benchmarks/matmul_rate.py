"""The card's own matrix-product rate at the CogVideoX transformer's shapes, to set the model's rate against.

A block's parameter work is four (tokens x W) @ (W x W) products (q, k, v, out) and the feed-forward's
(tokens x W) @ (W x 4W) and (tokens x 4W) @ (4W x W), W = 3072 for both 5B models. Each is timed with
``torch.matmul`` into a preallocated output, after warm-up, between CUDA synchronisations; the rate the
model is compared with is the block's mix (its six products' FLOPs over their summed time), so the
utilisation says how near the model runs to what plain products of its own shapes reach on this card.
``real_architecture.py gpu`` measures it in the same run as the model; alone:

    python benchmarks/matmul_rate.py TOKENS [TOKENS ...] [--width 3072] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from progrestore.model.cogvideox.components import device_and_dtype
from progrestore.model.cogvideox.flops import ForwardFlops, sampling_flops, training_step_flops


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_seconds(
    rows: int, inner: int, cols: int, dtype: torch.dtype, device: torch.device, warmup: int, repeats: int
) -> float:
    """Mean seconds of one (rows x inner) @ (inner x cols) product."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(rows, inner, generator=g, device=device, dtype=dtype)
    b = torch.randn(inner, cols, generator=g, device=device, dtype=dtype)
    out = torch.empty(rows, cols, device=device, dtype=dtype)
    for _ in range(warmup):
        torch.matmul(a, b, out=out)
    _sync(device)
    began = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b, out=out)
    _sync(device)
    return (time.perf_counter() - began) / repeats


def matmul_rates(
    tokens: int, width: int, dtype: torch.dtype, device: torch.device, warmup: int = 3, repeats: int = 20
) -> dict:
    """TFLOP/s of each of a block's product shapes at ``tokens`` rows, and of the block's mix."""
    shapes = {  # (inner, cols): how many per block
        (width, width): 4,
        (width, 4 * width): 1,
        (4 * width, width): 1,
    }
    rates, flops, seconds = {}, 0, 0.0
    for (inner, cols), count in shapes.items():
        spent = matmul_seconds(tokens, inner, cols, dtype, device, warmup, repeats)
        rates[f"{tokens}x{inner}@{inner}x{cols}"] = 2 * tokens * inner * cols / spent / 1e12
        flops += count * 2 * tokens * inner * cols
        seconds += count * spent
    return {
        "matmul_dtype": str(dtype).removeprefix("torch."),
        "matmul_tflops": rates,
        "matmul_block_tflops": flops / seconds / 1e12,
    }


def utilisation(
    forward: ForwardFlops,
    step_s: float,
    step_no_checkpointing_s: float,
    sampling_s: float,
    steps: int,
    rate: float,
) -> dict:
    """The model's achieved TFLOP/s (FLOPs counted by ``progrestore.model.cogvideox.flops`` over the
    measured times, which include the step's and the pipeline's VAE work) and its fraction of ``rate``."""
    achieved = {
        "step": training_step_flops(forward, gradient_checkpointing=True) / step_s,
        "step_no_checkpointing": training_step_flops(forward, gradient_checkpointing=False)
        / step_no_checkpointing_s,
        "sampling": sampling_flops(forward, steps) / sampling_s,
    }
    row = {"forward_tflop": forward.total / 1e12}
    for name, flop_rate in achieved.items():
        row[f"{name}_tflops"] = flop_rate / 1e12
        row[f"{name}_utilisation"] = flop_rate / 1e12 / rate
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokens", type=int, nargs="+", help="rows: text + video tokens (1.5: 8386, 5B: 4276)")
    parser.add_argument("--width", type=int, default=3072)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device, dtype = device_and_dtype()  # the model's: bf16 on GPU, fp32 on CPU
    for tokens in args.tokens:
        print(
            json.dumps(
                {
                    "tokens": tokens,
                    **matmul_rates(tokens, args.width, dtype, device, args.warmup, args.repeats),
                }
            )
        )


if __name__ == "__main__":
    main()
