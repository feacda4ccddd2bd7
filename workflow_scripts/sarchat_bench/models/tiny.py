"""Tiny vision-language models with random weights, built locally from a config (no hub
downloads), for the demo and the tests: real ms-swift training and inference on CPU in seconds.

The tokenizer is a byte-level BPE trained on the dataset's own text, so every answer can be
encoded. ms-swift's qwen2_vl template hard-codes Qwen2's special-token ids (image pad =
151655), so the tiny Qwen2-VL tokenizer keeps those tokens at their real ids (151643-151656)
and fills the ids in between with reserved tokens; otherwise ms-swift silently feeds one
visual feature instead of all of them (shared/notes/ms-swift-4.md). The same holds for the
other templates that hard-code an id: qwen2_5_vl/qwen3_vl (151655), gemma3_vision
(<start_of_image> = 255999), idefics3 (<image> = 128257), llava_onevision_hf (<image> = 151646).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from sarchat_bench.core.io import iter_jsonl

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


def qwen_tokenizer(texts):
    """Qwen2's special tokens at their real ids (ms-swift's Qwen-VL templates hard-code 151655/151656)."""
    from tokenizers import Tokenizer
    from transformers import Qwen2TokenizerFast

    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe_tokenizer_json(texts, 1024, QWEN_SPECIAL, QWEN_FIRST_SPECIAL_ID)),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None)
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") == 151655
    return tokenizer


QWEN_TEXT = {"vocab_size": QWEN_FIRST_SPECIAL_ID + len(QWEN_SPECIAL), "hidden_size": 32, "intermediate_size": 64,
             "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
             "max_position_embeddings": 4096, "tie_word_embeddings": True,
             "bos_token_id": 151643, "eos_token_id": 151645, "pad_token_id": 151643}
QWEN_IDS = {"tie_word_embeddings": True, "bos_token_id": 151643, "eos_token_id": 151645, "pad_token_id": 151643}


def save_model(out: Path, model_cls, config, processor, seed: int, *, eos, pad: int, adjust=None) -> None:
    """Initialise `model_cls(config)` from `seed` (then `adjust(model)`, if given), set the tokens
    that end and pad generation, and save it with its processor."""
    import torch

    torch.manual_seed(seed)
    model = model_cls(config)
    if adjust is not None:
        with torch.no_grad():
            adjust(model)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out)
    processor.save_pretrained(out)


def save_qwen(out: Path, model_cls, config, processor, seed: int) -> None:
    save_model(out, model_cls, config, processor, seed, eos=[151645, 151643], pad=151643)


def build_qwen2_vl(out: Path, texts, seed: int) -> None:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    pixels = {"min_pixels": 56 * 56, "max_pixels": 112 * 112}
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=qwen_tokenizer(texts),
                                 video_processor=Qwen2VLVideoProcessor(**pixels), chat_template=QWEN_CHAT_TEMPLATE)
    config = Qwen2VLConfig(
        text_config={**QWEN_TEXT, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2}, **QWEN_IDS)
    save_qwen(out, Qwen2VLForConditionalGeneration, config, processor, seed)


def build_qwen2_5_vl(out: Path, texts, seed: int) -> None:
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    pixels = {"min_pixels": 56 * 56, "max_pixels": 112 * 112}
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=qwen_tokenizer(texts),
                                    video_processor=Qwen2VLVideoProcessor(**pixels), chat_template=QWEN_CHAT_TEMPLATE)
    config = Qwen2_5_VLConfig(
        text_config={**QWEN_TEXT, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
                       "window_size": 112, "fullatt_block_indexes": [0]}, **QWEN_IDS)
    save_qwen(out, Qwen2_5_VLForConditionalGeneration, config, processor, seed)


def build_qwen3_vl(out: Path, texts, seed: int) -> None:
    """Patch 16 (pixels in multiples of 32), interleaved M-RoPE, one deepstack layer."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    size = {"shortest_edge": 64 * 64, "longest_edge": 128 * 128}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=16, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=qwen_tokenizer(texts),
                                 video_processor=Qwen3VLVideoProcessor(size=size, patch_size=16),
                                 chat_template=QWEN_CHAT_TEMPLATE)
    config = Qwen3VLConfig(
        text_config={**QWEN_TEXT, "head_dim": 16, "rope_parameters": {
            "rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True}},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
                       "num_position_embeddings": 64, "deepstack_visual_indexes": [0]}, **QWEN_IDS)
    save_qwen(out, Qwen3VLForConditionalGeneration, config, processor, seed)


def build_llava(out: Path, texts, seed: int, hidden_size: int = 16, layers: int = 1, norm_scale: float = 1.0) -> None:
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
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                                num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                                max_position_embeddings=2048,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1, pad_token_id=tokenizer.pad_token_id)
    save_model(out, LlavaForConditionalGeneration, config, processor, seed, eos=tokenizer.eos_token_id,
               pad=tokenizer.pad_token_id,
               adjust=None if norm_scale == 1.0 else lambda m: m.model.language_model.norm.weight.fill_(norm_scale))


INTERNVL_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]


def build_internvl(out: Path, texts, seed: int) -> None:
    """transformers-native InternVL (the InternVL3/3.5 "-hf" checkpoints): InternViT + pixel
    shuffle + Qwen3. ms-swift's internvl_hf template looks its tokens up by name (no fixed ids)."""
    from tokenizers import Tokenizer
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
        Qwen2TokenizerFast,
    )

    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe_tokenizer_json(texts, 1024, INTERNVL_SPECIAL, None)),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None,
        extra_special_tokens={"start_image_token": "<img>", "end_image_token": "</img>",
                              "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"})
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in INTERNVL_SPECIAL}
    tile, patch = 56, 14  # a tile of 4x4 patches, pixel-shuffled (0.5) into 2x2 = 4 image tokens
    image_processor = GotOcr2ImageProcessor(size={"height": tile, "width": tile}, crop_to_patches=True,
                                            min_patches=1, max_patches=4, image_mean=[0.485, 0.456, 0.406],
                                            image_std=[0.229, 0.224, 0.225])
    processor = InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer, image_seq_length=4,
                                  video_processor=InternVLVideoProcessor(size={"height": tile, "width": tile}),
                                  chat_template=QWEN_CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>",
                                                                           "<IMG_CONTEXT>\n"))
    config = InternVLConfig(
        vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                       "image_size": [tile, tile], "patch_size": [patch, patch]},
        text_config={"model_type": "qwen3", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
                     "max_position_embeddings": 4096, "tie_word_embeddings": True,
                     "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]},
        image_token_id=ids["<IMG_CONTEXT>"], image_seq_length=4, downsample_ratio=0.5, tie_word_embeddings=True,
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    save_model(out, InternVLForConditionalGeneration, config, processor, seed,
               eos=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad=ids["<|endoftext|>"])


# ms-swift's gemma3_vision template hard-codes <start_of_image> = 255999; the image token is looked up.
GEMMA3_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                  "<end_of_image>", "<image_soft_token>"]
GEMMA3_FIRST_SPECIAL_ID = 255999 - GEMMA3_SPECIAL.index("<start_of_image>")


def build_gemma3(out: Path, texts, seed: int) -> None:
    """Gemma 3 (SigLIP + Gemma3 text, image pooled to 2x2 tokens); ~256k vocabulary because of the fixed id."""
    from tokenizers import Tokenizer
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        PreTrainedTokenizerFast,
    )

    # The generic class: GemmaTokenizer rebuilds a SentencePiece-style model on reload ("Unk token not found").
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe_tokenizer_json(texts, 1024, GEMMA3_SPECIAL, GEMMA3_FIRST_SPECIAL_ID)),
        pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>",
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                              "image_token": "<image_soft_token>"})
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in GEMMA3_SPECIAL}
    assert ids["<start_of_image>"] == 255999
    image_size, patch, tokens = 56, 14, 4
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": image_size, "width": image_size},
                                             image_mean=[0.5] * 3, image_std=[0.5] * 3),
        tokenizer=tokenizer, image_seq_length=tokens,
        chat_template=("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' "
                       "else m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}{% else %}"
                       "{% for c in m['content'] %}{% if c['type'] == 'image' %}<start_of_image>{% else %}"
                       "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
                       "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"))
    config = Gemma3Config(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "sliding_window": 64,
                     "layer_types": ["sliding_attention", "full_attention"],
                     "max_position_embeddings": 4096, "bos_token_id": ids["<bos>"], "eos_token_id": ids["<eos>"],
                     "pad_token_id": ids["<pad>"]},
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": image_size,
                       "patch_size": patch},
        mm_tokens_per_image=tokens, boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"], bos_token_id=ids["<bos>"], eos_token_id=ids["<eos>"],
        pad_token_id=ids["<pad>"])
    save_model(out, Gemma3ForConditionalGeneration, config, processor, seed,
               eos=[ids["<eos>"], ids["<end_of_turn>"]], pad=ids["<pad>"])


# ms-swift's idefics3 template hard-codes <image> = 128257 (Llama 3 vocabulary + 2).
IDEFICS3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<unk>", "<fake_token_around_image>", "<image>",
                    "<end_of_utterance>", "<global-img>"]
IDEFICS3_FIRST_SPECIAL_ID = 128257 - IDEFICS3_SPECIAL.index("<image>")


def build_idefics3(out: Path, texts, seed: int) -> None:
    """Idefics3 (SigLIP + pixel shuffle + Llama): images split into 56-px tiles plus a global view."""
    from tokenizers import Tokenizer
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(
            bpe_tokenizer_json(texts, 1024, IDEFICS3_SPECIAL, IDEFICS3_FIRST_SPECIAL_ID)),
        bos_token="<|begin_of_text|>", eos_token="<end_of_utterance>", pad_token="<pad>", unk_token="<unk>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in IDEFICS3_SPECIAL}
    assert ids["<image>"] == 128257
    tile, patch, scale = 56, 14, 2  # 4x4 patches per tile, pixel-shuffled into 4 tokens
    image_processor = Idefics3ImageProcessor(size={"longest_edge": 2 * tile}, max_image_size={"longest_edge": tile},
                                             do_image_splitting=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=(tile // patch) ** 2 // scale ** 2,
        chat_template=("<|begin_of_text|>{% for m in messages %}{{ m['role'] | capitalize }}:{% if m['content'] is "
                       "string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
                       "<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n"
                       "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"))
    config = Idefics3Config(
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 4096, "bos_token_id": ids["<|begin_of_text|>"],
                     "eos_token_id": ids["<end_of_utterance>"], "pad_token_id": ids["<pad>"]},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": tile, "patch_size": patch},
        scale_factor=scale, image_token_id=ids["<image>"], pad_token_id=ids["<pad>"])
    save_model(out, Idefics3ForConditionalGeneration, config, processor, seed,
               eos=[ids["<end_of_utterance>"], ids["<|end_of_text|>"]], pad=ids["<pad>"])


# ms-swift's llava_onevision_hf template hard-codes <image> = 151646 (the Qwen2 vocabulary + 3).
ONEVISION_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]


def build_llava_onevision(out: Path, texts, seed: int) -> None:
    """LLaVA-OneVision (SigLIP + Qwen2, anyres tiles of 56 px up to 112x112)."""
    from tokenizers import Tokenizer
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2TokenizerFast,
    )

    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe_tokenizer_json(texts, 1024, ONEVISION_SPECIAL, QWEN_FIRST_SPECIAL_ID)),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None)
    assert tokenizer.convert_tokens_to_ids("<image>") == 151646
    tile, patch = 56, 14
    pinpoints = [[tile, tile], [tile, 2 * tile], [2 * tile, tile], [2 * tile, 2 * tile]]
    size = {"height": tile, "width": tile}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints,
                                                     image_mean=[0.5] * 3, image_std=[0.5] * 3),
        video_processor=LlavaOnevisionVideoProcessor(size=size), tokenizer=tokenizer,
        num_image_tokens=(tile // patch) ** 2, vision_feature_select_strategy="full",
        chat_template=QWEN_CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n"))
    config = LlavaOnevisionConfig(
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": tile, "patch_size": patch},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 4096, "tie_word_embeddings": True,
                     "eos_token_id": 151645, "pad_token_id": 151643},
        image_grid_pinpoints=pinpoints, vision_feature_select_strategy="full", vision_feature_layer=-1,
        image_token_index=151646, video_token_index=151647, tie_word_embeddings=True, pad_token_id=151643)
    save_model(out, LlavaOnevisionForConditionalGeneration, config, processor, seed, eos=[151645, 151643], pad=151643)


def build_llava_wide(out: Path, texts, seed: int) -> None:
    """LLaVA-1.5 with a 64-wide, 2-layer language model that LoRA can fit to a small training set
    in CPU minutes (tests/test_learning.py). The final norm is scaled by 8: with a random output
    layer, unit-norm hidden states give logit margins near 1, which LoRA (it does not touch the
    norm or the output layer) cannot widen enough to fit the answers."""
    build_llava(out, texts, seed, hidden_size=64, layers=2, norm_scale=8.0)


BUILDERS = {"qwen2_vl": build_qwen2_vl, "llava1_5_hf": build_llava, "llava1_5_hf_wide": build_llava_wide,
            "qwen2_5_vl": build_qwen2_5_vl,
            "qwen3_vl": build_qwen3_vl, "internvl": build_internvl,
            "gemma3_vision": build_gemma3, "idefics3": build_idefics3,
            "llava_onevision_hf": build_llava_onevision}
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
