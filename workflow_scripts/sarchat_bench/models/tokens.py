"""How many tokens a sample is for a model: the image as the model's ms-swift template expands
it, and the text as the model's tokenizer splits it (or a stated estimate where its tokenizer is
not on disk).

Image tokens are the arithmetic of ms-swift 4.6.0's template code, qwen_vl_utils 0.0.14 and the
transformers 5.12.1 image processors it calls (no torch, no weights): `image_tokens(template,
width, height, env)`. File:line references in the comments are to those installed packages
(site-packages/swift/..., transformers/..., qwen_vl_utils/...). The real checkpoints' processor
settings are DEFAULTS; `processor_params` reads a local model folder's own (a tiny model's), and
tests/models/test_tokens.py checks the counts against a real ms-swift encode of every tiny family.

What `count` counts:
- "sequence" (default): positions the image takes in the language model's sequence, the
  template's own wrapper tokens included (per template below). Drives LLM compute and context.
- "input_ids": positions in ms-swift's encoded input_ids (what max_length and ms-swift's
  truncation see); equal to "sequence" except yi_vl, whose model splices 1,024 features in place
  of one placeholder inside its forward.
- "features": visual feature vectors the LLM consumes (image pad tokens, no wrapper); for
  mplug_owl3 these enter through cross-attention, not the sequence.
`template_max_pixels` is ms-swift's `--max_pixels` template argument (rescale_image before
everything else, swift/template/base.py:442-452, vision_utils.py:89-99; off by default).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

from sarchat_bench.core.io import read_json

# The real checkpoints' processor settings. Tokenizer-dependent counts (tokens of "\n", "\n\n",
# markers) are for the real tokenizers; those marked "estimate" could not be checked offline.
DEFAULTS: dict[str, dict] = {
    # Qwen2-VL / Qwen2.5-VL: ViT patch 14, 2x2 merge (qwen_vl_utils factor 28); template adds
    # <|vision_start|> ... <|vision_end|> (swift/template/templates/qwen.py:346).
    "qwen2_vl": {"merge_size": 2, "wrapper": 2},
    "qwen2_5_vl": {"merge_size": 2, "wrapper": 2},
    # Qwen3-VL: patch 16 passed to fetch_image (qwen.py:336), factor 32.
    "qwen3_vl": {"patch_size": 16, "merge_size": 2, "wrapper": 2},
    # InternVL2.5 (remote code, Internvl2Template): 448 tiles, 256 tokens/tile, <img> </img> \n.
    "internvl2_5": {"wrapper": 3},
    # InternVL3/3.5 "-hf" checkpoints (InternvlhfTemplate + GotOcr2ImageProcessor).
    "internvl_hf": {"tile_size": 448, "min_patches": 1, "max_patches": 12, "image_seq_length": 256,
                    "wrapper": 3},
    # Gemma 3: full_image_sequence = "\n\n<start_of_image>" + 256 x <image_soft_token> + "<end_of_image>\n\n";
    # "\n\n" is one token (id 108) in Gemma's vocabulary.
    "gemma3_vision": {"image_seq_length": 256, "nl2_tokens": 1},
    # Idefics3-8B-Llama3: longest edge 4*364, 364-px tiles, 169 tokens/tile. <row_i_col_j> and
    # <global-img> are NOT added tokens in its Llama-3 tokenizer (transformers PR #32473): their BPE
    # lengths below are estimates (Llama-3 pre-tokenizer splits "<row","_","1","_col","_","1",">").
    "idefics3": {"longest_edge": 1456, "max_image_size": 364, "image_seq_len": 169, "do_image_splitting": True,
                 "row_col_tokens": 7, "global_img_tokens": 4, "nl_tokens": 1, "nl2_tokens": 1},
    # LLaVA-OneVision (llava-hf): SigLIP 384/14 -> 27x27 = 729 per tile, anyres_max_9, pinpoints 384..2304.
    "llava_onevision_hf": {"tile_size": 384, "num_image_tokens": 729,
                           "pinpoints": tuple((a * 384, b * 384) for a in range(1, 7) for b in range(1, 7)),
                           "vision_aspect_ratio": "anyres_max_9", "wrapper": 1},
    # LLaVA-1.5 (llava-hf): CLIP-L/14 336 -> 576 (+1 CLS, dropped by the "default" strategy), "<image>\n".
    "llava1_5_hf": {"crop_size": 336, "patch_size": 14, "num_additional_image_tokens": 1,
                    "vision_feature_select_strategy": "default", "wrapper": 1},
    # DeepSeek-VL: VLChatProcessor.num_image_tokens = 576; placeholder has no newline.
    "deepseek_vl": {"num_image_tokens": 576, "wrapper": 0},
    # Phi-3/3.5-vision: HD transform, 336-px crops, num_crops 4 (swift/model/models/microsoft.py:17-20);
    # template keeps "<s>\n" after the replaced <|image|> (microsoft.py:116, 138-141).
    "phi3_vision": {"num_crops": 4, "wrapper": 2},
    # GLM-Edge-V: 578 x <|begin_of_image|> hard-coded (glm.py:669).
    "glm_edge_v": {"num_image_tokens": 578},
    # mPLUG-Owl3: 378-px crops, 729 features each; anchors grid_squ_6, cut prompt v2 + global view.
    # Text lengths of the cut prompt are Qwen2-tokenizer estimates (see _mplug_owl3).
    "mplug_owl3": {"image_size": 378, "features_per_crop": 729},
    # Yi-VL: [-200] + "\n" in input_ids; CLIP-H/14 448 -> 1024 features spliced in by the model.
    "yi_vl": {"features": 1024, "wrapper": 1},
}
TEMPLATES = tuple(DEFAULTS)
ALIASES = {"internvl": "internvl_hf"}  # the tiny family's model_type
# Environment variables each template's image path reads (others are ignored).
ENV_KEYS: dict[str, tuple[str, ...]] = {
    "qwen2_vl": ("MAX_PIXELS", "MIN_PIXELS", "IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM", "MAX_RATIO"),
    "qwen2_5_vl": ("MAX_PIXELS", "MIN_PIXELS", "IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM", "MAX_RATIO"),
    "qwen3_vl": ("MAX_PIXELS", "MIN_PIXELS", "IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM", "MAX_RATIO"),
    "internvl2_5": ("MAX_NUM", "INPUT_SIZE"),
    "phi3_vision": ("NUM_CROPS",),
}
# Templates whose image count does not depend on the image's size (given their settings).
FIXED_SIZE = frozenset({"llava1_5_hf", "deepseek_vl", "glm_edge_v", "gemma3_vision", "yi_vl"})
# Checked against a real ms-swift encode of a tiny local model (tests/models/test_tokens.py); the
# paper's InternVL2.5 template (internvl2_5) through the tiny InternVL tokenizer.
VERIFIED = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "internvl_hf", "internvl2_5", "gemma3_vision", "idefics3",
            "llava_onevision_hf", "llava1_5_hf")


def image_tokens(template: str, width: int, height: int, env: Mapping[str, str] | None = None, *,
                 count: str = "sequence", template_max_pixels: int | None = None, **params) -> int:
    """Tokens one image of width x height becomes in ms-swift 4.6's `template` (module text).
    `env`: the environment knobs the template reads (None: os.environ); `params`: processor
    settings overriding DEFAULTS. Cached per size and settings: a distinct size costs once."""
    template = ALIASES.get(template, template)
    if template not in DEFAULTS:
        raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    if count not in ("sequence", "input_ids", "features"):
        raise ValueError(f"count must be 'sequence', 'input_ids' or 'features', not {count!r}")
    source = os.environ if env is None else env
    knobs = tuple((k, str(source[k])) for k in ENV_KEYS.get(template, ()) if source.get(k) not in (None, ""))
    unknown = set(params) - set(DEFAULTS[template])
    if unknown:
        raise TypeError(f"{template} takes no parameter(s) {sorted(unknown)}; it takes {sorted(DEFAULTS[template])}")
    frozen = tuple(sorted((k, _freeze(v)) for k, v in params.items()))
    return _cached(template, int(width), int(height), knobs, count, template_max_pixels, frozen)


def _freeze(v):
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


@lru_cache(maxsize=1 << 18)
def _cached(template, width, height, knobs, count, template_max_pixels, frozen) -> int:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    p = {**DEFAULTS[template], **{k: v for k, v in frozen}}
    env = dict(knobs)
    if template_max_pixels is not None:
        width, height = _rescale_image(width, height, template_max_pixels)
    seq, feats, ids = _FORMULAS[template](width, height, env, p)
    return {"sequence": seq, "features": feats, "input_ids": seq if ids is None else ids}[count]


def _rescale_image(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """swift/template/vision_utils.py:89-99 (T.Resize((int(h), int(w))))."""
    if max_pixels is None or max_pixels <= 0 or width * height <= max_pixels:
        return width, height
    ratio = width / height
    height_scaled = math.sqrt(max_pixels / ratio)
    width_scaled = height_scaled * ratio
    return int(width_scaled), int(height_scaled)


# ---------------------------------------------------------------- Qwen2-VL / Qwen2.5-VL / Qwen3-VL
def _smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int, max_ratio: int):
    """qwen_vl_utils 0.0.14 vision_process.py:56-80."""
    if max_pixels < min_pixels:
        raise ValueError("The max_pixels of image must be greater than or equal to min_pixels.")
    if max(height, width) / min(height, width) > max_ratio:
        raise ValueError(f"absolute aspect ratio must be smaller than {max_ratio}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    if h_bar <= 0 or w_bar <= 0:  # qwen_vl_utils does not guard this: PIL then raises in fetch_image
        raise ValueError(f"{width}x{height} resizes to {w_bar}x{h_bar} under max_pixels={max_pixels}")
    return h_bar, w_bar


def _qwen(patch_size: int):
    def formula(width, height, env, p):
        patch = p.get("patch_size", patch_size)
        merge = p["merge_size"]
        factor = patch * merge  # fetch_image: image_patch_size * SPATIAL_MERGE_SIZE (vision_process.py:93-100)
        # swift/model/models/qwen.py:758-770 (compat_qwen_vl_utils): MAX_PIXELS/MIN_PIXELS become
        # IMAGE_MAX/MIN_TOKEN_NUM = value // factor**2 unless those are set; qwen.py:708-740 copies them
        # into qwen_vl_utils' globals, which fetch_image reads at call time (vision_process.py:131-132).
        max_tok = _token_num(env, "IMAGE_MAX_TOKEN_NUM", "MAX_PIXELS", factor, 16384)
        min_tok = _token_num(env, "IMAGE_MIN_TOKEN_NUM", "MIN_PIXELS", factor, 4)
        max_ratio = int(env.get("MAX_RATIO", 200))
        h, w = _smart_resize(height, width, factor, min_tok * factor ** 2, max_tok * factor ** 2, max_ratio)
        feats = (h // patch) * (w // patch) // merge ** 2  # qwen.py:429-432 (grid_thw.prod() // merge**2)
        return feats + p["wrapper"], feats, None
    return formula


def _token_num(env, direct: str, pixels: str, factor: int, default: int) -> int:
    if env.get(direct):
        return int(env[direct])
    if env.get(pixels):
        return int(env[pixels]) // factor ** 2
    return default


def _closest_grid(grids, width, height, tile_area):
    """The grid (columns, rows) whose aspect ratio is closest to the image's, in `grids`' order;
    on a tie, the later one where the image covers more than half of its tiles. The rule both
    ms-swift's InternVL tiling and transformers' GOT-OCR2 one use (their candidates' order differs)."""
    aspect_ratio, area = width / height, width * height
    best_diff, best = float("inf"), (1, 1)
    for grid in grids:
        diff = abs(aspect_ratio - grid[0] / grid[1])
        if diff < best_diff:
            best_diff, best = diff, grid
        elif diff == best_diff and area > 0.5 * tile_area * grid[0] * grid[1]:
            best = grid
    return best


# ---------------------------------------------------------------------------- InternVL2.5 (swift)
def _swift_internvl_blocks(width, height, image_size, max_num, min_num=1):
    """swift/template/vision_utils.py:36-82 (_find_closest_aspect_ratio, _dynamic_preprocess)."""
    # a set, then a stable sort by area: the same iteration order as ms-swift's code
    target_ratios = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1)  # noqa: C401
                        for j in range(1, n + 1) if min_num <= i * j <= max_num)
    target_ratios = sorted(target_ratios, key=lambda x: x[0] * x[1])
    best = _closest_grid(target_ratios, width, height, image_size * image_size)
    blocks = best[0] * best[1]
    return blocks + 1 if blocks != 1 else 1  # thumbnail when more than one tile (use_thumbnail=True)


def _internvl2_5(width, height, env, p):
    input_size = int(env.get("INPUT_SIZE", 448))  # internvl.py:27-28
    max_num = int(env.get("MAX_NUM", 12))
    per_tile = int((input_size // 14) ** 2 * (0.5 ** 2))  # internvl.py:137
    tiles = _swift_internvl_blocks(width, height, input_size, max_num)
    feats = tiles * per_tile
    return feats + p["wrapper"], feats, None


# --------------------------------------------------------------------------- InternVL "-hf" (HF)
def _hf_optimal_grid(width, height, tile_h, tile_w, min_tiles, max_tiles):
    """transformers models/got_ocr2/image_processing_got_ocr2.py:50-121."""
    grids = [(w, h) for w in range(1, max_tiles + 1) for h in range(1, max_tiles + 1)
             if min_tiles <= w * h <= max_tiles]
    grids.sort(key=lambda x: x[0] * x[1])
    return _closest_grid(grids, width, height, tile_h * tile_w)


def _internvl_hf(width, height, env, p):
    tile = p["tile_size"]
    cols, rows = _hf_optimal_grid(width, height, tile, tile, p["min_patches"], p["max_patches"])
    tiles = cols * rows + (1 if cols * rows != 1 else 0)  # crop_image_to_patches, use_thumbnail=True
    feats = tiles * p["image_seq_length"]  # internvl.py:292-294
    return feats + p["wrapper"], feats, None


# ------------------------------------------------------------------------------------- Gemma 3
def _gemma3(width, height, env, p):
    # gemma.py:111-120: the <start_of_image> token is replaced by tokenize(full_image_sequence)
    # (transformers gemma3/processing_gemma3.py:58-59); pan-and-scan is off (defaults, gemma.py:123).
    feats = p["image_seq_length"]
    return feats + 2 + 2 * p["nl2_tokens"], feats, None


# ------------------------------------------------------------------------------------- Idefics3
def _idefics3_rows_cols(width, height, p):
    """transformers idefics3/image_processing_idefics3.py:58-148 (resize), 319-345, 260-317 (split)."""
    if not p["do_image_splitting"]:
        return 0, 0
    longest, tile = p["longest_edge"], p["max_image_size"]
    # resize: longest edge -> `longest` (upscaling too), odd other side + 1, then cap at 4096
    aspect = width / height
    w, h = width, height
    if w >= h:
        w = longest
        h = int(w / aspect)
        h += h % 2
    else:
        h = longest
        w = int(h * aspect)
        w += w % 2
    h, w = max(h, 1), max(w, 1)
    aspect = w / h
    if w >= h and w > 4096:
        w, h = 4096, int(4096 / aspect)
    elif h > w and h > 4096:
        h, w = 4096, int(4096 * aspect)
    h, w = max(h, 1), max(w, 1)
    # resize_for_vision_encoder: multiples of `tile`
    aspect = w / h
    if w >= h:
        w = math.ceil(w / tile) * tile
        h = int(w / aspect)
        h = math.ceil(h / tile) * tile
    else:
        h = math.ceil(h / tile) * tile
        w = int(h * aspect)
        w = math.ceil(w / tile) * tile
    if h > tile or w > tile:
        return math.ceil(h / tile), math.ceil(w / tile)
    return 0, 0


def _idefics3(width, height, env, p):
    # idefics3.py:14-24 (swift) + transformers idefics3/processing_idefics3.py:212-243 (replace_image_token)
    rows, cols = _idefics3_rows_cols(width, height, p)
    seq = p["image_seq_len"]
    rc = p["row_col_tokens"]  # one count for every <row_i_col_j>, or ((i, j), count) pairs
    rc_len = (lambda i, j, n=rc: n) if isinstance(rc, int) else (lambda i, j, pairs=dict(rc): pairs[(i, j)])
    glob = 1 + p["global_img_tokens"] + seq + 1  # <fake><global-img><image>*seq<fake>
    if rows == 0 and cols == 0:
        return glob, seq, None
    tiles = sum(1 + rc_len(i + 1, j + 1) + seq for i in range(rows) for j in range(cols))
    # "\n" after each row; the last row's "\n" joins the global block's leading "\n" into "\n\n"
    newlines = (rows - 1) * p["nl_tokens"] + p["nl2_tokens"]
    return tiles + newlines + glob, (rows * cols + 1) * seq, None


# ----------------------------------------------------------------------------- LLaVA-OneVision
def _select_best_resolution(orig_h, orig_w, pinpoints):
    """transformers image_processing_utils.py:633-668."""
    best, max_eff, min_waste = None, 0, float("inf")
    for h, w in pinpoints:
        scale = min(w / orig_w, h / orig_h)
        dw, dh = int(orig_w * scale), int(orig_h * scale)
        eff = min(dw * dh, orig_w * orig_h)
        waste = w * h - eff
        if eff > max_eff or (eff == max_eff and waste < min_waste):
            max_eff, min_waste, best = eff, waste, (h, w)
    return best


def _llava_onevision(width, height, env, p):
    # swift llava.py:190-208 -> transformers llava_onevision/processing_llava_onevision.py:197-245
    tile = p["tile_size"]
    best_h, best_w = _select_best_resolution(height, width, p["pinpoints"])
    scale_h, scale_w = best_h // tile, best_w // tile
    side = int(math.sqrt(p["num_image_tokens"]))
    cur_h, cur_w = side * scale_h, side * scale_w
    if width / height > cur_w / cur_h:
        new_h = int(round(height * (cur_w / width), 7))
        cur_h -= (cur_h - new_h) // 2 * 2
    else:
        new_w = int(round(width * (cur_h / height), 7))
        cur_w -= (cur_w - new_w) // 2 * 2
    unpadded, newline = cur_h * cur_w, cur_h
    max_patches = int(p["vision_aspect_ratio"].strip("anyres_max_"))  # noqa: B005 - as transformers does
    ratio = math.sqrt(cur_h * cur_w / (max_patches * side ** 2))
    if ratio > 1.1:
        unpadded = int(cur_h // ratio) * int(cur_w // ratio)
        newline = int(cur_h // ratio)
    feats = unpadded + newline + p["num_image_tokens"]
    return feats + p["wrapper"], feats, None


# ---------------------------------------------------------------------------------- LLaVA-1.5
def _llava1_5(width, height, env, p):
    # swift llava.py:29-64: CLIP resize+center-crop to crop_size; (H//patch)*(W//patch)+additional-1
    n = (p["crop_size"] // p["patch_size"]) ** 2 + p["num_additional_image_tokens"]
    if p["vision_feature_select_strategy"] == "default":
        n -= 1
    return n + p["wrapper"], n, None


# ---------------------------------------------------------------------- fixed-size paper models
def _fixed(width, height, env, p):
    n = p["num_image_tokens"]
    return n + p.get("wrapper", 0), n, None


def _phi3_vision(width, height, env, p):
    # swift microsoft.py:115-153; Phi-3.5-vision processing_phi3_v.py calc_hd_transform_size /
    # calc_num_image_tokens_from_image_size (remote code); num_crops from NUM_CROPS (models/microsoft.py:20)
    hd_num = int(env.get("NUM_CROPS", p["num_crops"]))
    w, h = width, height
    transposed = w < h
    if transposed:
        w, h = h, w
    ratio = w / h
    scale = 1
    while scale * math.ceil(scale / ratio) <= hd_num:
        scale += 1
    scale -= 1
    new_w = int(scale * 336)
    new_h = int(new_w / ratio)
    pad_h = int(math.ceil(new_h / 336) * 336)
    if transposed:
        new_w, pad_h = pad_h, new_w
    feats = int((pad_h // 336 * new_w // 336 + 1) * 144 + 1 + (pad_h // 336 + 1) * 12)
    return feats + p["wrapper"], feats, None


_MPLUG_ANCHORS = ((2, 2), (1, 3), (1, 4), (3, 1), (4, 1), (2, 3), (3, 2))  # grid_squ_6, (rows, cols)


def _mplug_rows_cols(width, height, size):
    """mPLUG-Owl3 image_processing_mplugowl3.py anchor_rank ('docowl' strategy), float64 here."""
    def iou(a, b):  # boxes (0, 0, w, h)
        inter = min(a[0], b[0]) * min(a[1], b[1])
        return inter / (a[0] * a[1] + b[0] * b[1] - inter + 1e-5)
    best, best_score = 0, -1.0
    for k, (r, c) in enumerate(_MPLUG_ANCHORS):
        aw, ah = c * size, r * size
        shape = (aw, int(height / width * aw))  # int64 tensor assignment truncates
        score = iou((aw, ah), shape) * 100 + iou((aw, ah), (width, height))
        if score > best_score:
            best, best_score = k, score
    return _MPLUG_ANCHORS[best]


def _mplug_owl3(width, height, env, p):
    # swift mplug.py:63-111: [-100] -> tokens of cut_prompt_template(v2_global) + "\n" (replace_tag).
    # Text is "Cut to R rows C columns with a global view\n" + rows of " "-joined "subimg(i,j)<|image|>"
    # joined by "\n" + "\nglobal_view<|image|>". Qwen2 BPE estimate: header 11 + digits, 8 per crop
    # ("sub","img","(","i",",","j",")",<|image|>), 1 per row break, 4 for the global view, 1 for "\n".
    rows, cols = _mplug_rows_cols(width, height, p["image_size"])
    seq = 11 + len(str(rows)) + len(str(cols)) + 8 * rows * cols + (rows - 1) + 4 + 1
    feats = (rows * cols + 1) * p["features_per_crop"]
    return seq, feats, None


def _yi_vl(width, height, env, p):
    # swift yi.py:24-26: image_placeholder [[-200], "\n"]; Yi-VL's LLaVA code swaps -200 for 1024 features
    return p["features"] + p["wrapper"], p["features"], 1 + p["wrapper"]


_FORMULAS: dict[str, Callable] = {
    "qwen2_vl": _qwen(14), "qwen2_5_vl": _qwen(14), "qwen3_vl": _qwen(16),
    "internvl2_5": _internvl2_5, "internvl_hf": _internvl_hf, "gemma3_vision": _gemma3,
    "idefics3": _idefics3, "llava_onevision_hf": _llava_onevision, "llava1_5_hf": _llava1_5,
    "deepseek_vl": _fixed, "phi3_vision": _phi3_vision, "glm_edge_v": _fixed,
    "mplug_owl3": _mplug_owl3, "yi_vl": _yi_vl,
}


if __name__ == "__main__":  # the report's table
    import sys
    sizes = [(256, 256), (512, 512), (800, 800), (500, 353), (224, 224), (1000, 1000)]
    print("template".ljust(20) + "".join(f"{w}x{h}".rjust(10) for w, h in sizes))
    for t in (sys.argv[1:] or TEMPLATES):
        print(t.ljust(20) + "".join(str(image_tokens(t, w, h, {})).rjust(10) for w, h in sizes))


# ---------------------------------------------------------------------------------------- text
# One chat turn as each template writes it around the question and the answer, with its default
# system prompt: (system part, prompt with {{QUERY}}, end of the answer), as ms-swift 4.6
# registers them (swift/template/templates/*.py; tests/models/test_tokens.py compares them with
# TEMPLATE_MAPPING). Token ids (yi_vl's 8308, deepseek_vl's bos/eos) are written as one marker.
CHAT_FORMATS: dict[str, tuple[str, str, str]] = {
    "qwen2_vl": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
                 "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "qwen2_5_vl": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
                   "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "qwen3_vl": ("", "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "internvl2_5": ("<|im_start|>system\n你是书生·万象，英文名是InternVL，"
                    "是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。<|im_end|>\n",
                    "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "internvl_hf": ("", "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "gemma3_vision": ("<bos>", "<start_of_turn>user\n{{QUERY}}<end_of_turn>\n<start_of_turn>model\n",
                      "<end_of_turn>"),
    "idefics3": ("<|begin_of_text|>", "User:{{QUERY}}<end_of_utterance>\nAssistant:", "<end_of_utterance>"),
    "llava_onevision_hf": ("", "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "llava1_5_hf": ("<s>", "USER: {{QUERY}}\nASSISTANT:", "</s>"),
    "deepseek_vl": ("<bos>You are a helpful language and vision assistant. You are able to understand the visual "
                    "content that the user provides, and assist the user with a variety of tasks using natural "
                    "language.\n\n", "User: {{QUERY}}\n\nAssistant:", "<eos>"),
    "phi3_vision": ("", "<|user|>\n{{QUERY}}<|end|>\n<|assistant|>\n", "<|end|>"),
    "glm_edge_v": ("", "<|user|>\\n{{QUERY}}\\n<|assistant|>\\n", "<|endoftext|>"),
    "mplug_owl3": ("<|im_start|>system\n<|im_end|>\n", "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n",
                   "<|im_end|>\n"),
    "yi_vl": ("This is a chat between an inquisitive human and an AI assistant. Assume the role of the AI assistant. "
              "Read all the images carefully, and respond to the human's questions with informative, helpful, "
              "detailed and polite answers. 这是一个好奇的人类和一个人工智能助手之间的对话。"
              "假设你扮演这个AI助手的角色。"
              "仔细阅读所有的图像，并对人类的问题做出信息丰富、有帮助、详细的和礼貌的回答。\n\n",
              "<|token_8308|> Human: {{QUERY}}\n<|token_8308|> Assistant:", "\n<|token_8308|>"),
}
# Qwen2's pre-tokenizer (its tokenizer.json), digits one by one and CJK characters one by one:
# every piece is at least one token, and a common English word is exactly one. The estimate
# where no tokenizer is on disk.
CJK = "\u3000-\u9fff\uff00-\uffef"
PIECES = re.compile(rf"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[{CJK}]|[^\r\n\w]?[^\W\d_{CJK}]+|\d| ?[^\s\w]+[\r\n]*"""
                    r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
MARKER = re.compile(r"<\|[^<>|]+\|>|<[a-z_]+>|</s>|<s>|<bos>|<eos>")
IMAGE_PLACEHOLDER = "<image>"


class TextTokens:
    """Counts the tokens of texts: with a model's own tokenizer (its tokenizer.json, through the
    `tokenizers` library: no transformers import), or, without one, by the estimate PIECES.
    `source` says which, for the plan and the logs."""

    def __init__(self, tokenizer=None, source: str = "estimate"):
        self.tokenizer, self.source = tokenizer, source

    @classmethod
    def of_folder(cls, folder: str | os.PathLike | None) -> TextTokens:
        """The tokenizer of a model folder if it has a tokenizer.json, else the estimate."""
        path = Path(folder) / "tokenizer.json" if folder else None
        if path is None or not path.is_file():
            return cls()
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)), "own tokenizer")

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    @classmethod
    def of_model(cls, folder: str | os.PathLike) -> TextTokens:
        """A model folder's tokenizer as transformers loads it, which is what ms-swift encodes
        with: transformers 5 rebuilds some tokenizers' pre-tokenizers (Qwen2's splits digits one
        by one, whatever its tokenizer.json says)."""
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(folder), trust_remote_code=True), "own tokenizer")

    def counts(self, texts: list[str]) -> list[int]:
        if self.tokenizer is None:
            return [len(PIECES.findall(t)) for t in texts]
        if hasattr(self.tokenizer, "encode_batch"):  # the tokenizers library's
            return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def count(self, text: str) -> int:
        return self.counts([text])[0]

    def marked(self, text: str) -> int:
        """Tokens of a template's own text: its markers (<|im_start|>, <s>) are one token each
        in the estimate, as they are special tokens of the real tokenizers."""
        if self.tokenizer is not None:
            return self.count(text)
        return len(MARKER.findall(text)) + sum(self.counts([part for part in MARKER.split(text) if part]))


def chat_overhead(template: str, text: TextTokens) -> int:
    """Tokens of one question-answer turn besides the image, the question and the answer: the
    system prompt, role markers and ends (CHAT_FORMATS); an estimate for templates whose markers
    the tokenizer splits otherwise. The training job measures it with the real template instead."""
    template = ALIASES.get(template, template)
    if template not in CHAT_FORMATS:
        raise ValueError(f"unknown template {template!r}; known: {', '.join(CHAT_FORMATS)}")
    system, prompt, end = CHAT_FORMATS[template]
    before, after = prompt.split("{{QUERY}}")
    return sum(text.marked(part) for part in (system, before, after, end) if part)


def question_text(content: str) -> str:
    """A user message without its image placeholder (the image is counted apart)."""
    return content.replace(IMAGE_PLACEHOLDER, "")


# ------------------------------------------------------------------ a local model's own settings
def processor_params(template: str, folder: str | os.PathLike | None, text: TextTokens) -> dict:
    """The processor settings of a local model folder in image_tokens' terms (a tiny model's own
    tile sizes and token counts), with its tokenizer's lengths of the template's markers; {}
    (the real checkpoints' DEFAULTS) where the folder or a setting is missing."""
    template = ALIASES.get(template, template)
    folder = Path(folder) if folder else None
    if folder is None or not folder.is_dir() or not text.exact:
        return {}
    config = _json_or_empty(folder / "processor_config.json")  # transformers 5: the processor and its image part
    image = config.get("image_processor") or _json_or_empty(folder / "preprocessor_config.json")  # 4.57
    try:
        return _READERS[template](config, image, text) if template in _READERS else {}
    except (KeyError, TypeError):
        return {}


def _json_or_empty(path: Path) -> dict:
    return read_json(path) if path.is_file() else {}


def _qwen_params(config, image, text):
    return {"merge_size": image["merge_size"]}  # ms-swift's Qwen2/2.5 path hard-codes patch 14 (fetch_image)


def _qwen3_params(config, image, text):
    return {"patch_size": image["patch_size"], "merge_size": image["merge_size"]}


def _internvl_hf_params(config, image, text):
    return {"tile_size": image["size"]["height"], "min_patches": image["min_patches"],
            "max_patches": image["max_patches"], "image_seq_length": config["image_seq_length"],
            "wrapper": text.count("<img>") + text.count("</img>\n")}


def _gemma3_params(config, image, text):
    return {"image_seq_length": config["image_seq_length"], "nl2_tokens": text.count("\n\n")}


def _idefics3_params(config, image, text):
    row_col = {(i, j): text.count(f"<row_{i}_col_{j}>") for i in range(1, 7) for j in range(1, 7)}
    return {"longest_edge": image["size"]["longest_edge"], "max_image_size": image["max_image_size"]["longest_edge"],
            "image_seq_len": config["image_seq_len"], "do_image_splitting": image["do_image_splitting"],
            "row_col_tokens": tuple(sorted(row_col.items())), "global_img_tokens": text.count("<global-img>"),
            "nl_tokens": text.count("\n"), "nl2_tokens": text.count("\n\n")}


def _onevision_params(config, image, text):
    return {"tile_size": image["size"]["height"], "num_image_tokens": config["num_image_tokens"],
            "pinpoints": tuple(tuple(x) for x in image["image_grid_pinpoints"]),
            "vision_aspect_ratio": config["vision_aspect_ratio"], "wrapper": text.count("\n")}


def _llava_params(config, image, text):
    return {"crop_size": image["crop_size"]["height"], "patch_size": config["patch_size"],
            "num_additional_image_tokens": config["num_additional_image_tokens"],
            "vision_feature_select_strategy": config["vision_feature_select_strategy"], "wrapper": text.count("\n")}


def _internvl2_5_params(config, image, text):  # ms-swift tiles itself (MAX_NUM, INPUT_SIZE): only the markers
    return {"wrapper": text.count("<img>") + text.count("</img>\n")}


_READERS: dict[str, Callable] = {
    "qwen2_vl": _qwen_params, "qwen2_5_vl": _qwen_params, "qwen3_vl": _qwen3_params,
    "internvl_hf": _internvl_hf_params, "internvl2_5": _internvl2_5_params, "gemma3_vision": _gemma3_params,
    "idefics3": _idefics3_params, "llava_onevision_hf": _onevision_params, "llava1_5_hf": _llava_params,
}


# What shrinks a template's images (fewer image tokens), for the error that says how to fit
# max_length: the environment knobs the template reads, else ms-swift's --max_pixels.
IMAGE_SIZE_KNOBS = {
    "qwen2_vl": "env MAX_PIXELS", "qwen2_5_vl": "env MAX_PIXELS", "qwen3_vl": "env MAX_PIXELS",
    "internvl2_5": "env MAX_NUM (tiles, default 12)", "phi3_vision": "env NUM_CROPS",
}


def image_size_knob(template: str) -> str:
    return IMAGE_SIZE_KNOBS.get(ALIASES.get(template, template),
                                "train: {extra_args: {max_pixels: N}} (ms-swift rescales larger images first)")


class Conversations:
    """Sequence lengths of whole records (any number of turns and images) for one model: its
    template's chat format around every turn (CHAT_FORMATS), each image as image_tokens counts
    it, and the texts as `text` counts them (distinct texts once)."""

    def __init__(self, template: str, text: TextTokens, env: Mapping[str, str], params: dict | None = None,
                 max_pixels: int | None = None):
        self.template, self.text, self.env = ALIASES.get(template, template), text, env
        self.params, self.max_pixels = params or {}, max_pixels
        system, prompt, end = CHAT_FORMATS[self.template]
        before, after = prompt.split("{{QUERY}}")
        self.system = text.marked(system) if system else 0
        self.user_turn = sum(text.marked(part) for part in (before, after) if part)
        self.assistant_turn = text.marked(end) if end else 0

    def image(self, width: int, height: int) -> int:
        return image_tokens(self.template, width, height, self.env, template_max_pixels=self.max_pixels,
                            **self.params)

    def lengths(self, records: list[tuple[list[tuple[int, int]], list[tuple[str, str]]]]) -> list[int]:
        """Each record as (image sizes, [(role, content), ...]) -> its tokens."""
        texts = {question_text(content) for _, messages in records for _, content in messages}
        counted = dict(zip(texts, self.text.counts(list(texts))))
        out = []
        for sizes, messages in records:
            n = self.system + sum(self.image(w, h) for w, h in sizes)
            for role, content in messages:
                n += counted[question_text(content)] + (self.assistant_turn if role == "assistant" else self.user_turn)
            out.append(n)
        return out
