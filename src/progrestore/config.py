"""params.yaml -> typed, validated settings.

Every stage validates its parameters here before any long work starts, and every error names the
parameter (dotted key), what was expected and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from progrestore.errors import ParamsError, quote

PARAMS_FILE = Path("params.yaml")
SPLITS = ("train", "val")


class Section:
    """A view of one mapping in params.yaml that reports problems by their dotted key.

    ``reads``, when given, collects the dotted key of every value read through this section or its
    sub-sections (a whole section's key when all of it is read): what a stage's ``params`` in dvc.yaml
    must cover, checked by the tests.
    """

    def __init__(
        self,
        values: dict[str, Any],
        prefix: str = "",
        source: str = str(PARAMS_FILE),
        reads: set[str] | None = None,
    ):
        if not isinstance(values, dict):
            raise ParamsError(
                f"{source}: '{prefix or '<top>'}' must be a mapping, got {type(values).__name__}"
            )
        self._values = values
        self._prefix = prefix
        self._source = source
        self._reads = reads

    def _read(self, key: str) -> None:
        if self._reads is not None:
            self._reads.add(key)

    def key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def fail(self, name: str, expected: str) -> ParamsError:
        found = self._values.get(name, "<missing>")
        shown = quote(found) if isinstance(found, str) else repr(found)  # a long prompt: its head
        return ParamsError(f"{self._source}: {self.key(name)} must be {expected}, got {shown}")

    def merged(self, name: str) -> Section:
        """This section with the values of its sub-section ``name`` on top (profile overrides)."""
        overrides = self.section(name)
        return Section(self._values | overrides._values, self._prefix, self._source, self._reads)

    def fields(self) -> list[str]:
        self._read(self._prefix)
        return list(self._values)

    def _get(self, name: str) -> Any:
        if name not in self._values:
            raise ParamsError(f"{self._source}: {self.key(name)} is missing")
        return self._values[name]

    def raw(self, name: str) -> Any:
        self._read(self.key(name))
        return self._get(name)

    def section(self, name: str) -> Section:
        return Section(self._get(name), self.key(name), self._source, self._reads)

    def integer(self, name: str, low: int | None = None, high: int | None = None) -> int:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int) or _outside(value, low, high):
            raise self.fail(name, f"an integer{_bounds(low, high)}")
        return value

    def optional_integer(self, name: str, low: int = 1) -> int | None:
        self._read(self.key(name))
        return None if self._values.get(name) is None else self.integer(name, low)

    def number(self, name: str, low: float | None = None, high: float | None = None) -> float:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or _outside(value, low, high):
            raise self.fail(name, f"a number{_bounds(low, high)}")
        return float(value)

    def boolean(self, name: str) -> bool:
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.fail(name, "true or false")
        return value

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value not in options:
            raise self.fail(name, "one of " + ", ".join(options))
        return value

    def text(self, name: str) -> str:
        value = self.raw(name)
        if not isinstance(value, str) or not value:
            raise self.fail(name, "a non-empty string")
        return value

    def optional_path(self, name: str) -> Path | None:
        self._read(self.key(name))
        return None if self._values.get(name) is None else Path(self.text(name))

    def names(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, "a list of names")
        if len(set(value)) != len(value):
            raise self.fail(name, "a list without repeated names")
        return tuple(value)

    def integer_interval(self, name: str, low: int, high: int) -> tuple[int, int]:
        """A range ``[a, b]`` of whole numbers with ``low <= a <= b <= high`` (e.g. JPEG qualities)."""
        a, b = self.interval(name, low, high)
        if a != int(a) or b != int(b):
            raise self.fail(name, f"a range [a, b] of whole numbers with {low} <= a <= b <= {high}")
        return int(a), int(b)

    def interval(self, name: str, low: float, high: float) -> tuple[float, float]:
        """A sampling range ``[a, b]`` with ``low <= a <= b <= high``."""
        value = self.raw(name)
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        )
        if not ok or not (low <= value[0] <= value[1] <= high):
            raise self.fail(name, f"a range [a, b] with {low} <= a <= b <= {high}")
        return float(value[0]), float(value[1])


def _outside(value: float, low: float | None, high: float | None) -> bool:
    return (low is not None and value < low) or (high is not None and value > high)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def load_params(path: Path = PARAMS_FILE, reads: set[str] | None = None) -> Section:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found (run from the repository root)")
    try:
        with path.open() as handle:
            values = yaml.safe_load(handle) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or err.__class__.__name__
        raise ParamsError(f"{path}: not valid YAML{where}: {problem}") from err
    return Section(values, source=str(path), reads=reads)


def clip_size(params: Section) -> tuple[int, int]:
    """``clip.width`` and ``clip.height``: multiples of 16 (the VAE's 8x downsampling times the 2x2 patch)."""
    clip = params.section("clip")
    sizes = []
    for name in ("width", "height"):
        size = clip.integer(name, 16, 4096)
        if size % 16:
            raise clip.fail(name, "a multiple of 16 (the VAE's 8x downsampling times the 2x2 patch)")
        sizes.append(size)
    return sizes[0], sizes[1]


def clip_frames(params: Section) -> int:
    """``clip.frames``: 2 or more; a stage that runs the model also checks it against the rule of the
    profile's family (``model.settings.model_frames``)."""
    return params.section("clip").integer("frames", 2)


@dataclass(frozen=True)
class ClipSettings:
    """Geometry and timing shared by every task's clips (paper: 1360x768, 9 frames, 5 fps, 2 per image)."""

    width: int
    height: int
    frames: int
    fps: int
    clips_per_image: int

    @classmethod
    def from_params(cls, params: Section) -> ClipSettings:
        clip = params.section("clip")
        width, height = clip_size(params)
        return cls(
            width=width,
            height=height,
            frames=clip_frames(params),
            fps=clip.integer("fps", 1, 120),
            clips_per_image=clip.integer("clips_per_image", 1, 100),
        )
