"""Blur-to-sharp progression (paper eq. 5): I_t = I_HR * k_t, a linear motion kernel shrinking to nothing.

Length L_t = k_max (1 - (t-1)/(T-1)) pixels with k_max ~ U[length_max]; the angle ~ U[angle] is in
degrees, counter-clockwise from the +x axis as seen on screen (image rows grow downwards); the kernel
is symmetric, so theta and theta + 180 give the same blur. The kernel is the segment of length L_t
centred on the origin, drawn with sub-pixel accuracy (points every 1/4 px along it, each spread
bilinearly over its four nearest pixels), normalised to sum 1; for L_t < 1 it is a delta (the frame
is the clean image). Borders are reflected without repeating the edge pixel (OpenCV's REFLECT_101).

The convolution runs in the Fourier domain: the reflected image is transformed once per clip, each
frame costs one kernel transform and one inverse transform. The padding is ceil(k_max/2) + 2 pixels
(reflected repeatedly when the kernel is larger than the image), so the periodic convolution never
wraps into the kept region. For the same bits on every CPU, cos and sin come from
:mod:`progrestore.portable`, and the kernel is made point-symmetric to the bit, so its transform is
real and the filtering is a real multiply (numpy's complex multiply fuses operations on some CPUs).

Baseline: Wiener deconvolution with the true motion kernel of frame 1 (non-blind: on synthetic clips the
kernel is known from the manifest), noise-to-signal ratio 0.03, reflected borders, FFT. Without a known
kernel (real-world data) it falls back to unsharp masking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft

from progrestore import portable, tasks
from progrestore.config import Section
from progrestore.imaging import UNSHARP, to_uint8, unsharp

SAMPLES_PER_PIXEL = 4


@dataclass(frozen=True)
class Settings:
    length_max: tuple[float, float]
    angle: tuple[float, float]

    @classmethod
    def from_section(cls, section: Section) -> Settings:
        return cls(section.interval("length_max", 0.0, 1000.0), section.interval("angle", 0.0, 360.0))


def sample(rng: np.random.Generator, settings: Settings) -> dict:
    angle = float(rng.uniform(*settings.angle))
    return {"angle": angle, "length_max": float(rng.uniform(*settings.length_max))}


def schedule(params: dict, progress: float) -> dict:
    return {"length": params["length_max"] * (1.0 - progress)}


def motion_kernel(length: float, angle_degrees: float) -> np.ndarray:
    """Odd-sized, sum-one kernel of a straight motion of ``length`` px at ``angle_degrees``."""
    if length < 1.0:
        return np.ones((1, 1), np.float32)
    radius = math.ceil(length / 2) + 1
    cos, sin = portable.cos_sin_degrees(angle_degrees)  # libm's cos/sin differ between CPUs
    count = max(2, math.ceil(length * SAMPLES_PER_PIXEL) + 1)
    offsets = np.linspace(-length / 2, length / 2, count)
    xs = radius + offsets * cos
    ys = radius - offsets * sin
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    share = 1.0 / count  # each point carries 1/count: the kernel sums to 1 (to rounding) by construction
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float64)
    for dy, dx, weight in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(kernel, (y0 + dy, x0 + dx), weight * share)  # in index order: the same sum everywhere
    return (0.5 * (kernel + kernel[::-1, ::-1])).astype(np.float32)  # point-symmetric to the bit


@dataclass(frozen=True)
class Spectrum:
    """An image's Fourier transform with reflected borders, ready for linear filtering by FFT."""

    image: np.ndarray
    spectrum: np.ndarray  # (3, H', W'//2+1) transform of the reflected image, channels first
    pad: int
    shape: tuple[int, int]

    @classmethod
    def of(cls, image: np.ndarray, pad: int) -> Spectrum:
        height, width = image.shape[:2]
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        channels_first = np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)
        shape = (
            fft.next_fast_len(height + 2 * pad, real=True),
            fft.next_fast_len(width + 2 * pad, real=True),
        )
        return cls(image, fft.rfft2(channels_first, s=shape), pad, shape)

    def transfer(self, kernel: np.ndarray) -> np.ndarray:
        """Real transform of an odd-sized, point-symmetric kernel centred on the origin (radius <= pad)."""
        radius = kernel.shape[0] // 2
        wrapped = np.zeros(self.shape, np.float32)
        wrapped[: kernel.shape[0], : kernel.shape[1]] = kernel
        # the transform of a point-symmetric kernel is real; the imaginary part is rounding noise
        return fft.rfft2(np.roll(wrapped, (-radius, -radius), axis=(0, 1))).real

    def filtered(self, response: np.ndarray) -> np.ndarray:
        """The image filtered by the real frequency ``response``, cropped back and rounded to uint8.

        The product is taken on the interleaved (real, imaginary) float32 view: numpy's complex
        multiply uses fused multiply-adds on some CPUs only, a real multiply rounds the same on all.
        """
        interleaved = np.repeat(response.astype(np.float32), 2, axis=-1)  # (re, im) pairs share a factor
        product = (self.spectrum.view(np.float32) * interleaved).view(np.complex64)
        out = fft.irfft2(product, s=self.shape)
        height, width = self.image.shape[:2]
        return to_uint8(out[:, self.pad : self.pad + height, self.pad : self.pad + width].transpose(1, 2, 0))


def prepare(image: np.ndarray, params: dict) -> Spectrum:
    return Spectrum.of(image, math.ceil(params["length_max"] / 2) + 2)


def render(state: Spectrum, params: dict, progress: float) -> np.ndarray:
    kernel = motion_kernel(schedule(params, progress)["length"], params["angle"])
    if kernel.size == 1:
        return state.image.copy()
    return state.filtered(state.transfer(kernel))


def wiener(image: np.ndarray, kernel: np.ndarray, nsr: float = 0.03) -> np.ndarray:
    spectrum = Spectrum.of(image, kernel.shape[0] // 2 + 2)
    transfer = spectrum.transfer(kernel)
    return spectrum.filtered(np.conj(transfer) / (np.abs(transfer) ** 2 + nsr))


def restore(degraded: np.ndarray, params: dict | None) -> np.ndarray:
    if params is None:
        return unsharp(degraded)
    return wiener(degraded, motion_kernel(params["length_max"], params["angle"]))


TASK = tasks.register(
    tasks.Task(
        name="deblur",
        settings=Settings.from_section,
        sample=sample,
        schedule=schedule,
        prepare=prepare,
        render=render,
        baseline=tasks.Baseline(
            restore,
            "Wiener deconvolution with the true frame-1 kernel (non-blind), NSR 0.03",
            f"{UNSHARP}: the blur kernel of a real photograph is unknown, so the non-blind Wiener "
            "deconvolution cannot run",
        ),
        theme=tasks.Theme(
            "a motion-blurred image coming into focus as the blur fades",
            "gradually comes into focus as the motion blur fades",
            ("focus", "sharp", "blur", "clear", "crisp", "steady"),
        ),
    )
)
