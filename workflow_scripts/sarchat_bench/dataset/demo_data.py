"""A small synthetic SAR-like dataset in the SARDet-100K layout, for the demo and the tests.

Backgrounds are multiplicative gamma speckle (the usual single-look SAR noise model); targets
are bright speckled blobs whose footprint depends on the category (long thin ships and bridges,
cross-shaped aircraft, small cars, square tanks, large harbours). Everything derives from one
seed, so the same seed gives the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from sarchat_bench.core.io import atomic_output, write_json

# SARDet-100K's category ids.
CATEGORY_IDS = {"ship": 0, "aircraft": 1, "car": 2, "tank": 3, "bridge": 4, "harbor": 5}
# Roughly Table 1's training mix.
CATEGORY_WEIGHTS = {"ship": 0.45, "aircraft": 0.2, "car": 0.07, "tank": 0.12, "bridge": 0.12, "harbor": 0.04}
# (min, max) of the long and short side in pixels.
FOOTPRINTS = {"ship": ((24, 70), (8, 20)), "aircraft": ((24, 56), (20, 50)), "car": ((10, 22), (8, 16)),
              "tank": ((12, 26), (12, 24)), "bridge": ((70, 160), (10, 22)), "harbor": ((90, 180), (60, 120))}
IMAGE_SIDES = (256, 320, 384, 448, 512)
SMALL_SIDE = 200  # below the 224 px description filter, so the filter has work to do
DEFAULT_IMAGES = {"train": 48, "val": 8, "test": 24}


def _speckle(rng: np.random.Generator, shape, looks: float = 2.0) -> np.ndarray:
    return rng.gamma(looks, 1.0 / looks, size=shape)


def _place(rng, category, width, height, taken):
    (long_lo, long_hi), (short_lo, short_hi) = FOOTPRINTS[category]
    for _ in range(50):
        long_side = int(rng.integers(long_lo, long_hi + 1))
        short_side = int(rng.integers(short_lo, min(short_hi, long_side) + 1))
        bw, bh = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
        bw, bh = min(bw, width - 2), min(bh, height - 2)
        x = int(rng.integers(0, width - bw))
        y = int(rng.integers(0, height - bh))
        box = (x, y, x + bw, y + bh)
        if all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken):
            return box
    return None


def _paint(pixels, rng, category, box):
    x1, y1, x2, y2 = box
    h, w = y2 - y1, x2 - x1
    yy, xx = np.mgrid[0:h, 0:w]
    u, v = (xx + 0.5) / w * 2 - 1, (yy + 0.5) / h * 2 - 1
    if category == "aircraft":  # fuselage and wings
        mask = (np.abs(u) < 0.25) | (np.abs(v) < 0.25)
    elif category in ("ship", "car", "tank"):
        mask = u ** 2 + v ** 2 <= 1.0
    else:  # bridges and harbours are rectangular structures
        mask = np.ones((h, w), dtype=bool)
    strength = {"harbor": 110.0, "bridge": 150.0}.get(category, 210.0)
    patch = strength * _speckle(rng, (h, w), looks=4.0)
    region = pixels[y1:y2, x1:x2]
    region[mask] = np.maximum(region[mask], patch[mask])


def make_image(rng, width, height, objects) -> bytes:
    pixels = 28.0 * _speckle(rng, (height, width), looks=1.5)
    for category, box in objects:
        _paint(pixels, rng, category, box)
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def generate(root: str | Path, seed: int = 0, images_per_split: dict | None = None, flat: bool = False) -> dict:
    """Write the dataset below `root`; returns {split: (images, boxes)}.

    `flat=True` stores images as JPEGImages/<file_name> (the other accepted layout).
    """
    root = Path(root)
    counts = {**DEFAULT_IMAGES, **(images_per_split or {})}
    names = list(CATEGORY_WEIGHTS)
    weights = np.array([CATEGORY_WEIGHTS[n] for n in names])
    summary = {}
    next_ann = 1
    for split_index, (split, n_images) in enumerate(counts.items()):
        rng = np.random.default_rng([seed, split_index])
        images, annotations = [], []
        for i in range(n_images):
            side = SMALL_SIDE if i % 11 == 5 else int(rng.choice(IMAGE_SIDES))
            width, height = side, int(side * rng.choice([1.0, 0.75, 1.25]))
            main = names[int(rng.choice(len(names), p=weights))]
            wanted = [main] * int(rng.integers(1, 5))
            if rng.random() < 0.25:
                wanted.append(names[int(rng.choice(len(names), p=weights))])
            taken, objects = [], []
            for category in wanted:
                box = _place(rng, category, width, height, taken)
                if box is not None:
                    taken.append(box)
                    objects.append((category, box))
            image_id = split_index * 100_000 + i + 1
            file_name = f"demo_{split}_{i:05d}.jpg"
            target = root / "JPEGImages" / ("" if flat else split) / file_name
            with atomic_output(target) as out:
                out.write(make_image(rng, width, height, objects))
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
            for category, (x1, y1, x2, y2) in objects:
                annotations.append({"id": next_ann, "image_id": image_id, "category_id": CATEGORY_IDS[category],
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                    "iscrowd": 0})
                next_ann += 1
        write_json(root / "Annotations" / f"{split}.json", {
            "info": {"description": f"SARChat-Bench synthetic demo data (seed {seed})"},
            "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in CATEGORY_IDS.items()],
        })
        summary[split] = (len(images), len(annotations))
    return summary


