"""Image and sample tokens (models/tokens.py) against real ms-swift 4.6 encodes of the tiny models
the package builds (CPU, no downloads), and the cost page's table against the code.

For each family the real template encodes a record with "<image>hi" and the same record without
the image: image_tokens must equal the length difference ("sequence") and the number of image pad
tokens ("features"), with the tiny model's own processor settings (processor_params). Whole
training records must be as long as Conversations counts them. ms-swift patches qwen_vl_utils
once per process, so each environment (MAX_PIXELS & co.) runs in a fresh worker process; two
workers share the two cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sarchat_bench.models.tokens import (
    CHAT_FORMATS,
    DEFAULTS,
    FIXED_SIZE,
    Conversations,
    TextTokens,
    image_tokens,
    processor_params,
)
from support import REPO, SCRIPTS

pytestmark = pytest.mark.swift

# SARDet-100K's sizes, then odd ones (portrait, extreme aspect, tiny).
SIZES = [(256, 256), (512, 512), (800, 800), (500, 353), (224, 224), (1000, 1000), (333, 517), (1200, 90),
         (30, 41)]
# family -> (tiny architecture, model_type, template, image pad token). "internvl2_5" is the paper's
# InternVL2.5 template (ms-swift's own tiling, MAX_NUM/INPUT_SIZE) driven by the tiny InternVL
# tokenizer, whose <img>, </img> and <IMG_CONTEXT> are single added tokens as in the real ones.
FAMILIES = {
    "qwen2_vl": ("qwen2_vl", "qwen2_vl", "qwen2_vl", "<|image_pad|>"),
    "qwen2_5_vl": ("qwen2_5_vl", "qwen2_5_vl", "qwen2_5_vl", "<|image_pad|>"),
    "qwen3_vl": ("qwen3_vl", "qwen3_vl", "qwen3_vl", "<|image_pad|>"),
    "internvl": ("internvl", "internvl", "internvl_hf", "<IMG_CONTEXT>"),
    "internvl2_5": ("internvl", "internvl", "internvl2_5", "<IMG_CONTEXT>"),
    "gemma3_vision": ("gemma3_vision", "gemma3_vision", "gemma3_vision", "<image_soft_token>"),
    "idefics3": ("idefics3", "idefics3", "idefics3", "<image>"),
    "llava_onevision_hf": ("llava_onevision_hf", "llava_onevision_hf", "llava_onevision_hf", "<image>"),
    "llava1_5_hf": ("llava1_5_hf", "llava1_5_hf", "llava1_5_hf", "<image>"),
}
# (run, environment, families, ms-swift --max_pixels values)
RUNS = [
    ("default", {}, list(FAMILIES), [None, 100_000]),
    # MAX/MIN_PIXELS -> IMAGE_MAX/MIN_TOKEN_NUM = pixels // 28**2 (320 and 128 tokens)
    ("qwen2_pixels", {"MAX_PIXELS": "250880", "MIN_PIXELS": "100352"}, ["qwen2_5_vl"], [None]),
    # config.yaml's tiny setting: 12544 // 32**2 = 12 tokens at most for Qwen3-VL
    ("qwen3_project", {"MAX_PIXELS": "12544"}, ["qwen3_vl"], [None]),
    # IMAGE_MAX_TOKEN_NUM wins over MAX_PIXELS; MIN_PIXELS 25088 -> 32 tokens
    ("qwen2_direct", {"MAX_PIXELS": "12544", "IMAGE_MAX_TOKEN_NUM": "64", "MIN_PIXELS": "25088"}, ["qwen2_vl"],
     [None]),
    # InternVL2.5's knobs: 6 tiles at most, 224-px tiles (64 tokens each); internvl_hf ignores both
    ("internvl_knobs", {"MAX_NUM": "6", "INPUT_SIZE": "224"}, ["internvl2_5", "internvl"], [None]),
]
KNOBS = ("MAX_PIXELS", "MIN_PIXELS", "IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM", "MAX_NUM", "INPUT_SIZE",
         "SPATIAL_MERGE_SIZE", "MAX_RATIO", "NUM_CROPS")
WORKERS = [
    {"build": ["qwen2_vl", "qwen2_5_vl", "llava1_5_hf"],
     "jobs": [("default", ["qwen2_vl", "qwen2_5_vl", "llava1_5_hf"]), ("qwen2_pixels", None),
              ("qwen2_direct", None)]},
    {"build": ["qwen3_vl", "internvl", "gemma3_vision", "idefics3", "llava_onevision_hf"],
     "jobs": [("default", ["qwen3_vl", "internvl", "internvl2_5", "gemma3_vision", "idefics3", "llava_onevision_hf"]),
              ("qwen3_project", None), ("internvl_knobs", None)], "formats": True},
]
# Whole training records: these sizes, the corpus's first records.
RECORD_SIZES = [(256, 256), (800, 800), (500, 353)]


# ------------------------------------------------------------------------------------ worker side
def _worker(spec: dict) -> dict:
    """In a fresh process: build the tiny models, then encode every size with the real template,
    once per run (environment), put back to a fresh process's state between runs."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sarchat_bench.models.tiny import build

    for arch in spec["build"]:
        build(arch, spec["models"][arch], [spec["corpus"]])
    from PIL import Image
    from qwen_vl_utils import vision_process
    from swift.model import get_processor
    from swift.template import TEMPLATE_MAPPING, get_template

    fresh = {k: v for k, v in vars(vision_process).items() if k.isupper()}
    images = {}
    for w, h in spec["sizes"]:
        images[f"{w}x{h}"] = path = str(Path(spec["images"]) / f"{w}x{h}.png")
        Image.new("RGB", (w, h), ((w * 7) % 255, (h * 3) % 255, 90)).save(path)
    corpus = [json.loads(line) for line in Path(spec["corpus"]).read_text().splitlines()[:2]]
    out = {}
    for run in spec["runs"]:
        for k in KNOBS:
            os.environ.pop(k, None)
        os.environ.update(run["env"])
        vars(vision_process).update(fresh)
        if hasattr(vision_process, "_patch"):
            del vision_process._patch
        for arch in run["families"]:
            tiny, model_type, template_type, pad = FAMILIES[arch]
            processor = get_processor(spec["models"][tiny], model_type=model_type)
            pad_id = getattr(processor, "tokenizer", processor).convert_tokens_to_ids(pad)
            res = {}
            for max_pixels in run["max_pixels"]:
                template = get_template(processor, template_type=template_type, max_pixels=max_pixels)
                template.set_mode("train")

                def encode(record, template=template):
                    return template.encode(record)["input_ids"]

                base = encode({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]})
                rows = {}
                for key, path in images.items():
                    try:
                        ids = encode({"messages": [{"role": "user", "content": "<image>hi"},
                                                   {"role": "assistant", "content": "ok"}], "images": [path]})
                    except Exception as err:  # noqa: BLE001 - recorded: image_tokens must fail the same way
                        rows[key] = {"error": f"{type(err).__name__}: {err}"}
                        continue
                    rows[key] = {"diff": len(ids) - len(base), "pad": sum(1 for t in ids if t == pad_id)}
                res[str(max_pixels)] = rows
                if run["name"] == "default" and max_pixels is None:  # whole records, as training counts them
                    res["records"] = [len(encode({"messages": rec["messages"], "images": [images[f"{w}x{h}"]]}))
                                      for rec in corpus for w, h in RECORD_SIZES]
            out.setdefault(run["name"], {})[arch] = res
    if spec.get("formats"):
        out["formats"] = {t: [m.prefix, m.system_prefix, m.prompt, m.suffix, m.default_system]
                          for t in CHAT_FORMATS for m in [TEMPLATE_MAPPING[t]]}
    return out


# ------------------------------------------------------------------------------------- test side
@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    corpus = root / "corpus.jsonl"
    words = ["ship", "aircraft", "car", "tank", "bridge", "harbor", "how", "many", "are", "there", "in", "the",
             "image", "where", "is", "located"]
    with corpus.open("w") as f:
        for i in range(200):
            q = " ".join(words[(i * k) % len(words)] for k in range(1, 9)) + "?"
            a = f"There are {i % 7} ships at {{<{i}><{2 * i}><{3 * i}><{4 * i}>}}.\n\nok"
            f.write(json.dumps({"messages": [{"role": "user", "content": "<image>" + q},
                                             {"role": "assistant", "content": a}], "images": ["x.png"]}) + "\n")
    models = {arch: str(root / arch) for arch in {v[0] for v in FAMILIES.values()}}
    runs = {name: {"name": name, "env": env, "families": fams, "max_pixels": mps} for name, env, fams, mps in RUNS}
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env.update({"PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(REPO / "tests")]), "HF_HUB_OFFLINE": "1",
                "MODELSCOPE_CACHE": str(root / "ms"), "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    start = time.monotonic()
    procs = []
    for k, worker in enumerate(WORKERS):
        (root / f"images{k}").mkdir()
        spec = {"build": worker["build"], "models": models, "corpus": str(corpus), "sizes": SIZES,
                "images": str(root / f"images{k}"), "formats": worker.get("formats", False),
                "runs": [{**runs[name], "families": fams or runs[name]["families"]} for name, fams in worker["jobs"]]}
        (root / f"worker{k}.json").write_text(json.dumps(spec))
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", str(root / f"worker{k}.json")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-4000:]
        for name, value in json.loads(out.strip().splitlines()[-1]).items():
            if name == "formats":
                results[name] = value
            else:
                results.setdefault(name, {}).update(value)
    print(f"\nencode workers: {time.monotonic() - start:.0f} s")
    return {"models": models, "results": results, "runs": {r[0]: r for r in RUNS}, "corpus": corpus}


def _own(arch: str, models: dict) -> tuple[str, TextTokens, dict]:
    folder = models[FAMILIES[arch][0]]
    text = TextTokens.of_model(folder)
    return FAMILIES[arch][2], text, processor_params(FAMILIES[arch][2], folder, text)


CASES = [(name, arch, mp) for name, env, fams, mps in RUNS for arch in fams for mp in mps]


@pytest.mark.parametrize("run,arch,max_pixels", CASES, ids=[f"{a}-{r}-{m}" for r, a, m in CASES])
def test_image_tokens_are_what_the_real_template_makes(measured, run, arch, max_pixels):
    env = measured["runs"][run][1]
    template, text, params = _own(arch, measured["models"])
    assert text.exact and params  # the tiny model's own tokenizer and processor settings, not the defaults
    rows = measured["results"][run][arch][str(max_pixels)]
    wrong = []
    for w, h in SIZES:
        got = rows[f"{w}x{h}"]
        if "error" in got:  # ms-swift itself fails on this size: so must the count
            with pytest.raises(ValueError):
                image_tokens(template, w, h, env, template_max_pixels=max_pixels, **params)
            continue
        seq = image_tokens(template, w, h, env, template_max_pixels=max_pixels, **params)
        feats = image_tokens(template, w, h, env, count="features", template_max_pixels=max_pixels, **params)
        if (seq, feats) != (got["diff"], got["pad"]):
            wrong.append(f"{w}x{h}: counted {seq}/{feats}, encoded {got['diff']}/{got['pad']}")
    assert not wrong, f"{template} env={env} max_pixels={max_pixels}: " + "; ".join(wrong)


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_whole_records_are_as_long_as_the_training_job_counts(measured, arch):
    template, text, params = _own(arch, measured["models"])
    corpus = [json.loads(line) for line in measured["corpus"].read_text().splitlines()[:2]]
    shapes = [([size], [(m["role"], m["content"]) for m in rec["messages"]]) for rec in corpus for size in RECORD_SIZES]
    assert Conversations(template, text, {}, params).lengths(shapes) == measured["results"]["default"][arch]["records"]


def test_chat_formats_are_ms_swifts(measured):
    checked = 0
    for template, (prefix, system_prefix, prompt, suffix, default_system) in measured["results"]["formats"].items():
        if not all(isinstance(p, str) for p in prefix + system_prefix + prompt + suffix):
            continue  # token ids (deepseek_vl's bos/eos, yi_vl's 8308): written as markers in CHAT_FORMATS
        system, ours_prompt, end = CHAT_FORMATS[template]
        assert ([ours_prompt], [end]) == (prompt, suffix), template
        expected = system_prefix[0].replace("{{SYSTEM}}", default_system) if default_system else "".join(prefix)
        assert system == expected, template
        checked += 1
    assert checked >= 10


def test_counts_without_the_environment_or_a_tokenizer():
    assert image_tokens("qwen2_vl", 256, 256, {}) == 83
    assert image_tokens("qwen2_vl", 1000, 1000, {"MAX_PIXELS": "12544"}) == 16 + 2
    assert image_tokens("qwen3_vl", 1000, 1000, {"MAX_PIXELS": "12544"}) == 3 * 3 + 2  # 12544 // 32**2: 12 at most
    assert image_tokens("internvl2_5", 1000, 1000, {"MAX_NUM": "6"}) == 256 * (4 + 1) + 3  # 2x2 + thumbnail
    assert image_tokens("yi_vl", 500, 353, {}, count="input_ids") == 2
    assert image_tokens("mplug_owl3", 256, 256, {}, count="features") == 5 * 729
    assert image_tokens("internvl", 256, 256, {}) == image_tokens("internvl_hf", 256, 256, {})
    assert all(len({image_tokens(t, w, h, {}) for w, h in SIZES[:6]}) == 1 for t in FIXED_SIZE)
    with pytest.raises(ValueError):
        image_tokens("nope", 1, 1)
    with pytest.raises(ValueError):  # qwen_vl_utils refuses max_pixels below min_pixels
        image_tokens("qwen2_vl", 256, 256, {"MAX_PIXELS": "12544", "MIN_PIXELS": "200704"})
    with pytest.raises(TypeError):
        image_tokens("qwen2_vl", 1, 1, {}, tile_size=3)
    estimate = TextTokens()
    assert not estimate.exact and estimate.counts(["There are 4 ships.", "{<294><35>}"]) == [6, 8]  # Qwen2 splits " 4"


def test_the_cost_page_table_follows_the_code():
    """docs/cost.md's table of image tokens per SARDet-100K size is what image_tokens counts."""
    text = (REPO / "docs" / "cost.md").read_text()
    table = text[text.index("<!-- image-tokens table -->"):]
    header = next(line for line in table.splitlines() if line.startswith("| template"))
    sizes = [tuple(map(int, s.split("x"))) for s in re.findall(r"(\d+x\d+)", header)]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(sizes) >= 5 and {re.match(r"\| `(\w+)`", r).group(1) for r in rows} >= {
        "qwen2_vl", "internvl2_5", "deepseek_vl", "phi3_vision", "glm_edge_v", "mplug_owl3", "llava1_5_hf", "yi_vl"}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        template = cells[0].strip("`")
        assert template in DEFAULTS
        assert [int(c.replace(",", "")) for c in cells[1:1 + len(sizes)]] == \
            [image_tokens(template, w, h, {}) for w, h in sizes], template


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--worker":
    result = _worker(json.loads(Path(sys.argv[2]).read_text()))
    sys.stdout.flush()
    print(json.dumps(result))
