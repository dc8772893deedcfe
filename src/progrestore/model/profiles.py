"""Model profiles and the backbone families they belong to: the registry the ``model.profile`` parameter
chooses from.

A family is a package ``progrestore/model/<family>/`` whose ``profiles`` module (light: no torch, no
diffusers) holds all the generic code needs to know about it: a :class:`Family` record (its frame rule,
size step, text budget, positional-embedding options, labels, and where its :class:`ModelSpecification`
is) and its profiles (which variant, at which native size, from where), registered once with
:func:`register`. Adding a backbone is adding one such package; nothing here names a family.

The family list is this package's subpackages, so it is known without importing any family. Listing the
profile names imports each family's ``profiles`` module, and loading a model (``model.families``) imports
the specification of the chosen profile's family alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass

import progrestore.model
from progrestore.config import Section
from progrestore.errors import ParamsError


@dataclass(frozen=True)
class Family:
    """One backbone family: the facts the generic code needs about it."""

    name: str  # its package, ``progrestore.model.<name>``
    architecture: str  # its name in labels and messages
    specification: str  # ``module:Class`` of its ModelSpecification, imported only to load a model
    frames: tuple[int, int]  # (multiple, offset): the clip lengths it takes are multiple * k + offset
    frames_reason: str  # what imposes that rule, e.g. "the VAE"
    size_step: int  # frame sizes must be multiples of it
    text_tokens: int  # the text encoder's sequence length: the prompt budget
    # ``model.positional_embedding``'s options for a profile with a learned table, the default first, and
    # those of them that keep the learned table's size (the others run at any size)
    positional_embeddings: tuple[str, ...] = ()
    fixed_size_embeddings: tuple[str, ...] = ()

    def takes(self, frames: int) -> bool:
        multiple, offset = self.frames
        return frames >= offset and (frames - offset) % multiple == 0

    @property
    def frames_rule(self) -> str:
        """E.g. ``8k+1``."""
        multiple, offset = self.frames
        return f"{multiple}k+{offset}" if offset else f"{multiple}k"

    @property
    def frames_why(self) -> str:
        """E.g. ``the VAE takes 8k+1 frames: 9, 17, 25, ...``: what every frame-count refusal says."""
        return f"{self.frames_reason} takes {self.frames_rule} frames: {self.frames_examples}"

    @property
    def frames_examples(self) -> str:
        """The first clip lengths of two frames or more it takes, e.g. ``9, 17, 25, ...``."""
        counts = [n for n in range(2, 2 + 4 * self.frames[0]) if self.takes(n)][:3]
        return f"{', '.join(map(str, counts))}, ..."


@dataclass(frozen=True)
class Profile:
    name: str
    family: Family  # the family whose model specification builds and runs it
    layout: str  # the family's variant, e.g. its version
    tiny: bool
    height: int
    width: int
    learned_pe: bool = False  # a learned positional embedding fixes the latent height and width
    default_path: str | None = None

    @property
    def architecture(self) -> str:
        return self.family.architecture

    @property
    def text_tokens(self) -> int:
        return self.family.text_tokens

    @property
    def size_step(self) -> int:
        return self.family.size_step

    @property
    def label(self) -> str:
        if self.tiny:
            return (
                f"{self.name}: randomly initialised tiny {self.architecture} ({self.layout} layout) - "
                "plumbing, not quality"
            )
        return f"{self.name}: LoRA-fine-tuned {self.architecture} {self.layout} I2V"


_FAMILIES: dict[str, Family] = {}
_PROFILES: dict[str, Profile] = {}


def register(family: Family, *profiles: Profile) -> dict[str, Profile]:
    """Called once by each family's ``profiles`` module, in the family's package; returns its profiles
    by name (in the order given: the order of the names in messages)."""
    module = f"{progrestore.model.__name__}.{family.name}.profiles"
    for profile in profiles:
        if profile.family != family:
            raise ValueError(f"profile {profile.name!r} is not of family {family.name!r}")
        if profile.name in _PROFILES:
            raise ValueError(f"profile {profile.name!r} is registered twice")
    if family.name in _FAMILIES:
        raise ValueError(f"backbone family {family.name!r} is registered twice")
    if family.name not in family_names() or importlib.util.find_spec(module) is None:
        raise ValueError(f"backbone family {family.name!r} must be registered in {module}")
    _FAMILIES[family.name] = family
    _PROFILES.update((profile.name, profile) for profile in profiles)
    return {profile.name: profile for profile in profiles}


def family_names() -> tuple[str, ...]:
    """Every backbone family, sorted: the subpackages of ``progrestore.model``."""
    return tuple(sorted(info.name for info in pkgutil.iter_modules(progrestore.model.__path__) if info.ispkg))


def family_named(name: str) -> Family:
    """The family ``name``; its ``profiles`` module is imported on first use."""
    if name not in _FAMILIES:
        if name not in family_names():
            raise ParamsError(f"unknown backbone family {name!r}; known: {', '.join(family_names())}")
        importlib.import_module(f"{progrestore.model.__name__}.{name}.profiles")
    return _FAMILIES[name]


def profile_names() -> tuple[str, ...]:
    """Every profile of every family (families sorted, each family's in its order); imports the families'
    ``profiles`` modules only."""
    names = []
    for name in family_names():
        family = family_named(name)
        names += [profile.name for profile in _PROFILES.values() if profile.family == family]
    return tuple(names)


def profile_named(name: str) -> Profile:
    """The profile ``name``, else a ParamsError naming the known ones."""
    if name not in profile_names():
        raise ParamsError(f"unknown model profile {name!r}; known: {', '.join(profile_names())}")
    return _PROFILES[name]


def profile_from_params(model: Section) -> Profile:
    return _PROFILES[model.choice("profile", profile_names())]
