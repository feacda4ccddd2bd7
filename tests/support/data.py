"""Small datasets in the SARDet-100K layout, made by the tests themselves (no downloads)."""

import json
from pathlib import Path

from PIL import Image as PILImage


def write_coco(root: Path, split: str, images: list, annotations: list, categories=None, make_files=True) -> Path:
    """A SARDet-100K-layout folder with the given COCO records (image files are empty)."""
    categories = categories or [{"id": i, "name": n} for i, n in
                                enumerate(["ship", "aircraft", "car", "tank", "bridge", "harbor"])]
    path = root / "Annotations" / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    if make_files:
        for im in images:
            f = root / "JPEGImages" / split / im["file_name"]
            f.parent.mkdir(parents=True, exist_ok=True)
            f.touch()
    return path


def img(i, name=None, w=64, h=48):
    """A COCO image record."""
    return {"id": i, "file_name": name or f"{i}.jpg", "width": w, "height": h}


def ann(i, image, cat=0, bbox=(2, 2, 10, 10)):
    """A COCO annotation record."""
    return {"id": i, "image_id": image, "category_id": cat, "bbox": list(bbox)}


def jpeg(path, size=(64, 48)):
    """A grey JPEG of `size` at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("L", size, 128).save(path, "JPEG")
