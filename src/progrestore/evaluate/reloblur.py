"""Zero-shot evaluation on a folder in the ReLoBlur layout (Li et al., AAAI 2023).

Layout: ``<root>/<split>/<scene>/<NN>/<name>_blur.png`` with ``<name>_sharp.png`` beside it; optional
masks of the moving regions at ``<root>/masks/<split>/<scene>/<NN>/*.png`` (binarised with > 0).

Size rule (ReLoBlur frames are 2152x1436, 3:2; the model works at the clip size, 16:9): the centre window
of the clip's aspect ratio is cut from the blurred and the sharp image alike (2152x1210 at y = 113 for
1360x768), the blurred window is resized to the clip size (area averaging) as the model's input, and
every output frame is resized back to the window's size (bicubic) and scored there, at native
resolution, against the sharp window. The identity method goes through the same down-and-up path, so
the resampling loss is common to every method. With masks, PSNR and SSIM are also reported inside the
mask (``psnr_masked``: MSE over the masked pixels; ``ssim_masked``: mean SSIM map over the masked
pixels of the valid region); LPIPS is not masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from progrestore.data.framing import centre_window
from progrestore.errors import InputError
from progrestore.evaluate.methods import ClipContext, trajectory
from progrestore.evaluate.metrics import SSIM_RADIUS, FrameScorer, ssim_map, ssim_reference
from progrestore.evaluate.report import Evaluation
from progrestore.io.images import read_image

MASKED = ("psnr_masked", "ssim_masked")


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


def _window(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centre crop of the clip's aspect ratio at native resolution (step 2 of the framing rule)."""
    x0, y0, crop_w, crop_h = centre_window(image.shape[1], image.shape[0], width, height)
    return image[y0 : y0 + crop_h, x0 : x0 + crop_w]


def masked_scores(frames: np.ndarray, sharp: np.ndarray, mask: np.ndarray) -> dict[str, list[float]]:
    inside = mask > 0
    if not inside.any():
        return {name: [float("nan")] * len(frames) for name in MASKED}
    ref = ssim_reference(sharp)
    valid = inside[SSIM_RADIUS:-SSIM_RADIUS, SSIM_RADIUS:-SSIM_RADIUS]
    psnrs, ssims = [], []
    for frame in frames:
        error = (frame.astype(np.float64) - sharp.astype(np.float64))[inside] ** 2
        mse = float(error.mean())
        psnrs.append(float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse))
        ssims.append(
            float(ssim_map(frame, ref)[valid].mean(dtype=np.float64)) if valid.any() else float("nan")
        )
    return {"psnr_masked": psnrs, "ssim_masked": ssims}


def evaluate_reloblur(
    pairs: list[Pair], methods: list[str], scorer: FrameScorer, width: int, height: int, frames: int
) -> Evaluation:
    evaluation = Evaluation(methods)
    for pair in tqdm(pairs, desc="reloblur", unit="pair"):
        blur_full, sharp_full = read_image(pair.blur), read_image(pair.sharp)
        if blur_full.shape != sharp_full.shape:
            raise InputError(f"{pair.blur} and {pair.sharp} differ in size")
        blur_window, sharp = _window(blur_full, width, height), _window(sharp_full, width, height)
        model_input = cv2.resize(blur_window, (width, height), interpolation=cv2.INTER_AREA)
        ctx = ClipContext("deblur", model_input, frames)
        reference = scorer.reference(sharp)
        mask = None
        if pair.mask is not None:
            mask = _window(cv2.imread(str(pair.mask), cv2.IMREAD_GRAYSCALE), width, height)
        scores = {}
        for method in methods:
            small = trajectory(method, ctx)
            native = np.stack(
                [
                    cv2.resize(f, (sharp.shape[1], sharp.shape[0]), interpolation=cv2.INTER_CUBIC)
                    for f in small
                ]
            )
            scores[method] = scorer.score(native, reference)
            if mask is not None:
                scores[method] |= masked_scores(native, sharp, mask)
        evaluation.add(pair.pair_id, scores)
    return evaluation
