"""The plan before launch: for every model of `run`, what one training run and one pass over the
nine test files cost, in tokens, optimizer steps and GPU-hours, before any GPU is asked for.

Inputs are the box tables (every kept image's size), the generators' summaries (the exact
records per task) and a sample of each image size's records made by the real generators
(dataset.build.size_sample): never the 2M-record training mix. A sample's length is the
template's chat turn + the image as the model's template expands it (models.tokens) + the
question and the answer as the model's tokenizer splits them (an estimate where its tokenizer
is not on disk; the plan says which). Each size's sampled records stand for that size's
images; each task's records are scaled to the summary's exact count.

GPU-hours = FLOPs / (plan.gpu_tflops x plan.mfu) / 3600, with LoRA's FLOPs per processed token
6N with gradient checkpointing (forward, the recomputed forward, the backward's activation
gradients) and 4N without, N = params_b x 1e9: the frozen base computes no weight gradients
(shared/notes/training-cost.md). Left out: the vision encoder's own cost (it is frozen, but
runs forward for every sample), attention's term that grows with the square of the sequence,
the optimizer and data loading. Padded positions count as processed: ms-swift pads a
micro-batch to its longest sample.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sarchat_bench.core.io import read_json
from sarchat_bench.models.grouping import ImageSamples, sequence_lengths
from sarchat_bench.models.registry import PACKABLE_TEMPLATES, entry, run_models
from sarchat_bench.models.tokens import (
    CHAT_FORMATS,
    TextTokens,
    chat_overhead,
    image_tokens,
    processor_params,
    question_text,
)

log = logging.getLogger(__name__)

COLUMNS = (
    "model", "template", "text tokens counted with", "training samples", "image tokens per image (mean)",
    "text tokens per sample (mean)", "template tokens per sample", "sequence tokens per sample (mean)",
    "training tokens per epoch (paper recipe)", "padding waste at batch size (%)", "samples over max_length",
    "optimizer steps", "GPU-hours (paper recipe)", "GPU-hours (without gradient checkpointing)",
    "training tokens per epoch (grouping: all)", "images encoded per epoch (grouping: all)",
    "GPU-hours (cheapest recipe)", "cheapest recipe", "inference prefill tokens",
    "inference prefill tokens with prefix caching", "inference generated tokens",
)


@dataclass(frozen=True)
class Lengths:
    """Sequence lengths with weights (how many real samples each stands for): the training
    mix's or the test files' distribution for one model."""

    lengths: list[int]
    weights: list[float]

    @property
    def samples(self) -> float:
        return sum(self.weights)

    @property
    def tokens(self) -> float:
        return sum(n * w for n, w in zip(self.lengths, self.weights))

    def mean(self) -> float:
        return self.tokens / self.samples if self.samples else 0.0

    def over(self, max_length: int) -> float:
        return sum(w for n, w in zip(self.lengths, self.weights) if n > max_length)

    def expected_longest(self, batch: int) -> float:
        """The expected longest of `batch` samples drawn at random (ms-swift shuffles, then pads
        each micro-batch to its longest): sum over lengths x of x (F(x)^b - F(x-)^b)."""
        by_length = Counter()
        for n, w in zip(self.lengths, self.weights):
            by_length[n] += w
        total, below, expected = self.samples, 0.0, 0.0
        for n in sorted(by_length):
            upto = below + by_length[n]
            expected += n * ((upto / total) ** batch - (below / total) ** batch)
            below = upto
        return expected


@dataclass(frozen=True)
class Recipe:
    """One way to run the training: the LLM tokens it processes per epoch (padding included)
    and the FLOPs per processed token in units of N (the parameter count)."""

    name: str
    tokens_per_epoch: float
    flops_per_token_n: int


def flops_per_token_n(gradient_checkpointing: bool) -> int:
    """LoRA on a frozen base: 2N forward + 2N backward (activation gradients only), plus 2N for
    the forward that gradient checkpointing computes again."""
    return 6 if gradient_checkpointing else 4


def padded_tokens(lengths: Lengths, batch: int) -> float:
    return lengths.samples * lengths.expected_longest(batch)


def cheapest_recipe(recipes: dict[str, Lengths], train: dict, packable: bool) -> Recipe:
    """The cheapest training recipe available for a model: each way of cutting its samples into
    sequences (`recipes`: the paper's single-turn samples, and grouped into conversations:
    models.grouping), padded to the longest of each micro-batch or, where ms-swift packs the
    model's template, packed (no padding; it needs flash-attn on the GPU), each with and without
    gradient checkpointing (without it needs more GPU memory: activations are kept)."""
    candidates = []
    for name, lengths in recipes.items():
        cuts = [(name, padded_tokens(lengths, train["per_device_train_batch_size"]))]
        if packable:
            cuts.append((f"{name}, packing", lengths.tokens))
        for cut, tokens in cuts:
            candidates += [Recipe(cut, tokens, flops_per_token_n(True)),
                           Recipe(f"{cut}, no gradient checkpointing", tokens, flops_per_token_n(False))]
    return min(candidates, key=lambda r: r.tokens_per_epoch * r.flops_per_token_n)


def grouped_lengths(side: SampledSet, template: str, env: dict, params: dict, text: TextTokens,
                    max_pixels: int | None, grouping: str, max_length: int) -> Lengths:
    """The sequences of the side's sampled images with `grouping` (models.grouping cuts them), each
    standing for as many as its size's images per sampled image."""
    system, prompt, end = CHAT_FORMATS[template]
    before, after = prompt.split("{{QUERY}}")
    turn = sum(text.marked(part) for part in (before, after, end) if part)
    lengths, weights = [], []
    for size, s in side.sample.items():
        shared = image_tokens(template, *size, env, template_max_pixels=max_pixels, **params) + text.marked(system)
        for samples in s["by_image"]:
            counts = text.counts([piece for _, q, a in samples for piece in (question_text(q), a)])
            image = ImageSamples(shared, [(task, turn + counts[2 * i] + counts[2 * i + 1])
                                          for i, (task, _, _) in enumerate(samples)])
            for n in sequence_lengths(image, grouping, max_length):
                lengths.append(n)
                weights.append(s["images"] / s["sampled"])
    return Lengths(lengths, weights)


def gpu_hours(recipe: Recipe, params_b: float, epochs: float, plan: dict) -> float:
    flops = recipe.flops_per_token_n * params_b * 1e9 * recipe.tokens_per_epoch * epochs
    return flops / (plan["gpu_tflops"] * 1e12 * plan["mfu"]) / 3600


def significant(value: float, digits: int = 3) -> float:
    """Three significant digits: a tiny model's 0.0123 GPU-hours and a paper model's 591 alike."""
    return float(f"{value:.{digits}g}")


def global_batch(train: dict) -> int:
    """Samples per optimizer step: the micro-batch, accumulated, on every GPU."""
    return train["per_device_train_batch_size"] * train["gradient_accumulation_steps"] * max(1, train["gpus"])


def optimizer_steps(samples: float, train: dict) -> int:
    """Steps of one run: max_steps when set, else epochs x ceil(samples / global batch)."""
    if train.get("max_steps"):
        return int(train["max_steps"])
    return math.ceil(train["num_train_epochs"] * math.ceil(samples / global_batch(train)))


def epochs_run(samples: float, train: dict) -> float:
    """Epochs one run goes through: max_steps, when set, decides (the trainer's rule: it
    overrides num_train_epochs, fewer epochs or more)."""
    if not train.get("max_steps") or not samples:
        return float(train["num_train_epochs"])
    return train["max_steps"] * global_batch(train) / samples


def summary_records(paths: list) -> Counter:
    """Records per task in the generators' summaries (results/sarchat/summaries/*.json)."""
    records = Counter()
    for path in paths:
        for item in read_json(path)["files"]:
            records[item["task"]] += item["records"]
    return records


@dataclass(frozen=True)
class SampledSet:
    """One side of the dataset (the training mix or the test files) for the plan: per image
    size, its images and sampled records, and each task's exact record count."""

    sample: dict
    records: Counter

    def weights(self) -> dict[tuple, float]:
        """How many real records one sampled record of (size, task) stands for: the sample's
        records per image times the size's images, scaled per task to the summary's count."""
        estimated = {(size, task): len(recs) / s["sampled"] * s["images"]
                     for size, s in self.sample.items() for task, recs in s["records"].items() if recs}
        per_task = Counter()
        for (_, task), n in estimated.items():
            per_task[task] += n
        missing = [t for t in self.records if self.records[t] and not per_task[t]]
        if missing:
            log.warning("the sample has no record of task(s) %s: the plan leaves them out", missing)
        return {(size, task): n * self.records[task] / per_task[task] / len(self.sample[size]["records"][task])
                for (size, task), n in estimated.items()}


def model_lengths(side: SampledSet, template: str, env: dict, params: dict, text: TextTokens,
                  max_pixels: int | None, *, answers: bool = True) -> tuple[Lengths, dict]:
    """The side's sequence lengths for one model, and the parts they are made of (image, text
    and template tokens, in total and per image)."""
    weights = side.weights()
    overhead = chat_overhead(template, text) if answers else prompt_overhead(template, text)
    lengths, ws = [], []
    totals = Counter()
    for (size, task), w in weights.items():
        pairs = side.sample[size]["records"][task]
        image = image_tokens(template, *size, env, template_max_pixels=max_pixels, **params)
        questions = text.counts([question_text(q) for q, _ in pairs])
        answer_counts = text.counts([a for _, a in pairs]) if answers else [0] * len(pairs)
        for q, a in zip(questions, answer_counts):
            lengths.append(overhead + image + q + a)
            ws.append(w)
        totals["image"] += image * w * len(pairs)
        totals["question"] += sum(questions) * w
        totals["answer"] += sum(answer_counts) * w
    images = sum(s["images"] for s in side.sample.values())
    per_image = sum(image_tokens(template, *size, env, template_max_pixels=max_pixels, **params) * s["images"]
                    for size, s in side.sample.items()) / max(1, images)
    return Lengths(lengths, ws), {**totals, "overhead": overhead, "image_per_image": per_image}


def prompt_overhead(template: str, text: TextTokens) -> int:
    """The chat turn's tokens up to where the answer starts (what inference prefills)."""
    system, prompt, _ = CHAT_FORMATS[template]
    before, after = prompt.split("{{QUERY}}")
    return sum(text.marked(part) for part in (system, before, after) if part)


# What a plan reads of a model's training settings: a change of anything else (checkpoint
# cadence, inference batch sizes) leaves the plan as it is.
PLAN_TRAIN_KEYS = ("per_device_train_batch_size", "gradient_accumulation_steps", "gpus", "num_train_epochs",
                   "max_steps", "max_length", "gradient_checkpointing", "extra_args")
PLAN_ENTRY_KEYS = ("mode", "template", "env", "params_b", "source", "environment", "train_data")


def plan_settings(config: dict) -> dict:
    """What the plan depends on, and only that (the plan rule's params, so that Snakemake reruns
    it exactly when one of these changes): every planned model's entry, reduced to what the plan
    reads, the `plan:` section and the dataset's generator settings."""
    entries = []  # in the order of `run` (a list: the params' JSON sorts keys)
    for model in run_models(config):
        e = entry(config, model)
        entries.append({"model": model, **{k: e[k] for k in PLAN_ENTRY_KEYS if k in e},
                        "train": {k: e["train"][k] for k in PLAN_TRAIN_KEYS if k in e["train"]}})
    dataset = config["dataset"]
    return {"models": entries, "plan": config["plan"],
            "dataset": {"seed": dataset["seed"], "tasks": dataset.get("tasks", {}),
                        "categories": dataset["categories"], "templates": dataset.get("templates", "")}}


def model_files(cache_dir: str, e: dict) -> Path | None:
    """A model's local folder, if it is on disk: the tiny model's, the local copy, or the hub
    snapshot that prefetch_model fetched into the model cache (its manifest, or the cache's
    own refs to the pinned revision)."""
    from sarchat_bench.models.registry import model_path

    source = e.get("source", {})
    if "tiny" in source or "local" in source:
        folder = Path(model_path(e))
        return folder if folder.is_dir() else None
    if "hub" not in source:
        return None
    repo = Path(cache_dir) / "huggingface" / "hub" / f"models--{source['hub'].replace('/', '--')}"
    ref = repo / "refs" / source["revision"]
    commit = ref.read_text().strip() if ref.is_file() else source["revision"]
    folder = repo / "snapshots" / commit
    return folder if folder.is_dir() else None


def own_tokens(folder: Path | None) -> TextTokens:
    """The model's tokenizer as its jobs load it, if it is on disk and loads here (a tokenizer
    saved by transformers 4.57 may not load under 5); else the estimate."""
    if folder is None:
        return TextTokens()
    try:
        return TextTokens.of_model(folder)
    except Exception as err:  # noqa: BLE001 - any failure to load means: count with the estimate
        log.warning("%s: tokenizer not loadable here (%s: %s); text tokens are estimated", folder,
                    type(err).__name__, str(err)[:200])
        return TextTokens()


def plan_rows(settings: dict, cache_dir: str, train: SampledSet, test: SampledSet) -> list[dict]:
    """One row per model of `run` that a model runs for (fine-tuned and zero-shot models with a
    template; predictions files, baselines and served models have nothing to plan). `settings`:
    plan_settings' dict."""
    gpu = settings["plan"]
    rows = []
    texts: dict[str, TextTokens] = {}
    for e in settings["models"]:
        model = e["model"]
        if e["mode"] not in ("finetune", "zero_shot") or not e.get("template"):
            continue
        template = e["template"]
        folder = model_files(cache_dir, e)
        if str(folder) not in texts:
            texts[str(folder)] = own_tokens(folder)
        text = texts[str(folder)]
        params = processor_params(template, folder, text)
        t = e["train"]
        max_pixels = t.get("max_pixels") or t.get("extra_args", {}).get("max_pixels")
        row = {"model": model, "template": template, "text tokens counted with": text.source}
        if e["mode"] == "finetune" and "train_data" not in e:
            lengths, parts = model_lengths(train, template, e["env"], params, text, max_pixels)
            samples = lengths.samples
            epochs = epochs_run(samples, t)
            padded = padded_tokens(lengths, t["per_device_train_batch_size"])
            paper = Recipe("paper recipe", padded, flops_per_token_n(t.get("gradient_checkpointing", True)))
            grouped = grouped_lengths(train, template, e["env"], params, text, max_pixels, "all", t["max_length"])
            cheapest = cheapest_recipe({"single-turn": lengths, "grouping: all": grouped,
                                        "grouping: identify": grouped_lengths(train, template, e["env"], params, text,
                                                                              max_pixels, "identify", t["max_length"])},
                                       t, template in PACKABLE_TEMPLATES)
            row.update({
                "training samples": round(samples),
                "image tokens per image (mean)": round(parts["image_per_image"], 1),
                "text tokens per sample (mean)": round((parts["question"] + parts["answer"]) / samples, 1),
                "template tokens per sample": parts["overhead"],
                "sequence tokens per sample (mean)": round(lengths.mean(), 1),
                "training tokens per epoch (paper recipe)": round(lengths.tokens),
                "padding waste at batch size (%)": round(100 * (1 - lengths.tokens / padded), 1) if padded else 0.0,
                "samples over max_length": round(lengths.over(t["max_length"])),
                "optimizer steps": optimizer_steps(samples, t),
                "GPU-hours (paper recipe)": significant(gpu_hours(paper, e["params_b"], epochs, gpu)),
                "GPU-hours (without gradient checkpointing)": significant(
                    gpu_hours(Recipe("", padded, flops_per_token_n(False)), e["params_b"], epochs, gpu)),
                "training tokens per epoch (grouping: all)": round(grouped.tokens),
                "images encoded per epoch (grouping: all)": round(grouped.samples),
                "GPU-hours (cheapest recipe)": significant(gpu_hours(cheapest, e["params_b"], epochs, gpu)),
                "cheapest recipe": cheapest.name,
            })
        prefill, parts = model_lengths(test, template, e["env"], params, text, max_pixels, answers=False)
        generated = model_lengths(test, template, e["env"], params, text, max_pixels)[1]["answer"]
        system, prompt, end = CHAT_FORMATS[template]
        before, after = prompt.split("{{QUERY}}")
        # With prefix caching, what precedes the question (system prompt, role marker, the image:
        # "<image>" opens every question) is computed once per image, not once per question.
        prefix = sum(text.marked(part) for part in (system, before) if part)
        images = sum(s["images"] for s in test.sample.values())
        row.update({
            "inference prefill tokens": round(prefill.tokens),
            "inference prefill tokens with prefix caching": round(
                parts["question"] + text.marked(after) * prefill.samples + prefix * images
                + parts["image_per_image"] * images),
            "inference generated tokens": round(generated + text.marked(end) * prefill.samples),
        })
        rows.append({c: row.get(c) for c in COLUMNS})
    return rows


def plan_note(settings: dict) -> str:
    p = settings["plan"]
    return (f"Estimates before launch, per model of `run`: one training run with its settings and one pass over "
            f"the nine test files. GPU-hours assume {p['gpu']} at {p['gpu_tflops']:g} TFLOP/s and "
            f"{100 * p['mfu']:g} % MFU (config plan:), LoRA at 6N FLOPs per processed token with gradient "
            "checkpointing and 4N without (N = params_b); padded positions count. Left out: the vision "
            "encoder's cost, attention's sequence-squared term, the optimizer and data loading. Image tokens "
            "follow each model's ms-swift template; text tokens its tokenizer, or an estimate where the plan says "
            "so; template tokens are the chat turn around the question and answer. Counts come from a sample of "
            "each image size's records, scaled to the generators' exact counts per task (docs/cost.md).")


def write_plan(settings: dict, out_dir, *, cache_dir: str, train_tables: list, test_tables: list,
               train_summaries: list, test_summaries: list, per_size: int = 64) -> list[dict]:
    """results/plan/plan.{csv,md,html} from plan_settings' dict; returns the rows."""
    from sarchat_bench.dataset.build import size_sample
    from sarchat_bench.dataset.stats import write_table

    dataset = settings["dataset"]
    common = {"seed": dataset["seed"], "settings": dataset["tasks"], "per_size": per_size,
              "categories": tuple(dataset["categories"])}
    if dataset["templates"]:
        common["templates_path"] = dataset["templates"]
    train = SampledSet(size_sample(train_tables, **common), summary_records(train_summaries))
    test = SampledSet(size_sample(test_tables, **common), summary_records(test_summaries))
    rows = plan_rows(settings, cache_dir, train, test)
    write_table(rows, Path(out_dir) / "plan", "Plan: what training and inference will cost", note=plan_note(settings))
    return rows
