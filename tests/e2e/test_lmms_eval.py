"""lmms-eval 0.7.3 itself runs the SARChat tasks `lmms-tasks` writes, offline on the CPU, in the
lmms_eval environment (`make env ENV=lmms_eval`, which `make test` builds): a model-free oracle
and a tiny random LLaVA-1.5 through lmms-eval's own `llava_hf` backend, three records per cell.
What lmms-eval reports for each cell equals the score file score_cell makes of the answers it
logged."""

import json
import math
import os
import subprocess

import pytest
from sarchat_bench.core.io import iter_jsonl, write_jsonl
from sarchat_bench.dataset.build import build_test_cell
from sarchat_bench.evaluation.scoring import score_cell
from sarchat_bench.models.environments import interpreter
from sarchat_bench.paper.table3 import CELL_METRICS
from sarchat_bench.paper.tasks import CELLS
from support import REPO
from support.commands import run_cli

LMMS_PYTHON = interpreter("lmms_eval")
pytestmark = pytest.mark.skipif(not LMMS_PYTHON.is_file(), reason=(
    f"the lmms_eval environment is not built ({LMMS_PYTHON}): `make env ENV=lmms_eval` builds it, and `make test` "
    "tries to; it needs lmms-eval 0.7.3 from the package registry"))


@pytest.fixture(scope="module")
def tasks(demo_tables, demo_root, tmp_path_factory):
    """The task folder of the nine test files, three records each (two where the demo has two),
    their images below the demo's root."""
    work = tmp_path_factory.mktemp("lmms")
    files = {cell: work / "test" / f"{cell}.jsonl" for cell in CELLS}
    for cell, path in files.items():
        build_test_cell(cell, [demo_tables["test"]], path, seed=0)
    result = run_cli("lmms-tasks", "--out", work / "tasks", "--limit", "3", "--image-root", demo_root,
                     *[f"{c}={p}" for c, p in files.items()])
    assert result.returncode == 0, result.stderr
    return work / "tasks"


def lmms_eval(*args, work):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false", "HF_HOME": str(work / "hf")}
    run = subprocess.run([str(LMMS_PYTHON), *map(str, args), "--output_path", str(work / "run"), "--log_samples"],
                         env=env, cwd=work, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    (results_path,) = (work / "run").rglob("*_results.json")
    return results_path


def same(ours, theirs) -> bool:
    if ours is None:  # nothing to count: lmms-eval reports NaN (or N/A)
        return theirs is None or theirs == "N/A" or (isinstance(theirs, float) and math.isnan(theirs))
    return isinstance(theirs, (int, float)) and abs(ours - theirs) < 1e-9


def check_against_the_scorer(results_path, tasks, work) -> dict:
    """Each cell's lmms-eval figures against score_cell on the answers lmms-eval logged; returns
    {cell: score file}."""
    results = json.loads(results_path.read_text())
    stamp = results_path.name[: -len("_results.json")]
    assert set(results["results"]) >= {f"sarchat_{cell}" for cell in CELLS}
    scores = {}
    for cell in CELLS:
        task = f"sarchat_{cell}"
        test = tasks / "data" / f"{cell}.jsonl"
        records = list(iter_jsonl(test))
        samples = sorted(map(json.loads, (results_path.parent / f"{stamp}_samples_{task}.jsonl").read_text()
                             .splitlines()), key=lambda s: int(s["doc_id"]))
        assert [int(s["doc_id"]) for s in samples] == list(range(len(records))) and len(records) in (2, 3)
        answers = [s["filtered_resps"][0] if isinstance(s["filtered_resps"], list) else s["filtered_resps"]
                   for s in samples]
        predictions = work / f"{cell}.predictions.jsonl"
        write_jsonl(predictions, [{"id": r["id"], "response": a} for r, a in zip(records, answers, strict=True)])
        scores[cell] = score = score_cell(cell, test, predictions, allow_empty_answers=True)
        reported = results["results"][task]
        for metric in CELL_METRICS[cell]:
            # A metric no sample has units of (abstract position without relations) is not reported.
            assert same(score["metrics"][metric]["value"], reported.get(f"{metric},none")), (cell, metric, reported)
        assert score["parse_failures"] == reported["parse_failures,none"], cell
    return scores


def test_lmms_eval_runs_the_tasks_with_the_oracle_and_reports_the_scorers_numbers(tasks, tmp_path):
    """Every second record answered with nothing, the others with the reference: known scores."""
    results = lmms_eval(REPO / "tests" / "support" / "lmms_oracle.py", "eval", "--model", "sarchat_oracle",
                        "--model_args", "blank_every=2", "--include_path", tasks, "--tasks", "sarchat", work=tmp_path)
    scores = check_against_the_scorer(results, tasks, tmp_path)
    for cell, score in scores.items():  # records 1 and 3 right, record 2 empty
        assert score["parse_failures"] == 1, cell
    assert scores["classify"]["metrics"]["category"]["value"] == 66.67
    assert scores["refer_single"]["metrics"]["first_box_acc50"]["value"] == 66.67


def test_lmms_eval_runs_a_tiny_llava_through_its_own_backend(tasks, tiny, tmp_path):
    results = lmms_eval("-m", "lmms_eval", "eval", "--model", "llava_hf", "--model_args",
                        f"pretrained={tiny['llava1_5_hf']},device=cpu,device_map=cpu,dtype=float32",
                        "--include_path", tasks, "--tasks", "sarchat", "--batch_size", "1",
                        "--gen_kwargs", "max_new_tokens=24", work=tmp_path)
    scores = check_against_the_scorer(results, tasks, tmp_path)
    assert sum(score["n_samples"] for score in scores.values()) == sum(
        len(list(iter_jsonl(tasks / "data" / f"{cell}.jsonl"))) for cell in CELLS) > 9
