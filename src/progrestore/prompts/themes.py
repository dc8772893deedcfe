"""Each task's restoration theme: the words a prompt must carry and the clause the template refiner adds."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    description: str  # what the refiner is told the clip shows
    clause: str  # what the template refiner appends to the scene
    keywords: tuple[str, ...]  # a valid prompt contains one of these (word stems, lower case)

    def carried_by(self, text: str) -> bool:
        words = re.findall(r"[a-z]+", text.lower())
        return any(word.startswith(stem) for word in words for stem in self.keywords)


THEMES = {
    "sr": Theme(
        "a low-resolution image becoming sharper and higher in resolution",
        "gradually becomes sharper and higher in resolution",
        ("sharp", "resolution", "detail", "crisp", "clear", "focus"),
    ),
    "deblur": Theme(
        "a motion-blurred image coming into focus as the blur fades",
        "gradually comes into focus as the motion blur fades",
        ("focus", "sharp", "blur", "clear", "crisp", "steady"),
    ),
    "lowlight": Theme(
        "a dark, noisy image brightening as the light returns",
        "gradually brightens as the light returns",
        ("bright", "light", "illuminat", "glow", "dawn", "lit"),
    ),
}
STATIC_SUFFIX = "Nothing moves. Static image."


def theme(task: str) -> Theme:
    if task not in THEMES:
        raise ValueError(f"no prompt theme for task {task!r}; known: {', '.join(THEMES)}")
    return THEMES[task]
