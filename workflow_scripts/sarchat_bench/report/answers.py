"""The answer browser: for each model and test file, a page of samples with the image, the
question, the model's answer, the reference answer and the scorer's verdict, and for box tasks
the true boxes (green) and the model's boxes (red) drawn on the image, as in the paper's
Figure 3: one self-contained page (its images inside) per model and test file, small enough for
the report to show. Unparsed answers come first, then wrong, partly right and right ones; within
each group the samples are in a fixed pseudo-random order (by a hash of their id), so the page
is the same on every run and a paper-scale test file gives `per_cell` samples."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import logging
import os
from pathlib import Path

from PIL import Image, ImageDraw

from sarchat_bench.core.io import atomic_output, read_json, read_jsonl
from sarchat_bench.evaluation.scoring import load_predictions
from sarchat_bench.paper.records import image_file, truth_of

log = logging.getLogger(__name__)

TRUE_COLOUR, MODEL_COLOUR = (0, 200, 0), (230, 30, 30)
GROUPS = ("unparsed", "wrong", "partly right", "right")
STYLE = """body{font-family:system-ui,sans-serif;margin:1em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.4em;vertical-align:top;font-size:.85em;max-width:28em}
th{background:#eef}.unparsed{background:#fde2e2}.wrong{background:#fff0d9}.partly{background:#fffbd9}
.right{background:#e3f6e3}.legend span{padding:0 .4em;color:#fff}img{display:block}"""
# The Snakemake report shows an HTML item in an iframe whose source is a base64 data: URL, and
# Chromium refuses to open one longer than 2 MiB: a bigger page is blank inside report.html.
REPORT_PAGE_LIMIT = (2 * 1024 * 1024 - 1024) * 3 // 4


def truth_boxes(truth: dict) -> list[list[float]]:
    """The reference boxes of a sample, whatever its task (refer/count: boxes; identify: box;
    grounding: instances; describe: targets)."""
    if "boxes" in truth:
        return list(truth["boxes"])
    if "box" in truth:
        return [truth["box"]]
    return [item["box"] for key in ("instances", "targets") for item in truth.get(key, []) if "box" in item]


def verdict(detail: dict) -> tuple[str, str]:
    """The sample's group and a short per-metric account (metric: TP/FP/FN when not all right)."""
    units = detail["units"]
    if not detail["parsed"]:
        return "unparsed", "answer not parsed"
    parts = [f"{m} ✓" if fp == fn == 0 else f"{m} ✗ (TP {tp}, FP {fp}, FN {fn})" for m, (tp, fp, fn) in units.items()]
    right = sum(fp == fn == 0 for tp, fp, fn in units.values())
    group = "right" if right == len(units) else "wrong" if right == 0 else "partly right"
    return group, "; ".join(parts)


def pick(ids: list[str], groups: dict[str, str], per_cell: int) -> list[str]:
    """`per_cell` ids: failures first, then in a fixed order that does not favour any image."""
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(ids, key=lambda i: (order[groups[i]], hashlib.sha256(i.encode()).hexdigest()))[:per_cell]


def draw(image_path: str, true: list, predicted: list, side: int) -> str:
    """The image with the boxes drawn, as a JPEG data URI (the page carries its images, so that
    it works inside the self-contained Snakemake report)."""
    with Image.open(image_path) as image:
        image = image.convert("RGB")
    full_width = image.width
    image.thumbnail((side, side))
    scale = image.width / full_width
    # Drawn on the thumbnail, not before shrinking it: lines of 2 pixels in pure colours stay
    # visible on the small targets SAR images are full of.
    canvas = ImageDraw.Draw(image)
    for boxes, colour in ((true, TRUE_COLOUR), (predicted, MODEL_COLOUR)):
        for x1, y1, x2, y2 in boxes:
            canvas.rectangle([scale * min(x1, x2), scale * min(y1, y2), scale * max(x1, x2), scale * max(y1, y2)],
                             outline=colour, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, subsampling=0)  # 4:4:4: chroma at full resolution
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def cell_section(cell: str, test_path, predictions_path, details_path, score_path, per_cell: int,
                 side: int, image_root: str | os.PathLike | None = None) -> str:
    """The HTML section of one test file; its images are resolved against `image_root`
    (paper.records.image_file)."""
    test = {rec["id"]: rec for rec in read_jsonl(test_path)}
    details = {d["id"]: d for d in read_jsonl(details_path)}
    # Whatever its score job read: a `swift infer` result file too, which the score job accepts
    # only from a model of mode predictions.
    answers, _ = load_predictions(predictions_path, set(test), bad_responses="failure", swift_results_of=test_path)
    coords = read_json(score_path).get("coords", "pixel")  # how the scorer read the boxes it drew
    judged = {i: verdict(details[i]) for i in test}
    groups = {i: g for i, (g, _) in judged.items()}
    rows = []
    for sample_id in pick(list(test), groups, per_cell):
        rec, answer = test[sample_id], answers.get(sample_id, "")
        truth = truth_of(rec)
        image = draw(image_file(rec["images"][0], image_root, test_path, sample_id), truth_boxes(truth),
                     details[sample_id].get("boxes", ()), side)
        group, account = judged[sample_id]
        question = rec["messages"][0]["content"].replace("<image>", "")
        rows.append(f'<tr class="{group.split()[0]}"><td><img src="{image}" alt="{html.escape(sample_id)}">'
                    f"<small>{html.escape(sample_id)}</small></td><td>{html.escape(question)}</td>"
                    f"<td>{html.escape(answer) or '<i>(empty)</i>'}</td>"
                    f"<td>{html.escape(rec['messages'][1]['content'])}</td>"
                    f"<td><b>{group}</b><br>{html.escape(account)}</td></tr>")
    counts = {g: sum(v == g for v in groups.values()) for g in GROUPS}
    summary = ", ".join(f"{n} {g}" for g, n in counts.items())
    section = (f"<p>{len(test)} samples: {summary}. Shown: {len(rows)}, unparsed and "
               f"wrong first; the model's boxes read as {html.escape(coords)}.</p>"
               "<table><thead><tr><th>Image</th><th>Question</th><th>Model answer</th><th>Reference</th>"
               f"<th>Verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return section


def cell_page(out: str | os.PathLike, model: str, cell: str, paths: dict[str, str], per_cell: int = 20,
              side: int = 256, image_root: str | os.PathLike | None = None) -> Path:
    """`out`: the page of `model`'s answers on the test file `cell`. `paths`: its test,
    predictions, details and score files; `image_root`: where the test file's images are."""
    section = cell_section(cell, paths["test"], paths["predictions"], paths["details"], paths["score"], per_cell,
                           side, image_root)
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Answers of {html.escape(model)}: {cell}'
            f"</title><style>{STYLE}</style></head><body><h1>Answers of {html.escape(model)}: {cell}</h1>"
            f"<p>Its answers on the test file beside the reference, with the scorer's verdict; at most {per_cell} "
            'samples, unparsed and wrong ones first. Boxes: <span class="legend"><span style="background:'
            '#00c800">reference</span> <span style="background:#e61e1e">model</span></span></p>'
            f"{section}</body></html>\n")
    with atomic_output(out, "w") as handle:
        handle.write(page)
    size = len(page.encode())
    if size > REPORT_PAGE_LIMIT:
        log.warning("%s: %.1f MB, more than Chromium opens inside report.html (%.1f MB); the file itself opens. "
                    "Fewer samples (report.answers_per_cell) or smaller images (report.thumbnail_px) make it fit",
                    out, size / 1e6, REPORT_PAGE_LIMIT / 1e6)
    return Path(out)
