"""Backbones are a registry found by name, as tasks are: the generic code names no family, and listing
the profiles imports no model code."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from progrestore.errors import ParamsError
from progrestore.model import profiles
from progrestore.model.profiles import (
    Family,
    Profile,
    family_named,
    family_names,
    profile_named,
    profile_names,
)

from .conftest import REPO

SRC = REPO / "src" / "progrestore"


def family_words() -> set[str]:
    """What names a family: its package name and its architecture's, lower case."""
    return {word.lower() for name in family_names() for word in (name, family_named(name).architecture)}


def generic_files() -> list:
    """Every module outside the family packages ``model/<family>/``."""
    packages = [SRC / "model" / name for name in family_names()]
    return sorted(
        path for path in SRC.rglob("*.py") if not any(path.is_relative_to(package) for package in packages)
    )


def family_mentions(paths, words: set[str]) -> list[str]:
    # a family's name as a word of its own ("wan", "Wan2.2", not "wanted"), in any case
    names = "|".join(re.escape(word) for word in sorted(words))
    pattern = re.compile(rf"(?<![a-z])(?:{names})(?![a-z])", re.IGNORECASE)
    return [
        f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]


def test_the_generic_modules_name_no_backbone_family():
    assert family_words() >= {"cogvideox", "wan"}
    mentions = family_mentions(generic_files(), family_words())
    assert not mentions, "family names outside model/<family>/:\n" + "\n".join(mentions)


def test_the_scan_reports_a_planted_mention(tmp_path):
    planted = tmp_path / "generic.py"
    planted.write_text('"""Fine: wanted."""\n\n# like CogVideoX does\nx = "Wan2.2"\n')
    assert family_mentions([planted], family_words()) == [
        f"{planted}:3: # like CogVideoX does",
        f'{planted}:4: x = "Wan2.2"',
    ]
    assert SRC / "model" / "profiles.py" in generic_files()
    assert not any("cogvideox" in path.parts for path in generic_files())


def test_listing_the_profiles_imports_no_model_code():
    probe = (
        "import json, sys\n"
        "import progrestore.model.profiles as p\n"
        "names = p.profile_names()\n"
        "assert 'tiny' in names, names\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(result.stdout))
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "diffusers", "transformers")}
    assert "progrestore.model.cogvideox.specification" not in loaded
    assert {f"progrestore.model.{name}.profiles" for name in family_names()} <= loaded
    assert "progrestore.model.families" not in loaded and "progrestore.model.settings" not in loaded


def test_the_family_list_is_the_model_packages_and_profiles_are_found_by_name():
    assert family_names() == ("cogvideox", "wan")
    assert profile_names() == (
        "tiny",
        "tiny-1.0",
        "cogvideox1.5-5b-i2v",
        "cogvideox-5b-i2v",
        "wan-tiny",
        "wan2.2-ti2v-5b",
    )
    tiny = profile_named("tiny")
    assert tiny.family is family_named("cogvideox") and tiny.size_step == 16 and tiny.text_tokens == 226
    assert tiny.family.frames_rule == "8k+1" and tiny.family.frames_examples == "9, 17, 25, ..."
    assert [n for n in range(2, 50) if tiny.family.takes(n)] == [9, 17, 25, 33, 41, 49]
    wan = profile_named("wan2.2-ti2v-5b")
    assert wan.family is family_named("wan") and wan.size_step == 32 and wan.text_tokens == 512
    assert (wan.height, wan.width) == (704, 1280) and wan.family.frames_examples == "5, 9, 13, ..."
    assert profile_named("wan-tiny").tiny and not wan.tiny
    with pytest.raises(ParamsError, match=r"^unknown model profile 'wan'; known: tiny, tiny-1\.0, "):
        profile_named("wan")
    with pytest.raises(ParamsError, match=r"^unknown backbone family 'hunyuan'; known: cogvideox, wan$"):
        family_named("hunyuan")


def test_a_family_registers_once_in_its_own_package():
    family = family_named("cogvideox")
    with pytest.raises(ValueError, match="registered twice"):
        profiles.register(family)
    stray = Family("stray", "Stray", "x:Y", (4, 1), "its VAE", 8, 77)
    with pytest.raises(ValueError, match=r"must be registered in progrestore\.model\.stray\.profiles"):
        profiles.register(stray)
    assert "stray" not in profiles._FAMILIES
    with pytest.raises(ValueError, match="is not of family"):
        profiles.register(family_named("cogvideox"), Profile("x", stray, "1", True, 8, 8))


def test_a_profiles_specification_is_its_familys():
    from progrestore.model.families import specification_class

    for name in profile_names():
        spec = specification_class(profile_named(name))
        assert f"{spec.__module__}:{spec.__name__}" == profile_named(name).family.specification
        assert spec.samplers  # what ``restore.scheduler`` chooses from, the family's own
