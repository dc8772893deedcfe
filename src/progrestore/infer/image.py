"""``progrestore restore IMAGE``: a user's own image of any size through the same sampling as the stage."""

from __future__ import annotations

from pathlib import Path

from progrestore.config import ClipSettings, Section
from progrestore.data.contact_sheet import contact_sheet
from progrestore.infer.restore import restore_image, sampling_model
from progrestore.io.atomic import check_output_dir, staged_output_dir, write_json
from progrestore.io.encoded import NEGATIVE_PROMPT
from progrestore.io.images import read_image, write_png
from progrestore.io.video import write_video
from progrestore.prompts.build import PromptSettings, prompt_option

RECORD = "restore.json"  # written last: marks a folder as this command's output
MAX_PIXELS = 8192 * 8192
"""The largest input this command takes: 64 megapixels (8192x8192; a 61 MP camera's 9504x6336 and 8K
video frames fit). The trajectory comes back at the input's own size, and its 9 frames, the strip and the
video buffer take 50-60 bytes per input pixel (4000x4000 added 0.8 GB; 14000x14000 took 11.9 GB), so this
bounds a run near 4 GB; the model itself sees at most its own size (1360x768 for the 1.5 profile), so
more pixels add no restored detail. Below PIL's decompression-bomb threshold (89.5 MP), which is refused
the same way."""


def run_restore_image(
    params: Section,
    image_path: Path,
    task: str,
    lora_dir: Path | None,
    out_dir: Path,
    prompt: str | None,
    overwrite: bool = False,
) -> Path:
    """A user's image of any size -> trajectory.mp4 and strip.png at the image's own size, in ``out_dir``
    (new, empty, or with ``overwrite`` an earlier output of this command)."""
    clip = ClipSettings.from_params(params)
    text = prompt_option(params, task, prompt) or PromptSettings.from_params(params, task).uniform
    check_output_dir(out_dir, RECORD, overwrite)  # the inputs and the output are checked before the model
    image = read_image(image_path, MAX_PIXELS)  # its size from the header, before the pixels are decoded
    model, sampling, (positive, negative) = sampling_model(params, lora_dir, [text, NEGATIVE_PROMPT])
    frames = restore_image(model, image, positive, negative, clip.frames, sampling)
    with staged_output_dir(out_dir, RECORD, overwrite) as staging:
        write_video(staging / "trajectory.mp4", frames, clip.fps)
        write_png(staging / "restored.png", frames[-1])
        label = f"{task} {Path(image_path).name} ({model.settings.label})"
        write_png(staging / "strip.png", contact_sheet([(label, frames)]))
        record = {"image": str(image_path), "task": task, "prompt": text, "profile": model.settings.label}
        write_json(staging / RECORD, record)
    return Path(out_dir)
