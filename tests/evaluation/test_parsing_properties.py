"""Property-based tests: the parser and the scorer never raise, whatever a model answers."""

from hypothesis import given, settings
from hypothesis import strategies as st
from sarchat_bench.evaluation import parsing as p
from sarchat_bench.evaluation.scoring import evaluate
from sarchat_bench.paper.tasks import CELLS

# Text mixing arbitrary unicode with the fragments answers are made of.
fragments = st.sampled_from(["{<", "><", ">}", "<", ">", "[", "]", "(", ")", ",", "-", ".", "1e9",
                             "99999999999999999999", "nan", "ship", "three", "instances", "top left", "very small",
                             "far from", "\n", " "])
# Digit runs longer than Python's int() accepts (4,300 digits) and numbers beyond float range.
huge_numbers = st.one_of(st.integers(4301, 6000).map(lambda n: "7" * n), st.just("1" + "0" * 400),
                         st.integers(330, 400).map(lambda e: f"9e{e}"))
answers = st.one_of(st.text(), st.lists(st.one_of(fragments, st.text(max_size=5), st.integers().map(str),
                                                  huge_numbers), max_size=60).map("".join),
                    st.none(), st.integers(),
                    huge_numbers.map(lambda n: f"There are {n} instances. {{<{n}><1><{n}><5>}} [{n}, 1, 2, 3]"))

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
    p.find_count(text, "ship")
    p.find_categories(text)
    p.named_categories(text)
    p.labelled_boxes(text, 10, 10, coords)
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


def test_a_count_of_thousands_of_digits_is_a_wrong_count_not_a_crash():
    """It used to raise ValueError in int() and leave the whole count cell unscored."""
    assert p.find_count("There are " + "9" * 5000 + " instances.") == 10**p.MAX_DIGITS
    units, parsed = evaluate("count", {"width": 10, "height": 10, **TRUTHS["count"]}, "9" * 5000)
    assert parsed and units["only_count"] == (0, 0, 1)
