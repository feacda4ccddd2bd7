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
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import __version__  # noqa: E402
from .html_tables import write_table_html  # noqa: E402
from .io import atomic_output, read_json, save_figure, write_csv  # noqa: E402
from .stats import PAPER  # noqa: E402
from .tasks import CELLS  # noqa: E402

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


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def table3(scores: dict, registry: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(Table 3, task scores, Eq. 4 weights). Rows grouped by family, then by size; baselines last."""
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
        task_rows.append({"Model": model, **{TASK_LABELS[t]: s for t, s in per_task.items()}, "Avg score (Eq. 4)": avg})
    return pd.DataFrame(rows), pd.DataFrame(task_rows), weights or {}


def ci_table(scores: dict) -> pd.DataFrame:
    rows = []
    for model, cells in sorted(scores.items()):
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


def _write(path, text: str) -> None:
    with atomic_output(path, "w") as out:
        out.write(text)


def _markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".2f", missingval="–") + "\n"


def weights_note(weights: dict) -> str:
    total = sum(weights.values()) or 1
    parts = ", ".join(f"{TASK_LABELS[t]} {n} ({100 * n / total:.1f} %)" for t, n in weights.items())
    return (f"Avg score = Eq. 4: task scores (Eq. 5, the mean of each task's columns) weighted by the task's "
            f"test samples n_t: {parts}. Values in percent; \"–\" = no samples or not evaluated.")


def write_tables(out_dir, scores: dict, registry: dict, tables: tuple | None = None) -> None:
    """The tables of the report; `tables` is table3()'s result when the caller has it."""
    out_dir = Path(out_dir)
    table, tasks, weights = tables or table3(scores, registry)
    note = f"{weights_note(weights)} Made by SARChat-Bench {__version__}."
    write_csv(out_dir / "table3.csv", table)
    write_table_html(out_dir / "table3.html", table, "Table 3: SARChat-Bench results", note)
    _write(out_dir / "table3.md", "# Table 3: SARChat-Bench results\n\n" + _markdown(table) + "\n" + note + "\n")
    latex = table.drop(columns=["Family"]).to_latex(index=False, float_format="%.2f", na_rep="--",
                                                    caption="SARChat-Bench results (Table 3 layout). " + note,
                                                    label="tab:sarchat-bench")
    _write(out_dir / "table3.tex", latex)
    write_csv(out_dir / "task_scores.csv", tasks)
    write_table_html(out_dir / "task_scores.html", tasks, "Task scores (Eq. 5) and average (Eq. 4)", note)
    _write(out_dir / "task_scores.md",
           "# Task scores (Eq. 5) and average (Eq. 4)\n\n" + _markdown(tasks) + "\n" + note + "\n")
    ci = ci_table(scores)
    write_csv(out_dir / "table3_ci.csv", ci)
    write_table_html(out_dir / "table3_ci.html", ci, "Confidence intervals and parse failures",
                     "95 % percentile bootstrap over samples (1000 resamples, seeded). Parse failures count as "
                     "wrong and stay in the denominator.")
    _write(out_dir / "table3_ci.md", "# Confidence intervals and parse failures\n\n95 % percentile bootstrap over "
           "samples (1000 resamples, seeded). Parse failures count as wrong and stay in the denominator.\n\n"
           + _markdown(ci))
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


def params_figure(table: pd.DataFrame, path, title="Average score vs parameters, per family", baselines=()) -> None:
    """Average score against size, a line per family, each point labelled with its model;
    baselines (no size) as dashed horizontal reference lines."""
    fig, ax = plt.subplots(figsize=(8, 5))
    sized = table[~table["Model"].isin(baselines)].dropna(subset=["Param (B)"])
    style_of = styles(sorted(sized["Family"].unique()))
    for family, group in sized.groupby("Family"):
        group = group.sort_values("Param (B)")
        ax.plot(group["Param (B)"], [_value(v) for v in group["Avg score"]], linestyle="--", label=family,
                **style_of[family])
        for _, row in group.iterrows():
            if not np.isnan(_value(row["Avg score"])):
                ax.annotate(row["Model"], (row["Param (B)"], _value(row["Avg score"])), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
    for _, row in table[table["Model"].isin(baselines)].iterrows():
        if not np.isnan(_value(row["Avg score"])):
            ax.axhline(_value(row["Avg score"]), color="0.45", linestyle=":", label=f"{row['Model']} (no model)")
    ax.set_xlabel("Parameters (billions)")
    ax.set_ylabel("Average score (Eq. 4)")
    ax.set_title(title)
    ax.grid(alpha=0.4)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def per_category_figure(scores: dict, path) -> None:
    """Per-category accuracy of identification (multi) and single-target referring (IoU .5)."""
    panels = (("identify_multi", "category", "Identification (multi), category"),
              ("refer_single", "iou50", "Referring (single), IoU=.5"),
              ("count", "only_count", "Counting, only count"))
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.8), sharey=True)
    for ax, (cell, metric, title) in zip(axes, panels):
        models = sorted(scores)
        categories = sorted({c for m in models
                             for c in scores[m].get(cell, {}).get("per_category", {}).get(metric, {})})
        width = 0.8 / max(len(models), 1)
        for i, model in enumerate(models):
            values = scores[model].get(cell, {}).get("per_category", {}).get(metric, {})
            ax.bar([x + i * width for x in range(len(categories))],
                   [values.get(c) if values.get(c) is not None else 0 for c in categories], width, label=model)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(categories))], categories, rotation=30)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("%")
    axes[-1].legend(fontsize=7)
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
                  radar_min: float = 0) -> None:
    out_dir = Path(out_dir)
    radar_figure(tasks, out_dir / "radar.png", low=radar_min, baselines=baselines)
    params_figure(table, out_dir / "avg_vs_params.png", baselines=baselines)
    per_category_figure(scores, out_dir / "per_category.png")
    # The paper's numbers through the same code: a reference for reading ours (Figure 1, right).
    paper_table, paper_tasks = paper_tables()
    radar_figure(paper_tasks[paper_tasks.Model.isin(["internvl2.5-8b", "deepseek-vl-7b", "phi3.5-vision",
                                                     "llava1.5-7b", "mplug-owl3-7b", "glm-edge-v-5b", "qwen2-vl-7b"])],
                 out_dir / "paper_radar.png", title="The paper's task scores (Table 3, Eq. 5)", low=30)
    params_figure(paper_table, out_dir / "paper_avg_vs_params.png", title="The paper's average score vs parameters")


def report(tables_dir: str | os.PathLike, figures_dir: str | os.PathLike, score_files: dict, registry: dict,
           radar_min: float = 0) -> None:
    scores = load_scores(score_files)
    tables = table3(scores, registry)
    write_tables(tables_dir, scores, registry, tables)
    baselines = [m for m, info in registry.items() if info.get("mode") == "baseline"]
    write_figures(figures_dir, scores, *tables[:2], baselines=baselines, radar_min=radar_min)
