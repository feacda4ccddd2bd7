"""Dataset statistics beside the paper's printed numbers: Tables 1, 2, 4 and 5, the filter and
generation reports, and figures of the category and task distributions.

Tables are lists of rows (dicts), written as CSV and Markdown; figures are drawn by a job of
their own. Both jobs come last in the build, after the training mix, and run side by side, so
each imports only what it needs (pandas is not needed for tables of a dozen rows).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import numpy as np
from tabulate import tabulate

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.html_tables import write_table_html
from sarchat_bench.core.io import atomic_output, gc_paused, read_json, save_figure
from sarchat_bench.dataset.annotations import iter_boxes
from sarchat_bench.paper.geometry import SHAPE_TALL_ABOVE, SHAPE_WIDE_MAX, aspect_ratio
from sarchat_bench.paper.printed import PAPER
from sarchat_bench.paper.tasks import CATEGORIES, TASKS

ROLES = ("train", "test")
Rows = list[dict]


def load_boxes(paths: list) -> dict[str, np.ndarray]:
    """The category and aspect ratio (Eq. 2) of every box of the box tables: what Tables 2 and
    4 need."""
    categories, ratios = [], []
    with gc_paused():
        for category, box in iter_boxes(paths):
            categories.append(category)
            ratios.append(aspect_ratio(box))
    return {"category": np.array(categories, dtype=str), "ar": np.array(ratios, dtype=float)}


def boxes_by_category(report_paths: list) -> Counter:
    """Kept boxes per category, added up over the annotation reports of one role's splits."""
    counts: Counter = Counter()
    for path in report_paths:
        counts.update(_report(path)["boxes_by_category"])
    return counts


def _report(path) -> dict:
    report = read_json(path)
    if not isinstance(report, dict) or "boxes_by_category" not in report:
        raise InputError(path, "not an annotation report of this version (no 'boxes_by_category'); rebuild it with "
                               "the annotations step")
    return report


def table1(counts: dict[str, Counter]) -> Rows:
    """Boxes per category for each role (train, test), from the annotation reports."""
    rows = []
    for cat in CATEGORIES:
        row = {"category": cat}
        for role in ROLES:
            n, total = counts[role].get(cat, 0), max(sum(counts[role].values()), 1)
            paper = PAPER["table1_categories"][role][cat]
            paper_total = sum(PAPER["table1_categories"][role].values())
            row.update({f"{role}_boxes": n, f"{role}_pct": round(100 * n / total, 2),
                        f"{role}_paper": paper, f"{role}_paper_pct": round(100 * paper / paper_total, 2)})
        rows.append(row)
    return rows


def table2(boxes: dict[str, dict]) -> Rows:
    rows = []
    for metric, fn, least in (("mean", np.mean, 1), ("median", np.median, 1), ("sd", _sample_sd, 2)):
        row = {"metric": metric}
        for role in ROLES:
            ar = boxes[role]["ar"]
            row[role] = round(float(fn(ar)), 3) if len(ar) >= least else None
            row[f"{role}_paper"] = PAPER["table2_aspect_ratio"][role][metric]
        row["diff_rate_pct"] = (round(100 * (row["test"] - row["train"]) / row["train"], 2)
                                if row["train"] and row["test"] is not None else None)
        rows.append(row)
    return rows


def _sample_sd(values: np.ndarray) -> float:
    return np.std(values, ddof=1)


def table4(boxes: dict[str, dict]) -> Rows:
    rows = []
    for cat in CATEGORIES:
        for role in ROLES:
            ar = boxes[role]["ar"][boxes[role]["category"] == cat]
            paper = PAPER["table4_aspect_ratio_by_category"][role][cat]
            n = len(ar)
            bins = [int((ar <= SHAPE_WIDE_MAX).sum()), int(((ar > SHAPE_WIDE_MAX) & (ar <= SHAPE_TALL_ABOVE)).sum()),
                    int((ar > SHAPE_TALL_ABOVE).sum())]
            rows.append({
                "category": cat, "set": role, "total": n,
                "mean_ar": round(float(ar.mean()), 3) if n else None,
                "median_ar": round(float(np.median(ar)), 3) if n else None,
                "sd_ar": round(float(_sample_sd(ar)), 3) if n > 1 else None,
                "pct_ar_le_0.67": round(100 * bins[0] / n, 2) if n else None,
                "pct_ar_0.67_1.5": round(100 * bins[1] / n, 2) if n else None,
                "pct_ar_gt_1.5": round(100 * bins[2] / n, 2) if n else None,
                "paper_total": paper["total"], "paper_mean_ar": paper["mean"], "paper_bins": paper["bins"],
            })
    return rows


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


def table5(summaries: dict[str, list[dict]]) -> Rows:
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
    return rows


def generation_report(summaries: dict[str, list[dict]]) -> Rows:
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
    return rows


def filter_report(report_paths: list) -> Rows:
    rows = []
    for path in report_paths:
        rep = _report(path)
        rows.append({"split": rep["split"], "rule": "(input)", "removed": 0,
                     "images": rep["images_in"], "boxes": rep["boxes_in"], "meaning": rep["source"], "examples": ""})
        for rule in rep["rules"]:
            rows.append({"split": rep["split"], "rule": rule["rule"], "removed": rule["removed"], "images": None,
                         "boxes": None, "meaning": rule["meaning"], "examples": "; ".join(rule["examples"])})
        rows.append({"split": rep["split"], "rule": "(kept)", "removed": 0, "images": rep["images_out"],
                     "boxes": rep["boxes_out"], "meaning": "", "examples": ""})
    return rows


def _bar(ax, labels, series: dict, title, ylabel):
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(labels))], values, width, label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))], labels, rotation=20)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend()


def distribution_figure(table: Rows, label: str, title: str, ylabel: str, path) -> None:
    """This build's train/test shares beside the paper's (Tables 1 and 5)."""
    import matplotlib.pyplot as plt  # here: only the figures job draws

    fig, ax = plt.subplots(figsize=(7, 3.6))
    series = {"train (this build)": "train_pct", "test (this build)": "test_pct", "train (paper)": "train_paper_pct",
              "test (paper)": "test_paper_pct"}
    _bar(ax, [row[label] for row in table], {name: [row[key] for row in table] for name, key in series.items()},
         title, ylabel)
    save_figure(fig, path)


def write_table(rows: Rows, stem: str | os.PathLike, title: str = "", note: str = "") -> None:
    """A table as CSV (None as an empty field), as a Markdown table and as an HTML page; `note`
    (what the numbers mean) above the table of the last two."""
    with atomic_output(f"{stem}.csv", "w") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with atomic_output(f"{stem}.md", "w") as out:
        if note:
            out.write(f"# {title or Path(stem).name}\n\n{note}\n\n")
        out.write(tabulate(rows, headers="keys", tablefmt="pipe", missingval="") + "\n")
    write_table_html(f"{stem}.html", rows, title or Path(stem).name, note)


def _kept(reports: dict[str, list]) -> dict[str, Counter]:
    return {role: boxes_by_category(reports[role]) for role in ROLES}


def build_tables(out_dir, tables: dict[str, list], reports: dict[str, list], summary_paths: dict[str, list]) -> None:
    """Tables 1, 2, 4 and 5, the filter report and the generation report. `tables`, `reports`
    and `summary_paths` map a role (train, test) to its box tables, annotation reports and
    generation summaries; Table 5 counts the summaries, so 2M records are not read again."""
    out_dir = Path(out_dir)
    boxes = {role: load_boxes(tables[role]) for role in ROLES}
    summaries = read_summaries(summary_paths)
    write_table(table1(_kept(reports)), out_dir / "table1_categories", "Table 1: boxes per category")
    write_table(table2(boxes), out_dir / "table2_aspect_ratio", "Table 2: aspect ratio (h/w)")
    write_table(table4(boxes), out_dir / "table4_aspect_ratio_by_category", "Table 4: aspect ratio per category")
    write_table(table5(summaries), out_dir / "table5_tasks", "Table 5: samples per task")
    write_table(filter_report(list(dict.fromkeys(reports["train"] + reports["test"]))), out_dir / "filter_report",
                "Filter report: what each annotation filter removed")
    write_table(generation_report(summaries), out_dir / "generation_report",
                "Generation report: records per file and skipped images")


def build_figures(out_dir, reports: dict[str, list], summary_paths: dict[str, list]) -> None:
    """The category (Table 1) and task (Table 5) distributions as figures."""
    out_dir = Path(out_dir)
    distribution_figure(table1(_kept(reports)), "category", "Category distribution of boxes (Table 1)", "% of boxes",
                        out_dir / "categories.png")
    distribution_figure(table5(read_summaries(summary_paths)), "task", "Task distribution of samples (Table 5)",
                        "% of samples", out_dir / "tasks.png")
