"""Property-based tests: the parser and the scorer never raise, whatever a model answers."""

from hypothesis import given, settings
from hypothesis import strategies as st
from sarchat_bench import parsing as p
from sarchat_bench.scoring import evaluate
from sarchat_bench.tasks import CELLS

# Text mixing arbitrary unicode with the fragments answers are made of.
fragments = st.sampled_from(["{<", "><", ">}", "<", ">", "[", "]", "(", ")", ",", "-", ".", "1e9",
                             "99999999999999999999", "nan", "ship", "three", "instances", "top left", "very small",
                             "far from", "\n", " "])
answers = st.one_of(st.text(), st.lists(st.one_of(fragments, st.text(max_size=5), st.integers().map(str)),
                                        max_size=60).map("".join), st.none(), st.integers())

TRUTHS = {
    "classify": {"categories": ["ship"]},
    "describe": {"targets": [{"category": "ship", "position": "top left", "size": "small", "box": [0, 0, 5, 5]}]},
    "count": {"category": "ship", "count": 2, "boxes": [[0, 0, 5, 5], [6, 6, 9, 9]]},
    "grounding_single": {"instances": [{"category": "ship", "box": [0, 0, 5, 5], "position": "top left"}],
                         "relations": []},
    "grounding_multi": {"instances": [{"category": "ship", "box": [0, 0, 5, 5], "position": "top left"}],
                        "relations": [{"subject": "ship", "object": "tank", "distance": "near", "direction": "above"}]},
    "identify_single": {"category": "ship", "position": "top left", "size": "small", "shape": "wide",
                        "box": [0, 0, 5, 5]},
    "identify_multi": {"category": "ship", "position": "top left", "size": "small", "shape": "wide",
                       "box": [0, 0, 5, 5]},
    "refer_single": {"category": "ship", "boxes": [[0, 0, 5, 5]], "positions": ["top left"]},
    "refer_multi": {"category": "ship", "boxes": [[0, 0, 5, 5], [6, 6, 9, 9]], "positions": ["top left"] * 2},
}


@settings(max_examples=300, deadline=None)
@given(answers, st.sampled_from(["pixel", "norm1000"]))
def test_parsers_never_raise(text, coords):
    boxes = p.find_boxes(text, 10, 10, coords)
    assert all(0 <= b[0] <= b[2] <= 10 and 0 <= b[1] <= b[3] <= 10 for b in boxes)
    p.find_count(text)
    p.find_categories(text)
    p.find_positions(text)
    p.find_phrases(text)
    p.find_relations(text)
    p.find_size(text)
    p.find_shape(text)


@settings(max_examples=100, deadline=None)
@given(answers, st.sampled_from(list(CELLS)))
def test_scoring_never_raises(text, cell):
    units, parsed = evaluate(cell, {"width": 10, "height": 10, **TRUTHS[cell]}, text)
    assert isinstance(parsed, bool)
    assert all(min(u) >= 0 for u in units.values())


def test_very_long_answer_is_bounded():
    text = "{<1><1><5><5>}" * 100_000
    assert len(p.find_boxes(text, 10, 10)) == p.MAX_BOXES
