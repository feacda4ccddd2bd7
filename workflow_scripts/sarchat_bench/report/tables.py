"""The benchmark's tables: Table 3 (HTML, Markdown, CSV, LaTeX), the Eq. 5 task scores and the
Eq. 4 average with its interval, every figure with its interval and parse failures, the
provenance of each row, and our numbers beside the paper's. What the columns are and how the
figures are computed is paper.table3's; this module lays them out."""

from __future__ import annotations

import math
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from sarchat_bench import __version__
from sarchat_bench.core.html_tables import write_table_html
from sarchat_bench.core.io import atomic_output, read_json, read_jsonl, write_csv
from sarchat_bench.core.seeds import derive_seed
from sarchat_bench.evaluation.metrics import BOOTSTRAP_RESAMPLES, bootstrap_sums, percentile_interval
from sarchat_bench.evaluation.scoring import details_path
from sarchat_bench.paper.printed import PAPER
from sarchat_bench.paper.table3 import (
    COLUMN_NAMES,
    COLUMNS,
    PEER_COLUMNS,
    TASK_LABELS,
    average,
    average_of_replicates,
    column_values,
    eq3_values,
    task_samples,
    task_scores,
)

PROVENANCE_NOTE = ("From the score files: each inference job records its packages, the model's source and revision, "
                   "the adapter's digest, the git commit and the config digest of its run; each score job its own "
                   "commit and config. Digests and commits are shortened to 12 characters; \"+modified\": the "
                   "checkout had uncommitted changes.")
AVG_CI = ("Avg CI95 low", "Avg CI95 high")
CI_NOTE = ("95 % percentile bootstrap over samples (1000 resamples, seeded). The average's: each cell's samples "
           "resampled, all of that cell's columns from the same resample, Eq. 5 and Eq. 4 recomputed per resample. "
           "Parse failures count as wrong and stay in the denominator. \"Acc@0.5\" rows are not Table 3 columns: "
           "the RefCOCO-style share of samples whose answer's first box has IoU >= .5 with the target (grounding: "
           "and names its category), for comparison with other benchmarks.")


def load_scores(score_files: dict[str, dict[str, str]]) -> dict[str, dict[str, dict]]:
    """{model: {cell: path}} -> {model: {cell: score dict}}."""
    return {m: {c: read_json(p) for c, p in cells.items()} for m, cells in score_files.items()}


def _column_units(path, metrics: list[str]) -> np.ndarray:
    """Per sample, the (TP, FP, FN) of each of `metrics` side by side, (n, 3 x metrics), from a
    details file; a metric a sample has no units of (abstract position on an image without
    relations) counts (0, 0, 0)."""
    none = (0, 0, 0)
    records = read_jsonl(path)
    return np.fromiter(chain.from_iterable(chain.from_iterable(r["units"].get(m, none) for m in metrics)
                                           for r in records), np.int64, 3 * len(metrics) * len(records)
                       ).reshape(len(records), 3 * len(metrics))


def average_interval(model: str, cells: dict[str, dict], score_paths: dict[str, str],
                     resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % bootstrap interval of a model's Eq. 4 average: each cell's samples are resampled
    (every column of a cell from the same resample, as they share samples; cells independently),
    the columns, Eq. 5 and Eq. 4 recomputed per resample (paper.table3). (NaN, NaN) where the
    average has no value or a details file is missing."""
    values = column_values(cells)
    weights = task_samples(cells)
    if average(task_scores(values), weights) is None:
        return (float("nan"), float("nan"))
    replicates = {}
    for cell, score in cells.items():
        columns = [c for c in COLUMNS if c.cell == cell]
        path = details_path(score_paths[cell])
        if not path.exists():
            return (float("nan"), float("nan"))
        units = _column_units(path, [c.metric for c in columns])
        if not len(units):
            continue
        sums = bootstrap_sums(units, derive_seed(score["bootstrap"]["seed"], model, cell, "Eq. 4"), resamples)
        for k, column in enumerate(columns):
            if values[column.name] is not None:  # Eq. 5 leaves a column without a value out
                replicates[column.name] = eq3_values(sums[:, 3 * k:3 * k + 3])
    return percentile_interval(average_of_replicates(replicates, weights))


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def table3(scores: dict, registry: dict, intervals: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(Table 3, task scores, each row's Eq. 4 weights). Rows grouped by family, then by size;
    baselines last. `intervals` (model -> the average's 95 % interval) adds them to the task
    scores."""
    rows, task_rows, weights = [], [], {}

    def place(m):  # by family, then size; baselines last
        info = registry.get(m, {})
        return info.get("mode") == "baseline", info.get("family", m), info.get("params_b") or 0, m

    order = sorted(scores, key=place)
    for model in order:
        cells = scores[model]
        info = registry.get(model, {})
        values = column_values(cells)
        weights[model] = task_samples(cells)
        per_task = task_scores(values)
        avg = average(per_task, weights[model])
        rows.append({"Model": model, "Family": info.get("family", ""), "Param (B)": info.get("params_b"),
                     "Avg score": avg, **values})
        task_rows.append({"Model": model, **{TASK_LABELS[t]: s for t, s in per_task.items()}, "Avg score (Eq. 4)": avg,
                          **({} if intervals is None else dict(zip(AVG_CI, intervals.get(model, (None, None)))))})
    return pd.DataFrame(rows), pd.DataFrame(task_rows), weights


def ci_table(scores: dict, intervals: dict | None = None) -> pd.DataFrame:
    """Per model and column: value, interval, units and parse failures; the average's interval
    first where `intervals` has it, then Table 3's columns, then the figures other benchmarks
    report (PEER_COLUMNS: RefCOCO-style Acc@0.5), where the score file has them."""
    rows = []
    for model, cells in sorted(scores.items()):
        if intervals and model in intervals:
            weights = task_samples(cells)
            rows.append({"Model": model, "Column": "Avg score (Eq. 4)", "Cell": "all",
                         "Value": average(task_scores(column_values(cells)), weights),
                         "CI95 low": intervals[model][0], "CI95 high": intervals[model][1],
                         "Samples": sum(weights.values()), "Unit": "samples (joint bootstrap, per cell)",
                         "Parse failures": sum(c["parse_failures"] for c in cells.values()),
                         "Missing predictions": sum(c["missing_predictions"] for c in cells.values()),
                         "Cell samples": sum(weights.values())})
        for column in (*COLUMNS, *PEER_COLUMNS):
            score = cells.get(column.cell)
            if not score or column.metric not in score["metrics"]:  # a score file made before the metric
                continue
            m = score["metrics"][column.metric]
            rows.append({"Model": model, "Column": column.name, "Cell": column.cell, "Value": m["value"],
                         "CI95 low": m["ci95"][0], "CI95 high": m["ci95"][1], "Samples": m["n_samples"],
                         "Unit": m["unit"], "Parse failures": score["parse_failures"],
                         "Missing predictions": score["missing_predictions"], "Cell samples": score["n_samples"]})
    return pd.DataFrame(rows)


def paper_comparison(table: pd.DataFrame, registry: dict) -> pd.DataFrame:
    """Our value, the paper's, and the difference, for models that have a paper row."""
    paper = PAPER["table3"]
    rows = []
    for _, row in table.iterrows():
        key = registry.get(row["Model"], {}).get("paper_row")
        if key not in paper:
            continue
        for name, theirs in zip(["Avg score", *COLUMN_NAMES], [paper[key]["avg"], *paper[key]["cols"]]):
            ours = row[name]
            rows.append({"Model": row["Model"], "Paper row": key, "Column": name, "Ours": ours, "Paper": theirs,
                         "Delta": None if ours is None or pd.isna(ours) else round(ours - theirs, 2)})
    return pd.DataFrame(rows, columns=["Model", "Paper row", "Column", "Ours", "Paper", "Delta"])


PROVENANCE_PACKAGES = ("ms-swift", "transformers", "torch", "vllm", "peft")


def _short(value, n: int = 12) -> str | None:
    return None if value is None else str(value)[:n] + ("+modified" if str(value).endswith("+modified") else "")


def _source_text(source: dict | None) -> str | None:
    source = source or {}
    if "hub" in source:
        return f"{source['hub']}@{source.get('revision') or 'unpinned'}"
    if "tiny" in source:
        return f"tiny model ({source['tiny']}, random weights)"
    if "local" in source:
        return f"local: {source['local']}"
    if "endpoint" in source:
        return f"served: {source['endpoint'].get('base_url')} ({source['endpoint'].get('model')})"
    return None


def _identity_text(identity: dict | None) -> str | None:
    identity = identity or {}
    if "snapshot" in identity:
        return f"snapshot {identity['snapshot']}"
    if "files" in identity:
        return f"files {_short(identity['files'])}"
    return None


def provenance_table(scores: dict) -> pd.DataFrame:
    """Per model, what made its numbers: the model's source, revision and adapter, the packages
    of its inference jobs, and the code and config of the inference and score jobs (distinct
    values joined; "–" where a score file predates provenance)."""
    rows = []
    for model, cells in sorted(scores.items()):
        provenances = [score["provenance"] for _, score in sorted(cells.items()) if "provenance" in score]
        inference = [r for prov in provenances for r in prov["predictions"].get("inference", [])]
        scoring = [prov["scoring"] for prov in provenances]

        def distinct(values):
            return ", ".join(sorted({str(v) for v in values if v is not None})) or "–"

        made_elsewhere = [prov["predictions"].get("baseline") or
                          (f"predictions file sha256:{_short(prov['predictions']['file_sha256'])}"
                           if "file_sha256" in prov["predictions"] else None) for prov in provenances]
        rows.append({
            "Model": model,
            "Source": distinct([_source_text(r["model"]["source"]) for r in inference] + made_elsewhere),
            "Revision / files": distinct(_identity_text(r["model"]["identity"]) for r in inference),
            "Adapter": distinct(_short(r["model"]["adapter_digest"]) for r in inference),
            # Counted by the training job before swift sft (ms-swift drops these silently).
            "Training samples over max_length": distinct(
                f"{t['samples_over_max_length']} of {t['training_samples']} (max_length {t['max_length']})"
                for r in inference if (t := r["model"].get("training"))),
            **{package: distinct(r["job"]["packages"].get(package) for r in inference)
               for package in PROVENANCE_PACKAGES},
            "Commit (inference)": distinct(_short(r["job"]["git_commit"]) for r in inference),
            "Config (inference)": distinct(_short(r["job"]["config_digest"]) for r in inference),
            "Commit (scoring)": distinct(_short(j["git_commit"]) for j in scoring),
            "Config (scoring)": distinct(_short(j["config_digest"]) for j in scoring),
            "SARChat-Bench": distinct([j["sarchat_bench"] for j in scoring]
                                      + [r["job"]["sarchat_bench"] for r in inference]),
            "Cells without provenance": len(cells) - len(provenances),
        })
    return pd.DataFrame(rows)


def _write(path, text: str) -> None:
    with atomic_output(path, "w") as out:
        out.write(text)


# How the tables print numbers: scores (percent) with two decimals; a model's size as the
# registry gives it (`g`: 0.0002 for a tiny model, 4.2 or 7 for real ones), since two decimals
# print every tiny model as 0.00, and "<0.01" would hide that they differ and stop the column
# sorting as numbers. A missing value ("–": a baseline has no size) is never "nan".
COLUMN_FORMATS = {"Param (B)": "g"}


def _markdown(df: pd.DataFrame) -> str:
    cells = df.astype(object).where(df.notna(), None)  # NaN as missing, not "nan"
    formats = [COLUMN_FORMATS.get(c, ".2f") for c in df.columns]
    return cells.to_markdown(index=False, floatfmt=formats, missingval="–") + "\n"


def _latex_number(column: str):
    spec = COLUMN_FORMATS.get(column, ".2f")
    return lambda v: "--" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _write_table(stem: Path, table: pd.DataFrame, title: str, note: str, note_first: bool = False) -> None:
    """A table as <stem>.csv, <stem>.html (the report's page) and <stem>.md, with its title and
    its note (in the Markdown, before the table or after it)."""
    write_csv(stem.with_suffix(".csv"), table)
    write_table_html(stem.with_suffix(".html"), table, title, note, COLUMN_FORMATS)
    body = note + "\n\n" + _markdown(table) if note_first else _markdown(table) + "\n" + note + "\n"
    _write(stem.with_suffix(".md"), f"# {title}\n\n" + body)


def weights_note(weights: dict[str, dict]) -> str:
    """The Eq. 4 weights the rows used (model -> n_t per task): stated once where every row used
    the same, else each set of weights with the rows that used it."""
    def stated(w: dict) -> str:
        total = sum(w.values()) or 1
        return ", ".join(f"{TASK_LABELS[t]} {n} ({100 * n / total:.1f} %)" for t, n in w.items())

    distinct: dict[str, list[str]] = {}
    for model, w in weights.items():
        distinct.setdefault(stated(w), []).append(model)
    if len(distinct) <= 1:
        used = f"test samples n_t: {next(iter(distinct), '')}"
    else:
        used = "test samples n_t, which differ between rows here: " + "; ".join(
            f"{', '.join(models)}: {text}" for text, models in distinct.items())
    return (f"Avg score = Eq. 4: task scores (Eq. 5, the mean of each task's columns) weighted by the task's "
            f"{used}. Values in percent; \"–\" = no samples or not evaluated.")


def write_tables(out_dir, scores: dict, registry: dict, tables: tuple | None = None,
                 intervals: dict | None = None) -> None:
    """The tables of the report; `tables` is table3()'s result when the caller has it,
    `intervals` the averages' (average_interval)."""
    out_dir = Path(out_dir)
    table, tasks, weights = tables or table3(scores, registry, intervals)
    note = f"{weights_note(weights)} Made by SARChat-Bench {__version__}."
    _write_table(out_dir / "table3", table, "Table 3: SARChat-Bench results", note)
    latex = table.drop(columns=["Family"]).to_latex(index=False, float_format="%.2f", na_rep="--",
                                                    formatters={c: _latex_number(c) for c in COLUMN_FORMATS},
                                                    caption="SARChat-Bench results (Table 3 layout). " + note,
                                                    label="tab:sarchat-bench")
    _write(out_dir / "table3.tex", latex)
    _write_table(out_dir / "task_scores", tasks, "Task scores (Eq. 5) and average (Eq. 4)", note)
    _write_table(out_dir / "table3_ci", ci_table(scores, intervals), "Confidence intervals and parse failures",
                 CI_NOTE, note_first=True)
    _write_table(out_dir / "provenance", provenance_table(scores), "Provenance: what produced these numbers",
                 PROVENANCE_NOTE, note_first=True)
    comparison = paper_comparison(table, registry)
    none = "No evaluated model has a row in the paper's Table 3."
    write_table_html(out_dir / "table3_vs_paper.html", comparison, "Ours beside the paper's Table 3",
                     "" if len(comparison) else none, COLUMN_FORMATS)
    body = _markdown(comparison) if len(comparison) else none + "\n"
    _write(out_dir / "table3_vs_paper.md", "# Ours beside the paper's Table 3\n\n" + body)


def paper_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Table 3 in our layout (its printed Avg score kept), and its Eq. 5 task scores."""
    rows, task_rows = [], []
    for key, row in PAPER["table3"].items():
        values = dict(zip(COLUMN_NAMES, row["cols"]))
        rows.append({"Model": key, "Family": row["family"], "Param (B)": row["params_b"], "Avg score": row["avg"],
                     **values})
        task_rows.append({"Model": key, **{TASK_LABELS[t]: s for t, s in task_scores(values).items()},
                          "Avg score (Eq. 4)": row["avg"]})
    return pd.DataFrame(rows), pd.DataFrame(task_rows)
