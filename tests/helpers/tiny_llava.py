"""A tiny random LLaVA-1.5 written offline in the file layout of the hub's ``llava-hf/llava-1.5-7b-hf``.

The captioner's own loading code (``AutoProcessor`` + ``LlavaForConditionalGeneration.from_pretrained``)
then runs in the tests on the files a user downloads, not on objects the test hands it.

Layout. The published repository holds (besides README.md and .gitattributes) exactly ``PUBLISHED_FILES``,
three weight shards among them. transformers 5 ``save_pretrained`` writes config.json,
generation_config.json, the shards with their index, tokenizer.json and tokenizer_config.json as published,
but differs for the rest, which is why ``build_tiny_llava`` rewrites those into the published form:

- the processor nests the image processor inside processor_config.json; published: a flat
  processor_config.json beside the image processor's own preprocessor_config.json;
- the chat template goes to chat_template.jinja; published: chat_template.json (``{"chat_template": ...}``);
- the tokenizer writes no tokenizer.model, special_tokens_map.json or added_tokens.json; published: all three
  (tokenizer.model is the SentencePiece model trained here, the two maps are written as llava-1.5-hf has them).

Contents differ from the published ones where transformers 5 writes its own format: tokenizer_config.json
has no ``added_tokens_decoder`` (the added tokens live in tokenizer.json), and the sizes are tiny.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from progrestore.model.hub_folder import train_sentencepiece

PUBLISHED_FILES = (
    "added_tokens.json",
    "chat_template.json",
    "config.json",
    "generation_config.json",
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
    "model.safetensors.index.json",
    "preprocessor_config.json",
    "processor_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
)
IMAGE_SIZE, PATCH_SIZE = 32, 8  # published: 336 and 14 (576 image tokens)
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # the CLS feature is dropped by the "default" strategy
SPM_VOCAB = 320  # 3 specials + 256 byte-fallback pieces + learned merges; published: 32000
TEXT_VOCAB = 384  # the embedding is padded past the added tokens, as published (32064)
# Published chat_template.json's template: its rendering of an image and a question is LLAVA_PROMPT's format.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
    "{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != "
    "'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
CORPUS = (
    "USER: Describe the scene of this photograph in one sentence. ASSISTANT:",
    "A street with a red car parked under a cloudy blue sky.",
    "A dark room where a grey cat sleeps on a wooden chair.",
    "A bright beach with people walking beside the waves at noon.",
    "Green trees and a small white house near a quiet river.",
    "An astronaut in a white suit stands in front of a flag.",
    "A cup of coffee on a table, seen from above, with a saucer and a spoon.",
)


def _special(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def train_llama_sentencepiece(path: Path) -> None:
    """A Llama-style SentencePiece BPE model (unk 0, bos 1, eos 2, no pad, byte fallback) on ``CORPUS``."""
    spiece = train_sentencepiece(
        CORPUS * 8,
        SPM_VOCAB,
        model_type="bpe",
        hard_vocab_limit=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
    )
    path.write_bytes(spiece)


def build_tiny_llava(folder: Path, seed: int = 0) -> Path:
    """Write the tiny LLaVA into ``folder`` (created) with the published file names; returns ``folder``."""
    from transformers import (
        AddedToken,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlamaTokenizer,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    train_llama_sentencepiece(folder / "tokenizer.model")
    # converts tokenizer.model; BOS goes into tokenizer.json's post-processor, as published
    tokenizer = LlamaTokenizer.from_pretrained(folder, add_bos_token=True, local_files_only=True)
    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    image_token, pad = tokenizer.convert_tokens_to_ids(["<image>", "<pad>"])
    assert (image_token, pad) == (SPM_VOCAB, SPM_VOCAB + 1)  # right after the base vocabulary, as published
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS, which "default" then drops
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=IMAGE_SIZE,
            patch_size=PATCH_SIZE,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,  # vision_feature_layer -2 reads the first one's output
            num_attention_heads=2,
            projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=TEXT_VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
            rms_norm_eps=1e-5,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=pad,
        ),
        image_token_index=image_token,
        image_seq_length=IMAGE_TOKENS,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        pad_token_id=pad,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config).to(torch.float16)  # published in float16
    processor.save_pretrained(folder)
    model.save_pretrained(folder, max_shard_size="50KB")  # three shards, like the published 7B

    composite = json.loads((folder / "processor_config.json").read_text())
    _write_json(
        folder / "preprocessor_config.json",
        composite.pop("image_processor") | {"processor_class": "LlavaProcessor"},
    )
    _write_json(folder / "processor_config.json", composite)
    (folder / "chat_template.jinja").unlink()
    _write_json(folder / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    specials = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    _write_json(
        folder / "special_tokens_map.json", {name: _special(token) for name, token in specials.items()}
    )
    _write_json(folder / "added_tokens.json", {"<image>": image_token, "<pad>": pad})
    return folder


def copy_without(folder: Path, target: Path, *names: str) -> Path:
    """A copy of ``folder`` at ``target`` lacking ``names``: an incomplete download."""
    shutil.copytree(folder, target, ignore=lambda _, files: [f for f in files if f in names])
    return target
