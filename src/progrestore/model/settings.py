"""The ``model`` block, validated once into :class:`ModelSettings`, which every model stage and command uses."""

from __future__ import annotations

from dataclasses import dataclass

from progrestore.config import Section, clip_frames
from progrestore.model.profiles import Profile, profile_from_params


@dataclass(frozen=True)
class ModelSettings:
    """The ``model`` block, validated: which backbone, from where, and the size it works at.

    ``height`` x ``width`` is the size of every frame the model sees, in encode, train, restore and
    ``progrestore restore`` alike (null in params.yaml: the profile's native size).
    """

    profile: Profile
    path: str | None
    seed: int
    positional_embedding: str | None  # profiles with a learned table: one of the family's options
    height: int
    width: int

    @property
    def label(self) -> str:
        return f"{self.profile.label}, {self.height}x{self.width}"


def trained_for(settings: ModelSettings) -> dict:
    """What a LoRA depends on, recorded in its ``about.json`` and checked before sampling with it."""
    return {
        "family": settings.profile.family.name,
        "profile": settings.profile.name,
        "height": settings.height,
        "width": settings.width,
        "positional_embedding": settings.positional_embedding,
    }


def model_size(params: Section) -> tuple[int, int]:
    """(height, width) every frame the model sees is brought to: ``model.height`` / ``model.width``, or
    the profile's native size. Reads only those and ``model.profile`` (what the scoring window needs)."""
    model = params.section("model")
    profile = profile_from_params(model)
    size, step = {}, profile.size_step
    for name, native in (("height", profile.height), ("width", profile.width)):
        value = model.optional_integer(name, step)
        if value is not None and (value % step or value > 4096):
            raise model.fail(
                name, f"null or a multiple of {step} up to 4096 ({profile.architecture}'s size step)"
            )
        size[name] = native if value is None else value
    return size["height"], size["width"]


def model_settings(params: Section) -> ModelSettings:
    model = params.section("model")
    profile = profile_from_params(model)
    family = profile.family
    path = None if model.raw("path") is None else model.text("path")
    embedding = None
    if model.raw("positional_embedding") is not None:
        if not profile.learned_pe:
            raise model.fail(
                "positional_embedding", f"null: {profile.name} has no learned positional embedding"
            )
        embedding = model.choice("positional_embedding", family.positional_embeddings)
    elif profile.learned_pe:
        embedding = family.positional_embeddings[0]
    height, width = model_size(params)
    if embedding in family.fixed_size_embeddings and (height, width) != (profile.height, profile.width):
        free = next(e for e in family.positional_embeddings if e not in family.fixed_size_embeddings)
        raise model.fail(
            "height",
            f"null or {profile.height} (with model.width {profile.width}): {profile.name}'s learned positional "
            f"embedding fixes its size; set model.positional_embedding: {free} to run at {height}x{width}",
        )
    return ModelSettings(profile, path, model.integer("seed", 0), embedding, height, width)


def model_frames(params: Section) -> int:
    """``clip.frames``, checked against the frame rule of ``model.profile``'s family: what a stage that
    runs the model reads it with (the data stages take any ``clip.frames`` of 2 or more)."""
    profile = profile_from_params(params.section("model"))
    frames = clip_frames(params)
    if not profile.family.takes(frames):
        family = profile.family
        raise params.section("clip").fail(
            "frames",
            f"{family.frames_rule} for model.profile {profile.name} ({family.frames_why})",
        )
    return frames
