"""Download and extraction, on local archives and a loopback HTTP server (no internet)."""

import http.server
import io
import json
import tarfile
import threading
import zipfile

import pytest
from sarchat_bench.core.errors import InputError
from sarchat_bench.core.workstate import file_digest
from sarchat_bench.dataset.download import fetch, fetch_url, locate_root, safe_extract
from support import sardet_sources
from support.commands import run_cli
from support.data import write_coco
from support.fake_hub import serve_hub


def sardet_archive(tmp_path, kind="tar"):
    src = tmp_path / "src" / "SARDet_100K"
    write_coco(src, "train", [{"id": 1, "file_name": "1.jpg", "width": 50, "height": 50}],
               [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1, 10, 10]}])
    archive = tmp_path / f"sardet.{'tar.gz' if kind == 'tar' else 'zip'}"
    if kind == "tar":
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(src, arcname="SARDet_100K")
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            for f in src.rglob("*"):
                zf.write(f, f"SARDet_100K/{f.relative_to(src)}")
    return archive


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_fetch_local_archive_places_dataset(tmp_path, kind):
    archive = sardet_archive(tmp_path, kind)
    target = fetch({"source": "archive", "archive": str(archive), "sha256": file_digest(archive)},
                   tmp_path / "out" / "SARDet_100K", tmp_path / "work")
    assert (target / "Annotations" / "train.json").is_file()
    assert (target / "JPEGImages" / "train" / "1.jpg").is_file()


def test_sha256_mismatch_is_an_error(tmp_path):
    archive = sardet_archive(tmp_path)
    with pytest.raises(InputError, match="sha256 mismatch"):
        fetch({"source": "archive", "archive": str(archive), "sha256": "0" * 64}, tmp_path / "o", tmp_path / "w")


def test_tar_member_escaping_target_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        data = b"x"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(InputError, match="escapes the target folder"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists()


def test_tar_symlink_pointing_out_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(InputError):
        safe_extract(archive, tmp_path / "dest")


def test_zip_member_escaping_target_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("/abs/path.txt", "x")
        zf.writestr("../up.txt", "x")
    with pytest.raises(InputError, match="escapes the target folder"):
        safe_extract(archive, tmp_path / "dest")


def test_not_an_archive(tmp_path):
    f = tmp_path / "plain.txt"
    f.write_text("hello")
    with pytest.raises(InputError, match="not a zip or tar"):
        safe_extract(f, tmp_path / "d")


def test_locate_root_rejects_other_layouts(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="not the SARDet-100K layout"):
        locate_root(tmp_path)


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one payload; honours Range; fails the first `fail_first` requests with 503."""

    payload = b""
    fail_first = 0
    requests_seen: list = []

    def do_GET(self):  # noqa: N802
        type(self).requests_seen.append(self.headers.get("Range"))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_error(503)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def test_url_download_resumes_and_retries(tmp_path, server):
    payload = bytes(range(256)) * 400
    RangeHandler.payload, RangeHandler.fail_first, RangeHandler.requests_seen = payload, 1, []
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(payload[:1000])  # an interrupted earlier download
    import hashlib

    url = f"http://127.0.0.1:{server.server_address[1]}/data.bin"
    fetch_url(url, dest, sha256=hashlib.sha256(payload).hexdigest(), backoff_s=0.01)
    assert dest.read_bytes() == payload
    assert RangeHandler.requests_seen == ["bytes=1000-", "bytes=1000-"]  # 503, then resumed
    assert not (tmp_path / "data.bin.part").exists()


def test_url_download_gives_up_on_client_errors(tmp_path, server):
    RangeHandler.fail_first = 0

    class NotFound(RangeHandler):
        def do_GET(self):  # noqa: N802
            self.send_error(404)

    server.RequestHandlerClass = NotFound
    with pytest.raises(InputError, match="HTTP 404"):
        fetch_url(f"http://127.0.0.1:{server.server_address[1]}/x", tmp_path / "x", backoff_s=0.01)


# ---- the places SARDet-100K is published, as stand-ins laid out like them (support/sardet_sources.py) ----

def placed_splits(target):
    """The splits a placed dataset holds, with the images the build's reader keeps of each."""
    from sarchat_bench.dataset.annotations import load_split

    return {split: len(load_split(target, split)[0]) for split in ("train", "val", "test")
            if (target / "Annotations" / f"{split}.json").is_file()}


def test_the_kaggle_copy_gets_its_test_json_moved_into_annotations(tmp_path):
    """Kaggle's sardet-100k.zip keeps test.json beside Annotations/: placed, it is inside."""
    archive = sardet_sources.kaggle_zip(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        assert "SARDet_100K/test.json" in zf.namelist() and "SARDet_100K/Annotations/test.json" not in zf.namelist()
    target = fetch({"source": "archive", "archive": str(archive), "sha256": file_digest(archive)},
                   tmp_path / "out" / "SARDet_100K", tmp_path / "work")
    assert not (target / "test.json").exists()
    assert placed_splits(target) == sardet_sources.IMAGES


def test_the_kaggle_copy_unzipped_by_hand_is_read_where_it_is(tmp_path):
    """Unzipped by hand and named by sardet_root, the Kaggle layout's test.json is found beside
    Annotations/ (annotation_file), not reported missing."""
    from sarchat_bench.dataset.annotations import annotation_file, load_split

    with zipfile.ZipFile(sardet_sources.kaggle_zip(tmp_path)) as zf:
        zf.extractall(tmp_path / "unzipped")
    root = tmp_path / "unzipped" / "SARDet_100K"
    assert annotation_file(root, "test") == root / "test.json"
    assert annotation_file(root, "train") == root / "Annotations" / "train.json"
    assert len(load_split(root, "test")[0]) == sardet_sources.IMAGES["test"]


def test_the_baidu_share_joins_its_split_volumes(tmp_path):
    """The authors' Baidu share: train.zip.001-.003 (byte volumes of one zip) beside whole zips.
    The first volume as `download.archive`, or the folder of the share, gives the dataset."""
    share = sardet_sources.baidu_share(tmp_path)
    assert sorted(p.name for p in share.iterdir()) == ["test.zip", "train.zip.001", "train.zip.002",
                                                        "train.zip.003", "val.zip"]
    assert not zipfile.is_zipfile(share / "train.zip.001")
    target = fetch({"source": "archive", "archive": str(share)}, tmp_path / "all" / "SARDet_100K", tmp_path / "w1")
    assert placed_splits(target) == sardet_sources.IMAGES
    assert not (tmp_path / "w1" / "joined").exists()  # the joined copy of train.zip is not kept
    target = fetch({"source": "archive", "archive": str(share / "train.zip.001")}, tmp_path / "tr" / "SARDet_100K",
                   tmp_path / "w2")
    assert placed_splits(target) == {"train": sardet_sources.IMAGES["train"]}
    (share / "train.zip.002").unlink()
    with pytest.raises(InputError, match=r"train.zip.001: split archive is missing volume train.zip.002 \(have 2: "
                                         r"train.zip.001, train.zip.003\)"):
        fetch({"source": "archive", "archive": str(share)}, tmp_path / "x" / "SARDet_100K", tmp_path / "w3")


def test_archives_that_cannot_be_unpacked_say_how(tmp_path):
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "SARDet_100K.z01").write_bytes(b"PK")
    (folder / "SARDet_100K.zip").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"SARDet_100K.z01: cannot unpack SARDet_100K.z01, zip's own spanned "
                                         r"volumes: join them with `zip -s 0 X.zip --out X-whole.zip`"):
        fetch({"source": "archive", "archive": str(folder)}, tmp_path / "o", tmp_path / "w")
    with pytest.raises(InputError, match="names one archive, but download.archive is a folder"):
        fetch({"source": "archive", "archive": str(folder), "sha256": "0" * 64}, tmp_path / "o", tmp_path / "w")


def test_a_hub_snapshot_of_several_archives_is_merged(tmp_path, monkeypatch):
    """A dataset repo holding Annotations.zip and one zip per image folder, beside a README,
    downloaded by the real huggingface_hub client from the stand-in hub (support/fake_hub.py),
    through the `download` command as the download_sardet rule runs it."""
    repo = sardet_sources.hub_snapshot(tmp_path)
    settings = {"source": "huggingface", "repo_id": "someone/SARDet_100K", "revision": "main"}
    target, work = tmp_path / "placed" / "SARDet_100K", tmp_path / "work"
    with serve_hub(repo.parents[1]) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)  # read by huggingface_hub at import: the command's own process
        result = run_cli("download", "--settings", json.dumps(settings), "--target", target, "--work", work)
    assert result.returncode == 0, result.stderr
    assert placed_splits(target) == sardet_sources.IMAGES
    assert (work / "snapshot" / "Annotations.zip").is_file()  # the download stays, for a resumed rerun


def test_a_lower_case_annotations_folder_is_named_in_the_error(tmp_path):
    (tmp_path / "SARDet_100K" / "annotations").mkdir(parents=True)
    with pytest.raises(InputError, match=r"not the SARDet-100K layout \(found SARDet_100K/annotations: rename it to "
                                         r"Annotations/\)"):
        locate_root(tmp_path)
