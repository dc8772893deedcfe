"""The LLaVA captioner's own loading code on a tiny random LLaVA saved as the hub publishes llava-1.5-7b-hf.

The folder is built once per session (tests/helpers/tiny_llava.py); the captioner is made from params
``prompts.llava.*`` as the prompts stage makes it, and loads the folder with from_pretrained, offline.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import skimage.data
import torch
import yaml

from progrestore.config import Section
from progrestore.errors import InputError
from progrestore.prompts.build import PromptSettings
from progrestore.prompts.captioners import LLAVA_PROMPT, LlavaCaptioner

from .conftest import REPO
from .helpers.tiny_llava import IMAGE_TOKENS, PUBLISHED_FILES, build_tiny_llava, copy_without

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
MAX_NEW_TOKENS = 6
QUESTION = "Describe the scene of this photograph in one sentence."


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("llava") / "llava-1.5-tiny-hf")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub: the variable for what imports later, the constant huggingface_hub read at its import."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _captioner(folder: Path) -> LlavaCaptioner:
    """The captioner the prompts stage builds from params with ``prompts.llava.model`` set to ``folder``."""
    llava = {"model": str(folder), "batch_size": 2, "max_new_tokens": MAX_NEW_TOKENS}
    prompts = copy.deepcopy(PARAMS["prompts"]) | {"captioner": "llava", "llava": llava}
    settings = PromptSettings.from_params(Section({"prompts": prompts, "model": PARAMS["model"]}), "sr")
    assert isinstance(settings.captioner, LlavaCaptioner)
    return settings.captioner


def test_the_tiny_folder_has_the_published_files_and_template(tiny_llava):
    from transformers import AutoProcessor

    assert sorted(os.listdir(tiny_llava)) == sorted(PUBLISHED_FILES)
    processor = AutoProcessor.from_pretrained(tiny_llava)
    question = [{"type": "image"}, {"type": "text", "text": QUESTION}]
    rendered = processor.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True
    )
    assert rendered == LLAVA_PROMPT  # the captioner's prompt is the one the model's own chat template writes


def test_llava_loads_from_a_folder_and_captions_a_batch_greedily(tiny_llava, monkeypatch):
    from transformers import CLIPImageProcessor, LlavaForConditionalGeneration, LlavaProcessor

    calls = []
    generate = LlavaForConditionalGeneration.generate

    def spy(model, **inputs):
        calls.append(inputs)
        return generate(model, **inputs)

    monkeypatch.setattr(LlavaForConditionalGeneration, "generate", spy)
    captioner = _captioner(tiny_llava)
    images = [skimage.data.astronaut(), skimage.data.coffee()]
    captions = captioner.caption(images)

    model, processor = captioner.model, captioner.processor
    assert type(model) is LlavaForConditionalGeneration and model.name_or_path == str(tiny_llava)
    assert model.dtype == torch.float32  # the files hold float16; the CPU runs in float32 as asked
    assert type(processor) is LlavaProcessor and type(processor.image_processor) is CLIPImageProcessor
    assert processor.tokenizer.padding_side == "left"
    [inputs] = calls  # one batch of two, greedy, every <image> expanded to the vision tower's features
    assert inputs["input_ids"].shape[0] == 2 and inputs["do_sample"] is False
    assert (inputs["input_ids"] == model.config.image_token_id).sum(1).tolist() == [IMAGE_TOKENS] * 2
    bos = model.config.text_config.bos_token_id
    assert (inputs["input_ids"][:, 0] == bos).all()  # the prompt opens with BOS, as LLaVA-1.5 was trained
    assert len(captions) == 2
    for caption in captions:
        assert isinstance(caption, str) and caption and "\n" not in caption
        assert "Describe" not in caption and "ASSISTANT" not in caption  # only the new tokens are decoded
    assert captioner.caption(images) == captions  # greedy: the same images, the same captions
    assert _captioner(tiny_llava).caption(images) == captions  # and so after a fresh load


@pytest.mark.parametrize(
    ("removed", "named"),
    [
        (("config.json",), "config.json"),
        (("tokenizer.json", "tokenizer.model"), "tokenizer.json or tokenizer.model"),
        (("processor_config.json",), "processor_config.json"),
        (("preprocessor_config.json",), "preprocessor_config.json"),
        (("model-00002-of-00003.safetensors",), "model-00002-of-00003.safetensors"),
        (("model.safetensors.index.json",), "the weights (model.safetensors"),
    ],
)
def test_an_incomplete_folder_is_refused_in_one_line_before_loading(
    tiny_llava, tmp_path, monkeypatch, removed, named
):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    def loading(*args, **kwargs):
        raise AssertionError("loading began")  # without config.json it would build a 7B-sized default model

    monkeypatch.setattr(AutoProcessor, "from_pretrained", loading)
    monkeypatch.setattr(LlavaForConditionalGeneration, "from_pretrained", loading)
    folder = copy_without(tiny_llava, tmp_path / "incomplete", *removed)
    with pytest.raises(InputError) as refused:
        _captioner(folder).caption([skimage.data.astronaut()])
    message = str(refused.value)
    assert "\n" not in message and f"the folder {folder} lacks {named}" in message
