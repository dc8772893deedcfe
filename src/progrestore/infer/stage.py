"""Stage ``restore``: trajectories of a task's val clips (the ``model`` method of the evaluation)."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from progrestore.config import ClipSettings, Section
from progrestore.data import degradations
from progrestore.data.manifest import read_clip_manifest
from progrestore.infer.restore import SamplingConfig, load_lora, lora_file, trajectory
from progrestore.io.atomic import fresh_staging_dir, replace_tree, write_json
from progrestore.io.images import read_image, write_png
from progrestore.io.video import write_video
from progrestore.layout import DATASETS_DIR, ENCODED_DIR, MODELS_DIR, RESTORED_DIR
from progrestore.model.build import pipeline_from_params
from progrestore.train.encode import NEGATIVE_PROMPT, load_text_cache, prompt_key, read_prompts


def pipeline_with_lora(params: Section, lora_dir: Path | None):
    """(profile, pipeline) of the ``model`` block with the LoRA in ``lora_dir`` loaded (None: the base model)."""
    if lora_dir is not None:
        lora_file(lora_dir)  # checked before the model is built
    profile, pipe = pipeline_from_params(params)
    if lora_dir is not None:
        load_lora(pipe, lora_dir)
    return profile, pipe


def sampling_config(params: Section, tiny: bool) -> SamplingConfig:
    restore = params.section("restore")
    return SamplingConfig.from_section(restore.merged("tiny") if tiny else restore)


def run_restore(params: Section, task: str) -> None:
    """Stage ``restore@<task>``: every val clip's degraded first frame + its prompt ->
    data/restored/<task>/<clip_id>.mp4 at the clip size. Reads ``model``, ``restore`` and ``clip``."""
    clip = ClipSettings.from_params(params)
    folder = DATASETS_DIR / degradations.check(task) / "val"
    entries = read_clip_manifest(folder)  # the inputs are checked before the model is built
    prompts = read_prompts(folder, entries)
    texts = load_text_cache(ENCODED_DIR / task / "text.safetensors")
    profile, pipe = pipeline_with_lora(params, MODELS_DIR / task)
    sampling = sampling_config(params, profile.tiny)
    out = RESTORED_DIR / task
    staging = fresh_staging_dir(out.with_name(f".{task}.staging"))
    for entry, prompt in tqdm(list(zip(entries, prompts, strict=True)), desc=f"restore {task}", unit="clip"):
        degraded = read_image(folder / entry["image"])
        frames = trajectory(
            pipe,
            degraded,
            texts[prompt_key(prompt)],
            texts[prompt_key(NEGATIVE_PROMPT)],
            profile.height,
            profile.width,
            clip.frames,
            sampling,
        )
        write_video(staging / f"{entry['clip_id']}.mp4", frames, clip.fps)
        write_png(staging / f"{entry['clip_id']}_last.png", frames[-1])
    write_json(
        staging / "restored.json",
        {"profile": profile.name, "label": profile.label, "sampling": sampling.__dict__},
    )
    replace_tree(staging, out)
    print(f"{task}: trajectories -> {out}")
