#!/usr/bin/env bash
# The GPU checks on a machine that has PyTorch, transformers, accelerate and OpenCV but cannot reach a
# package registry: installs the wheels and the LPIPS trunk that `make bench-gpu-bundle` put in .offline/
# (made on a machine that can; DeepSpeed and its needs too, in .offline/deepspeed, if bundled), then, each
# with a time limit:
#   1. the train stage under configs/accelerate/fsdp.yaml (and deepspeed-zero2.yaml when DeepSpeed came
#      along) against an unsharded run (benchmarks/sharded_training.py), when a finished embedded run's
#      train inputs for $SHARDED_TASK (default deblur) came along;
#   2. the real architectures' benchmark (make bench-gpu), unless $BENCH is 0.
# Every check runs even if one fails; the exit status says whether all passed. With $OUT set, their JSON
# lands there. $SHARDED_CONFIGS (e.g. "deepspeed-zero2 fsdp:2") chooses step 1's runs: CONFIG runs one
# process per GPU, CONFIG:N runs N processes that share GPU 0 over gloo (sharded_training.py --one-gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
[[ -d .offline/wheels ]] || { echo "no .offline/wheels: run 'make bench-gpu-bundle' where PyPI is reachable" >&2; exit 2; }
wheels=(.offline/wheels/*.whl)
configs=(fsdp)
if [[ -d .offline/deepspeed ]]; then
    wheels+=(.offline/deepspeed/*.whl)
    configs+=(deepspeed-zero2)
    export DS_ACCELERATOR=cuda  # the bundled DeepSpeed was built on a machine without CUDA
fi
read -r -a configs <<< "${SHARDED_CONFIGS:-${configs[*]}}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/progrestore-site "${wheels[@]}" || exit 2
export PYTHONPATH="$PWD/src:/tmp/progrestore-site" PROGRESTORE_CACHE="$PWD/.offline/cache" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch, transformers, accelerate, diffusers, peft; print(*(f"{m.__name__} {m.__version__}" for m in (torch, transformers, accelerate, diffusers, peft)), sep=", ")'
failed=0
for entry in "${configs[@]}"; do
    config=${entry%%:*}
    sharing=()
    [[ $entry == *:* ]] && sharing=(--one-gpu --processes "${entry#*:}")
    timeout "${SHARDED_TIMEOUT:-150}" python3 benchmarks/sharded_training.py "${SHARDED_TASK:-deblur}" --config "$config" "${sharing[@]}"
    status=$?
    [[ $status == 3 ]] && break  # the train inputs did not come along: skipped, as said
    [[ $status == 0 ]] || failed=1
done
if [[ ${BENCH:-1} != 0 ]]; then
    timeout "${BENCH_TIMEOUT:-480}" python3 benchmarks/real_architecture.py gpu || failed=1
fi
exit $failed
