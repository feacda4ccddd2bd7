"""A built SARChat-2M (`results/sarchat/`) as a Hugging Face dataset folder (`export-hf`,
`results/hf/`), ready to publish with huggingface_hub (docs/dataset.md, "Publishing").

    README.md                               the dataset card: YAML metadata, then the text
    data/train-00000-of-0000N.parquet       the training mix (config `train`, split `train`, the default)
    data/<cell>-00000-of-0000N.parquet      each test file (config `<cell>`, split `test`)
    images/images-00000-of-0000N.parquet    every image once (config `images`, split `images`)

Records keep the JSONL's fields and order (`id, task, cell, messages, images, truth`); only
`images` changes: each path becomes the image's key, its path relative to the SARDet-100K root
(`JPEGImages/test/x.jpg`: an absolute path inside the root, or a path already relative to it),
which is also the `key` column of the `images` config, where the JPEG's own bytes are stored
once (`datasets.Image`, not re-encoded). About 19 records share an image, so storing it per
record would make the ~20 GB about twenty times larger.

`truth` stays JSON text: its shape differs per task, and `datasets` infers a schema per block
and fails on a column whose struct changes (the JSONL keeps it as text for the same reason).

Files are written with pyarrow as `datasets` writes them (zstd, page index, content-defined
chunking, so that a re-upload of a changed export dedupes on the Hub), streaming (one row group
in memory at a time), without timestamps: the same inputs give the same bytes with the same
pyarrow. Image bytes are stored plain (JPEG does not compress further). The folder is built
beside its target and renamed into place (core.io.atomic_folder); the card is checked offline
(check_card) before it is.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path, PurePosixPath

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import atomic_folder
from sarchat_bench.paper.tasks import CATEGORIES, CELLS, TASKS

RECORD_FIELDS = ("id", "task", "cell", "messages", "images", "truth")
LICENSE = "cc-by-nc-4.0"
# Hub task ids that are in the Hub's task list and shown in its dataset filters, and in
# `datasets.utils.metadata.known_task_ids` (its offline copy of that list).
TASK_CATEGORIES = ("visual-question-answering", "image-to-text", "object-detection")
TAGS = ("sar", "remote-sensing", "synthetic-aperture-radar", "vision-language", "visual-grounding", "benchmark")
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))
MAX_SHARD_BYTES = 400 * 10**6       # input bytes (JSONL lines, JPEG bytes) per Parquet file: the Hub's < 500 MB
IMAGE_ROW_GROUP_BYTES = 64 * 2**20  # ~380 of SARDet-100K's ~170 KB images per row group
RECORD_ROW_GROUP_ROWS = 20_000      # ~12 MB of JSON text per row group
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}  # datasets' own


def _features():
    from datasets import Features, Image, List, Value

    records = Features({"id": Value("string"), "task": Value("string"), "cell": Value("string"),
                        "messages": List({"role": Value("string"), "content": Value("string")}),
                        "images": List(Value("string")), "truth": Value("string")})
    images = Features({"key": Value("string"), "image": Image(), "width": Value("int32"), "height": Value("int32")})
    return records, images


# ---- pass 1: every record checked, its images keyed, the Parquet files planned ----

class ImageKeys:
    """A record's image path -> its key: the path relative to the SARDet-100K root, for an
    absolute path inside the root or a path relative to it (the two ways a record names its
    image); anything else is an InputError naming the record."""

    def __init__(self, image_root):
        self.root, self.real_root = Path(image_root).absolute(), Path(image_root).resolve()
        self.keys: dict[str, str] = {}   # path as written -> key
        self.files: dict[str, Path] = {}  # key -> file

    def __call__(self, path: str, source, record: str) -> str:
        key = self.keys.get(path)
        if key is not None:
            return key
        written = PurePosixPath(path)
        if written.is_absolute():
            try:
                written = PurePosixPath(Path(path).relative_to(self.root))
            except ValueError:
                try:  # the same folder through a symbolic link
                    written = PurePosixPath(Path(path).resolve().relative_to(self.real_root))
                except ValueError:
                    raise InputError(source, f"image {path!r} is not inside the dataset root {str(self.root)!r}",
                                     record) from None
        if ".." in written.parts or not written.parts:
            raise InputError(source, f"image {path!r} is not a path inside the dataset root", record)
        key = written.as_posix()
        file = self.root / key
        if not file.is_file():
            raise InputError(source, f"image {path!r} not found ({file})", record)
        self.keys[path], self.files[key] = key, file
        return key


def _check_record(rec, name: str, source, record: str) -> None:
    if not isinstance(rec, dict) or set(rec) != set(RECORD_FIELDS):
        keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
        raise InputError(source, f"fields {keys}, expected {list(RECORD_FIELDS)}", record)
    for field in ("id", "task", "cell", "truth"):
        if not isinstance(rec[field], str):
            raise InputError(source, f"{field!r} is not a string", record)
    if not isinstance(rec["messages"], list) or not all(
            isinstance(m, dict) and set(m) == {"role", "content"} and all(isinstance(v, str) for v in m.values())
            for m in rec["messages"]):
        raise InputError(source, "'messages' must be a list of {role, content} strings", record)
    if not isinstance(rec["images"], list) or not all(isinstance(p, str) for p in rec["images"]):
        raise InputError(source, "'images' must be a list of paths", record)
    if rec["task"] not in TASKS:
        raise InputError(source, f"unknown task {rec['task']!r}", record)
    if name != "train" and (rec["cell"], rec["task"]) != (name, CELLS[name][0]):
        raise InputError(source, f"a record of cell {rec['cell']!r} in the {name} test file", record)


def source_files(dataset_dir) -> list[tuple[str, str, Path]]:
    """(config, split, JSONL) of a build: the training mix, then the nine test files."""
    dataset_dir = Path(dataset_dir)
    return [("train", "train", dataset_dir / "train.jsonl"),
            *((cell, "test", dataset_dir / "test" / f"{cell}.jsonl") for cell in CELLS)]


def _scan(name: str, path: Path, keys: ImageKeys, max_shard_bytes: int) -> dict:
    rows, tasks, shards, shard_rows, shard_bytes = 0, Counter(), [], 0, 0
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = f"line {line_no}"
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise InputError(path, f"malformed JSON ({err})", record) from None
            _check_record(rec, name, path, record)
            for image in rec["images"]:
                keys(image, path, record)
            if shard_rows and shard_bytes + len(line) > max_shard_bytes:
                shards.append(shard_rows)
                shard_rows = shard_bytes = 0
            shard_rows, shard_bytes, rows = shard_rows + 1, shard_bytes + len(line), rows + 1
            tasks[rec["task"]] += 1
    return {"rows": rows, "tasks": tasks, "shards": shards + ([shard_rows] if shard_rows else [])}


# ---- pass 2: the Parquet files ----

def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Parquet column paths ("messages.list.element.role"): pyarrow ignores options that name a
    column it does not have, so these must be exact."""
    def walk(prefix, typ):
        if pa.types.is_struct(typ):
            for field in typ:
                yield from walk(f"{prefix}.{field.name}", field.type)
        elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
            yield from walk(f"{prefix}.list.element", typ.value_type)  # pyarrow's compliant nested names
        else:
            yield prefix

    return [p for field in schema for p in walk(field.name, field.type)]


class _ParquetFile:
    """A ParquetWriter with per-column options: image bytes stored as they are (PLAIN, no
    compression, dictionary or statistics), everything else zstd with dictionaries; page index
    and content-defined chunking as `datasets` writes them. On closing, checks that the options
    named the file's real columns."""

    def __init__(self, path: Path, schema: pa.Schema, binary_columns=()):
        self.path, self.leaves = path, _leaf_paths(schema)
        plain = [c for c in self.leaves if c in binary_columns]
        self.writer = pq.ParquetWriter(
            path, schema, use_content_defined_chunking=CDC_OPTIONS, write_page_index=True,
            compression={c: "none" if c in plain else "zstd" for c in self.leaves},
            use_dictionary=[c for c in self.leaves if c not in plain],
            column_encoding={c: "PLAIN" for c in plain} or None,
            write_statistics=[c for c in self.leaves if c not in plain])

    def write(self, rows: list[dict], schema: pa.Schema) -> int:
        table = pa.Table.from_pylist(rows, schema=schema)
        self.writer.write_table(table, row_group_size=len(rows))
        return table.nbytes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.writer.close()
        if exc[0] is None:
            schema = pq.ParquetFile(self.path).schema
            real = [schema.column(i).path for i in range(len(schema))]
            if real != self.leaves:
                raise RuntimeError(f"Parquet columns {real} are not the ones options were set for {self.leaves}")
        return False


def _shard_names(name: str, n: int) -> list[str]:
    return [f"{name}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]


def _write_records(name: str, path: Path, plan: dict, keys: ImageKeys, schema: pa.Schema, out: Path,
                   row_group_rows: int) -> dict:
    names, nbytes = _shard_names(name, len(plan["shards"])), 0
    with path.open("rb") as handle:
        lines = (line for line in handle if line.strip())
        for file_name, n in zip(names, plan["shards"], strict=True):
            with _ParquetFile(out / "data" / file_name, schema) as parquet:
                while n:
                    batch = [orjson.loads(next(lines)) for _ in range(min(n, row_group_rows))]
                    for rec in batch:
                        rec["images"] = [keys.keys[p] for p in rec["images"]]
                    nbytes += parquet.write([{k: rec[k] for k in RECORD_FIELDS} for rec in batch], schema)
                    n -= len(batch)
    return {"files": [f"data/{n}" for n in names], "num_bytes": nbytes}


def _plan_images(keys: ImageKeys, max_shard_bytes: int) -> list[list[tuple[str, Path]]]:
    shards, current, current_bytes = [], [], 0
    for key in sorted(keys.files):
        size = keys.files[key].stat().st_size
        if current and current_bytes + size > max_shard_bytes:
            shards.append(current)
            current, current_bytes = [], 0
        current.append((key, keys.files[key]))
        current_bytes += size
    return shards + ([current] if current else [])


def _write_images(shards, schema: pa.Schema, out: Path, row_group_bytes: int) -> dict:
    from PIL import Image as PILImage

    names, nbytes, image_bytes = _shard_names("images", len(shards)), 0, 0
    for file_name, shard in zip(names, shards, strict=True):
        with _ParquetFile(out / "images" / file_name, schema, binary_columns=("image.bytes",)) as parquet:
            batch, batch_bytes = [], 0
            for key, file in shard:
                data = file.read_bytes()
                try:
                    with PILImage.open(io.BytesIO(data)) as image:
                        width, height = image.size
                except Exception as err:  # PIL raises many kinds for a file that is not an image
                    raise InputError(file, f"not a readable image ({err})", f"key {key}") from None
                batch.append({"key": key, "image": {"bytes": data, "path": key}, "width": width, "height": height})
                batch_bytes += len(data)
                image_bytes += len(data)
                if batch_bytes >= row_group_bytes:
                    nbytes += parquet.write(batch, schema)
                    batch, batch_bytes = [], 0
            if batch:
                nbytes += parquet.write(batch, schema)
    return {"files": [f"images/{n}" for n in names], "num_bytes": nbytes, "image_bytes": image_bytes}


# ---- the card ----

def size_category(n: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if n < limit), "100M<n<1B")


def _metadata(configs: dict, records_features, images_features) -> dict:
    meta = {"pretty_name": "SARChat-2M", "license": LICENSE, "language": ["en"],
            "task_categories": list(TASK_CATEGORIES), "tags": list(TAGS),
            "size_categories": [size_category(sum(c["rows"] for n, c in configs.items() if n != "images"))],
            "configs": [], "dataset_info": []}
    for name, c in configs.items():
        if not c["rows"]:  # datasets cannot load an empty split ("corresponds to no data")
            continue
        meta["configs"].append({"config_name": name, **({"default": True} if name == "train" else {}),
                                "data_files": [{"split": c["split"], "path": f"{c['folder']}/{name}-*.parquet"}]})
        features = images_features if name == "images" else records_features
        meta["dataset_info"].append({
            "config_name": name, "features": features._to_yaml_list(),
            "splits": [{"name": c["split"], "num_bytes": c["num_bytes"], "num_examples": c["rows"]}],
            "download_size": c["download_size"], "dataset_size": c["num_bytes"]})
    return meta


def _csv_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def build_table5(dataset_dir: Path, counted: dict) -> list[dict]:
    """The build's own Table 5 (stats/table5_tasks.csv, with the paper's counts), checked against
    the records exported: a table from another build is an InputError."""
    path = dataset_dir / "stats" / "table5_tasks.csv"
    rows = _csv_rows(path)
    if not rows:
        raise InputError(path, "missing or empty: the build's Table 5 (`snakemake build_dataset` writes it)")
    for row in rows:
        for role in ("train", "test"):
            if int(row[role]) != counted[role].get(row["task"], 0):
                raise InputError(path, f"says {row[role]} {role} samples, the exported files have "
                                       f"{counted[role].get(row['task'], 0)} (statistics of another build?)",
                                 f"task {row['task']}")
    return rows


def _n(value) -> str:
    return f"{int(value):,}"


def _size(n: int) -> str:
    return next((f"{n / scale:.1f} {unit}" for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)) if n >= scale),
                f"{n} B")


def _card_body(*, build: dict, settings: dict, configs: dict, table5: list[dict], dataset_dir: Path,
               n_images: int, image_bytes: int, demo: bool) -> str:
    import yaml

    tasks = settings.get("tasks", {})
    describe, identify = tasks.get("describe", {}), tasks.get("identify", {})
    test_rows = sum(c["rows"] for n, c in configs.items() if n not in ("train", "images"))

    def splits(key: str) -> str:
        return " and ".join(f"`{s}`" for s in settings.get(key, []))

    lines = [
        "# SARChat-2M", "",
        "A multi-task vision-language instruction dataset of synthetic aperture radar (SAR) images: "
        "classification, description, counting, grounding, identification and referring, built from the object "
        "boxes of [SARDet-100K](https://github.com/zcablii/SARDet_100K) as described in *SARChat-Bench-2M: A "
        "Multi-Task Vision-Language Benchmark for SAR Image Interpretation* (Ma et al., 2025, "
        "[arXiv:2502.08168](https://arxiv.org/abs/2502.08168)).", "",
        f"This copy was built by the SARChat-Bench workflow, version **{build['version']}**: "
        f"{_n(configs['train']['rows'])} training records, {_n(test_rows)} test records in nine test files, "
        f"{_n(n_images)} distinct images ({_size(image_bytes)} of JPEG, stored once). It is a re-implementation "
        "from the paper's text, not the authors' release: counts and texts differ from theirs (see *What the "
        "workflow changed*).", ""]
    if demo:
        lines += ["> **Demo build.** Made from the workflow's synthetic SAR-like demo dataset, not from SARDet-100K. "
                  "Do not publish it as SARChat-2M.", ""]
    lines += ["## Configurations", "", "| config | split | rows | files | Parquet bytes |", "|---|---|---:|---:|---:|"]
    lines += [f"| `{name}` | `{c['split']}` | {_n(c['rows'])} | {len(c['files'])} | {_n(c['download_size'])} |"
              for name, c in configs.items() if c["rows"]]
    empty = [name for name, c in configs.items() if not c["rows"]]
    if empty:
        lines += ["", "Empty in this build, so without a configuration (`datasets` cannot load an empty split): "
                  + ", ".join(f"`{n}`" for n in empty) + "."]
    lines += [
        "", "`train` (the default) is the training mix of all six tasks, task after task, each in image order. The "
        "nine test configurations are the paper's test cells (" + ", ".join(f"`{c}`" for c in CELLS) + "). `images` "
        "holds every image once.", "",
        "## Fields", "",
        "- `id` (string): stable, derived from the SARDet-100K image and annotation ids.",
        "- `task`, `cell` (string): the task (" + ", ".join(f"`{t}`" for t in TASKS) + ") and its test cell.",
        "- `messages` (list of `{role, content}`): the user question (`<image>` marks the image) and the assistant "
        "answer, in the ms-swift format.",
        "- `images` (list of string): the key of the record's image in the `images` configuration, its path "
        "relative to the SARDet-100K root (e.g. `JPEGImages/test/0000001.jpg`).",
        "- `truth` (string): the structured ground truth as JSON text (category, pixel boxes `[x1, y1, x2, y2]`, "
        "image size, position/size/shape words, relations); its shape differs per task: "
        "`json.loads(record[\"truth\"])`.", "",
        "Boxes in answers are `{<x1><y1><x2><y2>}` in integer pixels of the original image. An image (`images`): "
        "`key` (string), `image` (`datasets.Image`: the original JPEG bytes), `width`, `height` (int32).", "",
        "## Loading", "", "```python", "from datasets import load_dataset", "",
        'repo = "ORG/SARChat-2M"   # or the local folder of this card',
        'test = load_dataset(repo, "classify", split="test")',
        'images = load_dataset(repo, "images", split="images")',
        'row = {key: i for i, key in enumerate(images["key"])}',
        'picture = images[row[test[0]["images"][0]]]["image"]   # a PIL image', "```", "",
        "For tools that read image paths (ms-swift, LLaMA-Factory), write the images out once under a folder and "
        "name it as the dataset root: the records' keys are paths relative to it.", "",
        "## Samples per task (Table 5)", "",
        "This build's counts, beside the paper's Table 5 (count test 11,704, not the printed 11,794: the paper's "
        "own text and totals give 11,704).", "",
        "| task | train | train % | paper train | paper % | test | test % | paper test | paper % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['task']} | {_n(r['train'])} | {r['train_pct']} | {_n(r['train_paper'])} | {r['train_paper_pct']} "
              f"| {_n(r['test'])} | {r['test_pct']} | {_n(r['test_paper'])} | {r['test_paper_pct']} |" for r in table5]
    lines += [
        "", "## Build", "",
        f"- Workflow: SARChat-Bench {build['version']} (git commit `{build.get('git_commit') or 'unknown'}`)",
        f"- Config digest (sha256 of the validated config, keys sorted): `{build.get('config_digest') or 'unknown'}`",
        "", "The dataset settings of the build (`dataset:` of its `config.yaml`):", "", "```yaml",
        yaml.safe_dump(settings, sort_keys=True, default_flow_style=None).rstrip(), "```", "",
        "## What the workflow changed", "",
        "Relative to SARDet-100K's annotations and the paper's text (the workflow's `docs/decisions.md` lists its "
        "readings of the paper, each with its section):", "",
        f"- **Splits.** The training mix is built from SARDet-100K's {splits('train_splits')} split(s), the test "
        f"files from its {splits('test_splits')} split(s).",
        f"- **Categories**: {', '.join(settings.get('categories', CATEGORIES))}.",
        f"- **Filters on boxes.** Only unusable annotations are dropped, each counted: unknown image or category "
        f"ids, malformed or degenerate boxes, boxes out of the image by more than {settings.get('bbox_tolerance')} "
        "px (smaller overhangs are clamped), exact duplicates, missing, unreadable or wrongly sized image files, "
        "and images left without a box.",
        f"- **Description filters** (§3.2(2)): images under {describe.get('min_image_side')} px on a side, targets "
        f"under {100 * float(describe.get('min_area_ratio', 0)):g} % of the image and beyond "
        f"{describe.get('max_aspect_ratio')}:1 are not described; an image with no target left gets no description.",
        f"- **Samples.** One classification, description and grounding sample per image; one counting and referring "
        f"sample per (image, category); {identify.get('samples_per_instance')} identification samples per box.",
        f"- **Templates.** Questions and answers are drawn (seed {settings.get('seed')}) from "
        + (f"the custom template file `{Path(str(settings['templates'])).name}`" if settings.get("templates")
           else "the workflow's built-in templates") + ", with the paper's template counts (Appendix 1.4, Figure 6)."]
    kept = [r for r in _csv_rows(dataset_dir / "stats" / "filter_report.csv") if r.get("rule") == "(kept)"]
    removed = [r for r in _csv_rows(dataset_dir / "stats" / "filter_report.csv")
               if r.get("rule") not in ("(input)", "(kept)") and r.get("removed") not in ("0", "", None)]
    if kept:
        lines += ["", "What the filters removed in this build (`stats/filter_report.csv`):", ""]
        lines += [f"- `{r['split']}`: kept {_n(r['images'])} images and {_n(r['boxes'])} boxes" for r in kept]
        lines += [f"- `{r['split']}`: {r['rule']} removed {_n(r['removed'])}" for r in removed] or [
            "- nothing was removed"]
    skipped = [r for r in _csv_rows(dataset_dir / "stats" / "generation_report.csv")
               if r.get("images_skipped") not in ("0", "", None)]
    if skipped:
        lines += ["", "Images a task's own filters skipped (`stats/generation_report.csv`):", ""]
        lines += [f"- {r['set']} {r['task']}: {_n(r['images_skipped'])} of {_n(r['images'])} images "
                  f"({r['skip_reasons']})" for r in skipped]
    lines += [
        "", "## Licence and attribution", "",
        "Released under [CC BY-NC 4.0](https://creativecommons.org/licenses/by-nc/4.0/): non-commercial use, with "
        "attribution. The images and boxes are SARDet-100K's (Li et al., NeurIPS 2024, CC BY-NC 4.0), itself "
        "assembled from ten public SAR detection datasets whose own terms also apply; the questions, answers and "
        "structured truths are generated from those boxes by the SARChat-Bench workflow. Cite SARDet-100K and the "
        "SARChat-Bench-2M paper when you use it.", "",
        "## Citation", "", "```bibtex", "@article{ma2025sarchat,",
        "  title   = {SARChat-Bench-2M: A Multi-Task Vision-Language Benchmark for SAR Image Interpretation},",
        "  author  = {Ma, Zhiming and Xiao, Xiayang and Dong, Sihao and Wang, Peidong and Wang, HaiPeng and "
        "Pan, Qingyun},", "  journal = {arXiv preprint arXiv:2502.08168},", "  year    = {2025}", "}",
        "@inproceedings{li2024sardet100k,",
        "  title     = {SARDet-100K: Towards Open-Source Benchmark and ToolKit for Large-Scale SAR Object Detection},",
        "  author    = {Li, Yuxuan and Li, Xiang and Li, Weijie and Hou, Qibin and Liu, Li and Cheng, Ming-Ming and "
        "Yang, Jian},",
        "  booktitle = {The Thirty-eighth Annual Conference on Neural Information Processing Systems (NeurIPS)},",
        "  year      = {2024}", "}", "```", ""]
    return "\n".join(lines)


def check_card(path) -> object:
    """Offline checks of a dataset card with huggingface_hub's and datasets' own classes (the
    Hub's `DatasetCard.validate()` posts to the Hub): it parses, its licence is CC BY-NC 4.0,
    its task categories are known task ids, and every config's data files exist and its
    dataset_info has features. Returns the DatasetCardData; a problem is an InputError."""
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs, known_task_ids
    from huggingface_hub import DatasetCard, DatasetCardData

    path = Path(path)
    card = DatasetCard.load(path)
    data = DatasetCardData(**card.data.to_dict())
    problems = [f"licence {data.license!r}"] if data.license != LICENSE else []
    problems += [f"task category {t!r}" for t in data.task_categories or [] if t not in known_task_ids]
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    configs.get_default_config_name()  # raises on several defaults
    problems += ["no configs"] if not configs else []
    for name, config in configs.items():
        problems += [f"config {name}: no file matches {spec['path']}" for spec in config["data_files"]
                     if not list(path.parent.glob(spec["path"]))]
        if name not in infos or infos[name].features is None:
            problems.append(f"config {name}: no dataset_info features")
    if problems:
        raise InputError(path, "invalid card metadata: " + "; ".join(problems))
    return data


# ---- the export ----

def export(dataset_dir, out_dir, *, image_root, settings: dict, build: dict, demo: bool = False,
           max_shard_bytes: int = MAX_SHARD_BYTES, image_row_group_bytes: int = IMAGE_ROW_GROUP_BYTES,
           record_row_group_rows: int = RECORD_ROW_GROUP_ROWS) -> dict:
    """Write the build in `dataset_dir` (results/sarchat) as a Hugging Face dataset folder at
    `out_dir`, replacing it atomically. `image_root`: the SARDet-100K root the build read;
    `settings`: its `dataset:` config; `build`: its version, git commit and config digest
    (core.provenance.workflow_identity). Returns a summary: rows, files and bytes per config."""
    from huggingface_hub import DatasetCardData

    dataset_dir = Path(dataset_dir)
    sources = source_files(dataset_dir)
    for _, _, path in sources:
        if not path.is_file():
            raise InputError(path, "missing: not a built SARChat dataset (`snakemake build_dataset` writes it)")
    records_features, images_features = _features()
    records_schema, images_schema = records_features.arrow_schema, images_features.arrow_schema
    keys = ImageKeys(image_root)
    plans = {name: _scan(name, path, keys, max_shard_bytes) for name, _, path in sources}
    counted = {"train": dict(plans["train"]["tasks"]), "test": Counter()}
    for name, _, _ in sources[1:]:
        counted["test"].update(plans[name]["tasks"])
    table5 = build_table5(dataset_dir, counted)
    with atomic_folder(out_dir) as tmp:
        (tmp / "data").mkdir()
        (tmp / "images").mkdir()
        configs = {name: {"split": split, "rows": plans[name]["rows"], "folder": "data",
                          **_write_records(name, path, plans[name], keys, records_schema, tmp,
                                           record_row_group_rows)}
                   for name, split, path in sources}
        written = _write_images(_plan_images(keys, max_shard_bytes), images_schema, tmp, image_row_group_bytes)
        image_bytes = written.pop("image_bytes")
        configs["images"] = {"split": "images", "rows": len(keys.files), "folder": "images", **written}
        for c in configs.values():
            c["download_size"] = sum((tmp / f).stat().st_size for f in c["files"])
        meta = DatasetCardData(**_metadata(configs, records_features, images_features)).to_yaml()
        body = _card_body(build=build, settings=settings, configs=configs, table5=table5, dataset_dir=dataset_dir,
                          n_images=len(keys.files), image_bytes=image_bytes, demo=demo)
        (tmp / "README.md").write_text(f"---\n{meta}\n---\n\n{body}", encoding="utf-8", newline="\n")
        check_card(tmp / "README.md")
    return {"out_dir": str(out_dir), "records": sum(c["rows"] for n, c in configs.items() if n != "images"),
            "images": len(keys.files), "image_bytes": image_bytes,
            "configs": {n: {k: c[k] for k in ("split", "rows", "files", "download_size")} for n, c in configs.items()}}
