"""Bringing frames to the model's size and back.

To the model: the centre window of the model's aspect ratio (the framing rule's step 2; nothing is cut
when the aspects agree, as for 1360x768 clips and the 1.5 profile), area-resized to the model size.
Back: the model's frames are resized (bicubic) to that window and pasted into a copy of the input (an
image, or a clip frame by frame), so the part outside the window, if any, keeps the input's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from progrestore.data.framing import centre_window, fit


def to_model(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return fit(image, width, height)


def from_model(frames: np.ndarray, original: np.ndarray) -> np.ndarray:
    """(T, h, w, 3) model frames -> (T, H, W, 3) at the size of ``original``, the model's input before
    sizing: an (H, W, 3) image or a (T, H, W, 3) clip."""
    height, width = frames.shape[1:3]
    x, y, w, h = centre_window(original.shape[-2], original.shape[-3], width, height)
    out = np.repeat(original[None], len(frames), axis=0) if original.ndim == 3 else original.copy()
    for t, frame in enumerate(frames):
        resized = (
            frame if (h, w) == frame.shape[:2] else cv2.resize(frame, (w, h), interpolation=cv2.INTER_CUBIC)
        )
        out[t, y : y + h, x : x + w] = resized
    return out
