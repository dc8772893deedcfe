"""Arithmetic that gives the same bits on every x86-64 CPU, for the data stages' byte-identical outputs.

Why this exists: the same wheel computes differently on different CPUs. numpy dispatches its
transcendental ufuncs (``power``, ``exp``, ``sin``, ...) to per-CPU SIMD kernels (SVML on AVX-512);
glibc picks FMA or SSE2 variants of ``pow``, ``exp``, ``sin``, ``cos`` at load time (so Python's
``math`` and ``**`` on floats vary too); OpenCV dispatches its filters, resizes and math to SSE4, AVX2
or AVX-512 kernels and to Intel IPP, whose float results differ in the last bits.

What is portable, and all the data stages use:
- IEEE 754 ``+ - * /`` and ``sqrt``, which every CPU rounds correctly: numpy's element-wise arithmetic
  on real numbers, comparisons, ``floor``, ``rint``, gathers (numpy never fuses a multiply and an add of
  two ufuncs; its *complex* multiply does fuse on FMA CPUs, so the data stages avoid it);
- integer arithmetic, and :mod:`decimal` (built on it) for the few scalar transcendental values a clip
  needs (:func:`pow_scalar`, :func:`cos_sin_degrees`, :func:`gaussian_kernel`);
- OpenCV inside :func:`opencv_baseline`: ``cv2.setUseOptimized(False)`` switches off both its CPU
  dispatch and IPP, so every machine runs the same SSE2-baseline instructions.

Integer codecs (libpng/zlib, libjpeg-turbo's accurate DCT, x264 lossless) are bit-exact across their
SIMD paths by design; ``tests/test_portable_bytes.py`` checks all of this under forced CPU levels and
on QEMU-emulated CPUs.
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import math
from collections.abc import Iterator

import cv2
import numpy as np

_CONTEXT = decimal.Context(prec=40)
_EPSILON = decimal.Decimal("1e-45")
_PI = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494")


def pow_scalar(base: float, exponent: float) -> float:
    """``base ** exponent`` for ``base > 0``, in 40-digit decimal arithmetic, rounded to the nearest float."""
    if base <= 0.0:
        raise ValueError(f"pow_scalar needs a positive base, got {base}")
    with decimal.localcontext(_CONTEXT):
        return float((decimal.Decimal(base).ln() * decimal.Decimal(exponent)).exp())


def log_scalar(value: float) -> float:
    """Natural logarithm of ``value > 0`` in 40-digit decimal arithmetic, rounded to the nearest float."""
    with decimal.localcontext(_CONTEXT):
        return float(decimal.Decimal(value).ln())


def exp_scalar(value: float) -> float:
    """e ** value in 40-digit decimal arithmetic, rounded to the nearest float."""
    with decimal.localcontext(_CONTEXT):
        return float(decimal.Decimal(value).exp())


@functools.lru_cache(maxsize=64)  # a clip asks for one angle at every frame
def cos_sin_degrees(angle: float) -> tuple[float, float]:
    """(cos, sin) of ``angle`` degrees by the decimal Taylor series."""
    with decimal.localcontext(_CONTEXT):
        x = (decimal.Decimal(angle) * _PI / 180).remainder_near(2 * _PI)  # |x| <= pi
        cos_sum = sin_sum = decimal.Decimal(0)
        term, n = decimal.Decimal(1), 0  # term = x^n / n!
        while n < 2 or abs(term) > _EPSILON:
            if n % 2 == 0:
                cos_sum += -term if n % 4 == 2 else term
            else:
                sin_sum += -term if n % 4 == 3 else term
            n += 1
            term = term * x / n
    return float(cos_sum), float(sin_sum)


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised 1-D Gaussian weights of radius ceil(truncate * sigma) (at least 1), float32."""
    radius = max(1, math.ceil(truncate * sigma))
    weights = [
        exp_scalar(-(offset * offset) / (2.0 * sigma * sigma)) for offset in range(-radius, radius + 1)
    ]
    total = math.fsum(weights)  # the exactly rounded sum: no dependence on summation order
    return np.array([w / total for w in weights], np.float32)


@contextlib.contextmanager
def opencv_baseline() -> Iterator[None]:
    """Run OpenCV calls on its baseline code path (no CPU dispatch, no IPP), then restore the setting.

    The data stages' workers are single-threaded processes, so the process-wide switch affects only
    the calls inside the block.
    """
    previous = cv2.useOptimized()
    cv2.setUseOptimized(False)
    try:
        yield
    finally:
        cv2.setUseOptimized(previous)
