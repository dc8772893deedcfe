"""Small helpers shared by the degradation modules."""

from __future__ import annotations

import numpy as np


def to_uint8(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Clip ``values * scale`` to [0, 255] and round half up to uint8."""
    scaled = values * scale if scale != 1.0 else values
    return (np.clip(scaled, 0.0, 255.0) + 0.5).astype(np.uint8)
