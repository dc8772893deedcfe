"""The data stages write the same bytes on every x86-64 CPU: prepare, degrade and prompts are run under
other CPU levels and every output file must equal the native run's, byte for byte.

Two ways to get another CPU on this one:
- forced feature levels: the libraries' own switches (numpy, OpenCV and IPP dispatch, glibc's libm
  variants, libjpeg-turbo's SIMD, torch). Each level masks the features above it that this machine has;
  a probe asserts that the masking took effect;
- emulated CPUs: the stages' process runs under ``qemu-x86_64 -cpu Nehalem`` (SSE4.2, no AVX) and
  ``-cpu Haswell`` (AVX2 and FMA, no AVX-512), so every library's own CPUID-based dispatch sees that CPU.
  QEMU emulates one process: ffmpeg, which the stages start, runs natively (x264's assembly is bit-exact
  with its C code). CI installs qemu-user; elsewhere these cases skip when it is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from .conftest import REPO, TASKS

# feature names per library, from the highest; a level masks a prefix of each list
NUMPY = ("AVX512_SPR", "AVX512_ICL", "X86_V4", "X86_V3")  # numpy >= 2.4 groups (X86_V2 is its baseline)
OPENCV = ("AVX512-SKX", "AVX2", "FP16", "AVX", "SSE4.2", "SSE4.1")
GLIBC = ("AVX512F", "AVX512VL", "AVX512BW", "AVX512DQ", "AVX512CD", "AVX2", "FMA", "AVX", "F16C", "SSE4_2")
LEVELS = {  # name: how many of each list to mask, and the rest of the environment
    "avx2": (
        {"numpy": 3, "opencv": 1, "glibc": 5},
        {"OPENCV_IPP": "avx2", "ATEN_CPU_CAPABILITY": "avx2"},
    ),
    "sse4": (
        {"numpy": 4, "opencv": 4, "glibc": 9},
        {"OPENCV_IPP": "sse42", "ATEN_CPU_CAPABILITY": "default", "JSIMD_FORCESSE2": "1"},
    ),
    "no-simd": (
        {"numpy": 4, "opencv": 6, "glibc": 10},
        {"OPENCV_IPP": "disabled", "ATEN_CPU_CAPABILITY": "default", "JSIMD_FORCENONE": "1"},
    ),
}

PROBE = """
import json, cv2, numpy
features = numpy._core._multiarray_umath.__cpu_features__
print(json.dumps({"numpy": {k: bool(v) for k, v in features.items()}, "opencv": cv2.getCPUFeaturesLine()}))
"""

RUN = """
from pathlib import Path

from progrestore import tasks
from progrestore.config import load_params
from progrestore.data.dataset import run_degrade
from progrestore.data.prepare import run_prepare
from progrestore.prompts.build import run_prompts

params = load_params()
images = Path("data/images")
run_prepare(params, images)
for task in tasks.names():  # every registered task, whether params.yaml's tasks lists it or not
    dataset = Path("data/datasets") / task
    run_degrade(params, task, images, dataset, Path("reports/degrade") / f"{task}.png")
    run_prompts(params, task, dataset, images)
"""


QEMU_CPUS = {"Nehalem": ("X86_V3", "X86_V4"), "Haswell": ("X86_V4",)}  # model: numpy levels it lacks


def _probe(env: dict[str, str], python: tuple[str, ...] = (sys.executable,)) -> dict:
    out = subprocess.run([*python, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def _level_env(name: str, native: dict) -> dict[str, str]:
    counts, extra = LEVELS[name]
    present_numpy = [f for f in NUMPY[: counts["numpy"]] if native["numpy"].get(f)]
    env = {
        "NPY_DISABLE_CPU_FEATURES": " ".join(present_numpy),
        "OPENCV_CPU_DISABLE": ",".join(OPENCV[: counts["opencv"]]),
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=" + ",".join(f"-{f}" for f in GLIBC[: counts["glibc"]]),
        **extra,
    }
    return {k: v for k, v in env.items() if v}


def _write_sources(folder: Path) -> None:
    """A few photographs' worth of structure: smooth gradients, edges and noise, in PNG and JPEG, some
    smaller than the clip (bicubic upscaling), some larger (area downscaling), one portrait."""
    rng = np.random.default_rng(7)

    def picture(height: int, width: int) -> np.ndarray:
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
        base[height // 3 : height // 2, width // 4 : width // 2] = (240, 30, 60)  # a hard-edged block
        noisy = base + rng.normal(0, 12, base.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)

    for split, name, size in (
        ("train", "wide.png", (150, 260)),
        ("train", "small.jpg", (50, 90)),
        ("val", "portrait.png", (200, 120)),
    ):
        (folder / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture(*size)).save(folder / split / name, quality=85)


def _run_level(
    root: Path, env: dict[str, str], python: tuple[str, ...] = (sys.executable,)
) -> dict[str, str]:
    root.mkdir()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["clip"] |= {"width": 256, "height": 144}
    params["data"] |= {
        "source": "folder",
        "folder": {"path": str(root.parent / "sources"), "val_fraction": 0.1},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    full_env = os.environ | {"PROGRESTORE_WORKERS": "1", "PROGRESTORE_CACHE": str(root / "cache")} | env
    # one process (no worker pool), so that an emulator runs all of the stages' arithmetic
    result = subprocess.run([*python, "-c", RUN], cwd=root, env=full_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = [p for p in sorted(root.rglob("*")) if p.is_file() and "cache" not in p.relative_to(root).parts]
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in outputs
        if p.name != "params.yaml"
    }


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> tuple[Path, dict, dict[str, str]]:
    work = tmp_path_factory.mktemp("portable")
    _write_sources(work / "sources")
    return work, _probe(dict(os.environ)), _run_level(work / "native", {})


@pytest.mark.parametrize("level", list(LEVELS))
def test_data_stage_outputs_are_byte_identical_under_forced_cpu_levels(native, level):
    work, features, reference = native
    env = _level_env(level, features)
    probe = _probe(os.environ | env)
    for name in env["NPY_DISABLE_CPU_FEATURES"].split() if "NPY_DISABLE_CPU_FEATURES" in env else []:
        assert probe["numpy"][name] is False, f"numpy still dispatches to {name}"
    masked = [f for f in OPENCV[: LEVELS[level][0]["opencv"]] if f"*{f}" in features["opencv"]]
    for name in masked:
        assert f"*{name}?" in probe["opencv"], f"OpenCV still dispatches to {name}: {probe['opencv']}"
    _assert_same_outputs(reference, _run_level(work / level, env), level)


def _assert_same_outputs(reference: dict[str, str], outputs: dict[str, str], label: str) -> None:
    for task in TASKS:  # every stage wrote its outputs: clips, first frames, manifests, prompts, sheets
        for name in ("videos/", "images/", "manifest.jsonl", "prompt_scene.txt"):
            assert any(p.startswith(f"data/datasets/{task}/val/{name}") for p in reference), (task, name)
        assert f"reports/degrade/{task}.png" in reference
    assert sorted(outputs) == sorted(reference)
    differing = [path for path in reference if outputs[path] != reference[path]]
    assert not differing, f"{len(differing)} of {len(reference)} files differ under {label}: {differing[:8]}"


@pytest.mark.pipeline  # the data stages as processes under qemu-user: about a minute on 2 cores
@pytest.mark.parametrize("cpu", list(QEMU_CPUS))
def test_data_stage_outputs_are_byte_identical_on_emulated_cpus(native, cpu):
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        if os.environ.get("CI") == "true":
            pytest.fail("qemu-x86_64 is missing: .ci/run installs Debian's qemu-user")
        pytest.skip("qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
    work, _, reference = native
    python = (qemu, "-cpu", cpu, sys.executable)
    features = _probe(dict(os.environ), python)["numpy"]
    assert not any(features[name] for name in QEMU_CPUS[cpu]), f"the emulated {cpu} shows {features}"
    _assert_same_outputs(reference, _run_level(work / f"qemu-{cpu}", {}, python), f"qemu -cpu {cpu}")
