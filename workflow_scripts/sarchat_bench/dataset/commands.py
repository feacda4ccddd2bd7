"""The dataset stage's commands: fetch or generate SARDet-100K, filter its annotations, generate
the training mix and the test files, validate them, and their statistics (rules/dataset.smk)."""

from __future__ import annotations

import logging
from pathlib import Path

from sarchat_bench.core.commands import Command, arg, command, json_value, key_paths
from sarchat_bench.core.io import write_json
from sarchat_bench.dataset.templates import DEFAULT_PATH as DEFAULT_TEMPLATES
from sarchat_bench.paper.tasks import CATEGORIES

log = logging.getLogger("sarchat_bench")
COMMANDS: list[Command] = []


@command(COMMANDS, "demo-data", "generate the synthetic SAR-like demo dataset (SARDet-100K layout)",
         arg("--root", required=True, help="output folder (gets Annotations/ and JPEGImages/)"),
         arg("--seed", type=int, default=0),
         arg("--images", type=json_value, default={}, help='images per split, e.g. \'{"train": 48}\''),
         arg("--flat", action="store_true", help="store images as JPEGImages/<file> (no split folder)"))
def demo_data(args) -> None:
    from sarchat_bench.dataset.demo_data import generate

    summary = generate(args.root, seed=args.seed, images_per_split=args.images, flat=args.flat)
    for split, (n_images, n_boxes) in summary.items():
        log.info("demo %s: %d images, %d boxes", split, n_images, n_boxes)


@command(COMMANDS, "download", "fetch SARDet-100K (hub snapshot, URL or local archive) into --target",
         arg("--settings", type=json_value, required=True, help="the config's download section as JSON"),
         arg("--target", required=True, help="where the dataset is placed"),
         arg("--work", required=True, help="scratch folder for partial downloads and extraction"))
def download(args) -> None:
    from sarchat_bench.dataset.download import fetch

    log.info("dataset placed at %s", fetch(args.settings, args.target, args.work))


@command(COMMANDS, "annotations", "validate and filter one split's COCO annotations",
         arg("--root", required=True, help="SARDet-100K root (holds Annotations/ and JPEGImages/)"),
         arg("--split", required=True),
         arg("--out-table", required=True, help="box table (JSON: the kept images and their boxes)"),
         arg("--out-report", required=True, help="filter report (JSON)"),
         arg("--categories", nargs="+", default=list(CATEGORIES)),
         arg("--bbox-tolerance", type=float, default=1.0, help="pixels a box may overhang the image"),
         arg("--no-check-images", action="store_true", help="do not require the image files to exist"),
         arg("--check-image-headers", action="store_true",
             help="read each image's header: skip empty, truncated, unreadable or mis-sized files"),
         arg("--max-image-file-loss", type=float, default=0.1,
             help="stop when more than this fraction of the split's images has file problems"))
def annotations(args) -> None:
    from sarchat_bench.dataset.annotations import check_images_kept, image_dirs, load_split, write_boxes

    images, report = load_split(args.root, args.split, categories=tuple(args.categories),
                                bbox_tolerance=args.bbox_tolerance, check_image_files=not args.no_check_images,
                                check_image_headers=args.check_image_headers)
    split_dir, flat_dir = image_dirs(Path(args.root).resolve(), args.split)
    check_images_kept(report, split_dir if split_dir.is_dir() else flat_dir, args.max_image_file_loss)
    write_boxes(args.out_table, images)
    write_json(args.out_report, report.as_dict())
    log.info("%s: kept %d of %d images and %d of %d boxes", args.split, report.images_out, report.images_in,
             report.boxes_out, report.boxes_in)


GENERATION = (
    arg("--tables", nargs="+", required=True, help="box tables of the splits to use"),
    arg("--seed", type=int, required=True, help="seed of the template choices"),
    arg("--settings", type=json_value, default={},
        help='{"tasks": {TASK: {...}}, "categories": [...]}; defaults: the paper\'s'),
    arg("--summary", help="also write what was generated (records, skips) as JSON, for stats"),
    arg("--templates", default=str(DEFAULT_TEMPLATES), help="the task templates (YAML)"),
)


def _generation(args) -> dict:
    """seed, per-task settings and categories of a train-mix / test-cells command."""
    return {"seed": args.seed, "settings": args.settings.get("tasks", {}),
            "categories": tuple(args.settings.get("categories") or CATEGORIES), "templates_path": args.templates}


def _write_summaries(path: str | None, summaries: list[dict]) -> None:
    for summary in summaries:
        if summary["records"] == 0:
            log.warning("%s: no records (is the input empty, or do all images fall in the other variant?)",
                        summary["file"])
    if path:
        write_json(path, {"files": summaries})


@command(COMMANDS, "train-mix", "generate the training mix: every task's records, in one file",
         arg("--out", required=True),
         arg("--workers", type=int, default=1, help="processes that generate and write it (same bytes)"),
         *GENERATION)
def train_mix(args) -> None:
    from sarchat_bench.dataset.build import build_train_mix

    _write_summaries(args.summary, build_train_mix(args.tables, args.out, workers=args.workers, **_generation(args)))


@command(COMMANDS, "test-cells", "generate test files (cells of Table 3) from one load of the images",
         arg("--out", nargs="+", required=True, metavar="CELL=PATH"), *GENERATION)
def test_cells(args) -> None:
    from sarchat_bench.dataset.build import build_test_cells

    outputs = {cell: paths[-1] for cell, paths in key_paths(args.out).items()}
    _write_summaries(args.summary, build_test_cells(outputs, args.tables, **_generation(args)))


@command(COMMANDS, "validate", "check every record against the geometry rules; fail on any problem",
         arg("--out", required=True, help="validation report (JSON)"),
         arg("--describe", type=json_value, default={}, help="the description filter settings"),
         arg("files", nargs="+"))
def validate(args) -> None:
    from sarchat_bench.core.io import iter_jsonl
    from sarchat_bench.dataset.validate import check_records

    results = {}
    for path in args.files:
        results[path] = check_records(iter_jsonl(path), args.describe)
        log.info("%s: %d records, %d problems", path, results[path]["records"], results[path]["invalid"])
    write_json(args.out, results)
    bad = {p: r for p, r in results.items() if r["invalid"]}
    if bad:
        for path, r in bad.items():
            for example in r["examples"][:5]:
                log.error("%s: %s", path, example)
        raise SystemExit(f"error: {sum(r['invalid'] for r in bad.values())} invalid records (see {args.out})")


STATISTICS = (
    arg("--out-dir", required=True),
    arg("--train-reports", nargs="+", required=True, help="annotation reports of the training splits"),
    arg("--test-reports", nargs="+", required=True, help="annotation reports of the test splits"),
    arg("--train-summaries", nargs="+", required=True, help="summaries of the train-mix job"),
    arg("--test-summaries", nargs="+", required=True, help="summaries of the test-cells jobs"),
)


def _by_role(args, name: str) -> dict[str, list[str]]:
    return {role: getattr(args, f"{role}_{name}") for role in ("train", "test")}


@command(COMMANDS, "stats", "Tables 1, 2, 4 and 5 and the filter and generation reports (CSV and Markdown)",
         arg("--train-tables", nargs="+", required=True, help="box tables of the training splits"),
         arg("--test-tables", nargs="+", required=True, help="box tables of the test splits"),
         *STATISTICS)
def stats(args) -> None:
    from sarchat_bench.dataset.stats import build_tables

    build_tables(args.out_dir, _by_role(args, "tables"), _by_role(args, "reports"), _by_role(args, "summaries"))
    log.info("statistics written to %s", args.out_dir)


@command(COMMANDS, "figures", "the category and task distributions as figures (PNG)", *STATISTICS)
def figures(args) -> None:
    from sarchat_bench.dataset.stats import build_figures

    build_figures(args.out_dir, _by_role(args, "reports"), _by_role(args, "summaries"))
    log.info("figures written to %s", args.out_dir)


@command(COMMANDS, "export-hf", "the built dataset as a Hugging Face dataset folder: Parquet per file, a config per "
                                "test file, the images once, a dataset card (docs/dataset.md)",
         arg("--dataset-dir", required=True, help="the build (results/sarchat)"),
         arg("--image-root", required=True, help="the SARDet-100K root the build read: image keys are paths relative "
                                                 "to it"),
         arg("--settings", type=json_value, required=True, help="the config's dataset section as JSON (in the card)"),
         arg("--demo", action="store_true", help="a build of the demo data: the card says not to publish it"),
         arg("--out", required=True, help="the dataset folder (replaced atomically)"))
def export_hf(args) -> None:
    from sarchat_bench.core.provenance import workflow_identity
    from sarchat_bench.dataset.export import export

    identity = workflow_identity()
    build = {"version": identity["sarchat_bench"], "git_commit": identity["git_commit"],
             "config_digest": identity["config_digest"]}
    summary = export(args.dataset_dir, args.out, image_root=args.image_root, settings=args.settings, build=build,
                     demo=args.demo)
    log.info("%s: %d records, %d images (%d bytes of images), %d configs", summary["out_dir"], summary["records"],
             summary["images"], summary["image_bytes"], sum(1 for c in summary["configs"].values() if c["rows"]))
