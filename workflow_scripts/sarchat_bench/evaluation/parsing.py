"""Parse model answers into boxes, counts, categories, grid positions, sizes, shapes and
relations. Every function here accepts any string and never raises.

Boxes: the fine-tuned format {<x1><y1><x2><y2>} is tried first; only when an answer has none
are the other common formats read: [x1, y1, x2, y2] (also inside <box>[[...]]</box> and JSON
"bbox_2d") and (x1,y1),(x2,y2) (also inside <|box_start|>...<|box_end|>). Coordinates are
pixels of the original image unless the model's `coords` convention says otherwise: "norm1000"
(0-1000 normalised: base Qwen2-VL, InternVL, Qwen3-VL) or "resized:FACTOR:MIN:MAX" (pixels of
the input as the processor resized it: Qwen2.5-VL); the scale is never guessed from magnitudes.
Corners are reordered, and boxes are clipped to the image.

Answers that reason before they answer are read from their answer: the text after the last
"Final answer:" / "Answer:" (or "the answer is"), and within it the last clause that has the
task's answer shape (docs/scoring.md, "Parsing model output"). A category preceded by a
negation ("not a tank") does not count as named.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_left, bisect_right

from sarchat_bench.paper.geometry import DIRECTIONS, GRID_POSITIONS

MAX_CHARS = 20_000  # longer answers are cut (runaway generations); the cut is counted as usual
MAX_BOXES = 256     # more boxes than any SARDet-100K image holds


def _led_by(first: str, pattern: str) -> str:
    """`pattern` behind a lookahead of the characters its matches start with (`first`, the inside
    of a character class): Python's re tries each alternative of a pattern at every position of
    the text, and the lookahead skips the positions where none can start (2-3x faster)."""
    return f"(?=[{first}])(?:{pattern})"


def _initials(words) -> str:
    return "".join(sorted({word[0] for word in words}))


_NUM = r"(-?\d+(?:\.\d+)?)"
_SEP = r"\s*,\s*"
BOX_NATIVE = re.compile(_led_by(r"{<\s", r"\{?\s*<\s*" + r"\s*>\s*<\s*".join([_NUM] * 4) + r"\s*>\s*\}?"))
BOX_LIST = re.compile(r"\[\s*" + _SEP.join([_NUM] * 4) + r"\s*\]")
BOX_PAIRS = re.compile(r"\(\s*" + _NUM + _SEP + _NUM + r"\s*\)\s*,?\s*\(\s*" + _NUM + _SEP + _NUM + r"\s*\)")

class AnyCase:
    """A case-insensitive regex that reads ASCII text lower-cased, through a case-sensitive twin
    (its patterns are lower-case): Python's re is several times slower on alternations of words
    with re.I. Offsets are those of the text given; groups are lower-cased where it is ASCII."""

    def __init__(self, pattern: str):
        self.folded, self.any_case = re.compile(pattern), re.compile(pattern, re.I)

    def _pick(self, text: str) -> tuple[re.Pattern, str]:
        return (self.folded, text.lower()) if text.isascii() else (self.any_case, text)

    def search(self, text: str):
        regex, text = self._pick(text)
        return regex.search(text)

    def finditer(self, text: str):
        regex, text = self._pick(text)
        return regex.finditer(text)

    def findall(self, text: str):
        regex, text = self._pick(text)
        return regex.findall(text)

    def split(self, text: str) -> list[str]:
        """The pieces between matches (lower-cased where the text is ASCII)."""
        regex, text = self._pick(text)
        return regex.split(text)


CATEGORY_WORDS = {
    "ship": ("ship", "ships", "boat", "boats", "vessel", "vessels"),
    "aircraft": ("aircraft", "aircrafts", "airplane", "airplanes", "plane", "planes"),
    "car": ("car", "cars"),
    "tank": ("tank", "tanks"),
    "bridge": ("bridge", "bridges"),
    "harbor": ("harbor", "harbors", "harbour", "harbours", "port", "ports"),
}
_CATEGORY_OF = {w: c for c, words in CATEGORY_WORDS.items() for w in words}
_CATEGORY_PATTERN = _led_by(_initials(_CATEGORY_OF),
                            r"\b(" + "|".join(sorted(_CATEGORY_OF, key=len, reverse=True)) + r")\b")
CATEGORY_RE = AnyCase(_CATEGORY_PATTERN)

_ROW = {"top": "top", "upper": "top", "middle": "middle", "center": "middle", "centre": "middle",
        "central": "middle", "bottom": "bottom", "lower": "bottom"}
_COL = {"left": "left", "center": "center", "centre": "center", "middle": "center", "right": "right"}
_CENTRE = ("central region", "centre of the image", "center of the image", "image center", "image centre")
_SIDES = ("left", "right")
POSITION_RE = AnyCase(_led_by(
    _initials([*_ROW, *_CENTRE, *_SIDES]),
    r"\b(" + "|".join(_ROW) + r")[\s-]+(" + "|".join(_COL) + r")\b|\b(" + "|".join(_CENTRE) + r")\b"
    r"|\b(" + "|".join(_SIDES) + r") side\b"))

SIZE_RE = AnyCase(r"\b(very large|very small|medium-sized|medium sized|medium|large|small)\b")
SHAPE_RE = AnyCase(r"\b(roughly square|approximately square|nearly square|square|wide|tall)\b")

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
COUNT_RE = AnyCase(_led_by(r"\d" + _initials(_NUMBER_WORDS), r"\b(\d+|" + "|".join(_NUMBER_WORDS)
                           + r")\s+(?:instances?|targets?|objects?|" + "|".join(_CATEGORY_OF) + r")\b"))
FIRST_NUMBER_RE = AnyCase(r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\b")
FINAL_RE = AnyCase(r"\b(?:final\s+answer|answer)\s*(?::|is\b)")
# Clauses: sentences, and the parts of a sentence around a contrast ("looks like a car, but it is a ship").
_CLAUSE_PUNCTUATION, _CLAUSE_WORDS = ".;!?\n", ("but", "however")
CLAUSE_RE = AnyCase(_led_by(_CLAUSE_PUNCTUATION + _initials(_CLAUSE_WORDS),
                            f"[{_CLAUSE_PUNCTUATION}]+" + r"|\b(?:" + "|".join(_CLAUSE_WORDS) + r")\b"))
NEGATION_RE = AnyCase(r"\b(?:not|no|never|without|isn't|aren't|neither|nor)\s+(?:(?:a|an|the|any)\s+)?$")
MAX_DIGITS = 18  # a longer number is no count of anything (and int() refuses beyond 4,300 digits)
# (subject, object, distance, direction) and its converse are one fact.
INVERSE_DIRECTION = {"to the left of": "to the right of", "to the right of": "to the left of", "above": "below",
                     "below": "above", "to the upper left of": "to the lower right of",
                     "to the lower right of": "to the upper left of", "to the upper right of": "to the lower left of",
                     "to the lower left of": "to the upper right of"}
RELATION_RE = AnyCase(_led_by("t", r"\bthe (\w+) is (near|close to|far from) the (\w+)\s*,?\s*("
                                  + "|".join(re.escape(d) for d in DIRECTIONS) + r") (?:it|them|the \w+)"))


def clean(text) -> str:
    """Normalise any answer to a bounded, NFKC-normalised string ('' for non-strings)."""
    if not isinstance(text, str):
        return ""
    text = text[:MAX_CHARS]
    return text if text.isascii() else unicodedata.normalize("NFKC", text)  # NFKC leaves ASCII as it is


def answer_region(text: str) -> str:
    """The part of an answer that answers: after its last "Final answer:" / "Answer:" marker,
    or all of it."""
    text = clean(text)
    if "nswer" not in text and "NSWER" not in text:  # no marker possible: skip the regex
        return text
    markers = list(FINAL_RE.finditer(text))
    return text[markers[-1].end():] if markers else text


def clauses(text: str) -> list[str]:
    return [c for c in CLAUSE_RE.split(text) if c.strip()]


@functools.lru_cache(maxsize=4096)
def resized_size(width: int, height: int, coords: str) -> tuple[int, int]:
    """The size of the image a model saw when its processor resized it (coords
    "resized:FACTOR:MIN_PIXELS:MAX_PIXELS", as Qwen2.5-VL's: sides multiples of FACTOR, the
    pixel count within bounds), by qwen_vl_utils' own smart_resize."""
    from qwen_vl_utils import smart_resize

    factor, min_pixels, max_pixels = (int(v) for v in coords.split(":")[1:])
    resized_height, resized_width = smart_resize(height, width, factor, min_pixels, max_pixels)
    return resized_width, resized_height


def _to_box(values, width: int, height: int, coords: str):
    try:
        x1, y1, x2, y2 = map(float, values)
    except (TypeError, ValueError, OverflowError):
        return None
    if coords == "norm1000":
        x1, x2 = x1 * width / 1000.0, x2 * width / 1000.0
        y1, y2 = y1 * height / 1000.0, y2 * height / 1000.0
    elif coords.startswith("resized:"):  # pixels of the resized input
        resized_width, resized_height = resized_size(width, height, coords)
        x1, x2 = x1 * width / resized_width, x2 * width / resized_width
        y1, y2 = y1 * height / resized_height, y2 * height / resized_height
    if x2 < x1:
        x1, x2 = x2, x1
    if y2 < y1:
        y1, y2 = y2, y1
    # Clipped to the image: min(max(v, 0.0), side), written out, as this runs for every box.
    x1, x2 = (0.0 if x1 < 0.0 else x1), (0.0 if x2 < 0.0 else x2)
    y1, y2 = (0.0 if y1 < 0.0 else y1), (0.0 if y2 < 0.0 else y2)
    return (width if x1 > width else x1, height if y1 > height else y1,
            width if x2 > width else x2, height if y2 > height else y2)


def box_spans(text: str, width: int, height: int, coords: str = "pixel"):
    """(start offset, box) for each box in order of appearance, for answers that interleave
    words and boxes (see the module docstring for formats and normalisation)."""
    text = clean(text)
    matches = list(BOX_NATIVE.finditer(text)) or sorted(
        [*BOX_LIST.finditer(text), *BOX_PAIRS.finditer(text)], key=lambda m: m.start())
    out = []
    for m in matches[:MAX_BOXES]:
        box = _to_box(m.groups(), width, height, coords)
        if box is not None:
            out.append((m.start(), box))
    return out


# Objects with a key: a box's markup, {<x1><y1><x2><y2>}, is not read as JSON (and refused).
JSON_OBJECT_RE = re.compile(r'\{\s*"[^{}]*\}')
JSON_BOX_KEYS, JSON_LABEL_KEYS = ("bbox_2d", "bbox", "box"), ("label", "category", "name")


def json_boxes(text: str, width: int, height: int, coords: str = "pixel"):
    """(box, category or None) of each JSON object with a box of its own, as Qwen2.5-VL answers
    grounding questions: {"bbox_2d": [x1, y1, x2, y2], "label": "ship"}. Its label is its own,
    whatever comes before or after it."""
    import orjson

    out = []
    for m in JSON_OBJECT_RE.finditer(clean(text)):
        try:
            obj = orjson.loads(m.group(0))
        except orjson.JSONDecodeError:
            continue
        values = next((obj[k] for k in JSON_BOX_KEYS if k in obj), None) if isinstance(obj, dict) else None
        if not (isinstance(values, list) and len(values) == 4):
            continue
        box = _to_box(values, width, height, coords)
        label = next((obj[k] for k in JSON_LABEL_KEYS if isinstance(obj.get(k), str)), "")
        named = category_spans(label)
        if box is not None:
            out.append((box, named[0][1] if named else None))
        if len(out) == MAX_BOXES:
            break
    return out


def labelled_boxes(text: str, width: int, height: int, coords: str = "pixel"):
    """Boxes with the category each belongs to, bound by the answer's structure: a JSON object's
    own label; otherwise the category named before the box (our format, InternVL's
    <ref>ship</ref><box>, Qwen2-VL's object_ref tokens: the last one since the previous box,
    or the one before that), or, in answers that name a category only after their first box,
    the category named right after it."""
    if found := json_boxes(text, width, height, coords):
        return [box for box, _ in found], [label for _, label in found]
    spans = box_spans(text, width, height, coords)
    if not spans:
        return [], []
    cats = category_spans(text)
    starts = [pos for pos, _ in cats]  # in order: bisected for the mentions around each box
    labels = []
    if starts and starts[0] < spans[0][0]:  # the last category named before each box
        for start, _ in spans:
            named_before = bisect_left(starts, start)
            labels.append(cats[named_before - 1][1] if named_before else None)
    else:  # the first category named after each box, before the next one
        ends = [start for start, _ in spans[1:]] + [len(clean(text))]
        for (start, _), end in zip(spans, ends):
            first_after = bisect_right(starts, start)
            labels.append(cats[first_after][1] if first_after < len(cats) and starts[first_after] < end else None)
    return [box for _, box in spans], labels


def find_boxes(text: str, width: int, height: int, coords: str = "pixel") -> list[tuple[float, float, float, float]]:
    """Boxes in order of appearance."""
    return [box for _, box in box_spans(text, width, height, coords)]


def category_of(word: str) -> str | None:
    return _CATEGORY_OF.get(word.lower())


def category_spans(text: str):
    """(start offset, category) for each category mention in order (synonyms and plurals
    mapped to the six names)."""
    return [(m.start(), _CATEGORY_OF[m.group(1).lower()]) for m in CATEGORY_RE.finditer(clean(text))]


def find_categories(text: str) -> list[str]:
    """Category mentions in order."""
    return [category for _, category in category_spans(text)]


def named_categories(text: str) -> list[str]:
    """Categories the answer names as its answer: the ones, in order, of the last clause of its
    answer region that names any, leaving out negated mentions ("not a tank")."""
    for clause in reversed(clauses(answer_region(text))):
        named = [category for start, category in category_spans(clause)
                 if not NEGATION_RE.search(clause[:start])]
        if named:
            return named
    return []


def _position(m: re.Match) -> str:
    if m.group(1):
        row, col = _ROW[m.group(1).lower()], _COL[m.group(2).lower()]
        return f"{row} {col}"
    if m.group(3):
        return "middle center"
    return f"middle {m.group(4).lower()}"


def find_positions(text: str) -> list[str]:
    """3x3 grid cells in order; "upper left" -> "top left", "central region" -> "middle center",
    "left side" -> "middle left"."""
    out = [_position(m) for m in POSITION_RE.finditer(clean(text))]
    return [p for p in out if p in GRID_POSITIONS]


def find_size(text: str) -> str | None:
    m = SIZE_RE.search(clean(text))
    if not m:
        return None
    word = m.group(1).lower()
    return "medium-sized" if word.startswith("medium") else word


def find_shape(text: str) -> str | None:
    m = SHAPE_RE.search(clean(text))
    if not m:
        return None
    word = m.group(1).lower()
    return "roughly square" if "square" in word else word


def _number(word: str) -> int:
    word = word.lower()
    if not word.isdigit():
        return _NUMBER_WORDS[word]
    return int(word) if len(word) <= MAX_DIGITS else 10**MAX_DIGITS


def find_count(text: str, category: str | None = None) -> int | None:
    """The count an answer states: the last "There are 4 instances" / "three ships" of its
    answer region (of the asked category or a generic noun, when `category` is given); else its
    last number outside any box; None if there is none."""
    text = answer_region(text)
    statements = [m for m in COUNT_RE.finditer(text)
                  if category is None or _CATEGORY_OF.get(m.group(0).split()[-1].lower(), category) == category]
    if statements:
        return _number(statements[-1].group(1))
    for pattern in (BOX_NATIVE, BOX_LIST, BOX_PAIRS):
        text = pattern.sub(" ", text)
    numbers = FIRST_NUMBER_RE.findall(text)
    return _number(numbers[-1]) if numbers else None


def canonical_relation(subject: str, obj: str, distance: str, direction: str) -> tuple[str, str, str, str]:
    """A relation as a fact, whichever way round it is said: "the harbor is far from the ship,
    to the lower right of it" is "the ship is far from the harbor, to the upper left of it"."""
    if subject > obj:
        return obj, subject, distance, INVERSE_DIRECTION[direction]
    return subject, obj, distance, direction


def find_relations(text: str) -> list[tuple[str, str, str, str]]:
    """(subject, object, distance, direction) facts stated such as "The ship is far from the
    harbor, to the upper left of it", each in canonical order (canonical_relation)."""
    out = []
    for m in RELATION_RE.finditer(clean(text)):
        subject, obj = category_of(m.group(1)), category_of(m.group(3))
        if subject and obj:
            distance = "near" if m.group(2).lower() in ("near", "close to") else "far from"
            out.append(canonical_relation(subject, obj, distance, m.group(4).lower()))
    return out


_SEGMENT_RE = re.compile(r"[.;!?\n]+")


def find_phrases(text: str) -> list[tuple[str, str]]:
    """(category, position) pairs of a description, §4.2(5): the answer is cut into phrases at
    sentence punctuation; within a phrase, categories and positions pair up in order."""
    pairs = []
    for segment in _SEGMENT_RE.split(clean(text)):
        cats, positions = find_categories(segment), find_positions(segment)
        pairs.extend(zip(cats, positions))
    return pairs
