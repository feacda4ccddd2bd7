"""Faults and bad inputs as a careless user, a flaky disk and a killed job produce them: each is a
clear error naming what is wrong, or a counted skip, and never a stale or foreign result."""

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import orjson
import pytest
from sarchat_bench.core.errors import InputError
from sarchat_bench.core.io import atomic_output
from sarchat_bench.dataset.annotations import image_problem, load_split
from sarchat_bench.dataset.download import fetch, safe_extract
from support import SCRIPTS
from support.data import ann, img, jpeg, write_coco
from support.workflow import snakemake


def skipped(report) -> dict:
    return {r["rule"]: r["removed"] for r in report.as_dict()["rules"] if r["removed"]}


# ---- the dataset folder ----

def test_image_paths_outside_the_dataset_are_skipped(tmp_path):
    root = tmp_path / "SARDet_100K"
    outside = tmp_path / "secret.jpg"
    jpeg(outside)
    names = ["ok.jpg", "../../../secret.jpg", "/etc/passwd", "link.jpg"]
    write_coco(root, "train", [img(i + 1, n) for i, n in enumerate(names)], [ann(i + 1, i + 1) for i in range(4)],
               make_files=False)
    jpeg(root / "JPEGImages" / "train" / "ok.jpg")
    (root / "JPEGImages" / "train" / "link.jpg").symlink_to(outside)
    kept, report = load_split(root, "train")
    assert [im.path for im in kept] == ["JPEGImages/train/ok.jpg"]
    assert skipped(report) == {"outside_root": 3}
    examples = next(r["examples"] for r in report.as_dict()["rules"] if r["rule"] == "outside_root")
    assert any("/etc/passwd" in e for e in examples) and any("secret.jpg" in e for e in examples)


def test_image_paths_are_relative_to_the_dataset_root_so_it_can_move(tmp_path, monkeypatch):
    """Records name an image by its path below the SARDet-100K root, whichever folder the build
    ran in, and every reader resolves it against the root where the images are now (D20)."""
    from sarchat_bench.paper.records import image_file

    root = tmp_path / "SARDet_100K"
    write_coco(root, "train", [img(1), img(2, "sub/2.jpg")], [ann(1, 1), ann(2, 2)])
    monkeypatch.chdir(tmp_path)
    kept, _ = load_split("SARDet_100K", "train")
    assert [im.path for im in kept] == ["JPEGImages/train/1.jpg", "JPEGImages/train/sub/2.jpg"]
    moved = tmp_path / "elsewhere" / "SARDet_100K"
    moved.parent.mkdir()
    root.rename(moved)
    monkeypatch.chdir("/")
    assert all(os.path.isfile(image_file(im.path, moved)) for im in kept)
    monkeypatch.setenv("ROOT_IMAGE_DIR", str(moved))  # ms-swift's variable, read as the default root
    assert image_file(kept[0].path, None) == str(moved / "JPEGImages" / "train" / "1.jpg")
    monkeypatch.delenv("ROOT_IMAGE_DIR")
    with pytest.raises(InputError, match=r"^t.jsonl, record r1: image 'JPEGImages/train/1.jpg' is relative to the "
                                         r"SARDet-100K root, but no image root was given"):
        image_file(kept[0].path, None, "t.jsonl", "r1")
    assert image_file("/abs/1.jpg", moved) == "/abs/1.jpg"  # datasets built by 0.7.0 or earlier


def test_unreadable_and_missized_images_are_counted_skips(tmp_path):
    root = tmp_path / "SARDet_100K"
    write_coco(root, "train", [img(i) for i in range(1, 6)], [ann(i, i) for i in range(1, 6)], make_files=False)
    folder = root / "JPEGImages" / "train"
    jpeg(folder / "1.jpg")
    (folder / "2.jpg").write_bytes(b"")                                   # empty
    jpeg(folder / "3.jpg")
    (folder / "3.jpg").write_bytes((folder / "3.jpg").read_bytes()[:300])  # truncated
    jpeg(folder / "4.jpg", size=(32, 48))                                 # not the annotated size
    (folder / "5.jpg").write_text("not an image")
    kept, report = load_split(root, "train", check_image_headers=True)
    assert [im.image_id for im in kept] == [1]
    assert skipped(report) == {"unreadable_image": 3, "image_size_mismatch": 1}
    # Annotation-only runs (the build benchmark's empty files) switch the check off.
    assert len(load_split(root, "train")[0]) == 5
    assert image_problem(str(folder / "1.jpg"), 64, 48) is None


def test_one_category_id_with_two_names_is_an_error(tmp_path):
    write_coco(tmp_path, "train", [img(1)], [ann(1, 1)],
               categories=[{"id": 0, "name": "ship"}, {"id": 1, "name": "car"}, {"id": 0, "name": "tank"}])
    with pytest.raises(InputError, match=r"categories\[2\].*category id 0 is named both 'ship' and 'tank'"):
        load_split(tmp_path, "train")


def test_an_annotation_id_used_twice_is_an_error_unless_it_is_the_same_record(tmp_path):
    write_coco(tmp_path, "train", [img(1)], [ann(1, 1), ann(1, 1, bbox=(20, 20, 5, 5))])
    with pytest.raises(InputError, match=r"annotations\[1\].*annotation id 1 is used again with other content"):
        load_split(tmp_path, "train")
    write_coco(tmp_path, "train", [img(1)], [ann(1, 1), ann(1, 1), ann(2, 1, bbox=(30, 20, 5, 5))])
    kept, report = load_split(tmp_path, "train")
    assert len(kept[0].instances) == 2 and skipped(report) == {"duplicate_annotation": 1}


# ---- a dataset that lost its images ----

def lost_images_folder(root, unreadable: dict[str, int], images: int = 10):
    """A SARDet-layout folder whose first `unreadable[split]` image files are empty placeholders
    (an archive not extracted, Git LFS pointers), the rest real JPEGs."""
    for split in ("train", "test"):
        write_coco(root, split, [img(i) for i in range(1, images + 1)],
                   [ann(i, i, cat=i % 3) for i in range(1, images + 1)], make_files=False)
        for i in range(1, images + 1):
            path = root / "JPEGImages" / split / f"{i}.jpg"
            if i <= unreadable.get(split, 0):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
            else:
                jpeg(path)
    return root


@pytest.mark.workflow
def test_a_dataset_whose_images_are_all_unreadable_stops_the_build(tmp_path):
    root = lost_images_folder(tmp_path / "SARDet_100K", {"train": 10, "test": 10})
    result = snakemake(tmp_path / "wd", "build_dataset", "--config", f"sardet_root={root}", check=False)
    assert result.returncode != 0
    logs = {split: (tmp_path / "wd" / "results" / "logs" / "annotations" / f"{split}.log").read_text()
            for split in ("train", "test")}
    for split, text in logs.items():
        line = next(line for line in text.splitlines() if line.startswith("error:"))
        assert line == (f"error: {root.resolve()}/JPEGImages/{split}: split '{split}' kept no image of 10: most "
                        "often 'unreadable_image' (10: image file is empty, truncated or not an image), e.g. image "
                        f"id 1 ({root.resolve()}/JPEGImages/{split}/1.jpg)"), text
    sarchat = tmp_path / "wd" / "results" / "sarchat"
    assert not list(sarchat.rglob("*.jsonl")) and not list(sarchat.rglob("*.boxes.json"))


@pytest.mark.workflow
def test_a_split_that_lost_most_of_its_images_stops_the_build_unless_accepted(tmp_path):
    root = lost_images_folder(tmp_path / "SARDet_100K", {"test": 6})
    result = snakemake(tmp_path / "wd", "build_dataset", "--config", f"sardet_root={root}", check=False)
    assert result.returncode != 0
    log = (tmp_path / "wd" / "results" / "logs" / "annotations" / "test.log").read_text()
    assert (f"error: {root.resolve()}/JPEGImages/test: split 'test' lost 6 of 10 images (60.0 %) to file problems, "
            "more than dataset.max_image_file_loss (10 %): most often 'unreadable_image' (6: ") in log
    assert "raise dataset.max_image_file_loss to build from what is left" in log
    assert not (tmp_path / "wd" / "results" / "sarchat" / "test").exists()
    # Accepted knowingly: the build goes on from the images left, and says what it lost.
    snakemake(tmp_path / "wd", "build_dataset", "--config", f"sardet_root={root}",
              extra_config="dataset: {max_image_file_loss: 0.7}")
    report = (tmp_path / "wd" / "results" / "sarchat" / "stats" / "filter_report.csv").read_text()
    assert "test,unreadable_image,6," in report


def test_what_counts_as_a_file_problem(tmp_path):
    from sarchat_bench.dataset.annotations import check_images_kept

    # Images without a usable box are not file problems: the split may lose most of them.
    write_coco(tmp_path, "train", [img(i) for i in range(1, 11)],
               [ann(1, 1), *(ann(i, i, cat=9) for i in range(2, 11))])
    kept, report = load_split(tmp_path, "train")
    assert len(kept) == 1 and skipped(report) == {"unknown_category": 9, "empty_image": 9}
    check_images_kept(report, tmp_path / "JPEGImages" / "train")
    # A split that keeps nothing stops, whatever the reason, naming the most common one (here the
    # cause: each annotation's category is unknown, so each image is left without a box).
    write_coco(tmp_path, "train", [img(i) for i in range(1, 4)], [ann(i, i, cat=9) for i in range(1, 4)])
    _, report = load_split(tmp_path, "train")
    with pytest.raises(InputError, match=r"split 'train' kept no image of 3: most often 'unknown_category' \(3: "):
        check_images_kept(report, tmp_path / "JPEGImages" / "train")
    # Exactly the limit still builds; one more image lost stops it.
    write_coco(tmp_path, "train", [img(i) for i in range(1, 11)], [ann(i, i) for i in range(1, 11)],
               make_files=False)
    for i in range(2, 11):
        (tmp_path / "JPEGImages" / "train" / f"{i}.jpg").touch()
    (tmp_path / "JPEGImages" / "train" / "1.jpg").unlink()
    _, report = load_split(tmp_path, "train")
    check_images_kept(report, tmp_path, max_file_loss=0.1)
    with pytest.raises(InputError, match=r"lost 1 of 10 images \(10.0 %\)"):
        check_images_kept(report, tmp_path, max_file_loss=0.05)


# ---- downloads and archives ----

def good_archive(tmp_path, name="good"):
    src = tmp_path / name / "SARDet_100K"
    write_coco(src, "test", [img(1, f"{name}.jpg")], [ann(1, 1)])
    archive = tmp_path / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="SARDet_100K")
    return archive


def test_a_refused_archive_leaves_nothing_the_next_download_could_take(tmp_path):
    """An archive refused part-way (its layout already extracted when tar's data filter meets a
    device node), then a good one: the dataset is the good archive's."""
    bad = tmp_path / "bad.tar"
    src = tmp_path / "bad" / "SARDet_100K"
    write_coco(src, "test", [img(1, "bad.jpg")], [ann(1, 1)])
    with tarfile.open(bad, "w") as tf:
        tf.add(src, arcname="SARDet_100K")
        device = tarfile.TarInfo("SARDet_100K/zz_device")
        device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
        tf.addfile(device)
    work, target = tmp_path / "work", tmp_path / "placed" / "SARDet_100K"
    with pytest.raises(InputError, match="unsafe member refused"):
        fetch({"source": "archive", "archive": str(bad)}, target, work)
    assert not (work / "unpacked").exists()
    fetch({"source": "archive", "archive": str(good_archive(tmp_path))}, target, work)
    names = [i["file_name"] for i in json.loads((target / "Annotations" / "test.json").read_text())["images"]]
    assert names == ["good.jpg"]


def test_a_truncated_archive_is_a_one_line_error(tmp_path):
    archive = good_archive(tmp_path)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(InputError, match="archive is damaged or truncated"):
        safe_extract(cut, tmp_path / "dest")


def test_extraction_has_a_size_limit(tmp_path):
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("SARDet_100K/zeros.bin")
        info.size = 3_000_000
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(InputError, match=r"unpacks to 0.0 GB, more than the limit of 0.001 GB"):
        safe_extract(archive, tmp_path / "dest", max_bytes=1e6)
    assert not (tmp_path / "dest").exists()


# ---- jobs that die ----

def test_a_killed_writer_leaves_no_stray_part_file(tmp_path):
    target = tmp_path / "train.jsonl"
    stale = tmp_path / ".train.jsonl.abc123.part"
    stale.write_bytes(b"x" * 1000)  # what a writer killed with SIGKILL leaves
    with atomic_output(target) as out:
        out.write(b"{}\n")
    assert target.read_bytes() == b"{}\n" and sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]


def test_a_job_dies_with_its_shell(tmp_path):
    """Killing only a job's shell used to leave the Python running, renaming its output into
    place after Snakemake had reported the failure."""
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    out = tmp_path / "demo"
    shell = subprocess.Popen(["bash", "-c", f"{sys.executable} -m sarchat_bench demo-data --root {out} "
                              "--images '{\"train\": 20000}'; echo done"], env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out / "JPEGImages").exists():
        time.sleep(0.05)
    child = subprocess.run(["pgrep", "-P", str(shell.pid)], capture_output=True, text=True).stdout.split()
    assert child, "the job did not start"
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait()
    time.sleep(1)
    assert not os.path.exists(f"/proc/{child[0]}") or "zombie" in open(f"/proc/{child[0]}/status").read().lower()
    assert not (out / "Annotations" / "train.json").exists()


# ---- the configuration ----

@pytest.mark.workflow
@pytest.mark.parametrize("extra,message", [
    ("models: {tiny-qwen2-vl: {infer: {batch_size: 0}}}", "0 is less than the minimum of 1"),
    ("models: {tiny-qwen2-vl: {train: {lora_rnak: 8}}}", "'lora_rnak' was unexpected"),
    ("models: {tiny-qwen2-vl: {infer: {shards: 2}}}", "'shards' was unexpected"),
    ("models: {tiny-qwen2-vl: {infer: {samples_per_shard: two}}}", "'two' is not of type 'integer'"),
    ("models: {tiny-qwen2-vl: {infer: {batchsize: 4}}}", "'batchsize' was unexpected"),
    ("run: []", "On instance['run']"),
    ("dataset: {train_splits: [train], test_splits: [test, train]}", "share ['train']: the same images would"),
    ("sardet_root: /no/such/SARDet_100K", "'/no/such/SARDet_100K' is not a SARDet-100K folder"),
])
def test_bad_settings_are_refused_before_any_job(tmp_path, extra, message):
    result = snakemake(tmp_path, "-n", check=False, extra_config=extra)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result.stderr[-3000:]


# ---- inference with a bad image ----

@pytest.mark.swift
def test_one_bad_image_costs_its_own_answer_not_the_shard(tmp_path):
    from sarchat_bench.dataset.demo_data import generate
    from support.commands import cli
    from support.jobs import run_options, spec

    root = tmp_path / "SARDet_100K"
    generate(root, seed=1, images_per_split={"test": 3})
    kept, _ = load_split(root, "test")
    records = [{"id": f"r{i}", "messages": [{"role": "user", "content": "<image>[count] How many ships?"},
                                            {"role": "assistant", "content": "-"}], "images": [im.path]}
               for i, im in enumerate(kept)]
    broken = root / records[1]["images"][0]  # records name it relative to the dataset root
    with open(broken, "r+b") as handle:
        handle.truncate(200)
    test = tmp_path / "count.jsonl"
    test.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    from sarchat_bench.models.tiny import build

    model = build("llava1_5_hf", tmp_path / "tiny", [test])
    tiny = {"llava1_5_hf": model}
    out = tmp_path / "out.jsonl"
    job = cli("infer", "--model", "tiny", "--spec", spec(tiny, "llava1_5_hf"), "--run",
              run_options(tmp_path, image_root=root), "--test", test, "--out", out, "--partial", tmp_path / "p.jsonl")
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0, log
    answers = {r["id"]: r["response"] for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert list(answers) == ["r0", "r1", "r2"] and answers["r1"] == ""
    assert f"r1: cannot read image {broken}" in log


@pytest.mark.swift
@pytest.mark.workflow
def test_a_killed_shard_rerun_with_other_settings_gives_only_new_answers(tmp_path):
    """The issue's reproduction through the workflow: an inference shard killed mid-run, then
    rerun after a change to the model's infer: settings, used to merge the old answers ("16
    already done") into the new scores."""
    extra = ("demo: {seed: 6, images: {train: 6, test: 10}}\nrun: [zs]\nmodels: {zs: {family: Z, params_b: 0.005, "
             "mode: zero_shot, source: {tiny: qwen2_vl}, model_type: qwen2_vl, template: qwen2_vl, "
             "env: {MAX_PIXELS: '12544'}, infer: {torch_dtype: float32, batch_size: 1, gpus: 0, %s}}}\n")
    target = "results/predictions/zs/identify_multi.jsonl"
    snakemake(tmp_path, "results/sarchat/test/identify_multi.jsonl", extra_config=extra % "max_new_tokens: 40")
    partial = tmp_path / "results" / "predictions" / "zs" / "work" / "identify_multi.1-of-1.partial.jsonl"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", target, "-s", str(SCRIPTS.parent / "Snakefile"), "--directory",
           str(tmp_path), "--cores", "1", "--configfile", str(SCRIPTS.parent / "config.yaml"),
           str(tmp_path / "extra_config.yaml")]
    job = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < 6):
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    old = [orjson.loads(line)["response"] for line in partial.read_bytes().splitlines()[1:]]
    assert len(old) >= 5 and not (tmp_path / target).exists()
    snakemake(tmp_path, "--unlock", extra_config=extra % "max_new_tokens: 3")  # as after any kill -9
    snakemake(tmp_path, target, extra_config=extra % "max_new_tokens: 3")
    log = (tmp_path / "results" / "logs" / "infer" / "zs" / "identify_multi.1-of-1.log").read_text()
    assert f"discarding {len(old)} earlier answers: made from other inputs or settings (spec.settings.max_new_tokens)" \
        in log and " 0 already done" in log
    new = [orjson.loads(line)["response"] for line in (tmp_path / target).read_bytes().splitlines()]
    assert max(len(r) for r in new) < min(len(r) for r in old if r)  # 3 tokens now, 40 before
