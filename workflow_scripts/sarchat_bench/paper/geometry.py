"""Geometry rules of the paper: boxes, the 3x3 grid, size and shape words, relations, IoU.

Every threshold here is the paper's; the section is named beside it. Where the paper is
ambiguous the choice is recorded in docs/decisions.md and tested in tests/test_geometry.py.
Boxes are integer pixel corners (x1, y1, x2, y2) of the original image, x2 > x1, y2 > y1.
"""

from __future__ import annotations

import math
from typing import Sequence

Box = tuple[int, int, int, int]

ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")
# Row-major, so index = 3 * row + column. "middle center" is the image centre (Figures 1, 6).
GRID_POSITIONS = tuple(f"{row} {col}" for row in ROWS for col in COLUMNS)

# §3.2(5): five size levels by area ratio (fraction of the image), checked top-down.
IDENTIFY_SIZE_LEVELS = ((0.4, "very large"), (0.25, "large"), (0.1, "medium-sized"), (0.03, "small"))
IDENTIFY_SIZE_FLOOR = "very small"

# §3.2(2): description size words, small < 5 %, large > 30 %, medium between (decision D4).
DESCRIBE_SMALL_BELOW = 0.05
DESCRIBE_LARGE_ABOVE = 0.30

# §3.3 / Table 4 bins on AR = h / w (Eq. 2): <= 0.67 broad, (0.67, 1.5] square, > 1.5 tall.
# "wide" is the broad-bodied bin, so the word matches the box (decision D2).
SHAPE_WIDE_MAX = 0.67
SHAPE_TALL_ABOVE = 1.5

# §3.2(4): two groups are "near" when their centres are closer than (W + H) / 8.
NEAR_DIVISOR = 8.0
# Eight compass sectors of 45 degrees around the axes (decision D5).
_TAN_22_5 = math.tan(math.radians(22.5))
DIRECTIONS = (
    "to the left of", "to the right of", "above", "below",
    "to the upper left of", "to the upper right of", "to the lower left of", "to the lower right of",
)


_NUMBER = (int, float)


def format_box(box: Sequence[int]) -> str:
    """The paper's surface format, §3.2(0): {<x1><y1><x2><y2>}."""
    x1, y1, x2, y2 = box
    return f"{{<{x1}><{y1}><{x2}><{y2}>}}"


def coco_to_box(bbox: Sequence[float], width: int, height: int, tolerance: float = 1.0) -> Box | str:
    """Convert a COCO [x, y, w, h] box to integer corners, or return why it is unusable.

    Corners are rounded to the nearest pixel. Overhangs of up to `tolerance` pixels (rounding
    noise in the source annotations) are clamped to the image; larger ones make the box
    out of bounds, which §3.2(2) removes. Runs once per box of SARDet-100K, hence unrolled.
    """
    if len(bbox) != 4:
        return "malformed bbox"
    x, y, w, h = bbox
    if not (type(x) in _NUMBER and type(y) in _NUMBER and type(w) in _NUMBER and type(h) in _NUMBER):
        return "malformed bbox"
    if not math.isfinite(x + y + w + h):  # any inf or nan makes the sum non-finite
        return "malformed bbox"
    if w <= 0 or h <= 0:
        return "non-positive width or height"
    right, bottom = x + w, y + h
    if x < -tolerance or y < -tolerance or right > width + tolerance or bottom > height + tolerance:
        return "outside the image"
    if x >= 0 and y >= 0 and right <= width and bottom <= height:  # rounding keeps it inside
        x1, y1, x2, y2 = round(x), round(y), round(right), round(bottom)
    else:
        x1, y1 = max(round(x), 0), max(round(y), 0)
        x2, y2 = min(round(right), width), min(round(bottom), height)
    if x2 <= x1 or y2 <= y1:
        return "smaller than one pixel"
    return (x1, y1, x2, y2)


def box_center(box: Sequence[float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def area_ratio(box: Sequence[float], width: int, height: int) -> float:
    """Eq. 1 as a fraction (not percent): box area over image area."""
    return (box[2] - box[0]) * (box[3] - box[1]) / float(width * height)


def aspect_ratio(box: Sequence[float]) -> float:
    """Eq. 2: AR = h / w (as a ratio, not percent)."""
    return (box[3] - box[1]) / float(box[2] - box[0])


def grid_position(box: Sequence[float], width: int, height: int) -> str:
    """The 3x3 grid cell holding the box centre, e.g. "bottom center" (§3.2(0))."""
    # 3 * centre / size, with the centre's halving folded in (exact for integer corners).
    x1, y1, x2, y2 = box
    col = int(1.5 * (x1 + x2) / width)
    row = int(1.5 * (y1 + y2) / height)
    if 0 <= col <= 2 and 0 <= row <= 2:  # the dataset's boxes: no min/max calls (twice as fast)
        return GRID_POSITIONS[3 * row + col]
    # A centre outside the image (a predicted box) takes the nearest cell.
    return GRID_POSITIONS[3 * min(max(row, 0), 2) + min(max(col, 0), 2)]


def identify_size(ratio: float) -> str:
    for threshold, word in IDENTIFY_SIZE_LEVELS:
        if ratio >= threshold:
            return word
    return IDENTIFY_SIZE_FLOOR


def describe_size(ratio: float) -> str:
    if ratio < DESCRIBE_SMALL_BELOW:
        return "small"
    if ratio > DESCRIBE_LARGE_ABOVE:
        return "large"
    return "medium"


def shape(ar: float) -> str:
    if ar <= SHAPE_WIDE_MAX:
        return "wide"
    if ar > SHAPE_TALL_ABOVE:
        return "tall"
    return "roughly square"


def centroid(boxes: Sequence[Sequence[float]]) -> tuple[float, float]:
    centers = [box_center(b) for b in boxes]
    return (sum(c[0] for c in centers) / len(centers), sum(c[1] for c in centers) / len(centers))


def distance_word(a: tuple[float, float], b: tuple[float, float], width: int, height: int) -> str:
    """§3.2(4): "near" when the centres are closer than (W + H) / 8, else "far from"."""
    return "near" if math.dist(a, b) < (width + height) / NEAR_DIVISOR else "far from"


def direction_word(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Where point `a` lies relative to point `b` (image y grows downwards)."""
    dx, dy = a[0] - b[0], a[1] - b[1]
    if abs(dy) <= abs(dx) * _TAN_22_5:
        return "to the left of" if dx < 0 else "to the right of"
    if abs(dx) <= abs(dy) * _TAN_22_5:
        return "above" if dy < 0 else "below"
    vertical = "upper" if dy < 0 else "lower"
    horizontal = "left" if dx < 0 else "right"
    return f"to the {vertical} {horizontal} of"


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of continuous-coordinate boxes (no +1 pixel)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
