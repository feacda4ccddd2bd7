"""Grouped training (`train: {grouping: identify|all}`): an image's samples become multi-turn
conversations, so that the image is encoded once per conversation instead of once per sample.
The paper's recipe (`grouping: none`, the default) trains on single-turn samples.

- Which samples: `all` groups every single-image question-answer sample of an image;
  `identify` only the identification samples (7 per box, the bulk of the mix), the other
  tasks stay single-turn. Records that are not one image, one question and one answer stay as
  they are.
- Turn order: shuffled per image with a seed derived from the dataset seed and the image, so
  the file does not depend on the order the records came in, and the same inputs, config and
  seed give the same bytes.
- Length: a conversation is the image and the template's prefix once, then its turns; turns are
  added in order until the next would exceed `max_length - SAFETY_TOKENS`, and the rest start a
  new conversation (`conversation_sizes`). Tokens are counted with the model's own ms-swift
  template and tokenizer, in the model's environment and with its image settings
  (`TemplateLengths`); the longest conversations are then encoded in full, with their images,
  and the job stops if one is over max_length.
- Loss: ms-swift 4.6's default `loss_scale` ("default") puts the loss on every assistant turn,
  earlier ones included; the training command passes it explicitly for grouped runs
  (tests/models/test_grouping.py encodes a grouped record with the real template and checks).

One file per distinct (training data, model source, template, environment, image settings,
max_length, grouping, seed), `GroupedMix.name`: hyperparameter variants of one model share it.
`epoch_tokens` is the arithmetic of what grouping saves, for the cost plan as for the job's
summary.
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence

from sarchat_bench.core.errors import InputError, SarchatError
from sarchat_bench.core.io import iter_jsonl, write_json, write_jsonl
from sarchat_bench.core.seeds import derive_seed
from sarchat_bench.core.workstate import digest
from sarchat_bench.models.registry import entry, model_path, run_models
from sarchat_bench.paper.records import image_file, written_size

log = logging.getLogger(__name__)

GROUPINGS = ("none", "identify", "all")
# The tasks each grouping makes conversations of (None: every task).
GROUPED_TASKS = {"identify": frozenset({"identify"}), "all": None}
IMAGE_TAG = "<image>"
# Tokens kept free below max_length: the counts are exact for the templates tested, but a
# tokenizer may merge across the boundary of the removed image tag differently (1 token seen).
SAFETY_TOKENS = 8
# Conversations encoded in full, with their images, after grouping: the longest ones.
CHECKED_LONGEST = 8


class GroupingError(SarchatError, RuntimeError):
    pass


def grouping_of(settings: dict) -> str:
    return settings.get("grouping", "none")


def grouped_task(task: str, grouping: str) -> bool:
    """Whether the grouping puts a task's samples into conversations."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}, not {grouping!r}")
    tasks = GROUPED_TASKS.get(grouping, frozenset())
    return tasks is None or task in tasks


# ---------------------------------------------------------------- what a grouped file depends on
@dataclass(frozen=True)
class GroupedMix:
    """What a grouped training file is made from: the file it regroups, how, the seed of the
    turn order, and what counts its tokens (the model's tokenizer and processor: its source,
    type, template, environment and image settings)."""

    dataset: str
    grouping: str
    max_length: int
    seed: int
    model_path: str
    model_type: str
    template: str
    source: dict
    environment: str
    env: dict
    max_pixels: int | None = None  # ms-swift's --max_pixels, which resizes every image first

    def as_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        import json

        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, spec: dict) -> GroupedMix:
        return cls(**spec)

    @property
    def name(self) -> str:
        """The file's name: readable, and unique per distinct mix."""
        return f"{self.template}-{self.grouping}-{self.max_length}-{digest(self.as_dict())[:12]}"


def grouped_mix(config: dict, model: str, dataset: str) -> GroupedMix | None:
    """The grouped file a fine-tuned model trains on (None: it trains on `dataset` as it is)."""
    e = entry(config, model)
    settings = e["train"]
    if e["mode"] != "finetune" or grouping_of(settings) == "none":
        return None
    return GroupedMix(dataset=dataset, grouping=settings["grouping"], max_length=settings["max_length"],
                      seed=config["dataset"]["seed"], model_path=model_path(e), model_type=e["model_type"],
                      template=e["template"], source=e["source"], environment=e["environment"], env=e["env"],
                      max_pixels=settings.get("extra_args", {}).get("max_pixels"))


def grouped_mixes(config: dict, dataset_of) -> dict[str, tuple[GroupedMix, str]]:
    """Every grouped file the config's models train on, by name, with the first model that
    trains on it, `run`'s first (whose prefetched or tiny model folder holds the tokenizer).
    `dataset_of(model)`: the file the model would otherwise train on."""
    mixes: dict[str, tuple[GroupedMix, str]] = {}
    for model in dict.fromkeys([*run_models(config), *config["models"]]):
        if config["models"][model].get("mode", "finetune") != "finetune":
            continue
        mix = grouped_mix(config, model, dataset_of(model))
        if mix is not None:
            mixes.setdefault(mix.name, (mix, model))
    return mixes


# ----------------------------------------------------------------------- the arithmetic (pure)
def conversation_sizes(turns: Sequence[int], shared: int, budget: int) -> list[int]:
    """How many turns each conversation of one image takes: `turns` (each turn's tokens, in
    order) are added to a conversation of `shared` tokens (the image and the template's prefix)
    while it stays within `budget`. A turn too long even alone gets a conversation of its own:
    ms-swift then treats it as it treats that sample in the paper's recipe."""
    sizes: list[int] = []
    length = count = 0
    for turn in turns:
        if count and length + turn > budget:
            sizes.append(count)
            count = 0
        if not count:
            length = shared
        length += turn
        count += 1
    if count:
        sizes.append(count)
    return sizes


@dataclass(frozen=True)
class EpochTokens:
    """What one epoch over a training file costs: sequences (what a batch counts), tokens in the
    language model, and images through the vision encoder."""

    sequences: int
    tokens: int
    image_encodings: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ImageSamples:
    """One image's samples, for `epoch_tokens`: `shared` tokens (the image as the template
    expands it, and the template's prefix: system prompt, BOS), and each sample's task with its
    turn tokens (question, answer and the turn's chat markup), in training order."""

    shared: int
    samples: Sequence[tuple[str, int]]


def sequence_lengths(image: ImageSamples, grouping: str, max_length: int) -> list[int]:
    """The sequences one image's samples make with `grouping` (none: the paper's single-turn
    samples), each as its tokens: the single-turn samples, then the conversations, cut as the
    grouping job cuts them (conversation_sizes, the same budget)."""
    grouped = [t for task, t in image.samples if grouped_task(task, grouping)]
    lengths = [image.shared + t for task, t in image.samples if not grouped_task(task, grouping)]
    start = 0
    for size in conversation_sizes(grouped, image.shared, max_length - SAFETY_TOKENS):
        lengths.append(image.shared + sum(grouped[start:start + size]))
        start += size
    return lengths


def epoch_tokens(images: Iterable[ImageSamples], grouping: str, max_length: int) -> EpochTokens:
    """Tokens of one epoch with `grouping` (none: the paper's single-turn samples)."""
    sequences = tokens = 0
    for image in images:
        lengths = sequence_lengths(image, grouping, max_length)
        sequences += len(lengths)
        tokens += sum(lengths)
    return EpochTokens(sequences, tokens, sequences)


# ------------------------------------------------------------------------------ the records
@dataclass(slots=True)
class Sample:
    """A single-turn record with one image, as much of it as a conversation keeps."""

    id: str
    task: str
    question: str  # without the image tag
    answer: str
    image: str


def is_sample(record: dict) -> bool:
    """One image, one user question holding the image tag, and one answer."""
    messages = record.get("messages")
    return (len(record.get("images") or ()) == 1 and isinstance(messages, list) and len(messages) == 2
            and messages[0].get("role") == "user" and messages[1].get("role") == "assistant"
            and str(messages[0].get("content", "")).count(IMAGE_TAG) == 1)


def in_grouping(sample: Sample, grouping: str) -> bool:
    return grouped_task(sample.task, grouping)


def read_samples(path) -> list:
    """The records of a training file in order: a Sample for each single-turn, single-image
    record, any other record as it is (with `ids`, and without the fields a conversation drops)."""
    items: list = []
    for n, record in enumerate(iter_jsonl(path), start=1):
        rid = str(record.get("id", f"line-{n}"))
        if is_sample(record):
            question, answer = (m["content"] for m in record["messages"])
            items.append(Sample(rid, str(record.get("task", "")), question.replace(IMAGE_TAG, "", 1), answer,
                                record["images"][0]))
        else:
            items.append({"id": rid, "task": str(record.get("task", "")), "ids": [rid],
                          "messages": record.get("messages"), "images": record.get("images") or []})
    if not items:
        raise InputError(path, "no records to train on")
    return items


def grouped_positions(items: list, grouping: str) -> dict[str, list[int]]:
    """Per image, the positions of its samples that the grouping puts into conversations."""
    by_image: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        if isinstance(item, Sample) and in_grouping(item, grouping):
            by_image[item.image].append(i)
    return by_image


def turn_order(image: str, positions: list[int], seed: int) -> list[int]:
    """The image's samples in a seeded order of their own: the same for the same image and seed,
    whatever else is in the file."""
    order = list(positions)
    random.Random(derive_seed(seed, "grouping", image)).shuffle(order)
    return order


def conversation(samples: list[Sample]) -> dict:
    """One ms-swift record of the samples' turns."""
    ids = [s.id for s in samples]
    return {"id": conversation_id(ids), "task": "+".join(sorted({s.task for s in samples})), "ids": ids,
            "messages": turn_messages((s.question, s.answer) for s in samples), "images": [samples[0].image]}


def turn_messages(turns: Iterable[tuple[str, str]]) -> list[dict]:
    """A conversation's messages from its (question, answer) turns: the image tag in the first
    question only."""
    messages = []
    for i, (question, answer) in enumerate(turns):
        messages += [{"role": "user", "content": (IMAGE_TAG if i == 0 else "") + question},
                     {"role": "assistant", "content": answer}]
    return messages


def conversation_id(ids: Sequence[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{ids[0]}+{len(ids) - 1}"


def grouped_records(items: list, grouping: str, *, turn_tokens: Sequence[int], shared_of, seed: int,
                    budget: int) -> Iterator[tuple[dict, int, int]]:
    """The records of the grouped file, each with its estimated tokens (0 for a record kept as
    it is) and its number of turns; an image's conversations where its first grouped sample was.
    `turn_tokens[i]`: what item i adds to a conversation; `shared_of(image)`: the image's and the
    template prefix's tokens."""
    by_image = grouped_positions(items, grouping)
    for i, item in enumerate(items):
        if not isinstance(item, Sample):
            yield item, 0, 1
        elif not in_grouping(item, grouping):
            yield conversation([item]), shared_of(item.image) + turn_tokens[i], 1
        elif by_image[item.image][0] == i:
            order = turn_order(item.image, by_image[item.image], seed)
            shared = shared_of(item.image)
            start = 0
            for size in conversation_sizes([turn_tokens[p] for p in order], shared, budget):
                part = order[start:start + size]
                start += size
                yield conversation([items[p] for p in part]), shared + sum(turn_tokens[p] for p in part), size


def image_samples(items: list, grouping: str, *, turn_tokens: Sequence[int], shared_of, seed: int
                  ) -> list[ImageSamples]:
    """The file's samples per image for epoch_tokens, the grouped ones in the job's turn order."""
    grouped = grouped_positions(items, grouping)
    rest: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        if isinstance(item, Sample) and not in_grouping(item, grouping):
            rest[item.image].append(i)
    return [ImageSamples(shared_of(image), [(items[p].task, turn_tokens[p])
                                            for p in turn_order(image, grouped.get(image, []), seed) + rest[image]])
            for image in dict.fromkeys([*grouped, *rest])]


# ------------------------------------------------------------------ runs of more than one epoch
def reordered(record: dict, pass_index: int) -> dict:
    """A conversation of the grouped file with its turns in the order of pass `pass_index` (0:
    as written): the same samples, so the same tokens and the same image, shuffled with a seed
    derived from the pass and the conversation; a single-turn record is returned as it is."""
    ids = record.get("ids", [])
    if pass_index == 0 or len(ids) < 2 or len(record["messages"]) != 2 * len(ids):
        return record
    questions = [m["content"] for m in record["messages"][::2]]
    questions[0] = questions[0].removeprefix(IMAGE_TAG)
    turns = list(zip(ids, questions, [m["content"] for m in record["messages"][1::2]]))
    random.Random(derive_seed(pass_index, "turn order", record["id"])).shuffle(turns)
    order = [sample for sample, _, _ in turns]
    return {**record, "id": conversation_id(order), "ids": order,
            "messages": turn_messages((question, answer) for _, question, answer in turns)}


def turn_passes(path: str | os.PathLike, passes: int) -> Iterator[dict]:
    """The grouped file at `path` once per pass of a run that goes through it `passes` times,
    each later pass with every conversation's turns in an order of its own (read again for each
    pass, not held). A fixed order would let a run of many epochs meet a question only ever
    after the same earlier turns of its image, and a small model learns its answer for that
    context alone (docs/decisions.md, D18); a sampler reshuffles single-turn samples every
    epoch, and this reshuffles the turns."""
    for pass_index in range(passes):
        for record in iter_jsonl(path):
            yield reordered(record, pass_index)


# ------------------------------------------------------------------ counting with the template
class TemplateLengths:
    """Token counts as the model's ms-swift template makes them (train mode, the model's own
    tokenizer and processor). Per sample, the tokenizer counts question and answer; what the
    template adds per turn and once per conversation, and what an image of a given size
    becomes, are measured by encoding calibration samples with the template itself."""

    def __init__(self, template, calibration: list[Sample]):
        self.template = template
        self.tokenizer = template.tokenizer
        self.image_sizes: dict[tuple[int, int], int] = {}
        pairs = list(zip(calibration[0::2], calibration[1::2])) or [(calibration[0], calibration[0])]
        # The prefix (system prompt, BOS) is in each single-turn encoding and once in a pair's.
        self.prefix = Counter(self.encoded([a]) + self.encoded([b]) - self.encoded([a, b]) for a, b in pairs
                              ).most_common(1)[0][0]
        texts = self.text_tokens(calibration)
        self.turn_markup = max(self.encoded([s]) - self.prefix - n for s, n in zip(calibration, texts))
        self.calibration = calibration[:3]

    def encoded(self, samples: list[Sample], image=None) -> int:
        """input_ids of the samples as one conversation (text only unless `image` is given)."""
        record = conversation(samples)
        if image is None:
            record["messages"][0]["content"] = record["messages"][0]["content"].replace(IMAGE_TAG, "", 1)
            return len(self.template.encode({"messages": record["messages"]})["input_ids"])
        return len(self.template.encode({"messages": record["messages"], "images": [image]})["input_ids"])

    def text_tokens(self, samples: Sequence[Sample], batch: int = 4096) -> list[int]:
        counts: list[int] = []
        for start in range(0, len(samples), batch):
            part = samples[start:start + batch]
            ids = self.tokenizer([s.question for s in part] + [s.answer for s in part], add_special_tokens=False)
            lengths = [len(x) for x in ids["input_ids"]]
            counts += [q + a for q, a in zip(lengths[:len(part)], lengths[len(part):])]
        return counts

    def turns(self, samples: Sequence[Sample]) -> list[int]:
        return [n + self.turn_markup for n in self.text_tokens(samples)]

    def image(self, width: int, height: int) -> int:
        """Tokens an image of this size adds (most over the calibration samples), measured once
        per size on a blank image: the count depends on the size only."""
        if (width, height) not in self.image_sizes:
            from PIL import Image

            blank = Image.new("RGB", (width, height))
            self.image_sizes[width, height] = max(self.encoded([s], blank) - self.encoded([s])
                                                  for s in self.calibration)
        return self.image_sizes[width, height]


def image_size(rec: dict | None, name: str, image_root: str | os.PathLike | None = None,
               source: str | os.PathLike = "", where: str | None = None) -> tuple[int, int]:
    """An image's size: as the dataset build wrote it into the record (paper.records.written_size),
    else from the file's header (a relative name below `image_root`, paper.records.image_file)."""
    size = written_size(rec) if rec else None
    if size:
        return size
    from PIL import Image

    path = image_file(name, image_root, source, where)
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as err:
        raise InputError(source or path, f"cannot read the size of image {path} ({err})", where) from None


def image_sizes(path, images: set[str], image_root: str | os.PathLike | None = None) -> dict[str, tuple[int, int]]:
    """The sizes of `images`, from the records' truth (one more pass over the file), else from
    the image files below `image_root`."""
    sizes: dict[str, tuple[int, int]] = {}
    for record in iter_jsonl(path):
        paths = record.get("images") or ()
        if len(paths) == 1 and paths[0] in images and paths[0] not in sizes:
            sizes[paths[0]] = image_size(record, paths[0], image_root, path, record.get("id"))
    for image in images - sizes.keys():
        sizes[image] = image_size(None, image, image_root, path)
    return sizes


def load_template(mix: GroupedMix, model_folder: str, load: dict):
    """The model's ms-swift template in train mode, from its processor (no weights)."""
    from swift.model import get_processor
    from swift.template import get_template

    kwargs = {"local_repo_path": load["local_repo_path"]} if load.get("local_repo_path") else {}
    processor = get_processor(model_folder, model_type=mix.model_type, download_model=False, **kwargs)
    template = get_template(processor, template_type=mix.template, max_pixels=mix.max_pixels)
    template.set_mode("train")
    return template


def build_grouped_mix(mix: GroupedMix, *, out, summary, model_folder: str, load: dict | None = None,
                      image_root: str | os.PathLike | None = None) -> dict:
    """Write the grouped training file of `mix` and its summary (what it holds, the tokens of an
    epoch with and without grouping, what was measured and checked); returns the summary."""
    items = read_samples(mix.dataset)
    positions = [i for i, item in enumerate(items) if isinstance(item, Sample)]
    if not any(in_grouping(items[i], mix.grouping) for i in positions):
        raise InputError(mix.dataset, f"no record for grouping {mix.grouping!r} (single-turn, one image)")
    template = load_template(mix, model_folder, load or {})
    # Calibration samples spread over the file, so that every task's turns are among them.
    step = max(1, len(positions) // 32)
    lengths = TemplateLengths(template, [items[i] for i in positions[::step][:32]])
    turn_tokens = [0] * len(items)
    for i, n in zip(positions, lengths.turns([items[i] for i in positions])):
        turn_tokens[i] = n
    sizes = image_sizes(mix.dataset, {items[i].image for i in positions}, image_root)
    shared = {image: lengths.prefix + lengths.image(*size) for image, size in sizes.items()}
    budget = mix.max_length - SAFETY_TOKENS
    records, estimates, turns = [], [], []
    for record, estimate, n in grouped_records(items, mix.grouping, turn_tokens=turn_tokens,
                                               shared_of=shared.__getitem__, seed=mix.seed, budget=budget):
        records.append(record)
        estimates.append(estimate)
        turns.append(n)
    checked = check_longest(template, records, estimates, turns, mix.max_length, image_root, mix.dataset)
    write_jsonl(out, records)
    images = image_samples(items, mix.grouping, turn_tokens=turn_tokens, shared_of=shared.__getitem__,
                           seed=mix.seed)
    conversations = [n for n in turns if n > 1]
    info = {
        "grouping": mix.grouping, "max_length": mix.max_length, "budget": budget, "template": mix.template,
        "records_in": len(items), "records_out": len(records),
        "conversations": len(conversations), "turns_in_conversations": sum(conversations),
        "single_turn": len(records) - len(conversations),
        "over_budget": sum(1 for e in estimates if e > budget),
        "epoch_tokens": {g: epoch_tokens(images, g, mix.max_length).as_dict() for g in ("none", mix.grouping)},
        "measured": {"prefix": lengths.prefix, "turn_markup": lengths.turn_markup,
                     "image_tokens": {f"{w}x{h}": n for (w, h), n in sorted(lengths.image_sizes.items())}},
        "checked_longest": checked,
    }
    write_json(summary, info)
    return info


def check_longest(template, records: list[dict], estimates: list[int], turns: list[int], max_length: int,
                  image_root: str | os.PathLike | None = None, source: str | os.PathLike = "") -> list[dict]:
    """Encode the longest conversations in full, with their images (below `image_root`): each
    must fit max_length (a single turn over it is that sample's own length, as in the paper's
    recipe)."""
    longest = sorted((i for i, n in enumerate(turns) if n > 1), key=lambda i: (-estimates[i], i))[:CHECKED_LONGEST]
    checked = []
    for i in longest:
        record = records[i]
        images = [image_file(name, image_root, source, record["id"]) for name in record["images"]]
        encoded = len(template.encode({"messages": record["messages"], "images": images})["input_ids"])
        checked.append({"id": record["id"], "estimate": estimates[i], "encoded": encoded})
        if encoded > max_length:
            raise GroupingError(f"conversation {record['id']} ({len(record['ids'])} turns) encodes to {encoded} "
                                f"tokens, over max_length {max_length} (estimated {estimates[i]}): the token "
                                "counts do not hold for this template; raise SAFETY_TOKENS")
    return checked


def job_environment(mix: GroupedMix, cache_dir: str | os.PathLike) -> dict:
    """The variables the counting needs, set before ms-swift is imported: offline, the model
    cache, and the model's own (image settings such as MAX_PIXELS)."""
    from sarchat_bench.models.sources import OFFLINE, cache_env

    return {**cache_env(cache_dir), **OFFLINE, **{k: str(v) for k, v in mix.env.items()}}
