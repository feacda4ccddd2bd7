"""Stand-ins for the places SARDet-100K is published, laid out as each is (or, where nobody could
list its files, as the code that reads it expects; docs/dataset.md, "Getting SARDet-100K"). Each
holds a tiny generated dataset with real images: a few per split.

- Kaggle (greatbird/sardet-100k): one `sardet-100k.zip` holding `SARDet_100K/`, with
  `Annotations/{train,val}.json` but `test.json` beside `Annotations/`, as three independent
  codebases read it;
- the authors' Baidu share: `train.zip` cut into byte volumes `train.zip.001`-`.003` (the
  author's word in their issue #60), beside whole `val.zip` and `test.zip`;
- a hub snapshot (the ModelScope re-upload's possible shape): several archives, one per folder,
  beside a README and the hub's .gitattributes;
- the canonical folder, zipped with its top folder (`SARDet_100K.zip`).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

IMAGES = {"train": 4, "val": 1, "test": 3}


def canonical(folder: Path, seed: int = 2) -> Path:
    """The SARDet-100K layout itself: Annotations/{train,val,test}.json, JPEGImages/<split>/."""
    from sarchat_bench.dataset.demo_data import generate

    root = folder / "SARDet_100K"
    generate(root, seed=seed, images_per_split=IMAGES)
    return root


def zip_folder(source: Path, archive: Path, arcname: str, only: str | None = None) -> Path:
    """`source` zipped under the top folder `arcname` (`only`: just that subfolder of it)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((source / only if only else source).rglob("*")):
            if path.is_file():
                zf.write(path, f"{arcname}/{path.relative_to(source).as_posix()}")
    return archive


def kaggle_zip(folder: Path) -> Path:
    """sardet-100k.zip as `kaggle datasets download -d greatbird/sardet-100k` names it."""
    root = canonical(folder / "kaggle_src")
    shutil.move(root / "Annotations" / "test.json", root / "test.json")
    return zip_folder(root, folder / "sardet-100k.zip", "SARDet_100K")


def split_into_volumes(archive: Path, volumes: int = 3) -> list[Path]:
    """`archive` cut into raw byte volumes `<archive>.001`, ... (as `split -n 3 -a 3
    --numeric-suffixes=1` or 7-Zip cut them), the whole archive removed."""
    subprocess.run(["split", "-n", str(volumes), "-a", "3", "--numeric-suffixes=1", archive.name, f"{archive.name}."],
                   cwd=archive.parent, check=True)
    archive.unlink()
    return sorted(archive.parent.glob(f"{archive.name}.[0-9][0-9][0-9]"))


def baidu_share(folder: Path) -> Path:
    """The files of the authors' Baidu share, downloaded into one folder: train.zip.001-.003,
    val.zip, test.zip, each holding SARDet_100K/ with its split's annotations and images."""
    root = canonical(folder / "baidu_src")
    share = folder / "baidu_share"
    for split in IMAGES:
        staged = folder / "baidu_stage" / split / "SARDet_100K"
        (staged / "Annotations").mkdir(parents=True)
        shutil.copy2(root / "Annotations" / f"{split}.json", staged / "Annotations")
        shutil.copytree(root / "JPEGImages" / split, staged / "JPEGImages" / split)
        zip_folder(staged, share / f"{split}.zip", "SARDet_100K")
    split_into_volumes(share / "train.zip")
    return share


def hub_snapshot(folder: Path) -> Path:
    """A dataset repo as a hub client leaves it: Annotations.zip and one JPEGImages_<split>.zip
    per split (names are placeholders: the real ones could not be listed), a README and the
    hub's .gitattributes."""
    root = canonical(folder / "hub_src")
    repo = folder / "hub" / "someone" / "SARDet_100K"
    zip_folder(root, repo / "Annotations.zip", "SARDet_100K", only="Annotations")
    for split in IMAGES:
        zip_folder(root, repo / f"JPEGImages_{split}.zip", "SARDet_100K", only=f"JPEGImages/{split}")
    (repo / "README.md").write_text("SARDet-100K, re-compressed.\n")
    (repo / ".gitattributes").write_text("*.zip filter=lfs diff=lfs merge=lfs -text\n")
    return repo
