"""Tiny vision-language models with random weights, built locally from a config (no hub
downloads), for the demo and the tests: real ms-swift training and inference on CPU in seconds.

The tokenizer is a byte-level BPE trained on the dataset's own text, so every answer can be
encoded. ms-swift's qwen2_vl template hard-codes Qwen2's special-token ids (image pad =
151655), so the tiny Qwen2-VL tokenizer keeps those tokens at their real ids (151643-151656)
and fills the ids in between with reserved tokens; otherwise ms-swift silently feeds one
visual feature instead of all of them (shared/notes/ms-swift-4.md).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .io import iter_jsonl

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
QWEN_FIRST_SPECIAL_ID = 151643
LLAVA_SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for c in message['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{% if message['role'] == 'user' %} {% else %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def corpus(dataset_files: list[str | os.PathLike], limit: int = 20_000):
    """Question and answer texts of the dataset, for training the tokenizer."""
    n = 0
    for path in dataset_files:
        for rec in iter_jsonl(path):
            for message in rec["messages"]:
                yield message["content"].replace("<image>", "")
            n += 1
            if n >= limit:
                return


def bpe_tokenizer_json(texts, vocab_size: int, special: list[str], first_special_id: int | None) -> str:
    """A byte-level BPE tokenizer.json; special tokens at `first_special_id` onwards (ids in
    between filled with reserved tokens) or, if None, right after the learned vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    start = len(vocab) if first_special_id is None else first_special_id
    for i in range(len(vocab), start):
        vocab[f"<|reserved_{i}|>"] = i
    data["added_tokens"] = [{"id": start + k, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": True} for k, t in enumerate(special)]
    return json.dumps(data, ensure_ascii=False)


def build_qwen2_vl(out: Path, texts, seed: int) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import (
        Qwen2TokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe_tokenizer_json(texts, 1024, QWEN_SPECIAL, QWEN_FIRST_SPECIAL_ID)),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None)
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") == 151655
    pixels = {"min_pixels": 56 * 56, "max_pixels": 112 * 112}
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(**pixels), chat_template=QWEN_CHAT_TEMPLATE)
    config = Qwen2VLConfig(
        text_config={"vocab_size": QWEN_FIRST_SPECIAL_ID + len(QWEN_SPECIAL), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "max_position_embeddings": 4096, "tie_word_embeddings": True,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
                     "bos_token_id": 151643, "eos_token_id": 151645, "pad_token_id": 151643},
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2},
        tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645, pad_token_id=151643)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [151645, 151643]
    model.generation_config.pad_token_id = 151643
    model.save_pretrained(out)
    processor.save_pretrained(out)


def build_llava(out: Path, texts, seed: int) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlamaTokenizerFast,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = LlamaTokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe_tokenizer_json(texts, 1024, LLAVA_SPECIAL, None)),
        unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>", add_bos_token=True,
        add_eos_token=False, legacy=False)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_size, patch = 56, 14
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE, image_token="<image>")
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       image_size=image_size, patch_size=patch, projection_dim=16),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)


BUILDERS = {"qwen2_vl": build_qwen2_vl, "llava1_5_hf": build_llava}
ARCHITECTURES = tuple(BUILDERS)


def build(architecture: str, out: str | os.PathLike, dataset_files: list, seed: int = 0) -> Path:
    """Write a tiny model of `architecture` to `out` (a folder ms-swift loads as --model)."""
    if architecture not in BUILDERS:
        raise ValueError(f"no tiny builder for {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    BUILDERS[architecture](tmp, list(corpus(dataset_files)), seed)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
