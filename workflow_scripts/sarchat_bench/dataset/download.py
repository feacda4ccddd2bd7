"""Fetch SARDet-100K: from a Hugging Face or ModelScope dataset repo at a pinned revision, from
an HTTP(S) URL (resumable, retried), or from a local archive or folder of archives; verify
sha256 when given; extract safely; and place the dataset at a fixed folder in the SARDet-100K
layout.

The copies people publish are laid out differently (docs/dataset.md, "Getting SARDet-100K"):
archives inside a hub snapshot, beside loose files; an archive split into byte volumes
(`train.zip.001`, `.002`, ... on the authors' Baidu share), which are joined; `test.json` beside
`Annotations/` rather than in it (the Kaggle copy, as third-party code reads it), which is moved
into it. What cannot be read (zip's own spanned volumes `.z01`, 7-Zip or RAR archives) stops
with one line saying how to unpack it by hand.

Credentials come only from the environment (HF_TOKEN, MODELSCOPE_API_TOKEN, or the variable
named by `token_env` for URLs), never from config or params, which Snakemake stores in plain
text under .snakemake/.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import tarfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from sarchat_bench.core.errors import InputError
from sarchat_bench.core.workstate import MANIFEST, claim_folder, file_digest

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz")
# Byte volumes of one archive (7-Zip's and `split`'s naming): train.zip.001, train.zip.002, ...
VOLUME = re.compile(r"^(?P<archive>.+\.(?:zip|tar|tar\.gz|tgz))\.(?P<number>\d{3})$")
# What this module cannot unpack: zip's own spanned volumes, 7-Zip and RAR archives.
UNREADABLE = re.compile(r"\.(?:z\d{2}|7z(?:\.\d{3})?|rar|r\d{2})$", re.IGNORECASE)
# Extraction stops beyond this many bytes: SARDet-100K unpacks to 7-20 GB (estimates), an archive
# bomb to whatever it likes (config download.max_extract_gb).
DEFAULT_MAX_EXTRACT_GB = 200


def verify_sha256(path: str | os.PathLike, expected: str | None) -> None:
    if not expected:
        log.warning("%s: no sha256 in config, integrity not checked", path)
        return
    actual = file_digest(path)
    if actual.lower() != expected.lower():
        raise InputError(path, f"sha256 mismatch: expected {expected}, got {actual}")
    log.info("%s: sha256 verified", path)


def fetch_url(url: str, dest: str | os.PathLike, *, sha256: str | None = None, token_env: str | None = None,
              retries: int = 5, backoff_s: float = 2.0, timeout_s: float = 60.0) -> Path:
    """Download `url` to `dest`, resuming a partial `dest.part` with an HTTP Range request."""
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    headers = {}
    if token_env and os.environ.get(token_env):
        headers["Authorization"] = f"Bearer {os.environ[token_env]}"
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request_headers = dict(headers, **({"Range": f"bytes={have}-"} if have else {}))
        try:
            with requests.get(url, headers=request_headers, stream=True, timeout=timeout_s) as resp:
                if resp.status_code == 416:  # already complete
                    break
                resp.raise_for_status()
                resumed = have and resp.status_code == 206
                if have and not resumed:
                    log.info("%s: server ignored the range request; starting over", url)
                total = resp.headers.get("Content-Length")
                with open(part, "ab" if resumed else "wb") as out:
                    done = have if resumed else 0
                    last = time.monotonic()
                    for block in resp.iter_content(chunk_size=1 << 20):
                        out.write(block)
                        done += len(block)
                        if time.monotonic() - last > 10:
                            log.info("%s: %.1f MiB%s", url, done / 2**20,
                                     f" of {(int(total) + (have if resumed else 0)) / 2**20:.1f} MiB" if total else "")
                            last = time.monotonic()
            break
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                raise InputError(url, f"HTTP {status}: {err}") from None
            if attempt == retries:
                raise InputError(url, f"download failed after {retries} attempts: {err}") from None
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s); retrying in %.0f s", url, attempt, err, wait)
            time.sleep(wait)
    verify_sha256(part, sha256)
    os.replace(part, dest)
    return dest


def fetch_hub(source: str, repo_id: str, revision: str, dest: str | os.PathLike) -> Path:
    """Snapshot a dataset repo at a pinned revision (both hubs resume partial files)."""
    dest = Path(dest)
    if source == "huggingface":
        from huggingface_hub import snapshot_download

        path = snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=dest,
                                 token=os.environ.get("HF_TOKEN") or None)
    elif source == "modelscope":
        from modelscope import dataset_snapshot_download

        path = dataset_snapshot_download(dataset_id=repo_id, revision=revision, local_dir=str(dest),
                                         token=os.environ.get("MODELSCOPE_API_TOKEN") or None)
    else:
        raise ValueError(f"unknown hub {source!r}")
    return Path(path)


def _check_member(name: str, dest: Path, archive) -> Path:
    pure = PurePosixPath(name)
    target = (dest / pure).resolve()
    if pure.is_absolute() or ".." in pure.parts or not target.is_relative_to(dest.resolve()):
        raise InputError(archive, f"member escapes the target folder: {name!r}")
    return target


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike,
                 max_bytes: float = DEFAULT_MAX_EXTRACT_GB * 1e9) -> None:
    """Extract a .zip or tar archive into an empty `dest`, refusing members that would land
    outside it (absolute paths, "..", and links pointing out) and archives that unpack to more
    than `max_bytes`. Whatever a refused or broken archive left in `dest` is removed, so that
    it can never pass for a dataset."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        _extract(archive, dest, max_bytes)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _too_big(archive: Path, total: float, max_bytes: float) -> None:
    if total > max_bytes:
        raise InputError(archive, f"unpacks to {total / 1e9:.1f} GB, more than the limit of {max_bytes / 1e9:g} GB "
                                  "(download.max_extract_gb)")


def _extract(archive: Path, dest: Path, max_bytes: float) -> None:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    _check_member(info.filename, dest, archive)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise InputError(archive, f"member is a symbolic link: {info.filename!r}")
                _too_big(archive, sum(i.file_size for i in infos), max_bytes)
                zf.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for member in members:
                    _check_member(member.name, dest, archive)
                    if member.issym() or member.islnk():
                        _check_member(str(PurePosixPath(member.name).parent / member.linkname)
                                      if member.issym() else member.linkname, dest, archive)
                _too_big(archive, sum(m.size for m in members), max_bytes)
                try:
                    tf.extractall(dest, filter="data")
                except tarfile.FilterError as err:
                    raise InputError(archive, f"unsafe member refused: {err}") from None
        else:
            raise InputError(archive, "not a zip or tar archive")
    except (EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error) as err:
        raise InputError(archive, f"archive is damaged or truncated ({type(err).__name__}: {err})") from None


def locate_root(folder: str | os.PathLike) -> Path:
    """The folder holding Annotations/<split>.json (archives often add a top-level folder)."""
    folder = Path(folder)
    for candidate in [folder, *sorted(p for p in folder.rglob("Annotations") if p.is_dir())]:
        root = candidate if candidate.name != "Annotations" else candidate.parent
        if (root / "Annotations").is_dir() and any((root / "Annotations" / f"{s}.json").is_file() for s in SPLITS):
            return root
    other = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                   if p.is_dir() and p.name.lower() in ("annotations", "annotation") and p.name != "Annotations")
    hint = f" (found {', '.join(other)}: rename it to Annotations/)" if other else ""
    raise InputError(folder, f"no Annotations/{{train,val,test}}.json found: not the SARDet-100K layout{hint}")


def join_volumes(first: Path, out: Path) -> Path:
    """The archive whose byte volumes are `first` (its `.001`) and the numbers after it, joined
    into `out` (what `cat X.001 X.002 ... > X` does). A gap in the numbering is an error naming
    the missing volume."""
    match = VOLUME.match(first.name)
    if not match or match["number"] != "001":
        raise InputError(first, "not the first volume of a split archive (expected a name ending in .001)")
    volumes = sorted(first.parent.glob(f"{glob.escape(match['archive'])}.[0-9][0-9][0-9]"))
    expected = [first.with_name(f"{match['archive']}.{n:03d}") for n in range(1, len(volumes) + 1)]
    if volumes != expected:
        missing = next(e for e in expected if e not in volumes)
        raise InputError(first, f"split archive is missing volume {missing.name} (have {len(volumes)}: "
                                f"{', '.join(v.name for v in volumes)})")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as whole:
        for volume in volumes:
            with open(volume, "rb") as part:
                shutil.copyfileobj(part, whole, 1 << 22)
    log.info("%s: joined %d volumes into %s", first, len(volumes), out)
    return out


def unpack_folder(folder: Path, unpacked: Path, joined: Path, max_bytes: float) -> Path:
    """A folder of archives (a hub snapshot, the files of a share downloaded by hand) as one
    dataset: every archive extracted (split volumes joined first, into `joined`), merged with the
    folder's loose files; returns the SARDet-100K root found in `unpacked`."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hub_metadata(p.relative_to(folder)))
    unreadable = [p for p in files if UNREADABLE.search(p.name)]
    if unreadable:
        name = unreadable[0].name
        how = ("zip's own spanned volumes: join them with `zip -s 0 X.zip --out X-whole.zip`"
               if re.search(r"\.z\d{2}$", name, re.IGNORECASE) else "extract it with `7z x` (or unrar)")
        raise InputError(unreadable[0], f"cannot unpack {name}, {how}, then point sardet_root at the result (or "
                                        "download.archive at the whole archive)")
    firsts = [p for p in files if (m := VOLUME.match(p.name)) and m["number"] == "001"]
    volumes = [p for p in files if VOLUME.match(p.name)]
    archives = [p for p in files if p.name.endswith(ARCHIVE_SUFFIXES) and p not in volumes]
    archives += [join_volumes(first, joined / VOLUME.match(first.name)["archive"]) for first in firsts]
    loose = [p for p in files if p not in volumes and p not in archives]
    if unpacked.exists():
        shutil.rmtree(unpacked)
    unpacked.mkdir(parents=True)
    for archive in archives:
        _extract_into(archive, unpacked, max_bytes)
    for path in loose:  # annotations or images beside the archives: linked, not copied, where possible
        target = unpacked / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    if joined.exists():
        shutil.rmtree(joined)
    log.info("%s: %d archives extracted, %d loose files", folder, len(archives), len(loose))
    return locate_root(unpacked)


def _hub_metadata(relative: Path) -> bool:
    """Files of a snapshot folder that are not the dataset's: the hub clients' own (.cache/,
    .gitattributes, .mdl, .msc) and the manifest of what the folder was downloaded for."""
    return relative.parts[0] in (".cache", ".huggingface") or relative.name in (".gitattributes", ".mdl", ".msc",
                                                                                ".mv") or str(relative) == MANIFEST


def annotations_into_place(root: Path) -> None:
    """`<split>.json` beside Annotations/ (the Kaggle copy's test.json) moved into it, where the
    workflow reads it."""
    for split in SPLITS:
        beside, inside = root / f"{split}.json", root / "Annotations" / f"{split}.json"
        if beside.is_file() and not inside.exists():
            log.info("%s: moved into %s (the SARDet-100K layout)", beside, inside)
            shutil.move(str(beside), str(inside))


def place(root: Path, target: str | os.PathLike) -> Path:
    """Move the dataset found at `root` to `target` (a fixed path the workflow can name)."""
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(root), str(target))
    return target


def fetch(settings: dict, target: str | os.PathLike, work: str | os.PathLike) -> Path:
    """Run the configured download; returns `target`, now in the SARDet-100K layout.

    Partial downloads in `work` are resumed only if they were made for the same source
    (workstate.claim_folder); extraction always starts from an empty folder."""
    work = Path(work)
    source = settings["source"]
    max_bytes = settings.get("max_extract_gb", DEFAULT_MAX_EXTRACT_GB) * 1e9
    unpacked = work / "unpacked"
    if source in ("huggingface", "modelscope"):
        snapshot = work / "snapshot"
        claim_folder(snapshot, {k: settings.get(k) for k in ("source", "repo_id", "revision")}, "download")
        snapshot = fetch_hub(source, settings["repo_id"], settings["revision"], snapshot)
        root = unpack_folder(snapshot, unpacked, work / "joined", max_bytes)
    elif source == "archive" and Path(settings["archive"]).is_dir():  # the files of a share, downloaded by hand
        if settings.get("sha256"):
            raise InputError(settings["archive"], "download.sha256 names one archive, but download.archive is a "
                                                  "folder: leave sha256 empty")
        root = unpack_folder(Path(settings["archive"]), unpacked, work / "joined", max_bytes)
    elif source in ("url", "archive"):
        if source == "url":
            downloads = work / "download"
            claim_folder(downloads, {k: settings.get(k) for k in ("url", "sha256")}, "download")
            archive = fetch_url(settings["url"], downloads / Path(settings["url"].split("?")[0]).name,
                                sha256=settings.get("sha256"), token_env=settings.get("token_env"))
        else:
            archive = Path(settings["archive"])
            if not archive.is_file():
                raise InputError(archive, "archive not found")
            verify_sha256(archive, settings.get("sha256"))
            if VOLUME.match(archive.name):  # the first of its byte volumes: joined, then extracted
                archive = join_volumes(archive, work / "joined" / VOLUME.match(archive.name)["archive"])
        safe_extract(archive, unpacked, max_bytes)
        if archive.is_relative_to(work / "joined"):
            shutil.rmtree(work / "joined")
        root = locate_root(unpacked)
    else:
        raise ValueError(f"download.source {source!r} is not one of huggingface, modelscope, url, archive")
    annotations_into_place(root)
    return place(root, target)


def _extract_into(archive: Path, folder: Path, max_bytes: float) -> None:
    """Several archives of one snapshot, each extracted on its own, then merged into `folder`."""
    part = folder.with_name(f"{folder.name}.{archive.name}")
    safe_extract(archive, part, max_bytes)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(part, folder, dirs_exist_ok=True)
    shutil.rmtree(part)
