"""Commands as a careless or hostile user types them: nothing of the user's is lost, errors are one line
(exit 2) before any long work, and nothing half-made is left behind."""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from progrestore import cli
from progrestore.cli import main
from progrestore.data.sources import SourceItem
from progrestore.infer.image import MAX_PIXELS

from .conftest import REPO


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with the repository's params.yaml and a photo; building a model there is an error, so
    every refusal below is proven to come before the model."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    cv2.imwrite("photo.png", np.random.default_rng(0).integers(0, 256, (40, 64, 3), dtype=np.uint8))
    return tmp_path


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the model was built before the inputs were checked")

    monkeypatch.setattr("progrestore.infer.restore.load_specification", refuse)


def _restore(*extra: str) -> int:
    return main(["restore", "photo.png", "--task", "sr", "--no-lora", *extra])


def _one_line(capsys) -> str:
    """What the command wrote to stderr, asserted to be one line and no traceback."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    return err


# 2,310 characters, every word the task's theme: T5 reads 226 tokens of it
LONG_PROMPT = " ".join(["The image becomes sharper and higher in resolution; nothing moves."] * 40)[:2310]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height``, with a few bytes of pixel data: decoding it would
    fail (or allocate width * height * 3 bytes first), reading its header does not."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def test_restore_never_touches_a_folder_of_the_users(workdir, no_model, capsys):
    (workdir / "Pictures").mkdir()
    (workdir / "Pictures" / "holiday.jpg").write_bytes(b"precious")
    assert _restore("--out", "Pictures") == 2
    assert _restore("--out", "Pictures", "--overwrite") == 2  # not its own output: --overwrite does not help
    assert (workdir / "Pictures" / "holiday.jpg").read_bytes() == b"precious"
    assert sorted(p.name for p in (workdir / "Pictures").iterdir()) == ["holiday.jpg"]
    assert "already holds files this command did not write" in capsys.readouterr().err
    (workdir / "notes.txt").write_text("mine")
    assert _restore("--out", "notes.txt") == 2 and (workdir / "notes.txt").read_text() == "mine"
    assert _restore("--out", ".") == 2  # the working folder: refused before the model, not after it


def test_restore_replaces_only_its_own_output_and_only_when_asked(workdir):
    assert _restore("--out", "result") == 0
    first = (workdir / "result" / "trajectory.mp4").read_bytes()
    (workdir / "result" / "my_notes.txt").write_text("kept")
    assert _restore("--out", "result") == 2  # an earlier output: only with --overwrite
    assert _restore("--out", "result", "--overwrite") == 0
    assert (workdir / "result" / "trajectory.mp4").read_bytes() == first  # same seed, same trajectory
    assert (workdir / "result" / "my_notes.txt").read_text() == "kept"
    assert not list(workdir.glob("**/.staging")) and not list(workdir.glob(".*staging*"))


def test_restore_input_errors_come_before_the_model(workdir, no_model, capsys):
    assert main(["restore", "missing.png", "--task", "sr", "--no-lora", "--out", "o"]) == 2
    (workdir / "fake.png").write_text("not an image")
    assert main(["restore", "fake.png", "--task", "sr", "--no-lora", "--out", "o"]) == 2
    assert main(["restore", "photo.png", "--task", "sr", "--lora", "nowhere", "--out", "o"]) == 2
    assert _restore("--prompt", " ", "--out", "o") == 2
    err = capsys.readouterr().err
    assert "missing.png" in err and "fake.png" in err and "nowhere" in err and "--prompt: empty" in err
    assert "Traceback" not in err and not (workdir / "o").exists()


def test_restore_refuses_a_prompt_over_the_text_encoders_budget(workdir, no_model, capsys):
    """The text encoder reads 226 tokens: a longer --prompt was cut silently, while restore.json kept all of
    it. Refused by the prompts stage's count, before the model, in a line that quotes only its head."""
    assert _restore("--prompt", LONG_PROMPT, "--out", "o") == 2
    err = _one_line(capsys)
    assert err.startswith("progrestore restore: error: --prompt 'The image becomes sharper")
    assert "… (2310 characters): too long (about " in err
    assert re.search(r"about \d+ tokens > 226\): the text encoder of tiny reads 226 tokens", err)
    assert len(err) < 300 and not (workdir / "o").exists()
    relo = ["reloblur", "anywhere", "--no-lora", "--out", "r.json", "--prompt", LONG_PROMPT]
    assert main(relo) == 2  # the same sampling path, the same check, before the folder is read
    err = _one_line(capsys)
    assert "(2310 characters): too long" in err and "anywhere" not in err and len(err) < 300
    assert not (workdir / "r.json").exists()


def test_restore_refuses_an_output_it_cannot_write_before_the_model(workdir, no_model, capsys):
    """An --out under a file, or in a folder it may not write (as root, which writes through chmod: sysfs),
    gave a PermissionError traceback on .staging after the model had run. Nothing is left behind."""
    (workdir / "notes.txt").write_text("mine")
    if os.geteuid() == 0:
        locked = Path("/sys/progrestore-restore-test")
    else:
        (workdir / "locked").mkdir(mode=0o500)
        locked = workdir / "locked" / "new" / "result"
    before = sorted(p.name for p in workdir.iterdir())
    under_file = workdir / "notes.txt" / "result"
    assert _restore("--out", str(under_file)) == 2
    assert f"{under_file}: {workdir / 'notes.txt'} is not a folder; give a folder" in _one_line(capsys)
    assert _restore("--out", str(locked)) == 2
    assert f"progrestore restore: error: {locked}: cannot be written (" in _one_line(capsys)
    assert not locked.parent.exists() or not locked.exists()
    assert (
        sorted(p.name for p in workdir.iterdir()) == before and (workdir / "notes.txt").read_text() == "mine"
    )
    if locked.parent.parent == workdir / "locked":
        assert list((workdir / "locked").iterdir()) == []


@pytest.mark.parametrize(
    ("width", "height", "size"),
    [
        (9000, 9000, "9000x9000, "),  # 81 MP: over the limit, under PIL's warning
        (10000, 10000, "10000x10000, "),  # 100 MP: PIL warns of a decompression bomb
        (14000, 14000, ""),  # 196 MP, the 11.9 GB run: PIL refuses it as a bomb, without its size
    ],
)
def test_restore_refuses_an_image_over_the_pixel_limit_from_its_header(
    workdir, no_model, capsys, width, height, size
):
    (workdir / "huge.png").write_bytes(_png_header(width, height))
    assert main(["restore", "huge.png", "--task", "sr", "--no-lora", "--out", "new/o"]) == 2
    err = _one_line(capsys)
    assert err == (
        f"progrestore restore: error: huge.png: {size}{width * height:,} pixels, more than the "
        f"{MAX_PIXELS:,} this command takes; give a smaller image\n"
    )
    assert not (workdir / "new").exists()  # the output folder was checked (made and removed) before


def test_help_describes_the_program_in_whole_sentences(capsys):
    """The description was the docstring's first line, which ends mid-sentence ("... DVC runs them), and")."""
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    description = " ".join(shown.split("\n\n")[1].split())  # after the usage, before the arguments
    assert description.endswith("weights.") and description.startswith("progrestore commands: the pipeline")
    assert (
        "restoring your own image, regenerating a clip, real-world evaluation, the paper's comparisons as a "
        "report, gates, checking the workspace against dvc.lock, and weights." in description
    )
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in commands.choices:  # and every command's own help prints
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0 and capsys.readouterr().out.startswith(f"usage: progrestore {command}")


def test_a_lora_trained_for_another_profile_or_positional_embedding_is_refused(workdir, no_model, capsys):
    lora = workdir / "lora"
    lora.mkdir()
    (lora / "pytorch_lora_weights.safetensors").write_bytes(b"")
    record = {"model": {"profile": "tiny", "height": 96, "width": 160, "positional_embedding": None}}
    (lora / "about.json").write_text(json.dumps(record))
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["model"]["profile"] = "tiny-1.0"
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["restore", "photo.png", "--task", "sr", "--lora", "lora", "--out", "o"]) == 2
    assert (
        "trained with other model settings (lora/about.json): profile 'tiny' (model.profile: 'tiny-1.0')"
        in (capsys.readouterr().err)
    )
    # trained on diffusers' sin-cos replacement, sampled with SAT's sliced table: refused, naming the key
    record["model"] |= {"profile": "tiny-1.0", "positional_embedding": "sincos"}
    (lora / "about.json").write_text(json.dumps(record))
    params["model"]["positional_embedding"] = "sliced"
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["restore", "photo.png", "--task", "sr", "--lora", "lora", "--out", "o"]) == 2
    error = capsys.readouterr().err
    assert "positional_embedding 'sincos' (model.positional_embedding: 'sliced')" in error
    assert "profile" not in error.split("settings")[1]


def test_prepare_never_touches_a_folder_of_the_users(workdir, capsys):
    (workdir / "mine").mkdir()
    (workdir / "mine" / "thesis.tex").write_text("years of work")
    assert main(["stage", "prepare", "--out", "mine"]) == 2
    assert main(["stage", "prepare", "--out", "mine", "--overwrite"]) == 2
    assert (workdir / "mine" / "thesis.tex").read_text() == "years of work"
    assert len(list((workdir / "mine").iterdir())) == 1


def test_a_failed_prepare_leaves_nothing_behind(tmp_path):
    from progrestore.data.prepare import prepare_images
    from progrestore.io.images import ImageDecodeError

    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((16, 32, 3), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    items = [SourceItem("good", "train", str(good)), SourceItem("bad", "val", str(tmp_path / "bad.png"))]
    with pytest.raises(ImageDecodeError):
        prepare_images(items, tmp_path / "out", 32, 16, "band", skip_bad=False)
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(ImageDecodeError):
        prepare_images(items, tmp_path / "kept", 32, 16, "band", skip_bad=False)
    assert list((tmp_path / "kept").iterdir()) == []  # the staging folder inside it is gone


def test_prepare_warns_of_a_strong_enlargement_and_records_the_scale(tmp_path, capsys):
    from progrestore.data.prepare import prepare_images

    for name, size in (("tiny", (3, 4)), ("fine", (64, 128))):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((*size, 3), 128, np.uint8))
    items = [
        SourceItem("tiny", "train", str(tmp_path / "tiny.png")),
        SourceItem("fine", "val", str(tmp_path / "fine.png")),
    ]
    manifest = prepare_images(items, tmp_path / "out", 32, 16, "band", skip_bad=False)
    scales = {r["image_id"]: r["scale"] for r in manifest["images"]}
    assert scales == {"tiny": 8.0, "fine": 0.25}
    err = capsys.readouterr().err
    assert "tiny.png (4x3) is enlarged 8.0x to 32x16" in err and "fine.png" not in err


def test_an_unknown_task_is_named_by_prepare(workdir, capsys):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["tasks"] = ["sr", "denoise"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["stage", "prepare", "--out", "x"]) == 2
    assert "tasks must be a list of known tasks (deblur, lowlight, mixed, sr)" in capsys.readouterr().err
    assert not (workdir / "x").exists()


def test_a_broken_params_file_is_one_line(workdir, capsys):
    (workdir / "params.yaml").write_text("clip:\n  width: 1360\n  height: [768\n")
    assert main(["stage", "prepare", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "params.yaml: not valid YAML at line" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ('{"clip_id": "a"\n', r"manifest\.jsonl:1: not a JSON object"),
        (
            '{"split": "val", "image_id": "x", "video": "v", "image": "i", "params": {}}\n',
            r":1: .*without clip_id",
        ),
    ],
)
def test_regenerate_names_a_broken_manifest_line(workdir, capsys, manifest, message):
    split = workdir / "data" / "val"
    split.mkdir(parents=True)
    (split / "manifest.jsonl").write_text(manifest)
    assert main(["regenerate", str(split / "manifest.jsonl"), "a", "--out", "clip.mp4"]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_regenerate_checks_its_output_path(workdir, capsys):
    (workdir / "folder").mkdir()
    (workdir / "taken.mp4").write_bytes(b"someone's video")
    manifest = workdir / "manifest.jsonl"
    assert main(["regenerate", str(manifest), "a", "--out", "c.png"]) == 2
    assert main(["regenerate", str(manifest), "a", "--out", "folder"]) == 2
    assert main(["regenerate", str(manifest), "a", "--out", "taken.mp4"]) == 2
    assert (workdir / "taken.mp4").read_bytes() == b"someone's video"
    assert capsys.readouterr().err.count("--out") == 3


def test_reloblur_refuses_a_zero_limit_and_a_foreign_output_file(workdir, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["reloblur", "anywhere", "--limit", "0"])
    assert stop.value.code == 2 and "expected a whole number >= 1" in capsys.readouterr().err
    (workdir / "results.json").write_text('{"mine": true}')
    assert main(["reloblur", "anywhere", "--out", "results.json"]) == 2
    assert json.loads((workdir / "results.json").read_text()) == {"mine": True}
    assert main(["reloblur", "anywhere", "--out", "results.txt"]) == 2
    assert not list(workdir.glob("r0*")) and not (workdir / "metrics").exists()


@pytest.mark.parametrize("frames", [10, None])
def test_encode_video_refuses_clips_its_backbone_cannot_take_before_the_model(
    workdir, capsys, monkeypatch, frames
):
    """Clips synthesised at another clip.frames (the data stages take any count): named per clip."""
    monkeypatch.setattr("progrestore.train.encode.load_specification", lambda *_: pytest.fail("model built"))
    split = workdir / "sr" / "train"
    split.mkdir(parents=True)
    entry = {key: "x" for key in ("split", "image_id", "video", "image")} | {"clip_id": "a_v0", "params": {}}
    (split / "manifest.jsonl").write_text(json.dumps(entry | ({"frames": frames} if frames else {})) + "\n")
    status = main(["stage", "encode_video", "sr", "--dataset", "sr", "--out", "video.safetensors"])
    assert status == 2 and not (workdir / "video.safetensors").exists()
    assert _one_line(capsys) == (
        f"progrestore encode_video: error: sr/train: clip a_v0 has {frames} frames; model.profile tiny takes "
        "8k+1 (CogVideoX's VAE takes 8k+1 frames: 9, 17, 25, ...): set clip.frames and rerun degrade\n"
    )
