"""The geometry rules on hand-computed cases (paper sections in paper/geometry.py)."""

import pytest
from sarchat_bench.paper import geometry as g


def test_format_box_matches_figure6():
    assert g.format_box((294, 358, 329, 427)) == "{<294><358><329><427>}"


@pytest.mark.parametrize("box,expected", [
    ((0, 0, 10, 10), "top left"),          # centre (5, 5)
    ((140, 140, 160, 160), "middle center"),  # centre (150, 150) of a 300x300 image
    ((290, 290, 300, 300), "bottom right"),
    ((95, 0, 105, 10), "top center"),      # centre x = 100 = W/3 -> second column
    ((94, 0, 104, 10), "top left"),        # centre x = 99 < 100
    ((0, 195, 10, 205), "bottom left"),    # centre y = 200 = 2H/3 -> third row
    ((-50, -50, -10, -10), "top left"),    # predicted boxes outside the image: the nearest cell
    ((400, 100, 500, 120), "middle right"),
    ((100, 310, 120, 900), "bottom center"),
])
def test_grid_position(box, expected):
    assert g.grid_position(box, 300, 300) == expected


def test_grid_position_figure6_examples():
    # Figure 6 (image about 512 px): {<294><358><329><427>} is "bottom center",
    # {<61><448><122><503>} "bottom left", {<27><199><78><261>} "middle left".
    assert g.grid_position((294, 358, 329, 427), 512, 512) == "bottom center"
    assert g.grid_position((61, 448, 122, 503), 512, 512) == "bottom left"
    assert g.grid_position((27, 199, 78, 261), 512, 512) == "middle left"
    assert g.grid_position((193, 157, 245, 306), 512, 512) == "middle center"


@pytest.mark.parametrize("ratio,word", [
    (0.5, "very large"), (0.4, "very large"), (0.3999, "large"), (0.25, "large"), (0.2499, "medium-sized"),
    (0.1, "medium-sized"), (0.0999, "small"), (0.03, "small"), (0.0299, "very small"), (0.0, "very small"),
])
def test_identify_size_levels(ratio, word):
    assert g.identify_size(ratio) == word


@pytest.mark.parametrize("ratio,word", [(0.049, "small"), (0.05, "medium"), (0.30, "medium"), (0.301, "large")])
def test_describe_size(ratio, word):
    assert g.describe_size(ratio) == word


@pytest.mark.parametrize("w,h,word", [
    (100, 67, "wide"),            # AR = 0.67 -> first Table 4 bin
    (100, 68, "roughly square"),
    (100, 150, "roughly square"),  # AR = 1.5 -> middle bin
    (100, 151, "tall"),
    (300, 20, "wide"),
])
def test_shape_uses_h_over_w(w, h, word):
    assert g.shape(g.aspect_ratio((0, 0, w, h))) == word


def test_area_and_aspect_ratio():
    assert g.area_ratio((0, 0, 10, 20), 100, 100) == pytest.approx(0.02)
    assert g.aspect_ratio((0, 0, 10, 20)) == 2.0


@pytest.mark.parametrize("bbox,expected", [
    ([10.4, 20.6, 30.2, 40.0], (10, 21, 41, 61)),
    ([-0.8, 0, 10, 10], (0, 0, 9, 10)),        # overhang within the 1 px tolerance is clamped
    ([-2, 0, 10, 10], "outside the image"),
    ([95, 95, 10, 10], "outside the image"),
    ([5, 5, 0, 10], "non-positive width or height"),
    ([5, 5, 0.2, 10], "smaller than one pixel"),
    ([5, 5, 10], "malformed bbox"),
    ([5, 5, float("nan"), 10], "malformed bbox"),
])
def test_coco_to_box(bbox, expected):
    assert g.coco_to_box(bbox, 100, 100) == expected


def test_distance_threshold_is_w_plus_h_over_8():
    # (W + H) / 8 = 50 for a 200x200 image.
    assert g.distance_word((0, 0), (49.9, 0), 200, 200) == "near"
    assert g.distance_word((0, 0), (50, 0), 200, 200) == "far from"


@pytest.mark.parametrize("a,word", [
    ((0, 50), "to the left of"), ((100, 50), "to the right of"), ((50, 0), "above"), ((50, 100), "below"),
    ((0, 0), "to the upper left of"), ((100, 0), "to the upper right of"), ((0, 100), "to the lower left of"),
    ((100, 100), "to the lower right of"), ((0, 40), "to the left of"),  # 10/50 < tan 22.5 deg
])
def test_direction_word(a, word):
    assert g.direction_word(a, (50, 50)) == word


def test_iou_continuous():
    assert g.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert g.iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert g.iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
