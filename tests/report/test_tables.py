"""The report's tables: Table 3 as the paper lays it out, the intervals, our numbers beside the
paper's."""

import pytest
from sarchat_bench.report.tables import write_tables


def fake_score(cell_metrics, n=10):
    return {"n_samples": n, "parse_failures": 1, "missing_predictions": 0,
            "metrics": {m: {"value": v, "ci95": [None, None] if v is None else [v - 5, v + 5], "n_samples": n,
                            "unit": "samples"}
                        for m, v in cell_metrics.items()}}


@pytest.fixture
def scores():
    cells = {"count": {"only_count": 70.0, "instance_iou25": 60.0, "instance_iou50": 50.0},
             "grounding_multi": {"abstract_position": 80.0, "box_category_iou50": 60.0, "box_category_iou25": 70.0},
             "grounding_single": {"abstract_position": None, "box_category_iou50": 85.0, "box_category_iou25": 90.0},
             "identify_multi": {"category": 98.0}, "identify_single": {"category": 99.0},
             "refer_multi": {"iou25": 35.0, "iou50": 20.0}, "refer_single": {"iou25": 70.0, "iou50": 55.0},
             "describe": {"phrase": 60.0}, "classify": {"category": 97.0}}
    return {"qwen2-vl-7b": {c: fake_score(m) for c, m in cells.items()}}


def test_tables_and_paper_comparison(scores, tmp_path):
    write_tables(tmp_path, scores, {"qwen2-vl-7b": {"family": "Qwen2-VL", "params_b": 7, "paper_row": "qwen2-vl-7b"}})
    md = (tmp_path / "table3.md").read_text()
    assert "| qwen2-vl-7b" in md and "Only count" in md and "weighted by the task's test samples" in md
    versus = (tmp_path / "table3_vs_paper.md").read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in versus.splitlines() if line.startswith("| qwen")]
    assert ["qwen2-vl-7b", "qwen2-vl-7b", "Only count", "70.00", "72.79", "-2.79"] in rows
    ci = (tmp_path / "table3_ci.md").read_text()
    assert "65.00" in ci and "Parse failures" in ci
    assert "\\begin{tabular}" in (tmp_path / "table3.tex").read_text()


def test_the_note_states_the_weights_each_row_used(scores, tmp_path):
    """Every row's Eq. 4 uses its own test samples: the note says so where they differ (a model
    scored on fewer test samples), instead of printing the first row's weights for all."""
    from sarchat_bench.report.tables import table3, weights_note

    scores["other"] = {c: {**s, "n_samples": 5 if c == "classify" else s["n_samples"]}
                       for c, s in scores["qwen2-vl-7b"].items()}
    _, _, weights = table3(scores, {})
    note = weights_note(weights)
    assert "which differ between rows here: " in note
    assert "qwen2-vl-7b: Instance Counting 10 " in note and "other: Instance Counting 10 " in note
    assert "Classification 10 (" in note and "Classification 5 (" in note
    same = weights_note({"a": weights["qwen2-vl-7b"], "b": weights["qwen2-vl-7b"]})
    assert same.startswith("Avg score = Eq. 4: task scores (Eq. 5, the mean of each task's columns) weighted by "
                           "the task's test samples n_t: Instance Counting 10 (")


def test_a_tiny_models_size_shows_and_a_baseline_has_none(scores, tmp_path):
    """Param (B) as the registry gives it: 0.0002 for a tiny model (two decimals printed 0.00),
    "–" for a baseline without a size (it printed "nan"), in every form of Table 3; the CSV keeps
    the number and leaves the cell empty."""
    scores["tiny"] = scores["majority-answer"] = scores["qwen2-vl-7b"]
    registry = {"qwen2-vl-7b": {"family": "Qwen2-VL", "params_b": 7}, "tiny": {"family": "Tiny", "params_b": 0.0002},
                "majority-answer": {"family": "Baseline", "mode": "baseline"}}
    write_tables(tmp_path, scores, registry)

    def param(line, sep="|"):
        return [c.strip() for c in line.strip(sep).split(sep)][2]

    md = {line.split("|")[1].strip(): param(line) for line in (tmp_path / "table3.md").read_text().splitlines()
          if line.startswith("| ") and not line.startswith("| Model")}
    assert (md["tiny"], md["qwen2-vl-7b"], md["majority-answer"]) == ("0.0002", "7", "–")
    html = (tmp_path / "table3.html").read_text()
    assert '<td>tiny</td><td>Tiny</td><td class="num">0.0002</td>' in html
    assert '<td>majority-answer</td><td>Baseline</td><td class="num">\u2013</td>' in html and "nan" not in html
    tex = (tmp_path / "table3.tex").read_text()
    assert "tiny & 0.0002 &" in tex and "majority-answer & -- &" in tex
    csv = {line.split(",")[0]: line.split(",")[2] for line in (tmp_path / "table3.csv").read_text().splitlines()}
    assert (csv["tiny"], csv["majority-answer"]) == ("0.0002", "")


def test_acc50_rows_are_in_the_interval_table_not_in_table3(scores, tmp_path):
    """RefCOCO-style Acc@0.5 of the single-target box cells: a row per model in the interval
    table, with its own unit; Table 3 keeps the paper's columns (Eq. 3) only."""
    from sarchat_bench.report.tables import ci_table

    for cell, value in (("grounding_single", 91.0), ("refer_single", 71.0)):
        scores["qwen2-vl-7b"][cell]["metrics"]["first_box_acc50"] = {
            "value": value, "ci95": [value - 5, value + 5], "n_samples": 10, "unit": "samples (their first box)"}
    scores["old-run"] = without_acc50(scores["qwen2-vl-7b"])  # score files made before the metric
    table = ci_table(scores)
    rows = table[table["Column"].str.endswith("Acc@0.5")]
    assert rows[["Model", "Column", "Cell", "Value", "Unit"]].values.tolist() == [
        ["qwen2-vl-7b", "Ground single Acc@0.5", "grounding_single", 91.0, "samples (their first box)"],
        ["qwen2-vl-7b", "Ref single Acc@0.5", "refer_single", 71.0, "samples (their first box)"]]
    write_tables(tmp_path, scores, {})
    assert "Ref single Acc@0.5" in (tmp_path / "table3_ci.md").read_text()
    assert "Acc@0.5" not in (tmp_path / "table3.csv").read_text()


def without_acc50(cells):
    return {c: {**s, "metrics": {m: v for m, v in s["metrics"].items() if m != "first_box_acc50"}}
            for c, s in cells.items()}
