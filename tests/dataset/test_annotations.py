"""Bad annotation input: a clear error naming file and record, or a counted skip."""

import pytest
from sarchat_bench.core.errors import InputError
from sarchat_bench.dataset.annotations import load_split, read_boxes, write_boxes
from support.commands import run_cli
from support.data import write_coco


def img(i, w=400, h=300, name=None):
    return {"id": i, "file_name": name or f"{i}.jpg", "width": w, "height": h}


def ann(i, image_id, cat=0, bbox=(10, 10, 50, 40)):
    return {"id": i, "image_id": image_id, "category_id": cat, "bbox": list(bbox)}


def rules(report):
    return {r["rule"]: r["removed"] for r in report.as_dict()["rules"] if r["removed"]}


def test_clean_split_roundtrips_through_the_box_table(tmp_path):
    write_coco(tmp_path, "train", [img(2), img(1)], [ann(5, 2, 1), ann(3, 2, 0), ann(4, 1, 5)])
    images, report = load_split(tmp_path, "train")
    assert [im.image_id for im in images] == [1, 2]
    assert [i.ann_id for i in images[1].instances] == [3, 5]
    assert rules(report) == {} and report.boxes_out == 3
    write_boxes(tmp_path / "t.boxes.json", images)
    assert read_boxes([tmp_path / "t.boxes.json"]) == images



def test_several_box_tables_concatenate_in_order(tmp_path):
    # Two splits whose image ids overlap: each image keeps its split.
    tables = []
    for split, n in (("train", 3), ("val", 2)):
        write_coco(tmp_path, split, [img(i) for i in range(1, n + 1)],
                   [ann(10 * i + k, i, k) for i in range(1, n + 1) for k in range(i)])
        images, _ = load_split(tmp_path, split)
        write_boxes(tmp_path / f"{split}.boxes.json", images)
        tables.append(tmp_path / f"{split}.boxes.json")
    whole = read_boxes(tables)
    assert [(im.split, im.image_id, len(im.instances)) for im in whole] == [
        ("train", 1, 1), ("train", 2, 2), ("train", 3, 3), ("val", 1, 1), ("val", 2, 2)]


def test_a_file_that_is_not_a_box_table_is_refused(tmp_path):
    path = tmp_path / "Annotations" / "train.json"
    write_coco(tmp_path, "train", [img(1)], [ann(1, 1)])
    with pytest.raises(InputError, match="not a box table") as err:
        read_boxes([path])
    assert err.value.path == str(path)


def test_a_box_table_holds_one_split(tmp_path):
    write_coco(tmp_path, "train", [img(1)], [ann(1, 1)])
    images, _ = load_split(tmp_path, "train")
    images[0].split = "val"
    with pytest.raises(ValueError, match="one split"):
        write_boxes(tmp_path / "t.boxes.json", images + load_split(tmp_path, "train")[0])


def test_counted_skips(tmp_path):
    images = [img(1), img(2), img(3), img(4)]
    anns = [
        ann(1, 1),                          # kept
        ann(2, 1),                          # duplicate of 1
        ann(3, 1, cat=42),                  # unknown category id
        ann(4, 99),                         # unknown image
        ann(5, 1, bbox=(390, 10, 50, 40)),  # outside the image
        ann(6, 1, bbox=(10, 10, 0, 40)),    # degenerate
        {"id": 7, "image_id": 1, "category_id": 0, "bbox": "oops"},  # malformed
        ann(8, 2),                          # image 2 has no file
        ann(9, 4, bbox=(10, 10, -5, 5)),    # image 4 ends up empty
    ]
    write_coco(tmp_path, "train", images, anns)
    (tmp_path / "JPEGImages" / "train" / "2.jpg").unlink()
    kept, report = load_split(tmp_path, "train")
    assert [im.image_id for im in kept] == [1]
    assert rules(report) == {"duplicate_annotation": 1, "unknown_category": 1, "unknown_image": 1,
                             "outside_image": 1, "degenerate_bbox": 2, "malformed_bbox": 1,
                             "missing_image_file": 1, "empty_image": 2}
    examples = {r["rule"]: r["examples"] for r in report.as_dict()["rules"]}
    assert examples["unknown_category"] == ["annotations[2] (id 3)"]
    assert examples["missing_image_file"] == ["image id 2 (2.jpg)"]


def test_excluded_category_is_counted(tmp_path):
    write_coco(tmp_path, "train", [img(1)], [ann(1, 1, 0), ann(2, 1, 2)])
    kept, report = load_split(tmp_path, "train", categories=("ship",))
    assert rules(report) == {"excluded_category": 1} and len(kept[0].instances) == 1


def test_flat_image_layout(tmp_path):
    write_coco(tmp_path, "test", [img(1)], [ann(1, 1)], make_files=False)
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "JPEGImages" / "1.jpg").touch()
    kept, _ = load_split(tmp_path, "test")
    assert kept[0].path == "JPEGImages/1.jpg"  # relative to the root, like the per-split layout


@pytest.mark.parametrize("content,reason,record", [
    ("{not json", "not valid JSON", None),
    ('{"images": [], "annotations": []}', "missing key 'categories'", None),
    ('[1, 2]', "top level is not a JSON object", None),
    ('{"images": [{"id": 1, "file_name": "a.jpg", "width": 10}], "annotations": [], "categories": []}',
     "missing key 'height'", "images[0] (id 1)"),
    ('{"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},'
     ' {"id": 1, "file_name": "b.jpg", "width": 10, "height": 10}], "annotations": [], "categories": []}',
     "duplicated image id", "images[1] (id 1)"),
    ('{"images": [], "annotations": [{"id": "x"}], "categories": []}', "'id' has type str", "annotations[0]"),
    ('{"images": [], "annotations": [{"id": 7, "image_id": 1, "category_id": true}], "categories": []}',
     "'category_id' has type bool", "annotations[0] (id 7)"),
    ('{"images": [[1, "a.jpg"]], "annotations": [], "categories": []}', "image is not an object", "images[0]"),
    ('{"images": [], "annotations": [null], "categories": []}', "annotation is not an object", "annotations[0]"),
    ('{"images": [{"id": 2, "file_name": 5, "width": 10, "height": 10}], "annotations": [], "categories": []}',
     "'file_name' has type int", "images[0] (id 2)"),
])
def test_corrupt_input_raises_input_error(tmp_path, content, reason, record):
    path = tmp_path / "Annotations" / "train.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(InputError) as err:
        load_split(tmp_path, "train")
    assert err.value.path == str(path) and reason in err.value.reason and err.value.record == record


def test_missing_annotation_file(tmp_path):
    with pytest.raises(InputError, match="annotation file not found"):
        load_split(tmp_path, "val")


def test_cli_reports_bad_input_in_one_line(tmp_path):
    path = tmp_path / "Annotations" / "train.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"images": [}')
    result = run_cli("annotations", "--root", tmp_path, "--split", "train", "--out-table", tmp_path / "o.boxes.json",
                     "--out-report", tmp_path / "o.json")
    assert result.returncode == 2
    assert f"error: {path}: not valid JSON" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.boxes.json").exists()


def test_cli_help_lists_every_command():
    result = run_cli("--help", check=True)
    for command in ("demo-data", "download", "annotations", "train-mix", "test-cells", "validate", "stats"):
        assert command in result.stdout
    assert "--samples" not in run_cli("annotations", "--help", check=True).stdout
