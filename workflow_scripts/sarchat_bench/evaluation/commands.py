"""The evaluation stage's commands: score a model's answers to one test file, and make a
baseline's answers without a model (rules/evaluate.smk)."""

from __future__ import annotations

import logging

from sarchat_bench.core.commands import Command, arg, command, key_paths
from sarchat_bench.paper.tasks import CELLS

log = logging.getLogger("sarchat_bench")
COMMANDS: list[Command] = []


@command(COMMANDS, "score", "score one model's predictions for one test cell (Table 3 metrics)",
         arg("--cell", required=True),
         arg("--test", required=True, help="the cell's test file"),
         arg("--predictions", required=True, help="JSONL with id and response per line"),
         arg("--out", required=True, help="score file (JSON)"),
         arg("--details", help="per-sample details (JSONL)"),
         arg("--model", default="", help="model key (names the row; seeds the bootstrap)"),
         arg("--coords", default="pixel",
             help="coordinate convention of the model's boxes: pixel, norm1000, or resized:FACTOR:MIN:MAX "
                  "(pixels of the processor's resized input)"),
         arg("--seed", type=int, default=0, help="bootstrap seed"),
         arg("--bad-responses", choices=["error", "failure"], default="error",
             help="a response that is not text: an error, or a counted parse failure"),
         arg("--format-instruction", default="",
             help="the instruction added to the questions, if any (recorded in the score file)"),
         arg("--allow-empty-answers", action="store_true",
             help="score a file in which no answer has any text (otherwise an error naming it)"),
         arg("--accept-swift-results", action="store_true",
             help="the predictions may be a `swift infer` result file without ids, its lines matched to the test "
                  "file's records by order (a model of mode: predictions)"))
def score(args) -> None:
    from sarchat_bench.core.io import write_json
    from sarchat_bench.core.provenance import for_score_file
    from sarchat_bench.evaluation.scoring import score_cell

    result = score_cell(args.cell, args.test, args.predictions, model=args.model, coords=args.coords, seed=args.seed,
                        details_path=args.details, bad_responses=args.bad_responses,
                        allow_empty_answers=args.allow_empty_answers,
                        accept_swift_results=args.accept_swift_results)
    if args.format_instruction:
        result["format_instruction"] = args.format_instruction
    result["provenance"] = for_score_file(args.predictions)
    write_json(args.out, result)
    values = ", ".join(f"{m} {v['value'] if v['value'] is not None else '-'}" for m, v in result["metrics"].items())
    log.info("%s %s: %d samples, %d parse failures; %s", args.model, args.cell, result["n_samples"],
             result["parse_failures"], values)


@command(COMMANDS, "baseline", "the most-frequent-answer baseline of one test file (no model)",
         arg("--train", required=True, help="the training mix"),
         arg("--test", required=True, help="the test file"),
         arg("--cell", required=True, choices=list(CELLS)),
         arg("--out", required=True, help="predictions JSONL"))
def baseline(args) -> None:
    from sarchat_bench.core.io import write_jsonl
    from sarchat_bench.core.provenance import write_baseline
    from sarchat_bench.evaluation.baselines import majority_predictions

    n = write_jsonl(args.out, majority_predictions(args.train, args.test, args.cell))
    write_baseline(args.out, "majority-answer: the most frequent answer of the training mix (docs/scoring.md)")
    log.info("%s: %d baseline answers", args.out, n)


@command(COMMANDS, "lmms-tasks", "an lmms-eval task folder of the test files, scored by this scorer (docs/interop.md)",
         arg("--out", required=True, help="the task folder (replaced): give it to lmms-eval's --include_path"),
         arg("--limit", type=int, default=0, help="copy only each test file's first N records (smoke tests)"),
         arg("--image-root", help="where relative image paths are resolved (the SARDet-100K root; default: "
                                  "$ROOT_IMAGE_DIR when lmms-eval runs)"),
         arg("--coords", default="pixel", help="the convention of the answers' boxes, as `score --coords`"),
         arg("cells", nargs="+", metavar="CELL=PATH",
             help="test files, e.g. classify=results/sarchat/test/classify.jsonl"))
def lmms_tasks(args) -> None:
    from sarchat_bench.evaluation.lmms_task import write_task_folder

    test_files = {cell: paths[-1] for cell, paths in key_paths(args.cells).items()}
    unknown = sorted(set(test_files) - set(CELLS))
    if unknown:
        raise SystemExit(f"error: unknown cell(s) {unknown}; known: {', '.join(CELLS)}")
    names = write_task_folder(args.out, test_files, limit=args.limit, image_root=args.image_root, coords=args.coords)
    log.info("%s: %d lmms-eval tasks (%s) and the group sarchat", args.out, len(names), ", ".join(names))
