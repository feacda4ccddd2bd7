"""Command-line entry points; each Snakemake rule calls one of them.

    python -m sarchat_bench --help
    python -m sarchat_bench <command> --help
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .io import InputError, write_json
from .sharding import parse_shard
from .tasks import CELLS
from .templates import DEFAULT_PATH as DEFAULT_TEMPLATES
from .tiny_models import ARCHITECTURES

log = logging.getLogger("sarchat_bench")


def _json(text: str):
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None


def _pairs(items: list[str]) -> dict[str, list[str]]:
    """KEY=PATH arguments; a key may repeat (the shards of one task)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: expected KEY=PATH, got {item!r}")
        out.setdefault(key, []).append(value)
    return out


def _shard(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_demo_data(args) -> None:
    from .demo_data import generate

    summary = generate(args.root, seed=args.seed, images_per_split=args.images, flat=args.flat)
    for split, (n_images, n_boxes) in summary.items():
        log.info("demo %s: %d images, %d boxes", split, n_images, n_boxes)


def cmd_download(args) -> None:
    from .download import fetch

    log.info("dataset placed at %s", fetch(args.settings, args.target, args.work))


def cmd_annotations(args) -> None:
    from .annotations import check_images_kept, image_dirs, load_split, write_boxes

    images, report = load_split(args.root, args.split, categories=tuple(args.categories),
                                bbox_tolerance=args.bbox_tolerance, check_image_files=not args.no_check_images,
                                check_image_headers=args.check_image_headers)
    split_dir, flat_dir = image_dirs(Path(args.root).resolve(), args.split)
    check_images_kept(report, split_dir if split_dir.is_dir() else flat_dir, args.max_image_file_loss)
    write_boxes(args.out_table, images)
    write_json(args.out_report, report.as_dict())
    log.info("%s: kept %d of %d images and %d of %d boxes", args.split, report.images_out, report.images_in,
             report.boxes_out, report.boxes_in)


def _generation_kwargs(args) -> dict:
    """seed, per-task settings and categories of a train-mix / test-cells command."""
    from .annotations import CATEGORIES

    return {"seed": args.seed, "settings": args.settings.get("tasks", {}),
            "categories": tuple(args.settings.get("categories") or CATEGORIES), "templates_path": args.templates}


def _warn_if_empty(summary: dict) -> None:
    if summary["records"] == 0:
        log.warning("%s: no records (is the input empty, or do all images fall in the other variant?)",
                    summary["file"])


def _write_summaries(path: str | None, summaries: list[dict]) -> None:
    for summary in summaries:
        _warn_if_empty(summary)
    if path:
        write_json(path, {"files": summaries})


def cmd_train_mix(args) -> None:
    from .build import build_train_mix

    summaries = build_train_mix(args.tables, args.out, workers=args.workers, **_generation_kwargs(args))
    _write_summaries(args.summary, summaries)


def cmd_test_cells(args) -> None:
    from .build import build_test_cells

    outputs = {cell: paths[-1] for cell, paths in _pairs(args.out).items()}
    _write_summaries(args.summary, build_test_cells(outputs, args.tables, **_generation_kwargs(args)))


def cmd_validate(args) -> None:
    from .io import iter_jsonl
    from .validate import check_records

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


def _by_role(args, name: str) -> dict[str, list[str]]:
    return {role: getattr(args, f"{role}_{name}") for role in ("train", "test")}


def cmd_stats(args) -> None:
    from .stats import build_tables

    build_tables(args.out_dir, _by_role(args, "tables"), _by_role(args, "reports"), _by_role(args, "summaries"))
    log.info("statistics written to %s", args.out_dir)


def cmd_figures(args) -> None:
    from .stats import build_figures

    build_figures(args.out_dir, _by_role(args, "reports"), _by_role(args, "summaries"))
    log.info("figures written to %s", args.out_dir)


def cmd_score(args) -> None:
    from .provenance import for_score_file
    from .scoring import score_cell

    result = score_cell(args.cell, args.test, args.predictions, model=args.model, coords=args.coords, seed=args.seed,
                        details_path=args.details, bad_responses=args.bad_responses,
                        allow_empty_answers=args.allow_empty_answers)
    if args.format_instruction:
        result["format_instruction"] = args.format_instruction
    result["provenance"] = for_score_file(args.predictions)
    write_json(args.out, result)
    values = ", ".join(f"{m} {v['value'] if v['value'] is not None else '-'}" for m, v in result["metrics"].items())
    log.info("%s %s: %d samples, %d parse failures; %s", args.model, args.cell, result["n_samples"],
             result["parse_failures"], values)


def cmd_report(args) -> None:
    from .reporting import report

    score_files: dict[str, dict[str, str]] = {}
    for model, paths in _pairs(args.scores).items():
        for path in paths:
            score_files.setdefault(model, {})[Path(path).stem] = path
    report(args.tables_dir, args.figures_dir, score_files, args.registry, args.radar_min)
    log.info("tables in %s, figures in %s", args.tables_dir, args.figures_dir)


def cmd_loss_curve(args) -> None:
    from .training import loss_curve

    points = loss_curve(Path(args.train_log), Path(args.out), f"{args.model}: LoRA training")
    log.info("%s: %d loss points", args.out, points)


def cmd_baseline(args) -> None:
    from .baselines import majority_predictions
    from .io import write_jsonl
    from .provenance import write_baseline

    n = write_jsonl(args.out, majority_predictions(args.train, args.test, args.cell))
    write_baseline(args.out, "majority-answer: the most frequent answer of the training mix (docs/scoring.md)")
    log.info("%s: %d baseline answers", args.out, n)


def cmd_answers(args) -> None:
    from .answer_browser import cell_page

    paths = {"test": args.test, "predictions": args.predictions, "details": args.details, "score": args.score}
    log.info("answers of %s on %s in %s", args.model, args.cell,
             cell_page(args.out, args.model, args.cell, paths, args.per_cell, args.side))


def cmd_tiny_model(args) -> None:
    from .environments import enter

    enter(args.environment, f"tiny {args.architecture}")
    from .tiny_models import build

    folder = build(args.architecture, args.out, args.corpus, args.seed)
    log.info("tiny %s model written to %s", args.architecture, folder)


def _model_location(spec: dict, source_info: str | None) -> tuple[str, dict]:
    """The local folder a model job loads from, and the model-load options: a hub model from
    its prefetched snapshot (and its code repository, if ms-swift would clone one)."""
    from .io import read_json

    load = dict(spec.get("load", {}))
    if not source_info:
        return spec["model_path"], load
    info = read_json(source_info)
    if info.get("code_repo"):
        load["local_repo_path"] = info["code_repo"]
    return info["path"], load


def cmd_train(args) -> None:
    from .environments import enter

    spec = args.spec
    enter(spec["environment"], args.model)
    from .training import source_identity, train
    from .workstate import file_digest

    model_path, load = _model_location(spec, args.source_info)
    run = args.run
    # Everything that shapes the weights; a work folder made from anything else is not resumed.
    made_from = {"spec": spec, "model": source_identity(model_path, spec["source"]),
                 "dataset": file_digest(args.dataset)}
    info = train(args.model, model_path=model_path, model_type=spec["model_type"], template=spec["template"],
                 dataset=args.dataset, work_dir=args.work_dir, sentinel=args.sentinel, settings=spec["settings"],
                 run_options=run["options"], gpus=spec["gpus"], made_from=made_from, cache_dir=run["cache_dir"],
                 env=spec.get("env"), load=load, threads=run.get("threads"))
    log.info("%s: adapter %s (step %s)", args.model, info["adapter"], info["global_step"])


def cmd_infer(args) -> None:
    import os

    from .environments import enter

    spec = args.spec
    enter(spec["environment"], args.model)
    from .training import OFFLINE, cache_env, source_identity

    run = args.run
    # Before ms-swift and the hub libraries are imported: they read these at import time.
    os.environ.update({**cache_env(run["cache_dir"]), **OFFLINE, **{k: str(v) for k, v in spec["env"].items()}})
    from .inference import EndpointPredictor, records_digest, run_shard, shard_records, swift_predictor
    from .io import read_json
    from .provenance import write_inference

    records = shard_records(args.test, args.shard)
    if instruction := spec["settings"].get("format_instruction"):  # zero-shot: say how to answer
        records = [{**r, "messages": [{**r["messages"][0], "content": f"{r['messages'][0]['content']} {instruction}"},
                                      *r["messages"][1:]]} for r in records]
    model_path, load = _model_location(spec, args.source_info)
    adapter = read_json(args.adapter_info) if args.adapter_info else None
    settings, options = spec["settings"], run["options"]
    made_from = {"spec": spec, "model": source_identity(model_path, spec["source"]),
                 "adapter": adapter["adapter_digest"] if adapter else None, "records": records_digest(records)}
    endpoint = spec["source"].get("endpoint")
    if endpoint:  # a served model: the requests go to it, nothing is loaded here
        predict = EndpointPredictor(endpoint["base_url"], endpoint["model"], api_key_env=endpoint.get("api_key_env"),
                                     max_new_tokens=settings["max_new_tokens"], concurrency=options["concurrency"],
                                     retries=options["retries"], timeout_s=options["request_timeout_s"])
        per_call = options["concurrency"]
    else:
        if run.get("threads"):
            import torch

            torch.set_num_threads(run["threads"])  # the job's CPUs, not every core of the node
        predict = swift_predictor(model_path, model_type=spec["model_type"], template=spec["template"],
                                  adapters=[adapter["adapter"]] if adapter else None, backend=settings["backend"],
                                  torch_dtype=settings["torch_dtype"], max_new_tokens=settings["max_new_tokens"],
                                  batch_size=options["batch_size"],
                                  engine_kwargs={**load, **settings.get("engine_kwargs", {})})
        per_call = options["requests_per_call"] if settings["backend"] == "vllm" else options["batch_size"]
    summary = run_shard(records, predict, args.out, args.partial, batch_size=per_call, made_from=made_from)
    write_inference(args.out, made_from)
    log.info("%s: %d records (%d predicted in this run, %.0f s)", args.out, summary["records"],
             summary["predicted_now"], summary["seconds"])


def cmd_merge(args) -> None:
    from .environments import enter

    spec = args.spec
    enter(spec["environment"], args.model)
    from .io import read_json
    from .training import merge

    model_path, load = _model_location(spec, args.source_info)
    merge(args.model, model_path=model_path, model_type=spec["model_type"], template=spec["template"],
          adapter=read_json(args.adapter_info)["adapter"], out=args.out, cache_dir=args.run["cache_dir"],
          env=spec.get("env"), load=load)


def cmd_prefetch(args) -> None:
    from .prefetch import prefetch

    prefetch(args.model, args.entry, args.cache_dir, args.out)


def cmd_envs(args) -> None:
    from . import environments

    if args.build:
        log.info("environment %s built: %s", args.build, environments.build(args.build))
        return
    if args.lock:
        for name in environments.names():
            log.info("%s written", environments.write_lock(name))
        return
    for name in environments.names():
        path = environments.ENVS_DIR / f"{name}.yaml"
        text = environments.conda_yaml(name)
        if args.write:
            path.write_text(text)
            log.info("%s written", path)
        elif not path.is_file() or path.read_text() != text:
            raise SystemExit(f"error: {path} does not match envs/{name}.txt; "
                             "run `python -m sarchat_bench envs --write`")
        else:
            print(f"{name:14} {len(environments.requirement_lines(name)):3} requirements  {path} up to date")


def cmd_merge_predictions(args) -> None:
    from .inference import merge_shards
    from .provenance import merge_inference

    n = merge_shards(args.test, args.shards, args.out)
    merge_inference(args.shards, args.out)
    log.info("%s: %d predictions, ids checked against %s", args.out, n, args.test)


def cmd_registry(args) -> None:
    import yaml

    from .registry import entry, model_path, run_models

    config = yaml.safe_load(Path(args.config).read_text())
    keys = list(config["models"]) if args.all else run_models(config)
    problems = []
    for key in keys:
        e = entry(config, key)
        supplied = "(no model: made from the training mix)" if e["mode"] == "baseline" else "(predictions supplied)"
        where = model_path(e) if "source" in e else supplied
        print(f"{key:18} {e['family']:32} {e.get('params_b') or '-':>7} B  {e['mode']:11} "
              f"{e.get('model_type', '-'):14} {e.get('template', '-'):14} {where}")
        if args.check and e["mode"] not in ("predictions", "baseline"):
            from .registry import check_against_swift

            problems += check_against_swift(key, e)
    for line in problems:
        print(line, file=sys.stderr)
    if any(not p.startswith("warning:") for p in problems):
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sarchat_bench", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("demo-data", cmd_demo_data, "generate the synthetic SAR-like demo dataset (SARDet-100K layout)")
    p.add_argument("--root", required=True, help="output folder (gets Annotations/ and JPEGImages/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=_json, default={}, help='images per split, e.g. \'{"train": 48}\'')
    p.add_argument("--flat", action="store_true", help="store images as JPEGImages/<file> (no split folder)")

    p = add("download", cmd_download, "fetch SARDet-100K (hub snapshot, URL or local archive) into --target")
    p.add_argument("--settings", type=_json, required=True, help="the config's download section as JSON")
    p.add_argument("--target", required=True, help="where the dataset is placed")
    p.add_argument("--work", required=True, help="scratch folder for partial downloads and extraction")

    p = add("annotations", cmd_annotations, "validate and filter one split's COCO annotations")
    p.add_argument("--root", required=True, help="SARDet-100K root (holds Annotations/ and JPEGImages/)")
    p.add_argument("--split", required=True)
    p.add_argument("--out-table", required=True, help="box table (JSON: the kept images and their boxes)")
    p.add_argument("--out-report", required=True, help="filter report (JSON)")
    p.add_argument("--categories", nargs="+", default=["ship", "aircraft", "car", "tank", "bridge", "harbor"])
    p.add_argument("--bbox-tolerance", type=float, default=1.0, help="pixels a box may overhang the image")
    p.add_argument("--no-check-images", action="store_true", help="do not require the image files to exist")
    p.add_argument("--check-image-headers", action="store_true",
                   help="read each image's header: skip empty, truncated, unreadable or mis-sized files")
    p.add_argument("--max-image-file-loss", type=float, default=0.1,
                   help="stop when more than this fraction of the split's images has file problems")

    p = add("train-mix", cmd_train_mix, "generate the training mix: every task's records, in one file")
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=1, help="processes that generate and write it (same bytes)")
    p2 = add("test-cells", cmd_test_cells, "generate test files (cells of Table 3) from one load of the images")
    p2.add_argument("--out", nargs="+", required=True, metavar="CELL=PATH")
    for q in (p, p2):
        q.add_argument("--tables", nargs="+", required=True, help="box tables of the splits to use")
        q.add_argument("--seed", type=int, required=True, help="seed of the template choices")
        q.add_argument("--settings", type=_json, default={},
                       help='{"tasks": {TASK: {...}}, "categories": [...]}; defaults: the paper\'s')
        q.add_argument("--summary", help="also write what was generated (records, skips) as JSON, for stats")
        q.add_argument("--templates", default=str(DEFAULT_TEMPLATES), help="the task templates (YAML)")

    p = add("validate", cmd_validate, "check every record against the geometry rules; fail on any problem")
    p.add_argument("--out", required=True, help="validation report (JSON)")
    p.add_argument("--describe", type=_json, default={}, help="the description filter settings")
    p.add_argument("files", nargs="+")

    p = add("stats", cmd_stats, "Tables 1, 2, 4 and 5 and the filter and generation reports (CSV and Markdown)")
    p2 = add("figures", cmd_figures, "the category and task distributions as figures (PNG)")
    p.add_argument("--train-tables", nargs="+", required=True, help="box tables of the training splits")
    p.add_argument("--test-tables", nargs="+", required=True, help="box tables of the test splits")
    for q in (p, p2):
        q.add_argument("--out-dir", required=True)
        q.add_argument("--train-reports", nargs="+", required=True, help="annotation reports of the training splits")
        q.add_argument("--test-reports", nargs="+", required=True, help="annotation reports of the test splits")
        q.add_argument("--train-summaries", nargs="+", required=True, help="summaries of the train-mix job")
        q.add_argument("--test-summaries", nargs="+", required=True, help="summaries of the test-cells jobs")

    p = add("score", cmd_score, "score one model's predictions for one test cell (Table 3 metrics)")
    p.add_argument("--cell", required=True)
    p.add_argument("--test", required=True, help="the cell's test file")
    p.add_argument("--predictions", required=True, help="JSONL with id and response per line")
    p.add_argument("--out", required=True, help="score file (JSON)")
    p.add_argument("--details", help="per-sample details (JSONL)")
    p.add_argument("--model", default="", help="model key (names the row; seeds the bootstrap)")
    p.add_argument("--coords", default="pixel",
                   help="coordinate convention of the model's boxes: pixel, norm1000, or resized:FACTOR:MIN:MAX "
                        "(pixels of the processor's resized input)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--bad-responses", choices=["error", "failure"], default="error",
                   help="a response that is not text: an error, or a counted parse failure")
    p.add_argument("--format-instruction", default="", help="the instruction added to the questions, if any "
                                                            "(recorded in the score file)")
    p.add_argument("--allow-empty-answers", action="store_true",
                   help="score a file in which no answer has any text (otherwise an error naming it)")

    p = add("report", cmd_report, "Table 3 (md/csv/tex), task scores, CIs, paper comparison and figures")
    p.add_argument("--tables-dir", required=True)
    p.add_argument("--figures-dir", required=True)
    p.add_argument("--scores", nargs="+", required=True, metavar="MODEL=PATH", help="score files (named by cell)")
    p.add_argument("--registry", type=_json, default={}, help="model -> {family, params_b, paper_row, mode}")
    p.add_argument("--radar-min", type=float, default=0, help="where the radar's scale starts (the paper's: 30)")
    p = add("loss-curve", cmd_loss_curve, "plot a model's training loss from its train_log.jsonl")
    p.add_argument("--model", required=True)
    p.add_argument("--train-log", required=True, help="ms-swift's logging.jsonl, as copied beside adapter.json")
    p.add_argument("--out", required=True, help="PNG")
    p = add("baseline", cmd_baseline, "the most-frequent-answer baseline of one test file (no model)")
    p.add_argument("--train", required=True, help="the training mix")
    p.add_argument("--test", required=True, help="the test file")
    p.add_argument("--cell", required=True, choices=list(CELLS))
    p.add_argument("--out", required=True, help="predictions JSONL")
    p = add("answers", cmd_answers, "a model's answer browser page of one test file: samples with image, answers, "
            "verdicts, boxes")
    p.add_argument("--out", required=True, help="the page (HTML, images inside)")
    p.add_argument("--model", required=True)
    p.add_argument("--cell", required=True, choices=list(CELLS))
    p.add_argument("--test", required=True, help="the test file")
    p.add_argument("--predictions", required=True, help="the model's predictions of it")
    p.add_argument("--details", required=True, help="its per-sample verdicts (<cell>.details.jsonl)")
    p.add_argument("--score", required=True, help="its score file (<cell>.json)")
    p.add_argument("--per-cell", type=int, default=20, help="samples shown per test file")
    p.add_argument("--side", type=int, default=256, help="thumbnail size in pixels")
    p = add("tiny-model", cmd_tiny_model, "build a tiny vision-language model with random weights (no download)")
    p.add_argument("--architecture", required=True, choices=ARCHITECTURES)
    p.add_argument("--environment", default="default", help="the environment that will train it (envs/<name>.txt)")
    p.add_argument("--out", required=True, help="model folder")
    p.add_argument("--corpus", nargs="+", required=True, help="dataset files whose text trains the tokenizer")
    p.add_argument("--seed", type=int, default=0)

    p = add("train", cmd_train, "LoRA fine-tuning of one model with swift sft (resumes from its last checkpoint)")
    p.add_argument("--model", required=True, help="model key")
    p.add_argument("--spec", type=_json, required=True,
                   help="what shapes the weights: model, type, template, source, environment, settings, gpus")
    p.add_argument("--run", type=_json, required=True,
                   help='how it runs, not what it makes: {"options": {swift sft options}, "cache_dir": DIR}')
    p.add_argument("--dataset", required=True, help="the training mix (JSONL)")
    p.add_argument("--source-info", help="prefetch manifest of a hub model (its local snapshot)")
    p.add_argument("--work-dir", required=True, help="checkpoints (kept across failed attempts)")
    p.add_argument("--sentinel", required=True, help="written last: names the final adapter")

    p = add("infer", cmd_infer, "predict one shard of one test file (resumable)")
    p.add_argument("--model", required=True)
    p.add_argument("--spec", type=_json, required=True, help="what shapes the answers")
    p.add_argument("--run", type=_json, required=True,
                   help='how it runs: {"options": {"batch_size": N, ...}, "cache_dir": DIR, "threads": N}')
    p.add_argument("--test", required=True)
    p.add_argument("--shard", type=_shard, default=(1, 1), metavar="I-of-N")
    p.add_argument("--source-info", help="prefetch manifest of a hub model (its local snapshot)")
    p.add_argument("--adapter-info", help="the training sentinel (omit for zero-shot)")
    p.add_argument("--out", required=True)
    p.add_argument("--partial", required=True, help="append-only progress file (undeclared output)")

    p = add("merge", cmd_merge, "merge a model's LoRA adapter into full weights (swift export)")
    p.add_argument("--model", required=True)
    p.add_argument("--spec", type=_json, required=True)
    p.add_argument("--run", type=_json, required=True)
    p.add_argument("--adapter-info", required=True, help="the training sentinel")
    p.add_argument("--source-info", help="prefetch manifest of a hub model (its local snapshot)")
    p.add_argument("--out", required=True, help="folder of the merged model")

    p = add("prefetch", cmd_prefetch, "download a hub model (and its code repository) into the model cache")
    p.add_argument("--model", required=True)
    p.add_argument("--entry", type=_json, required=True, help="the model's source and code_repo")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--out", required=True, help="manifest naming the local folders")

    p = add("envs", cmd_envs, "check (or --write) the conda files envs/<name>.yaml against envs/<name>.txt, "
                              "or --build an environment without conda")
    p.add_argument("--write", action="store_true", help="regenerate envs/<name>.yaml from envs/<name>.txt")
    p.add_argument("--build", metavar="NAME", help="build .venvs/NAME, layered over .venv (make env ENV=NAME)")
    p.add_argument("--lock", action="store_true", help="resolve every environment and write envs/locks/ (make lock)")

    p = add("merge-predictions", cmd_merge_predictions, "concatenate shard predictions, checking ids")
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("shards", nargs="+")

    p = add("registry", cmd_registry, "list the models to run; --check validates them against ms-swift")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--all", action="store_true", help="every entry, not only `run`")
    p.add_argument("--check", action="store_true")
    return parser


def die_with_parent() -> None:
    """Be killed when the process that started this one dies (Linux): a job whose shell was
    killed must not go on and rename its outputs into place after Snakemake saw it fail."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the job's own process group handling applies
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    die_with_parent()
    # Our own handler: ms-swift and transformers reconfigure the root logger when imported.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(args.log_level)
    log.propagate = False
    log.disabled = False
    try:
        args.func(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - our own failures get one line, not a traceback
        from .environments import EnvironmentMismatch
        from .inference import EndpointError
        from .registry import RegistryError
        from .training import TrainingError

        if not isinstance(err, (EndpointError, EnvironmentMismatch, RegistryError, TrainingError)):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
