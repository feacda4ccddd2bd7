"""The benchmark report: Table 3 (Markdown, CSV, LaTeX), Eq. 5 task scores and the Eq. 4
weighted average, confidence intervals and parse failures, the paper's numbers beside ours,
and the figures (radar of task scores, average score vs parameters, per-category breakdown).

Eq. 5 (Appendix 3): a task's score is the mean of its subtask columns. Eq. 4 (§4.1): the
average score weights each task's score by its number of test samples n_t. The weights used are
printed under the table. A column with no samples (e.g. abstract position when no test
image holds two categories) is left out of its task's mean and shown as "–".
"""

from __future__ import annotations

import math
import os
from itertools import chain
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import __version__  # noqa: E402
from .html_tables import write_table_html  # noqa: E402
from .io import atomic_output, read_json, read_jsonl, save_figure, write_csv  # noqa: E402
from .metrics import BOOTSTRAP_RESAMPLES, bootstrap_sums, eq3_values, percentile_interval  # noqa: E402
from .stats import PAPER  # noqa: E402
from .tasks import CELLS  # noqa: E402
from .tasks.common import derive_seed  # noqa: E402

# (column, cell, metric), in the paper's order.
COLUMNS = (
    ("Only count", "count", "only_count"),
    ("Count IoU=.25", "count", "instance_iou25"),
    ("Count IoU=.5", "count", "instance_iou50"),
    ("Abstract position", "grounding_multi", "abstract_position"),
    ("Ground multi", "grounding_multi", "box_category_iou50"),
    ("Ground single", "grounding_single", "box_category_iou50"),
    ("ID multi", "identify_multi", "category"),
    ("ID single", "identify_single", "category"),
    ("Ref multi IoU=.25", "refer_multi", "iou25"),
    ("Ref multi IoU=.5", "refer_multi", "iou50"),
    ("Ref single IoU=.25", "refer_single", "iou25"),
    ("Ref single IoU=.5", "refer_single", "iou50"),
    ("Describe", "describe", "phrase"),
    ("Classify", "classify", "category"),
)
COLUMN_NAMES = [c for c, _, _ in COLUMNS]
TASK_COLUMNS = {
    "count": COLUMN_NAMES[0:3], "grounding": COLUMN_NAMES[3:6], "identify": COLUMN_NAMES[6:8],
    "refer": COLUMN_NAMES[8:12], "describe": COLUMN_NAMES[12:13], "classify": COLUMN_NAMES[13:14],
}
TASK_LABELS = {"count": "Instance Counting", "grounding": "Spatial Grounding", "identify": "Cross-Modal Identification",
               "refer": "Referring", "describe": "Fine-Grained Description", "classify": "Classification"}
PROVENANCE_NOTE = ("From the score files: each inference job records its packages, the model's source and revision, "
                   "the adapter's digest, the git commit and the config digest of its run; each score job its own "
                   "commit and config. Digests and commits are shortened to 12 characters; \"+modified\": the "
                   "checkout had uncommitted changes.")
AVG_CI = ("Avg CI95 low", "Avg CI95 high")
CI_NOTE = ("95 % percentile bootstrap over samples (1000 resamples, seeded). The average's: each cell's samples "
           "resampled, all of that cell's columns from the same resample, Eq. 5 and Eq. 4 recomputed per resample. "
           "Parse failures count as wrong and stay in the denominator.")


def load_scores(score_files: dict[str, dict[str, str]]) -> dict[str, dict[str, dict]]:
    """{model: {cell: path}} -> {model: {cell: score dict}}."""
    return {m: {c: read_json(p) for c, p in cells.items()} for m, cells in score_files.items()}


def column_values(cells: dict[str, dict]) -> dict[str, float | None]:
    out = {}
    for name, cell, metric in COLUMNS:
        score = cells.get(cell)
        out[name] = score["metrics"][metric]["value"] if score else None
    return out


def task_samples(cells: dict[str, dict]) -> dict[str, int]:
    """n_t of Eq. 4: test samples per task (cells of a task summed)."""
    counts = dict.fromkeys(TASK_COLUMNS, 0)
    for cell, score in cells.items():
        counts[CELLS[cell][0]] += score["n_samples"]
    return counts


def task_scores(values: dict[str, float | None]) -> dict[str, float | None]:
    """Eq. 5: mean of the task's columns that have a value."""
    out = {}
    for task, cols in TASK_COLUMNS.items():
        present = [values[c] for c in cols if values.get(c) is not None]
        out[task] = round(sum(present) / len(present), 2) if present else None
    return out


def weighted_average(scores: dict[str, float | None], weights: dict[str, int]) -> float | None:
    """Eq. 4; None unless every task has a score."""
    if any(scores[t] is None for t in TASK_COLUMNS) or not sum(weights.values()):
        return None
    return round(sum(scores[t] * weights[t] for t in TASK_COLUMNS) / sum(weights.values()), 2)


def details_path(score_path) -> Path:
    """The per-sample details written beside a score file (<cell>.json -> <cell>.details.jsonl)."""
    return Path(score_path).with_suffix(".details.jsonl")


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
    the columns, Eq. 5 and Eq. 4 recomputed per resample. (NaN, NaN) where the average has no
    value or a details file is missing."""
    values = column_values(cells)
    present = {task: [c for c in cols if values.get(c) is not None] for task, cols in TASK_COLUMNS.items()}
    weights = task_samples(cells)
    if weighted_average(task_scores(values), weights) is None:
        return (float("nan"), float("nan"))
    replicates = {}
    for cell, score in cells.items():
        columns = [(name, metric) for name, c, metric in COLUMNS if c == cell]
        path = details_path(score_paths[cell])
        if not path.exists():
            return (float("nan"), float("nan"))
        units = _column_units(path, [metric for _, metric in columns])
        if not len(units):
            continue
        sums = bootstrap_sums(units, derive_seed(score["bootstrap"]["seed"], model, cell, "Eq. 4"), resamples)
        for k, (name, _) in enumerate(columns):
            replicates[name] = eq3_values(sums[:, 3 * k:3 * k + 3])
    total = np.zeros(resamples)
    for task, cols in present.items():
        stacked = np.stack([replicates[c] for c in cols])
        have = ~np.isnan(stacked)
        with np.errstate(invalid="ignore"):
            total += weights[task] * np.where(have, stacked, 0).sum(axis=0) / have.sum(axis=0)
    return percentile_interval(total / sum(weights.values()))


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def table3(scores: dict, registry: dict, intervals: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(Table 3, task scores, Eq. 4 weights). Rows grouped by family, then by size; baselines last.
    `intervals` (model -> the average's 95 % interval) adds them to the task scores."""
    rows, task_rows = [], []
    weights = None
    def place(m):  # by family, then size; baselines last
        info = registry.get(m, {})
        return info.get("mode") == "baseline", info.get("family", m), info.get("params_b") or 0, m

    order = sorted(scores, key=place)
    for model in order:
        cells = scores[model]
        info = registry.get(model, {})
        values = column_values(cells)
        weights_m = task_samples(cells)
        weights = weights or weights_m
        per_task = task_scores(values)
        avg = weighted_average(per_task, weights_m)
        rows.append({"Model": model, "Family": info.get("family", ""), "Param (B)": info.get("params_b"),
                     "Avg score": avg, **values})
        task_rows.append({"Model": model, **{TASK_LABELS[t]: s for t, s in per_task.items()}, "Avg score (Eq. 4)": avg,
                          **({} if intervals is None else dict(zip(AVG_CI, intervals.get(model, (None, None)))))})
    return pd.DataFrame(rows), pd.DataFrame(task_rows), weights or {}


def ci_table(scores: dict, intervals: dict | None = None) -> pd.DataFrame:
    """Per model and column: value, interval, units and parse failures; the average's interval
    first where `intervals` has it."""
    rows = []
    for model, cells in sorted(scores.items()):
        if intervals and model in intervals:
            weights = task_samples(cells)
            rows.append({"Model": model, "Column": "Avg score (Eq. 4)", "Cell": "all",
                         "Value": weighted_average(task_scores(column_values(cells)), weights),
                         "CI95 low": intervals[model][0], "CI95 high": intervals[model][1],
                         "Samples": sum(weights.values()), "Unit": "samples (joint bootstrap, per cell)",
                         "Parse failures": sum(c["parse_failures"] for c in cells.values()),
                         "Missing predictions": sum(c["missing_predictions"] for c in cells.values()),
                         "Cell samples": sum(weights.values())})
        for name, cell, metric in COLUMNS:
            score = cells.get(cell)
            if not score:
                continue
            m = score["metrics"][metric]
            rows.append({"Model": model, "Column": name, "Cell": cell, "Value": m["value"],
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


def _markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".2f", missingval="–") + "\n"


def _write_table(stem: Path, table: pd.DataFrame, title: str, note: str, note_first: bool = False) -> None:
    """A table as <stem>.csv, <stem>.html (the report's page) and <stem>.md, with its title and
    its note (in the Markdown, before the table or after it)."""
    write_csv(stem.with_suffix(".csv"), table)
    write_table_html(stem.with_suffix(".html"), table, title, note)
    body = note + "\n\n" + _markdown(table) if note_first else _markdown(table) + "\n" + note + "\n"
    _write(stem.with_suffix(".md"), f"# {title}\n\n" + body)


def weights_note(weights: dict) -> str:
    total = sum(weights.values()) or 1
    parts = ", ".join(f"{TASK_LABELS[t]} {n} ({100 * n / total:.1f} %)" for t, n in weights.items())
    return (f"Avg score = Eq. 4: task scores (Eq. 5, the mean of each task's columns) weighted by the task's "
            f"test samples n_t: {parts}. Values in percent; \"–\" = no samples or not evaluated.")


def write_tables(out_dir, scores: dict, registry: dict, tables: tuple | None = None,
                 intervals: dict | None = None) -> None:
    """The tables of the report; `tables` is table3()'s result when the caller has it,
    `intervals` the averages' (average_interval)."""
    out_dir = Path(out_dir)
    table, tasks, weights = tables or table3(scores, registry, intervals)
    note = f"{weights_note(weights)} Made by SARChat-Bench {__version__}."
    _write_table(out_dir / "table3", table, "Table 3: SARChat-Bench results", note)
    latex = table.drop(columns=["Family"]).to_latex(index=False, float_format="%.2f", na_rep="--",
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
                     "" if len(comparison) else none)
    body = _markdown(comparison) if len(comparison) else none + "\n"
    _write(out_dir / "table3_vs_paper.md", "# Ours beside the paper's Table 3\n\n" + body)


MARKERS = "osD^v<>pPhX*"


def styles(keys: list[str]) -> dict[str, dict]:
    """A distinct colour and marker per key, a model or a family (20 colours x 12 markers
    before one pair repeats)."""
    tab20 = plt.get_cmap("tab20").colors
    colours = tab20[0::2] + tab20[1::2]  # the ten strong colours first, then their light pairs
    return {m: {"color": colours[i % len(colours)], "marker": MARKERS[(i // len(colours) + i) % len(MARKERS)]}
            for i, m in enumerate(keys)}


def _value(v):
    return np.nan if v is None or pd.isna(v) else float(v)


def _interval_bars(ax, x, values, bounds: list, **style) -> None:
    """Error bars from (low, high) intervals around `values` (None or NaN: no bar)."""
    lohi = np.array([b or (np.nan, np.nan) for b in bounds], dtype=float).reshape(-1, 2)
    if not np.isnan(lohi).all():
        ax.errorbar(x, values, yerr=np.abs(lohi.T - values), fmt="none", **style)


def radar_figure(tasks: pd.DataFrame, path, title="Task scores (Eq. 5) per model", low=0, baselines=()) -> None:
    """One closed line per model; a missing task score is a gap in its line, not a 0. Baselines
    are drawn as dashed grey reference lines. `low` is the radial scale's start (the paper's: 30)."""
    labels = list(TASK_LABELS.values())
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(7, 7), subplot_kw={"polar": True})
    style_of = styles([m for m in tasks["Model"] if m not in baselines])
    for _, row in tasks.iterrows():
        values = [_value(row[label]) for label in labels]
        if row["Model"] in baselines:
            style = {"color": "0.45", "linestyle": "--", "marker": None}
        else:
            style = {**style_of[row["Model"]], "linestyle": "-"}
        ax.plot(angles + angles[:1], values + values[:1], label=row["Model"], markersize=4, linewidth=1.3, **style)
    ax.set_xticks(angles, labels, fontsize=8)
    ax.set_ylim(low, 100)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.05), fontsize=7, ncol=1 + len(tasks) // 20)
    save_figure(fig, path)


def params_figure(table: pd.DataFrame, path, title="Average score vs parameters, per family", baselines=(),
                  intervals: dict | None = None) -> None:
    """Average score against size, a line per family, each point labelled with its model and,
    where `intervals` has it, its 95 % interval; baselines (no size) as dashed horizontal
    reference lines."""
    fig, ax = plt.subplots(figsize=(8, 5))
    sized = table[~table["Model"].isin(baselines)].dropna(subset=["Param (B)"])
    style_of = styles(sorted(sized["Family"].unique()))
    intervals = intervals or {}
    for family, group in sized.groupby("Family"):
        group = group.sort_values("Param (B)")
        averages = np.array([_value(v) for v in group["Avg score"]])
        ax.plot(group["Param (B)"], averages, linestyle="--", label=family, **style_of[family])
        _interval_bars(ax, group["Param (B)"], averages, [intervals.get(m) for m in group["Model"]],
                       capsize=3, elinewidth=0.9, color=style_of[family]["color"])
        for _, row in group.iterrows():
            if not np.isnan(_value(row["Avg score"])):
                ax.annotate(row["Model"], (row["Param (B)"], _value(row["Avg score"])), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
    for _, row in table[table["Model"].isin(baselines)].iterrows():
        if not np.isnan(_value(row["Avg score"])):
            ax.axhline(_value(row["Avg score"]), color="0.45", linestyle=":", label=f"{row['Model']} (no model)")
    ax.set_xscale("log")  # 1B to 78B models, and the demo's tiny ones
    ax.set_xlabel("Parameters (billions, log scale)")
    ax.set_ylabel("Average score (Eq. 4)")
    ax.set_title(title)
    ax.grid(alpha=0.4)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def per_category_figure(scores: dict, path, baselines=()) -> None:
    """Per-category accuracy of three Table 3 columns: a point per model with its 95 %
    interval (score files' per_category_ci95), models side by side within each category, and
    the category's test samples under its name; baselines as grey squares. Points and bars
    stay readable at 16+ models, where bars of 1/16 of a category's width do not."""
    panels = (("identify_multi", "category", "Identification (multi), category"),
              ("refer_single", "iou50", "Referring (single), IoU=.5"),
              ("count", "only_count", "Counting, only count"))
    models = sorted(scores, key=lambda m: (m in baselines, m))
    style_of = styles([m for m in models if m not in baselines])
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.6), sharey=True)
    def part(model, cell, metric, key):
        return scores[model].get(cell, {}).get(key, {}).get(metric, {})

    for ax, (cell, metric, title) in zip(axes, panels):
        categories = sorted({c for m in models for c in part(m, cell, metric, "per_category")})
        step = 0.8 / max(len(models), 1)
        for i, model in enumerate(models):
            values, bounds = part(model, cell, metric, "per_category"), part(model, cell, metric, "per_category_ci95")
            x = np.arange(len(categories)) - 0.4 + (i + 0.5) * step
            y = np.array([_value(values.get(c)) for c in categories])
            style = ({"color": "0.45", "marker": "s"} if model in baselines else style_of[model])
            ax.plot(x, y, linestyle="none", markersize=4, label=model, **style)
            _interval_bars(ax, x, y, [bounds.get(c) for c in categories], elinewidth=0.8, color=style["color"])
        counts = next((part(m, cell, metric, "per_category_samples") for m in models
                       if part(m, cell, metric, "per_category_samples")), {})
        ax.set_xticks(range(len(categories)),
                      [f"{c}\nn={counts[c]:,}" if c in counts else c for c in categories], fontsize=8)
        for edge in np.arange(len(categories) - 1) + 0.5:
            ax.axvline(edge, color="0.85", linewidth=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.4)
    axes[0].set_ylabel("% (95 % interval)")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), ncol=1 + len(models) // 20)
    save_figure(fig, path)


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


def write_figures(out_dir, scores: dict, table: pd.DataFrame, tasks: pd.DataFrame, baselines=(),
                  radar_min: float = 0, intervals: dict | None = None) -> None:
    out_dir = Path(out_dir)
    radar_figure(tasks, out_dir / "radar.png", low=radar_min, baselines=baselines)
    params_figure(table, out_dir / "avg_vs_params.png", baselines=baselines, intervals=intervals)
    per_category_figure(scores, out_dir / "per_category.png", baselines=baselines)
    # The paper's numbers through the same code: a reference for reading ours (Figure 1, right).
    paper_table, paper_tasks = paper_tables()
    radar_figure(paper_tasks[paper_tasks.Model.isin(["internvl2.5-8b", "deepseek-vl-7b", "phi3.5-vision",
                                                     "llava1.5-7b", "mplug-owl3-7b", "glm-edge-v-5b", "qwen2-vl-7b"])],
                 out_dir / "paper_radar.png", title="The paper's task scores (Table 3, Eq. 5)", low=30)
    params_figure(paper_table, out_dir / "paper_avg_vs_params.png", title="The paper's average score vs parameters")


def report(tables_dir: str | os.PathLike, figures_dir: str | os.PathLike, score_files: dict, registry: dict,
           radar_min: float = 0) -> None:
    scores = load_scores(score_files)
    intervals = {model: average_interval(model, cells, score_files[model]) for model, cells in scores.items()}
    tables = table3(scores, registry, intervals)
    write_tables(tables_dir, scores, registry, tables, intervals)
    baselines = [m for m, info in registry.items() if info.get("mode") == "baseline"]
    write_figures(figures_dir, scores, *tables[:2], baselines=baselines, radar_min=radar_min, intervals=intervals)
