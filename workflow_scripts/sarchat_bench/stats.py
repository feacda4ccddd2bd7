"""Dataset statistics beside the paper's printed numbers: Tables 1, 2, 4 and 5, the filter
report, and figures of the category and task distributions."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from .annotations import CATEGORIES, iter_boxes  # noqa: E402
from .geometry import SHAPE_TALL_ABOVE, SHAPE_WIDE_MAX, aspect_ratio  # noqa: E402
from .io import InputError, atomic_output, gc_paused, read_json, save_figure, write_csv  # noqa: E402
from .tasks import TASKS  # noqa: E402

PAPER = yaml.safe_load((Path(__file__).parent / "reference" / "paper_tables.yaml").read_text())
ROLES = ("train", "test")


def load_boxes(paths: list) -> pd.DataFrame:
    """One row per box of the box tables: its category and aspect ratio (Eq. 2), all the
    tables need."""
    categories, ratios = [], []
    with gc_paused():
        for category, box in iter_boxes(paths):
            categories.append(category)
            ratios.append(aspect_ratio(box))
    return pd.DataFrame({"category": pd.Categorical(categories), "ar": ratios})


def table1(boxes: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for cat in CATEGORIES:
        row = {"category": cat}
        for role in ROLES:
            counts = boxes[role].category.value_counts()
            n, total = int(counts.get(cat, 0)), max(len(boxes[role]), 1)
            paper = PAPER["table1_categories"][role][cat]
            paper_total = sum(PAPER["table1_categories"][role].values())
            row.update({f"{role}_boxes": n, f"{role}_pct": round(100 * n / total, 2),
                        f"{role}_paper": paper, f"{role}_paper_pct": round(100 * paper / paper_total, 2)})
        rows.append(row)
    return pd.DataFrame(rows)


def table2(boxes: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for metric, fn in (("mean", "mean"), ("median", "median"), ("sd", "std")):
        row = {"metric": metric}
        for role in ROLES:
            row[role] = round(float(getattr(boxes[role].ar, fn)()), 3) if len(boxes[role]) else None
            row[f"{role}_paper"] = PAPER["table2_aspect_ratio"][role][metric]
        row["diff_rate_pct"] = (round(100 * (row["test"] - row["train"]) / row["train"], 2)
                                if row["train"] and row["test"] is not None else None)
        rows.append(row)
    return pd.DataFrame(rows)


def table4(boxes: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for cat in CATEGORIES:
        for role in ROLES:
            ar = boxes[role].loc[boxes[role].category == cat, "ar"]
            paper = PAPER["table4_aspect_ratio_by_category"][role][cat]
            n = len(ar)
            bins = [(ar <= SHAPE_WIDE_MAX).sum(), ((ar > SHAPE_WIDE_MAX) & (ar <= SHAPE_TALL_ABOVE)).sum(),
                    (ar > SHAPE_TALL_ABOVE).sum()]
            rows.append({
                "category": cat, "set": role, "total": n,
                "mean_ar": round(float(ar.mean()), 3) if n else None,
                "median_ar": round(float(ar.median()), 3) if n else None,
                "sd_ar": round(float(ar.std()), 3) if n > 1 else None,
                "pct_ar_le_0.67": round(100 * bins[0] / n, 2) if n else None,
                "pct_ar_0.67_1.5": round(100 * bins[1] / n, 2) if n else None,
                "pct_ar_gt_1.5": round(100 * bins[2] / n, 2) if n else None,
                "paper_total": paper["total"], "paper_mean_ar": paper["mean"], "paper_bins": paper["bins"],
            })
    return pd.DataFrame(rows)


def read_summaries(paths: dict[str, list]) -> dict[str, list[dict]]:
    """{role: [file summary, ...]} from the generator jobs' summary files."""
    out: dict[str, list[dict]] = {}
    for role, role_paths in paths.items():
        for path in role_paths:
            summary = read_json(path)
            if not isinstance(summary, dict) or not isinstance(summary.get("files"), list):
                raise InputError(path, "not a generation summary (expected {\"files\": [...]})")
            out.setdefault(role, []).extend(summary["files"])
    return out


def table5(summaries: dict[str, list[dict]]) -> pd.DataFrame:
    """Samples per task, from the generator jobs' summaries (shards and test cells add up)."""
    counts = {role: dict.fromkeys(TASKS, 0) for role in ROLES}
    for role, files in summaries.items():
        for summary in files:
            counts[role][summary["task"]] += summary["records"]
    rows = []
    for task in TASKS:
        row = {"task": task}
        for role in ROLES:
            total = max(sum(counts[role].values()), 1)
            paper = PAPER["table5_tasks"][role][task]
            row.update({role: counts[role][task], f"{role}_pct": round(100 * counts[role][task] / total, 2),
                        f"{role}_paper": paper,
                        f"{role}_paper_pct": round(100 * paper / sum(PAPER["table5_tasks"][role].values()), 2)})
        rows.append(row)
    return pd.DataFrame(rows)


def generation_report(summaries: dict[str, list[dict]]) -> pd.DataFrame:
    """Per generated file: images in, records out, and the images a task's own filters skipped
    (the description filters of §3.2(2)), so that nothing leaves the build uncounted."""
    rows = []
    for role in ROLES:
        for summary in summaries.get(role, []):
            rows.append({"set": role, "file": summary["file"], "task": summary["task"],
                         "variant": summary["variant"] or "all", "images": summary["images"],
                         "records": summary["records"],
                         "images_skipped": sum(summary["skipped"].values()),
                         "skip_reasons": "; ".join(f"{k}: {v}" for k, v in summary["skipped"].items())})
    return pd.DataFrame(rows)


def filter_report(report_paths: list) -> pd.DataFrame:
    rows = []
    for path in report_paths:
        rep = read_json(path)
        rows.append({"split": rep["split"], "rule": "(input)", "removed": 0,
                     "images": rep["images_in"], "boxes": rep["boxes_in"], "meaning": rep["source"], "examples": ""})
        for rule in rep["rules"]:
            rows.append({"split": rep["split"], "rule": rule["rule"], "removed": rule["removed"], "images": None,
                         "boxes": None, "meaning": rule["meaning"], "examples": "; ".join(rule["examples"])})
        rows.append({"split": rep["split"], "rule": "(kept)", "removed": 0, "images": rep["images_out"],
                     "boxes": rep["boxes_out"], "meaning": "", "examples": ""})
    return pd.DataFrame(rows)


def _bar(ax, labels, series: dict, title, ylabel):
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(labels))], values, width, label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))], labels, rotation=20)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend()


def distribution_figure(table: pd.DataFrame, label: str, title: str, ylabel: str, path) -> None:
    """This build's train/test shares beside the paper's (Tables 1 and 5)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    _bar(ax, list(table[label]), {"train (this build)": table.train_pct, "test (this build)": table.test_pct,
                                  "train (paper)": table.train_paper_pct, "test (paper)": table.test_paper_pct},
         title, ylabel)
    save_figure(fig, path)


def write_table(df: pd.DataFrame, stem: str | os.PathLike) -> None:
    write_csv(f"{stem}.csv", df)
    with atomic_output(f"{stem}.md", "w") as out:
        out.write(df.to_markdown(index=False) + "\n")


def build_stats(out_dir, tables: dict[str, list], reports: list, summary_paths: dict[str, list]) -> None:
    """Every statistic of the build: the box statistics and the task statistics.

    One job writes both: the task statistics wait for the training mix, the build's longest
    step, and the box statistics, run beside them, share their half-second of imports."""
    build_box_stats(out_dir, tables, reports)
    build_task_stats(out_dir, summary_paths)


def build_box_stats(out_dir, tables: dict[str, list], reports: list) -> None:
    """Tables 1, 2 and 4, the filter report and the category figure: they need only the boxes.
    `tables` maps a role (train, test) to its box tables."""
    out_dir = Path(out_dir)
    boxes = {role: load_boxes(tables[role]) for role in ROLES}
    t1 = table1(boxes)
    write_table(t1, out_dir / "table1_categories")
    write_table(table2(boxes), out_dir / "table2_aspect_ratio")
    write_table(table4(boxes), out_dir / "table4_aspect_ratio_by_category")
    write_table(filter_report(reports), out_dir / "filter_report")
    distribution_figure(t1, "category", "Category distribution of boxes (Table 1)", "% of boxes",
                        out_dir / "categories.png")


def build_task_stats(out_dir, summary_paths: dict[str, list]) -> None:
    """Table 5, the generation report and the task figure, from the generator jobs' summaries
    (they know their record counts, so 2M records need not be read again)."""
    out_dir = Path(out_dir)
    summaries = read_summaries(summary_paths)
    t5 = table5(summaries)
    write_table(t5, out_dir / "table5_tasks")
    write_table(generation_report(summaries), out_dir / "generation_report")
    distribution_figure(t5, "task", "Task distribution of samples (Table 5)", "% of samples", out_dir / "tasks.png")
