"""Stage ``restore`` (the val clips of a task) and the ``progrestore restore`` command (a user's own image)."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from progrestore.config import ClipSettings, Section
from progrestore.data.contact_sheet import contact_sheet
from progrestore.data.dataset import read_clip_manifest
from progrestore.infer.restore import SamplingConfig, load_lora, trajectory
from progrestore.io.atomic import fresh_staging_dir, replace_tree, write_json
from progrestore.io.images import read_image, write_png
from progrestore.io.video import write_video
from progrestore.model.build import load_components, make_pipeline
from progrestore.train.encode import NEGATIVE_PROMPT, load_text_cache, prompt_key, read_prompts
from progrestore.train.stage import ENCODED_DIR, MODELS_DIR, model_settings

RESTORED_DIR = Path("data/restored")


def _pipeline(params: Section, lora_dir: Path | None):
    profile, path, seed, drop_pe = model_settings(params)
    pipe = make_pipeline(load_components(profile, path, seed, drop_pe))
    if lora_dir is not None:
        load_lora(pipe, lora_dir)
    return profile, pipe


def sampling_config(params: Section, tiny: bool) -> SamplingConfig:
    restore = params.section("restore")
    return SamplingConfig.from_section(restore.merged("tiny") if tiny else restore)


def run_restore(params: Section, task: str, datasets: Path) -> Path:
    """Every val clip's degraded first frame + its prompt -> data/restored/<task>/<clip_id>.mp4 (clip size)."""
    clip = ClipSettings.from_params(params)
    profile, pipe = _pipeline(params, MODELS_DIR / task)
    sampling = sampling_config(params, profile.tiny)
    folder = datasets / task / "val"
    entries = read_clip_manifest(folder)
    prompts = read_prompts(folder, entries)
    texts = load_text_cache(ENCODED_DIR / task / "text.safetensors")
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
    return out


def run_restore_image(
    params: Section, image_path: Path, task: str, lora_dir: Path | None, out_dir: Path, prompt: str | None
) -> Path:
    """A user's image of any size -> trajectory.mp4 and strip.png at the image's own size."""
    from progrestore.prompts.build import PromptSettings

    clip = ClipSettings.from_params(params)
    profile, pipe = _pipeline(params, lora_dir)
    sampling = sampling_config(params, profile.tiny)
    text = prompt or PromptSettings.from_section(params.section("prompts"), task).uniform
    embeds = {}
    for value in (text, NEGATIVE_PROMPT):
        embeds[value], _ = pipe.encode_prompt(
            prompt=value,
            do_classifier_free_guidance=False,
            max_sequence_length=226,
            device=pipe.text_encoder.device,
        )
    image = read_image(image_path)
    frames = trajectory(
        pipe,
        image,
        embeds[text][0],
        embeds[NEGATIVE_PROMPT][0],
        profile.height,
        profile.width,
        clip.frames,
        sampling,
    )
    out_dir = Path(out_dir)
    staging = fresh_staging_dir(out_dir.with_name(f".{out_dir.name}.staging"))
    write_video(staging / "trajectory.mp4", frames, clip.fps)
    write_png(staging / "restored.png", frames[-1])
    write_png(
        staging / "strip.png", contact_sheet([(f"{task} {Path(image_path).name} ({profile.label})", frames)])
    )
    write_json(
        staging / "restore.json",
        {"image": str(image_path), "task": task, "prompt": text, "profile": profile.label},
    )
    replace_tree(staging, out_dir)
    return out_dir
