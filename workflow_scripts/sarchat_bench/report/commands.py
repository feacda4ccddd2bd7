"""The report stage's commands: the tables and figures of every scored model, and the answer
browser's page of one model on one test file (rules/evaluate.smk)."""

from __future__ import annotations

import logging

from sarchat_bench.core.commands import Command, arg, command, json_value, key_paths
from sarchat_bench.paper.tasks import CELLS

log = logging.getLogger("sarchat_bench")
COMMANDS: list[Command] = []


@command(COMMANDS, "report", "Table 3 (md/csv/tex), task scores, CIs, paper comparison and figures",
         arg("--tables-dir", required=True),
         arg("--figures-dir", required=True),
         arg("--scores", nargs="+", required=True, metavar="MODEL=PATH", help="score files (named by cell)"),
         arg("--registry", type=json_value, default={}, help="model -> {family, params_b, paper_row, mode}"),
         arg("--radar-min", type=float, default=0, help="where the radar's scale starts (the paper's: 30)"))
def report(args) -> None:
    from pathlib import Path

    from sarchat_bench.report.figures import write_figures
    from sarchat_bench.report.tables import average_interval, load_scores, table3, write_tables

    score_files: dict[str, dict[str, str]] = {}
    for model, paths in key_paths(args.scores).items():
        for path in paths:
            score_files.setdefault(model, {})[Path(path).stem] = path
    scores = load_scores(score_files)
    intervals = {model: average_interval(model, cells, score_files[model]) for model, cells in scores.items()}
    tables = table3(scores, args.registry, intervals)
    write_tables(args.tables_dir, scores, args.registry, tables, intervals)
    baselines = [m for m, info in args.registry.items() if info.get("mode") == "baseline"]
    write_figures(args.figures_dir, scores, *tables[:2], baselines=baselines, radar_min=args.radar_min,
                  intervals=intervals)
    log.info("tables in %s, figures in %s", args.tables_dir, args.figures_dir)


@command(COMMANDS, "answers", "a model's answer browser page of one test file: samples with image, answers, "
                              "verdicts, boxes",
         arg("--out", required=True, help="the page (HTML, images inside)"),
         arg("--model", required=True),
         arg("--cell", required=True, choices=list(CELLS)),
         arg("--test", required=True, help="the test file"),
         arg("--predictions", required=True, help="the model's predictions of it"),
         arg("--details", required=True, help="its per-sample verdicts (<cell>.details.jsonl)"),
         arg("--score", required=True, help="its score file (<cell>.json)"),
         arg("--per-cell", type=int, default=20, help="samples shown per test file"),
         arg("--side", type=int, default=256, help="thumbnail size in pixels"),
         arg("--image-root", help="the SARDet-100K folder the test file's image paths are relative to "
                                  "(default: $ROOT_IMAGE_DIR)"))
def answers(args) -> None:
    from sarchat_bench.report.answers import cell_page

    paths = {"test": args.test, "predictions": args.predictions, "details": args.details, "score": args.score}
    log.info("answers of %s on %s in %s", args.model, args.cell,
             cell_page(args.out, args.model, args.cell, paths, args.per_cell, args.side, args.image_root))
