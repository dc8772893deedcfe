"""The ``model`` block, validated once into :class:`ModelSettings`, which every model stage and command uses."""

from __future__ import annotations

from dataclasses import dataclass

from progrestore.config import Section
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
    drop_learned_pe: bool
    height: int
    width: int

    @property
    def label(self) -> str:
        return f"{self.profile.label}, {self.height}x{self.width}"


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
    path = None if model.raw("path") is None else model.text("path")
    drop_pe = model.boolean("drop_learned_pe")
    if drop_pe and not profile.learned_pe:
        raise model.fail("drop_learned_pe", f"false: {profile.name} has no learned positional embedding")
    height, width = model_size(params)
    if profile.learned_pe and not drop_pe and (height, width) != (profile.height, profile.width):
        raise model.fail(
            "height",
            f"null or {profile.height} (with model.width {profile.width}): {profile.name}'s learned positional "
            f"embedding fixes its size; set model.drop_learned_pe: true to run at {height}x{width}",
        )
    return ModelSettings(profile, path, model.integer("seed", 0), drop_pe, height, width)
