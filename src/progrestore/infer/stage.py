"""Stage ``restore``: trajectories of a task's val clips (the ``model`` method of the evaluation)."""

from __future__ import annotations

from dataclasses import asdict

from tqdm import tqdm

from progrestore.config import ClipSettings, Section
from progrestore.data import degradations
from progrestore.data.framing import centre_window
from progrestore.data.manifest import read_clip_manifest
from progrestore.infer.restore import sampling_pipeline, trajectory
from progrestore.io.atomic import staged_output_dir, write_json
from progrestore.io.images import read_image, write_png
from progrestore.io.video import write_video
from progrestore.layout import DATASETS_DIR, ENCODED_DIR, MODELS_DIR, RESTORED_DIR
from progrestore.model.build import positional_embedding
from progrestore.train.encode import NEGATIVE_PROMPT, load_text_cache, prompt_key, read_prompts

RECORD = "restored.json"  # what the evaluation reads besides the trajectories; written last


def run_restore(params: Section, task: str) -> None:
    """Stage ``restore@<task>``: every val clip's degraded first frame + its prompt ->
    data/restored/<task>/<clip_id>.mp4 at the clip size. Reads ``model``, ``restore`` and ``clip``.

    ``restored.json`` records the window of the clip the model restored (the centre window of the model's
    aspect ratio; outside it the frames keep the input's pixels), which the evaluation scores.
    """
    clip = ClipSettings.from_params(params)
    folder = DATASETS_DIR / degradations.check(task) / "val"
    entries = read_clip_manifest(folder)  # the inputs are checked before the model is built
    prompts = read_prompts(folder, entries)
    texts = load_text_cache(ENCODED_DIR / task / "text.safetensors")
    settings, pipe, sampling = sampling_pipeline(params, MODELS_DIR / task)
    out = RESTORED_DIR / task
    x, y, width, height = centre_window(clip.width, clip.height, settings.width, settings.height)
    with staged_output_dir(out, RECORD, overwrite=True) as staging:  # DVC owns the stage's output
        for entry, prompt in tqdm(
            list(zip(entries, prompts, strict=True)), desc=f"restore {task}", unit="clip"
        ):
            degraded = read_image(folder / entry["image"])
            frames = trajectory(
                pipe,
                degraded,
                texts[prompt_key(prompt)],
                texts[prompt_key(NEGATIVE_PROMPT)],
                settings.height,
                settings.width,
                clip.frames,
                sampling,
            )
            write_video(staging / f"{entry['clip_id']}.mp4", frames, clip.fps)
            write_png(staging / f"{entry['clip_id']}_last.png", frames[-1])
        record = {
            "profile": settings.profile.name,
            "label": settings.label,
            "model_size": [settings.height, settings.width],
            "positional_embedding": positional_embedding(pipe.transformer, clip.frames),
            "restored_window": {"x": x, "y": y, "width": width, "height": height},
            "sampling": asdict(sampling),
        }
        write_json(staging / RECORD, record)
    print(f"{task}: trajectories -> {out}")
