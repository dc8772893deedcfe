"""Contact sheets: a few clips as rows of frames 1, 3, 5, 7, 9 (the layout of the paper's Fig. 3)."""

from __future__ import annotations

import cv2
import numpy as np

from progrestore import portable

LABEL_HEIGHT = 22


def frame_columns(frames: int, count: int = 5) -> list[int]:
    """Evenly spaced zero-based frame indices from first to last (0, 2, 4, 6, 8 for 9 frames)."""
    return sorted({round(i * (frames - 1) / (count - 1)) for i in range(count)})


def contact_sheet(rows: list[tuple[str, np.ndarray]], tile_width: int = 320) -> np.ndarray:
    """Rows of (label, (T, H, W, 3) clip) -> one RGB image with a caption line above each row."""
    if not rows:
        raise ValueError("a contact sheet needs at least one clip")
    blocks = []
    for label, clip in rows:  # a stage output: OpenCV on its baseline path, the same bytes on every CPU
        columns = frame_columns(len(clip))
        height, width = clip.shape[1:3]
        tile_height = max(1, round(tile_width * height / width))
        text = f"{label}   frames " + ", ".join(str(i + 1) for i in columns)
        with portable.opencv_baseline():
            size = (tile_width, tile_height)
            strip = np.concatenate(
                [cv2.resize(clip[i], size, interpolation=cv2.INTER_AREA) for i in columns], 1
            )
            caption = np.full((LABEL_HEIGHT, strip.shape[1], 3), 255, np.uint8)
            cv2.putText(caption, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        blocks += [caption, strip]
    return np.concatenate(blocks, axis=0)
