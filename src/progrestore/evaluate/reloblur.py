"""Zero-shot evaluation on a folder in the ReLoBlur layout (Li et al., AAAI 2023): the paper's Table I.

Layout: ``<root>/<split>/<scene>/<NN>/<name>_blur.png`` with ``<name>_sharp.png`` beside it; optional
masks of the moving regions at ``<root>/masks/<split>/<scene>/<NN>/*.png`` (binarised with > 0).

Methods: ``evaluate.methods`` less the oracle (no clip exists), for the restoration task
``reloblur.task`` (params.yaml: the paper's motion-blur task). ``model`` runs the fine-tuned model through the same sampling
code as the restore stage (the task's LoRA unless told otherwise, and its uniform prompt), and the
report puts the paper's Table I LPIPS beside its per-frame LPIPS. ``classical`` runs the task's blind
restorer: a real photograph's degradation parameters are unknown.

Size rule (ReLoBlur frames are 2152x1436, 3:2): every method works at one size, the model's when the
model is evaluated (so the model restores the whole window), else the clip's. The centre window of that
size's aspect ratio is cut from the blurred and the sharp image alike (2152x1210 at y = 113 for 16:9 and
the 1.5 model), the blurred window is resized to the working size (area averaging) as the input, and
every output frame is resized back to the window's size (bicubic) and scored there, at native
resolution, against the sharp window. The identity method goes through the same down-and-up path, so
the resampling loss is common to every method. With masks, the registry's maskable metrics are also
reported inside the mask (``psnr_masked``: MSE over the masked pixels; ``ssim_masked``: mean SSIM map
over the masked pixels of the valid region); LPIPS is not masked. Pairs go through the scoring loop of
the val clips (:func:`progrestore.evaluate.scoring.score_samples`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from progrestore import tasks
from progrestore.config import ClipSettings, Section
from progrestore.data.framing import centre_crop, fit
from progrestore.errors import InputError
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.methods import ClipContext, describe, method_trajectory
from progrestore.evaluate.metrics import names as metric_names
from progrestore.evaluate.protocol import ABOUT
from progrestore.evaluate.published import PAPER_TABLE_I_LPIPS, TABLE_I_SOURCE
from progrestore.evaluate.report import write_report
from progrestore.evaluate.scoring import Evaluation, Sample, score_samples
from progrestore.io.images import read_image


@dataclass(frozen=True)
class Pair:
    pair_id: str
    blur: Path
    sharp: Path
    mask: Path | None


def find_pairs(root: Path, split: str) -> list[Pair]:
    root = Path(root)
    folder = root / split
    if not folder.is_dir():
        raise InputError(
            f"{folder}: not found; expected the ReLoBlur layout <root>/{split}/<scene>/<NN>/*_blur.png"
        )
    pairs = []
    for blur in sorted(folder.glob("*/*/*_blur.png")):
        sharp = blur.with_name(blur.name.replace("_blur.png", "_sharp.png"))
        if not sharp.is_file():
            raise InputError(f"{blur}: no sharp counterpart {sharp.name}")
        scene, sequence = blur.parent.parent.name, blur.parent.name
        masks = sorted((root / "masks" / split / scene / sequence).glob("*.png"))
        pair_id = f"{scene}/{sequence}/{blur.name.removesuffix('_blur.png')}"
        pairs.append(Pair(pair_id, blur, sharp, masks[0] if masks else None))
    if not pairs:
        raise InputError(f"{folder}: no <scene>/<NN>/*_blur.png files")
    return pairs


def _pair_samples(
    task: str,
    pairs: list[Pair],
    methods: list[str],
    width: int,
    height: int,
    frames: int,
    model: Callable[[np.ndarray], np.ndarray] | None,
) -> Iterator[Sample]:
    """Each pair as the scoring loop takes it: every method's trajectory resized back to the sharp
    window's native size, with the mask of the moving region when there is one."""
    for pair in pairs:
        blur_full, sharp_full = read_image(pair.blur), read_image(pair.sharp)
        if blur_full.shape != sharp_full.shape:
            raise InputError(f"{pair.blur} and {pair.sharp} differ in size")
        sharp, model_input = centre_crop(sharp_full, width, height), fit(blur_full, width, height)
        restored = model(model_input) if "model" in methods else None
        ctx = ClipContext(task, model_input, frames, made={} if restored is None else {"model": restored})
        mask = None
        if pair.mask is not None:
            mask = centre_crop(cv2.imread(str(pair.mask), cv2.IMREAD_GRAYSCALE), width, height)
        size = (sharp.shape[1], sharp.shape[0])
        trajectories = {
            method: np.stack(
                [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in method_trajectory(method, ctx)]
            )
            for method in methods
        }
        yield Sample(pair.pair_id, sharp, trajectories, mask=mask)


def evaluate_reloblur(
    task: str,
    pairs: list[Pair],
    methods: list[str],
    scorer: FrameScorer,
    width: int,
    height: int,
    frames: int,
    model: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Evaluation:
    """Score ``methods`` on ``pairs`` at the working size ``width`` x ``height``; ``model`` turns an input
    at that size into the model's trajectory (needed when ``model`` is among the methods)."""
    if "model" in methods and model is None:
        raise ValueError("the model method needs a sampling function")
    samples = _pair_samples(task, pairs, methods, width, height, frames, model)
    return score_samples(samples, methods, scorer, "reloblur")


def concatenated(parts: list[Evaluation], methods: list[str]) -> Evaluation:
    """The evaluations of consecutive runs of the pairs (one per process, in process order) as one, the
    pairs in their order: the summary is then the one a single process computes, to the last bit. A pair
    has scores only (no reference trajectory, no comparison between methods)."""
    whole = Evaluation(methods)
    for part in parts:
        for i, pair_id in enumerate(part.clip_ids):
            scores = {m: {k: series[i] for k, series in per.items()} for m, per in part.values.items()}
            whole.add(pair_id, scores)
    return whole


def paper_comparison(per_frame: dict[str, dict[str, list[float]]]) -> list[dict]:
    """One row per frame: the paper's Table I LPIPS beside the model's (when it was evaluated)."""
    model = per_frame.get("model", {}).get("lpips")
    return [
        {"frame": t + 1, "paper_lpips": paper, **({"model_lpips": model[t]} if model else {})}
        for t, paper in enumerate(PAPER_TABLE_I_LPIPS)
    ]


def check_report_path(out: Path) -> None:
    """``--out``: a .json file that is new or an earlier reloblur report (nothing else is replaced)."""
    if out.suffix != ".json" or out.is_dir():
        raise InputError(
            f"--out {out}: give a file name ending in .json (beside it goes the folder {out.stem}/)"
        )
    if out.exists():
        try:
            earlier = json.loads((out.with_suffix("") / ABOUT).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            earlier = None
        if not isinstance(earlier, dict) or earlier.get("task") != "reloblur":
            raise InputError(
                f"--out {out}: exists and is not an earlier reloblur report; give a new file name"
            )


def reloblur_task(params: Section) -> str:
    """``reloblur.task``: the restoration task evaluated on real blur."""
    section = params.section("reloblur")
    return section.choice("task", tasks.names())


def run_reloblur(
    params: Section,
    root: Path,
    split: str,
    limit: int | None,
    out: Path,
    task: str,
    lora_dir: Path | None,
    prompt: str | None,
) -> dict:
    """``progrestore reloblur``: score ``evaluate.methods`` of ``task`` on the pairs, less the oracle and
    the VAE ceiling (both need a synthetic clip, which a real pair has not);
    write ``out``. Reads ``clip``, ``evaluate``, and, with the model, ``model``, ``restore`` and
    ``prompts.uniform.<task>``. Under ``accelerate launch`` each process samples and scores its share of
    the pairs on its own device; the main process gathers the scores and writes the report."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from progrestore.evaluate.evaluation import track_evaluation
    from progrestore.evaluate.methods import evaluated_methods
    from progrestore.prompts.build import prompt_option

    state = PartialState(cpu=not torch.cuda.is_available())  # on GPUs: this process's cuda:i is current
    clip = ClipSettings.from_params(params)
    methods = [m for m in evaluated_methods(params) if m not in ("oracle", "vae")]
    check_report_path(Path(out))
    prompt = prompt_option(params, task, prompt)
    pairs = find_pairs(root, split)[:limit]  # the inputs are checked before the model is built
    labels = {
        "data": f"ReLoBlur {split} ({len(pairs)} pairs) from {root}: zero-shot, real motion blur",
        "restoration_task": task,
        "working_size": [clip.height, clip.width],
    }
    model, architecture = None, ""
    if "model" in methods:
        model, settings = _model_trajectories(params, task, lora_dir, prompt, clip.frames)
        architecture = settings.profile.architecture
        labels |= {
            "working_size": [settings.height, settings.width],
            "model_profile": settings.label,
            "profile": settings.profile.name,
            "lora": str(lora_dir) if lora_dir is not None else "none (the base model)",
        }
    height, width = labels["working_size"]
    scorer = FrameScorer()
    with state.split_between_processes(pairs) as share:  # consecutive runs of the pairs, in order
        part = evaluate_reloblur(task, share, methods, scorer, width, height, clip.frames, model)
    summary = concatenated(gather_object([part]), methods).summary()
    if clip.frames == len(PAPER_TABLE_I_LPIPS):
        labels["paper_table_i"] = {
            "source": TABLE_I_SOURCE,
            "frames": paper_comparison(summary["per_frame"]),
        }
    if not state.is_main_process:  # under accelerate launch: the main process writes the report
        return summary | {key: labels.get(key) for key in ("paper_table_i", "model_profile")}
    out = Path(out)
    curve_paths = {metric: out.with_suffix("") / f"{metric}.json" for metric in metric_names()}
    write_report("reloblur", summary, describe(methods, task, True, architecture), labels, out, curve_paths)
    run_params = {"task": "reloblur", "split": split, "pairs": len(pairs), "methods": ",".join(methods)}
    run_params |= {"model_profile": labels.get("model_profile", "-")}
    track_evaluation("evaluate-reloblur", run_params, summary, [out, *out.with_suffix("").glob("*.json")])
    return summary | {key: labels.get(key) for key in ("paper_table_i", "model_profile")}


def _model_trajectories(params: Section, task: str, lora_dir: Path | None, prompt: str | None, frames: int):
    """(function: input at the model's size -> trajectory, model settings) for the ``model`` method."""
    from progrestore.infer.restore import restore_image, sampling_model
    from progrestore.io.encoded import NEGATIVE_PROMPT
    from progrestore.prompts.build import PromptSettings

    text = prompt or PromptSettings.from_params(params, task).uniform
    model, sampling, (positive, negative) = sampling_model(params, lora_dir, [text, NEGATIVE_PROMPT])

    def sample(image: np.ndarray) -> np.ndarray:
        return restore_image(model, image, positive, negative, frames, sampling)

    return sample, model.settings
