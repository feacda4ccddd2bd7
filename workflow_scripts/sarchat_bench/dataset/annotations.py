"""Read SARDet-100K COCO annotations, validate them and apply the global filters.

Structural corruption (unreadable JSON, missing keys, wrong types, duplicated image ids, one
category id with two names, one annotation id with two different contents) is an `InputError`
naming the file and record. Data-quality problems are counted skips: each rule below removes
boxes or images, and the filter report says how many and gives examples. Image paths in the
box table are relative to the dataset root (`JPEGImages/<split>/<file_name>` or
`JPEGImages/<file_name>`) and checked to stay inside it, so that a built dataset works wherever
the root is mounted (paper/records.py, D20) and no job reads outside the dataset.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, NoReturn

import orjson

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import atomic_output, gc_paused, read_json
from sarchat_bench.paper.geometry import Box, coco_to_box
from sarchat_bench.paper.tasks import CATEGORIES

log = logging.getLogger(__name__)

# Skip rules, in the order they are applied; the filter report keeps this order.
SKIP_RULES = {
    "unknown_image": "annotation refers to an image id that is not in 'images' (annotation dropped)",
    "unknown_category": "annotation has a category id that is not in 'categories' (annotation dropped)",
    "excluded_category": "category is not one of the configured categories (annotation dropped)",
    "malformed_bbox": "bbox is not four finite numbers (annotation dropped)",
    "degenerate_bbox": "bbox has non-positive width or height, or rounds to under one pixel (dropped)",
    "outside_image": "bbox extends beyond the image by more than the tolerance (§3.2(2); dropped)",
    "duplicate_annotation": "same image, category and box as an earlier annotation, or the same id and content "
                            "again (dropped)",
    "outside_root": "file_name points outside the dataset folder (absolute, '..', or a link out; image dropped)",
    "missing_image_file": "image file not found under JPEGImages/ (image and its boxes dropped)",
    "unreadable_image": "image file is empty, truncated or not an image (image dropped)",
    "image_size_mismatch": "the image's pixel size differs from the annotation's width and height (image dropped)",
    "empty_image": "image has no usable box left (image dropped)",
}
_BBOX_REASON_RULE = {
    "malformed bbox": "malformed_bbox",
    "non-positive width or height": "degenerate_bbox",
    "smaller than one pixel": "degenerate_bbox",
    "outside the image": "outside_image",
}
EXAMPLES_PER_RULE = 5


@dataclass(slots=True)
class Instance:
    ann_id: int
    category: str
    box: Box


@dataclass(slots=True)
class Image:
    image_id: int
    split: str
    path: str  # relative to the dataset root, as records name it (paper.records.image_file)
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)


@dataclass
class FilterReport:
    split: str
    source: str
    images_in: int = 0
    boxes_in: int = 0
    images_out: int = 0
    boxes_out: int = 0
    boxes_by_category: Counter = field(default_factory=Counter)  # of the kept boxes
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def skip(self, rule: str, record: str, count: int = 1) -> None:
        self.skipped[rule] += count
        examples = self.examples.setdefault(rule, [])
        if len(examples) < EXAMPLES_PER_RULE:
            examples.append(record)

    def as_dict(self) -> dict:
        return {
            "split": self.split,
            "source": self.source,
            "images_in": self.images_in,
            "boxes_in": self.boxes_in,
            "images_out": self.images_out,
            "boxes_out": self.boxes_out,
            "boxes_by_category": dict(sorted(self.boxes_by_category.items())),
            "rules": [
                {"rule": rule, "meaning": meaning, "removed": self.skipped.get(rule, 0),
                 "examples": self.examples.get(rule, [])}
                for rule, meaning in SKIP_RULES.items()
            ],
        }


def _require(path, container: dict, key: str, kind: type | tuple, record: str | None = None):
    if key not in container:
        raise InputError(path, f"missing key '{key}'", record)
    value = container[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(path, f"'{key}' has type {type(value).__name__}", record)
    return value


def _reject(path, section: str, index: int, item, fields: tuple[tuple[str, type], ...]) -> NoReturn:
    """The error for a record that failed the loaders' fast type check (the slow path, only
    to word it): not an object, or the first key that is missing or has the wrong type."""
    record = f"{section}[{index}]"
    if not isinstance(item, dict):
        raise InputError(path, f"{section[:-1]} is not an object", record)
    record = f"{record} (id {_require(path, item, 'id', int, record)})"
    for key, kind in fields:
        _require(path, item, key, kind, record)
    raise InputError(path, "unexpected field types", record)


def annotation_file(root: str | os.PathLike, split: str) -> Path:
    """A split's COCO file below the SARDet-100K root: `Annotations/<split>.json`, or
    `<split>.json` beside Annotations/ where only that exists (the Kaggle copy's `test.json`, as
    the code that reads that copy finds it; docs/dataset.md)."""
    inside, beside = Path(root) / "Annotations" / f"{split}.json", Path(root) / f"{split}.json"
    return beside if beside.is_file() and not inside.is_file() else inside


def image_dirs(root: Path, split: str) -> tuple[Path, Path]:
    return root / "JPEGImages" / split, root / "JPEGImages"


def _file_names(folder: Path) -> tuple[set[str], set[str]]:
    """Names of the files in `folder`, and of those among them that are symbolic links (one
    directory listing beats a stat per image)."""
    try:
        with os.scandir(folder) as entries:
            files = [(e.name, e.is_symlink()) for e in entries if e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return set(), set()
    return {name for name, _ in files}, {name for name, link in files if link}


def _readable(root: Path, images: list[Image], report: FilterReport) -> list[Image]:
    """The images whose files pass image_problem (read in threads: the work is file I/O)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = list(pool.map(lambda im: image_problem(str(root / im.path), im.width, im.height), images))
    kept = []
    for image, problem in zip(images, problems, strict=True):
        if problem:
            report.skip(problem, f"image id {image.image_id} ({root / image.path})")
        else:
            kept.append(image)
    return kept


def load_split(root: str | os.PathLike, split: str, categories: tuple[str, ...] = CATEGORIES,
               bbox_tolerance: float = 1.0, check_image_files: bool = True,
               check_image_headers: bool = False) -> tuple[list[Image], FilterReport]:
    """Load `Annotations/<split>.json` below `root`; return usable images and the report.

    Images keep their COCO order sorted by id and instances their annotation id order, so the
    output is independent of how the source file happens to be ordered. With
    `check_image_headers`, each image file's header is read (its size compared with the
    annotation's) and its end checked for truncation.
    """
    with gc_paused():
        return _load_split(Path(root).resolve(), split, categories, bbox_tolerance, check_image_files,
                           check_image_headers)


def _outside(name: str) -> bool:
    pure = PurePosixPath(name)
    return pure.is_absolute() or ".." in pure.parts


def image_problem(path: str, width: int, height: int) -> str | None:
    """The skip rule an image file breaks, if any: cheap checks only (the header and the end)."""
    from PIL import Image as PILImage

    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
            if not head:
                return "unreadable_image"
            handle.seek(-min(1024, os.fstat(handle.fileno()).st_size), os.SEEK_END)
            tail = handle.read()
        if head.startswith(b"\xff\xd8") and b"\xff\xd9" not in tail:
            return "unreadable_image"  # a JPEG cut short: its end-of-image marker is missing
        with PILImage.open(path) as image:
            size = image.size
    except (OSError, SyntaxError, ValueError):
        return "unreadable_image"
    return None if size == (width, height) else "image_size_mismatch"


def _load_split(root: Path, split: str, categories: tuple[str, ...], bbox_tolerance: float,
                check_image_files: bool, check_image_headers: bool) -> tuple[list[Image], FilterReport]:
    path = annotation_file(root, split)
    if not path.is_file():
        raise InputError(path, "annotation file not found (expected the SARDet-100K layout "
                               "Annotations/{train,val,test}.json)")
    coco = read_json(path)
    if not isinstance(coco, dict):
        raise InputError(path, "top level is not a JSON object")
    raw_images = _require(path, coco, "images", list)
    raw_anns = _require(path, coco, "annotations", list)
    raw_cats = _require(path, coco, "categories", list)
    report = FilterReport(split=split, source=str(path), images_in=len(raw_images), boxes_in=len(raw_anns))

    category_names: dict[int, str] = {}
    for i, cat in enumerate(raw_cats):
        record = f"categories[{i}]"
        if not isinstance(cat, dict):
            raise InputError(path, "category is not an object", record)
        cat_id = _require(path, cat, "id", int, record)
        name = _require(path, cat, "name", str, record).strip().lower()
        if category_names.get(cat_id, name) != name:
            raise InputError(path, f"category id {cat_id} is named both {category_names[cat_id]!r} and {name!r}",
                             record)
        category_names[cat_id] = name
    wanted = set(categories)

    images: dict[int, Image] = {}
    primary_dir, flat_dir = image_dirs(root, split)
    for i, img in enumerate(raw_images):
        try:
            image_id, file_name, width, height = img["id"], img["file_name"], img["width"], img["height"]
            if type(image_id) is not int or type(file_name) is not str or type(width) is not int \
                    or type(height) is not int:
                raise TypeError
        except (TypeError, KeyError):
            _reject(path, "images", i, img, (("file_name", str), ("width", int), ("height", int)))
        if width <= 0 or height <= 0:
            raise InputError(path, f"image size {width}x{height} is not positive", f"images[{i}] (id {image_id})")
        if image_id in images:
            raise InputError(path, "duplicated image id", f"images[{i}] (id {image_id})")
        images[image_id] = Image(image_id, split, file_name, width, height)

    seen: set[tuple] = set()
    by_id: dict[int, tuple[int, dict]] = {}  # annotation id -> (index, the record)
    for i, ann in enumerate(raw_anns):
        try:
            ann_id, image_id, cat_id = ann["id"], ann["image_id"], ann["category_id"]
            if type(ann_id) is not int or type(image_id) is not int or type(cat_id) is not int:
                raise TypeError
        except (TypeError, KeyError):
            _reject(path, "annotations", i, ann, (("image_id", int), ("category_id", int)))
        if (first := by_id.setdefault(ann_id, (i, ann))) is not None and first[0] != i:
            if first[1] != ann:
                raise InputError(path, f"annotation id {ann_id} is used again with other content (first at "
                                       f"annotations[{first[0]}])", f"annotations[{i}]")
            report.skip("duplicate_annotation", f"annotations[{i}] (id {ann_id})")
            continue
        image = images.get(image_id)
        name = category_names.get(cat_id)
        if image is None:
            rule = "unknown_image"
        elif name is None:
            rule = "unknown_category"
        elif name not in wanted:
            rule = "excluded_category"
        else:
            bbox = ann.get("bbox")
            box = (coco_to_box(bbox, image.width, image.height, bbox_tolerance) if type(bbox) is list
                   else "malformed bbox")
            if type(box) is str:
                rule = _BBOX_REASON_RULE[box]
            elif (key := (image_id, name, box)) in seen:
                rule = "duplicate_annotation"
            else:
                seen.add(key)
                image.instances.append(Instance(ann_id, name, box))
                continue
        report.skip(rule, f"annotations[{i}] (id {ann_id})")

    kept: list[Image] = []
    primary_names, primary_links = _file_names(primary_dir) if check_image_files else (set(), set())
    flat_names, flat_links = _file_names(flat_dir) if check_image_files else (set(), set())
    # Relative to the root, in the record's form (forward slashes, whatever the platform).
    primary_prefix, flat_prefix = (f"{folder.relative_to(root).as_posix()}/" for folder in (primary_dir, flat_dir))
    for image_id in sorted(images):
        image = images[image_id]
        name = image.path
        if _outside(name):
            report.skip("outside_root", f"image id {image_id} ({name})")
            continue
        link = False
        if not check_image_files or name in primary_names:
            image.path, link = primary_prefix + name, name in primary_links
        elif name in flat_names:
            image.path, link = flat_prefix + name, name in flat_links
        elif found := next((d / name for d in (primary_dir, flat_dir) if (d / name).is_file()), None):
            # file_name has a subfolder: the listings do not hold it
            image.path, link = found.relative_to(root).as_posix(), True
        else:
            report.skip("missing_image_file", f"image id {image_id} ({name})")
            continue
        if link and not (target := (root / image.path).resolve()).is_relative_to(root):
            report.skip("outside_root", f"image id {image_id} ({name} -> {target})")
            continue
        if not image.instances:
            report.skip("empty_image", f"image id {image_id} ({name})")
            continue
        image.instances.sort(key=lambda inst: inst.ann_id)
        kept.append(image)
    if check_image_headers:
        kept = _readable(root, kept, report)

    report.images_out = len(kept)
    report.boxes_by_category = Counter(inst.category for im in kept for inst in im.instances)
    report.boxes_out = sum(report.boxes_by_category.values())
    for rule, count in report.skipped.items():
        log.warning("%s: %d skipped by rule '%s' (%s)", path, count, rule, SKIP_RULES[rule])
    return kept, report


# Skip rules that mean the image file itself is not usable: a dataset folder that lost its
# images (an archive not extracted, Git LFS pointers, placeholders) shows as these.
FILE_PROBLEMS = ("outside_root", "missing_image_file", "unreadable_image", "image_size_mismatch")
DEFAULT_MAX_FILE_LOSS = 0.1


def check_images_kept(report: FilterReport, images_dir: str | os.PathLike,
                      max_file_loss: float = DEFAULT_MAX_FILE_LOSS) -> None:
    """Stop (InputError naming the split, the folder, the most common reason with its count and
    an example) when a split kept no image, or lost more than `max_file_loss` of its images to
    file problems: nothing may be built from a dataset that lost its images. Images left without
    a usable box are data, not file problems."""
    lost = {rule: report.skipped[rule] for rule in FILE_PROBLEMS if report.skipped.get(rule)}
    if report.images_out and sum(lost.values()) <= max_file_loss * report.images_in:
        return
    reasons = lost or {rule: n for rule, n in report.skipped.items() if n}
    if reasons:
        rule = max(reasons, key=lambda r: (reasons[r], -list(SKIP_RULES).index(r)))
        why = (f"most often '{rule}' ({reasons[rule]}: {SKIP_RULES[rule].rsplit(' (', 1)[0]}), e.g. "
               f"{(report.examples.get(rule) or ['-'])[0]}")
    else:
        why = "its annotation file lists no image"
    if not report.images_out:
        raise InputError(images_dir, f"split '{report.split}' kept no image of {report.images_in}: {why}")
    raise InputError(images_dir, f"split '{report.split}' lost {sum(lost.values())} of {report.images_in} images "
                                 f"({100 * sum(lost.values()) / report.images_in:.1f} %) to file problems, more than "
                                 f"dataset.max_image_file_loss ({100 * max_file_loss:g} %): {why}; raise "
                                 "dataset.max_image_file_loss to build from what is left")


# The box table the generators and statistics read: the kept images of one split, in image id
# order, each with its boxes in annotation id order. Compact JSON, one list per image: the
# generator jobs load it with orjson in a tenth of a second, where reading the same boxes as
# Parquet costs more in pyarrow's import alone (and each of those jobs starts by loading it).
BOX_TABLE_FORMAT = "sarchat-boxes/1"
IMAGE_FIELDS = ("image_id", "path", "width", "height", "boxes")
BOX_FIELDS = ("ann_id", "category", "x1", "y1", "x2", "y2")


def write_boxes(path: str | os.PathLike, images: list[Image]) -> None:
    """Write one split's kept images and boxes as a box table."""
    split = images[0].split if images else ""
    if any(im.split != split for im in images):
        raise ValueError("a box table holds the images of one split")
    with gc_paused():  # 300,000 new lists and tuples beside the images still alive
        rows = [(im.image_id, im.path, im.width, im.height,
                 [(inst.ann_id, inst.category, *inst.box) for inst in im.instances]) for im in images]
    table = {"format": BOX_TABLE_FORMAT, "split": split, "image_fields": IMAGE_FIELDS, "box_fields": BOX_FIELDS,
             "images": rows}
    with atomic_output(path) as out:
        out.write(orjson.dumps(table))


def read_box_table(path: str | os.PathLike) -> dict:
    """A box table as parsed JSON, after checking that it is one. Its callers (read_boxes,
    the statistics) pause the cyclic GC around it and what they build from it."""
    table = read_json(path)
    if not isinstance(table, dict) or table.get("format") != BOX_TABLE_FORMAT:
        raise InputError(path, f"not a box table (expected format {BOX_TABLE_FORMAT!r}); rebuild it with the "
                               "annotations step")
    return table


def read_boxes(paths: list[str | os.PathLike]) -> list[Image]:
    """The images of one or more box tables, table after table (several splits concatenate).

    Every generator job starts here: the images are built straight from the parsed lists,
    category names shared, with the cyclic GC off (the objects are long-lived and acyclic)."""
    images: list[Image] = []
    with gc_paused():
        for path in paths:
            table = read_box_table(path)
            split, names = table["split"], {}
            images.extend(
                Image(image_id, split, image_path, width, height,
                      [Instance(ann_id, names.setdefault(category, category), (x1, y1, x2, y2))
                       for ann_id, category, x1, y1, x2, y2 in boxes])
                for image_id, image_path, width, height, boxes in table["images"])
    return images


def iter_boxes(paths: list[str | os.PathLike]) -> Iterator[tuple[str, list[int]]]:
    """(category, [x1, y1, x2, y2]) of every box of the box tables, without building images:
    what the box statistics need."""
    for path in paths:
        for *_, boxes in read_box_table(path)["images"]:
            for _, category, *box in boxes:
                yield category, box
