"""``progrestore restore IMAGE``: a user's own image of any size through the same sampling as the stage."""

from __future__ import annotations

from pathlib import Path

from progrestore.config import ClipSettings, Section
from progrestore.data.contact_sheet import contact_sheet
from progrestore.infer.restore import sampling_pipeline, trajectory
from progrestore.io.atomic import fresh_staging_dir, replace_tree, write_json
from progrestore.io.images import read_image, write_png
from progrestore.io.video import write_video
from progrestore.prompts.build import PromptSettings
from progrestore.train.encode import NEGATIVE_PROMPT, embed_prompt


def run_restore_image(
    params: Section, image_path: Path, task: str, lora_dir: Path | None, out_dir: Path, prompt: str | None
) -> Path:
    """A user's image of any size -> trajectory.mp4 and strip.png at the image's own size."""
    clip = ClipSettings.from_params(params)
    text = prompt or PromptSettings.from_section(params.section("prompts"), task).uniform
    image = read_image(image_path)  # the inputs are checked before the model is built
    settings, pipe, sampling = sampling_pipeline(params, lora_dir)
    embeds = {value: embed_prompt(pipe, value) for value in (text, NEGATIVE_PROMPT)}
    frames = trajectory(
        pipe,
        image,
        embeds[text],
        embeds[NEGATIVE_PROMPT],
        settings.height,
        settings.width,
        clip.frames,
        sampling,
    )
    out_dir = Path(out_dir)
    staging = fresh_staging_dir(out_dir.with_name(f".{out_dir.name}.staging"))
    write_video(staging / "trajectory.mp4", frames, clip.fps)
    write_png(staging / "restored.png", frames[-1])
    write_png(
        staging / "strip.png", contact_sheet([(f"{task} {Path(image_path).name} ({settings.label})", frames)])
    )
    write_json(
        staging / "restore.json",
        {"image": str(image_path), "task": task, "prompt": text, "profile": settings.label},
    )
    replace_tree(staging, out_dir)
    return out_dir
