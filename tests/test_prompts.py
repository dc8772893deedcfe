"""Prompt files: captioners, refiners against a local chat-completions server, caching, validation, secrets."""

from __future__ import annotations

import copy
import http.server
import json
import socket
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import skimage.data
import yaml

from progrestore.cli import main
from progrestore.config import Section
from progrestore.data.dataset import build_task_dataset
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import SourceItem
from progrestore.errors import InputError, ParamsError
from progrestore.prompts.build import PromptSettings, build_prompts
from progrestore.prompts.captioners import HeuristicCaptioner
from progrestore.prompts.refiners import OpenAIRefiner, RefinerUnavailable, TemplateRefiner
from progrestore.prompts.validation import problem

from .conftest import REPO, TASKS, TINY_CLIP

T5_BUDGET = 226  # CogVideoX's text encoder, the budget every profile has today

SECRET = "sk-test-0123456789-do-not-leak"
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


# --- captioners -------------------------------------------------------------------------------------


def test_heuristic_captions_are_deterministic_and_tell_images_apart():
    captioner = HeuristicCaptioner()
    images = [
        skimage.data.astronaut(),
        skimage.data.coffee(),
        skimage.data.rocket(),
        skimage.data.hubble_deep_field(),
    ]
    first, second = captioner.caption(images), captioner.caption([im.copy() for im in images])
    assert first == second
    assert len(set(first)) == len(first)
    assert all(c.startswith("A ") and c.endswith(".") for c in first)
    dark = (skimage.data.coffee() * 0.15).astype(np.uint8)
    assert "dark" in captioner.describe(dark) and "dark" not in captioner.describe(skimage.data.coffee())


# --- validation and the template ------------------------------------------------------------------------


def test_validation_names_what_is_wrong():
    good = "A foggy harbour becomes sharper and higher in resolution. Nothing moves. Static image."
    assert problem(good, "sr", T5_BUDGET) is None
    assert problem("two\nlines that become sharper", "sr", T5_BUDGET) == "more than one line"
    assert problem("sharper\x07 bell", "sr", T5_BUDGET) == "control characters"
    assert "too long" in problem("sharp " * T5_BUDGET, "sr", T5_BUDGET)
    assert "theme" in problem("A cat sits on a mat.", "lowlight", T5_BUDGET)


@pytest.mark.parametrize("task", TASKS)
def test_template_keeps_the_scene_and_the_theme(task):
    prompt, replaced = TemplateRefiner().refine("A night street under lamplight.", task)
    assert (
        prompt.startswith("A night street under lamplight")
        and problem(prompt, task, T5_BUDGET) is None
        and not replaced
    )


# --- an OpenAI-compatible endpoint on 127.0.0.1 -------------------------------------------------------------


class ChatServer(http.server.BaseHTTPRequestHandler):
    """Answers chat completions from a script of behaviours; records requests."""

    script: ClassVar[list[str]] = []
    requests: ClassVar[list[dict]] = []
    default = "ok"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"auth": self.headers.get("Authorization"), "body": body})
        action = type(self).script.pop(0) if type(self).script else type(self).default
        if action == "timeout":
            time.sleep(0.6)
            action = "ok"
        if action in ("500", "429", "401", "404"):
            self.send_response(int(action))
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if action == "junk":
            payload = b"<html>not json</html>"
        else:
            caption = body["messages"][1]["content"].split("Caption: ", 1)[1]
            text = (
                "Nothing in particular."
                if action == "off-theme"
                else f"{caption.rstrip('.')} becomes sharp and clear. Nothing moves. Static image."
            )
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_server():
    ChatServer.script, ChatServer.requests, ChatServer.default = [], [], "ok"
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ChatServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def _refiner(url: str, retries: int = 3) -> OpenAIRefiner:
    return OpenAIRefiner(
        url, "tiny-chat", "PROGRESTORE_TEST_KEY", T5_BUDGET, timeout_s=0.3, retries=retries, backoff_s=0.01
    )


def test_refiner_retries_5xx_429_and_timeouts_then_succeeds(chat_server, monkeypatch):
    monkeypatch.setenv("PROGRESTORE_TEST_KEY", SECRET)
    ChatServer.script = ["500", "429", "timeout"]
    prompt, replaced = _refiner(chat_server).refine("A red car in the rain.", "deblur")
    assert (
        prompt == "A red car in the rain becomes sharp and clear. Nothing moves. Static image."
        and not replaced
    )
    assert len(ChatServer.requests) == 4
    assert all(r["auth"] == f"Bearer {SECRET}" for r in ChatServer.requests)
    assert ChatServer.requests[0]["body"]["model"] == "tiny-chat"


def test_junk_and_off_theme_replies_fall_back_to_the_template(chat_server):
    ChatServer.default = "junk"
    ChatServer.script = ["off-theme"]
    prompt, replaced = _refiner(chat_server, retries=2).refine("A red car in the rain.", "deblur")
    assert replaced and prompt == TemplateRefiner().refine("A red car in the rain.", "deblur")[0]
    assert len(ChatServer.requests) == 3


def test_endpoint_that_keeps_failing_stops_the_stage(chat_server):
    ChatServer.default = "500"
    with pytest.raises(RefinerUnavailable, match="still failing after 2 retries"):
        _refiner(chat_server, retries=2).refine("A red car.", "sr")


# --- the stage ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, settings) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("prompts")
    items = [
        SourceItem("astronaut", "train", "skimage:astronaut"),
        SourceItem("coffee", "train", "skimage:coffee"),
        SourceItem("chelsea", "val", "skimage:chelsea"),
    ]
    prepare_images(items, root / "images", TINY_CLIP.width, TINY_CLIP.height, "band", skip_bad=False)
    build_task_dataset("sr", settings["sr"], TINY_CLIP, 1, root / "images", root / "sr", root / "sr.png")
    return root / "sr", root / "images"


def _settings(**prompts) -> PromptSettings:
    section = copy.deepcopy(PARAMS["prompts"]) | prompts
    return PromptSettings.from_params(Section({"prompts": section, "model": PARAMS["model"]}), "sr")


def test_both_strategies_are_written_aligned_with_videos(dataset, tmp_path):
    folder, images = dataset
    build_prompts("sr", folder, images, _settings(strategy="scene"), tmp_path / "cache")
    for split in ("train", "val"):
        lines = {
            name: (folder / split / name).read_text().splitlines()
            for name in ("videos.txt", "prompt.txt", "prompt_uniform.txt", "prompt_scene.txt")
        }
        assert len({len(v) for v in lines.values()}) == 1
        assert lines["prompt.txt"] == lines["prompt_scene.txt"]
        assert set(lines["prompt_uniform.txt"]) == {PARAMS["prompts"]["uniform"]["sr"]}
        records = [json.loads(r) for r in (folder / split / "prompts.jsonl").read_text().splitlines()]
        assert [r["prompt"] for r in records] == lines["prompt.txt"] and records[0][
            "captioner"
        ] == "heuristic"
    train = (folder / "train" / "prompt_scene.txt").read_text().splitlines()
    assert train[0] == train[1] and train[0] != train[2]  # two clips per image share its scene prompt
    build_prompts("sr", folder, images, _settings(strategy="uniform"), tmp_path / "cache")
    assert (folder / "val" / "prompt.txt").read_text() == (folder / "val" / "prompt_uniform.txt").read_text()


def test_cache_prevents_repeated_calls_and_survives_an_interruption(
    dataset, tmp_path, chat_server, monkeypatch, capsys
):
    folder, images = dataset
    monkeypatch.setenv("PROGRESTORE_TEST_KEY", SECRET)
    openai = {
        "base_url": chat_server,
        "model": "tiny-chat",
        "api_key_env": "PROGRESTORE_TEST_KEY",
        "timeout_s": 0.3,
        "retries": 1,
        "backoff_s": 0.01,
        "temperature": 0.0,
        "concurrency": 2,
    }
    settings = _settings(strategy="scene", refiner="openai", openai=openai)
    ChatServer.script, ChatServer.default = ["ok"], "500"  # one image refined, then the endpoint goes down
    with pytest.raises(RefinerUnavailable):
        build_prompts("sr", folder, images, settings, tmp_path / "cache")
    ok_calls = sum(1 for r in ChatServer.requests if "Caption" in r["body"]["messages"][1]["content"])
    ChatServer.default, ChatServer.requests = "ok", []
    counts = build_prompts("sr", folder, images, settings, tmp_path / "cache")
    assert (
        counts["refinements_cached"] == 1 and counts["refinements_new"] == 2 and len(ChatServer.requests) == 2
    )
    ChatServer.requests = []
    counts = build_prompts("sr", folder, images, settings, tmp_path / "cache")
    assert ChatServer.requests == [] and counts["captions_new"] == 0 and counts["refinements_new"] == 0
    assert ok_calls >= 1
    written = [
        p.read_text()
        for p in [*folder.rglob("*.txt"), *folder.rglob("*.jsonl"), *(tmp_path / "cache").rglob("*.json")]
    ]
    captured = capsys.readouterr()
    assert all(SECRET not in text for text in [*written, captured.out, captured.err])


def test_failures_a_retry_cannot_mend_are_named_at_once(chat_server, monkeypatch):
    """Nothing listening, or a refused key, or a wrong endpoint: the cause in the error, no retries."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    slow = OpenAIRefiner(
        closed, "m", "PROGRESTORE_TEST_KEY", T5_BUDGET, timeout_s=5, retries=4, backoff_s=2.0
    )
    start = time.perf_counter()
    with pytest.raises(RefinerUnavailable, match=r"connection refused \(is the server running.*not retried"):
        slow.refine("A red car.", "sr")
    assert time.perf_counter() - start < 1.5  # no back-off: 2 + 4 + 8 + 16 s if it had retried
    for code, cause in (("401", r"key in \$PROGRESTORE_TEST_KEY was refused"), ("404", r"no such endpoint")):
        ChatServer.script, ChatServer.requests = [code], []
        with pytest.raises(RefinerUnavailable, match=cause):
            _refiner(chat_server).refine("A red car.", "sr")
        assert len(ChatServer.requests) == 1


def test_a_missing_key_variable_stops_before_any_request(dataset, tmp_path, chat_server, monkeypatch):
    folder, images = dataset
    monkeypatch.delenv("PROGRESTORE_TEST_KEY", raising=False)
    openai = PARAMS["prompts"]["openai"] | {"base_url": chat_server, "api_key_env": "PROGRESTORE_TEST_KEY"}
    settings = _settings(strategy="scene", refiner="openai", openai=openai)
    with pytest.raises(RefinerUnavailable, match=r"PROGRESTORE_TEST_KEY is not set"):
        build_prompts("sr", folder, images, settings, tmp_path / "cache")
    assert ChatServer.requests == [] and not (tmp_path / "cache").exists()


def test_bad_prompt_parameters_are_named():
    pasted = "sk-live-abc123secret"
    with pytest.raises(ParamsError, match=r"prompts\.openai\.api_key_env must be the NAME") as refused:
        _settings(refiner="openai", openai=PARAMS["prompts"]["openai"] | {"api_key_env": pasted})
    assert pasted not in str(refused.value)  # a key pasted by mistake is not echoed
    with pytest.raises(ParamsError, match=r"prompts\.uniform\.sr must be a valid sr prompt"):
        _settings(uniform={"sr": "A cat on a mat."})
    with pytest.raises(ParamsError, match=r"prompts\.strategy"):
        _settings(strategy="fancy")


LONG_PROMPT = " ".join(["The image becomes sharper and higher in resolution."] * 50)[:2368]


def test_an_error_echoing_a_long_prompt_quotes_its_head_and_names_the_key(dataset, tmp_path):
    """A 2,368-character prompts.uniform.sr made a 2,498-character error: now its first 60 characters and
    its length, in a line that still names the file and the key (or the task and the clip)."""
    with pytest.raises(ParamsError) as refused:
        _settings(uniform={"sr": LONG_PROMPT})
    message = str(refused.value)
    assert message.startswith("params.yaml: prompts.uniform.sr must be a valid sr prompt (too long (about ")
    assert message.endswith(f"got {LONG_PROMPT[:60]!r}… (2368 characters)") and len(message) < 300

    class Verbose(TemplateRefiner):
        def refine(self, caption: str, task: str) -> tuple[str, bool]:
            return LONG_PROMPT, False

    settings = _settings(strategy="scene")
    settings.refiner = Verbose()
    folder, images = dataset
    with pytest.raises(InputError) as refused:
        build_prompts("sr", folder, images, settings, tmp_path / "cache")
    message = str(refused.value)
    assert message.startswith("sr ") and ": the scene prompt is invalid (too long (about " in message
    assert message.endswith("… (2368 characters)") and len(message) < 300


def test_prompts_command_reports_a_missing_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    assert main(["stage", "prompts", "sr", "--dataset", "data/datasets/sr", "--images", "data/images"]) == 2
    assert "run the degrade stage first" in capsys.readouterr().err
