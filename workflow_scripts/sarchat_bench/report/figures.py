"""The benchmark's figures: the radar of task scores and the average score against model size
(the paper's Figure 1), the same two of the paper's own numbers, and a per-category breakdown
with intervals."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sarchat_bench.core.io import save_figure  # noqa: E402
from sarchat_bench.paper.table3 import TASK_LABELS  # noqa: E402
from sarchat_bench.report.tables import paper_tables  # noqa: E402

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


