"""The models stage's commands: fetch hub models, build tiny ones, train, merge, predict and merge
predictions, the environments, and the registry (rules/models.smk, rules/evaluate.smk)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sarchat_bench.core.commands import Command, arg, command, json_value, shard
from sarchat_bench.models.jobs import ModelJob
from sarchat_bench.models.tiny import ARCHITECTURES

log = logging.getLogger("sarchat_bench")
COMMANDS: list[Command] = []

# The model job contract (models.jobs), as the rules pass it.
JOB = (
    arg("--model", required=True, help="model key"),
    arg("--spec", type=json_value, required=True,
        help="what the output depends on: model, type, template, source, environment, settings (JobSpec)"),
    arg("--run", type=json_value, required=True,
        help='how it runs, not what it makes: {"options": {...}, "cache_dir": DIR, "threads": N} (RunOptions)'),
    arg("--source-info", help="prefetch manifest of a hub model (its local snapshot)"),
)


def _job(args, section) -> ModelJob:
    """The job the rule described, run in the environment its model needs (re-executing this
    command there, or stopping with one line, before anything heavy is imported)."""
    from sarchat_bench.models.environments import enter

    job = ModelJob.read(args.model, section, args.spec, args.run)
    enter(job.spec.environment, args.model)
    return job


@command(COMMANDS, "train", "LoRA fine-tuning of one model with swift sft (resumes from its last checkpoint)",
         *JOB,
         arg("--dataset", required=True, help="the training mix (JSONL)"),
         arg("--work-dir", required=True, help="checkpoints (kept across failed attempts)"),
         arg("--sentinel", required=True, help="written last: names the final adapter"))
def train(args) -> None:
    job = _job(args, "train")
    from sarchat_bench.models.train import train

    info = train(job, dataset=args.dataset, work_dir=args.work_dir, sentinel=args.sentinel,
                 source_info=args.source_info)
    log.info("%s: adapter %s (step %s)", args.model, info["adapter"], info["global_step"])


@command(COMMANDS, "group-conversations", "a training file's samples as multi-turn conversations per image, "
                                        "counted with the model's template (train: grouping)",
         arg("--spec", type=json_value, required=True,
             help="what the file is made from: data, grouping, max_length, seed, the model (GroupedMix)"),
         arg("--source-info", help="prefetch manifest of a hub model (its local snapshot)"),
         arg("--cache-dir", required=True, help="the model cache"),
         arg("--image-root", help="where the records' relative image paths are (default: $ROOT_IMAGE_DIR): "
                                  "the longest conversations are encoded with their images"),
         arg("--out", required=True, help="the grouped training file (JSONL)"),
         arg("--summary", required=True, help="what it holds, the tokens of an epoch, what was checked (JSON)"))
def group_conversations(args) -> None:
    import os

    from sarchat_bench.models.environments import enter
    from sarchat_bench.models.grouping import GroupedMix, job_environment

    mix = GroupedMix.from_dict(args.spec)
    enter(mix.environment, f"grouped training file {mix.name}")
    os.environ.update(job_environment(mix, args.cache_dir))  # before ms-swift reads them at import
    from sarchat_bench.models.grouping import build_grouped_mix
    from sarchat_bench.models.jobs import JobSpec
    from sarchat_bench.models.sources import local_model

    folder, load = local_model(JobSpec(mix.model_path, mix.model_type, mix.template, mix.source, mix.env, {},
                                       mix.environment, {}), args.source_info)
    info = build_grouped_mix(mix, out=args.out, summary=args.summary, model_folder=folder, load=load,
                             image_root=args.image_root)
    tokens = info["epoch_tokens"]
    log.info("%s: %d records in, %d out (%d conversations of %d turns); tokens per epoch %d -> %d",
             args.out, info["records_in"], info["records_out"], info["conversations"],
             info["turns_in_conversations"], tokens["none"]["tokens"], tokens[mix.grouping]["tokens"])


@command(COMMANDS, "merge", "merge a model's LoRA adapter into full weights (swift export)",
         *JOB,
         arg("--adapter-info", required=True, help="the training sentinel"),
         arg("--out", required=True, help="folder of the merged model"))
def merge(args) -> None:
    job = _job(args, "train")
    from sarchat_bench.core.io import read_json
    from sarchat_bench.models.train import merge

    merge(job, adapter=read_json(args.adapter_info)["adapter"], out=args.out, source_info=args.source_info)


@command(COMMANDS, "infer", "predict one shard of one test file (resumable)",
         *JOB,
         arg("--test", required=True),
         arg("--shard", type=shard, default=(1, 1), metavar="I-of-N"),
         arg("--adapter-info", help="the training sentinel (omit for zero-shot)"),
         arg("--out", required=True),
         arg("--partial", required=True, help="append-only progress file (undeclared output)"))
def infer(args) -> None:
    job = _job(args, "infer")
    from sarchat_bench.models.predict import predict_shard

    summary = predict_shard(job, test=args.test, shard=args.shard, out=args.out, partial=args.partial,
                            source_info=args.source_info, adapter_info=args.adapter_info)
    log.info("%s: %d records (%d predicted in this run, %.0f s)", args.out, summary["records"],
             summary["predicted_now"], summary["seconds"])


@command(COMMANDS, "merge-predictions", "concatenate shard predictions, checking ids",
         arg("--test", required=True),
         arg("--out", required=True),
         arg("shards", nargs="+"))
def merge_predictions(args) -> None:
    from sarchat_bench.core.provenance import merge_inference
    from sarchat_bench.models.predict import merge_shards

    n = merge_shards(args.test, args.shards, args.out)
    merge_inference(args.shards, args.out)
    log.info("%s: %d predictions, ids checked against %s", args.out, n, args.test)


@command(COMMANDS, "plan", "the plan before launch: tokens, optimizer steps and GPU-hours of every model of `run`",
         arg("--settings", type=json_value, required=True,
             help="what the plan depends on: the planned models' entries, plan:, the dataset's settings "
                  "(models/plan.py plan_settings)"),
         arg("--cache-dir", required=True, help="the model cache (tokenizers of prefetched hub models)"),
         arg("--out-dir", required=True, help="writes plan.csv, plan.md and plan.html here"),
         arg("--train-tables", nargs="+", required=True, help="box tables of the training splits"),
         arg("--test-tables", nargs="+", required=True, help="box tables of the test splits"),
         arg("--train-summaries", nargs="+", required=True, help="summaries of the train-mix job"),
         arg("--test-summaries", nargs="+", required=True, help="summaries of the test-cells jobs"))
def plan(args) -> None:
    from tabulate import tabulate

    from sarchat_bench.models.plan import write_plan

    rows = write_plan(args.settings, args.out_dir, cache_dir=args.cache_dir, train_tables=args.train_tables,
                      test_tables=args.test_tables, train_summaries=args.train_summaries,
                      test_summaries=args.test_summaries)
    columns = [c for c in rows[0] if any(r[c] is not None for r in rows)] if rows else []
    # The job log shows the table, one model per column (19 columns side by side do not fit a terminal).
    log.info("plan written to %s/plan.{csv,md,html}:\n%s", args.out_dir,
             tabulate([[c, *(r[c] for r in rows)] for c in columns[1:]], headers=["", *(r["model"] for r in rows)],
                      tablefmt="simple", missingval="–"))


@command(COMMANDS, "loss-curve", "plot a model's training loss from its train_log.jsonl",
         arg("--model", required=True),
         arg("--train-log", required=True, help="ms-swift's logging.jsonl, as copied beside adapter.json"),
         arg("--out", required=True, help="PNG"))
def loss_curve(args) -> None:
    from sarchat_bench.models.train import loss_curve

    points = loss_curve(Path(args.train_log), Path(args.out), f"{args.model}: LoRA training")
    log.info("%s: %d loss points", args.out, points)


@command(COMMANDS, "tiny-model", "build a tiny vision-language model with random weights (no download)",
         arg("--architecture", required=True, choices=ARCHITECTURES),
         arg("--environment", default="default", help="the environment that will train it (envs/<name>.txt)"),
         arg("--out", required=True, help="model folder"),
         arg("--corpus", nargs="+", required=True, help="dataset files whose text trains the tokenizer"),
         arg("--seed", type=int, default=0))
def tiny_model(args) -> None:
    from sarchat_bench.models.environments import enter

    enter(args.environment, f"tiny {args.architecture}")
    from sarchat_bench.models.tiny import build

    log.info("tiny %s model written to %s", args.architecture, build(args.architecture, args.out, args.corpus,
                                                                      args.seed))


@command(COMMANDS, "prefetch", "download a hub model (and its code repository) into the model cache",
         arg("--model", required=True),
         arg("--entry", type=json_value, required=True, help="the model's source and code_repo"),
         arg("--cache-dir", required=True),
         arg("--out", required=True, help="manifest naming the local folders"),
         arg("--model-lock", help="the model lock: the commits to fetch, and where resolved ones are recorded"))
def prefetch(args) -> None:
    from sarchat_bench.models.fetch import prefetch

    prefetch(args.model, args.entry, args.cache_dir, args.out, args.model_lock)


@command(COMMANDS, "envs", "check (or --write) the conda files envs/<name>.yaml against envs/<name>.txt, or --build "
                           "an environment without conda",
         arg("--write", action="store_true", help="regenerate envs/<name>.yaml from envs/<name>.txt"),
         arg("--build", metavar="NAME", help="build .venvs/NAME, layered over .venv (make env ENV=NAME)"),
         arg("--constraints", help="with --build: the versions to install (default: envs/locks/NAME.txt)"),
         arg("--lock", action="store_true", help="resolve every environment and write envs/locks/ (make lock)"))
def envs(args) -> None:
    from sarchat_bench.models import environments

    if args.build:
        log.info("environment %s built: %s", args.build, environments.build(args.build, args.constraints))
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


@command(COMMANDS, "registry", "list the models to run; --check validates them against ms-swift",
         arg("--config", default="config.yaml"),
         arg("--all", action="store_true", help="every entry, not only `run`"),
         arg("--check", action="store_true"))
def registry(args) -> None:
    import yaml

    from sarchat_bench.core.configuration import validated
    from sarchat_bench.models.registry import check_against_swift, entry, model_path, run_models

    config = validated(yaml.safe_load(Path(args.config).read_text()))
    keys = list(config["models"]) if args.all else run_models(config)
    problems = []
    for key in keys:
        e = entry(config, key)
        supplied = "(no model: made from the training mix)" if e["mode"] == "baseline" else "(predictions supplied)"
        where = model_path(e) if "source" in e else supplied
        print(f"{key:18} {e['family']:32} {e.get('params_b') or '-':>7} B  {e['mode']:11} "
              f"{e.get('model_type', '-'):14} {e.get('template', '-'):14} {where}")
        if args.check and e["mode"] not in ("predictions", "baseline"):
            problems += check_against_swift(key, e)
    for line in problems:
        print(line, file=sys.stderr)
    if any(not p.startswith("warning:") for p in problems):
        raise SystemExit(1)
