"""A stand-in for the Hugging Face Hub (and ModelScope), which tests cannot reach.

`serve_hub(root)` serves a local folder tree over HTTP on 127.0.0.1 so that the
real clients download from it unchanged.  Every folder ``<root>/<org>/<name>/``
is one repo ``org/name``, a model repo or (on Hugging Face's dataset routes) a
dataset repo; all files below it (recursively) are its files.

    with serve_hub(root) as url:
        # huggingface_hub reads HF_ENDPOINT at *import* time: set it before the
        # import (e.g. in a subprocess), or patch huggingface_hub.constants.ENDPOINT
        # and .HUGGINGFACE_CO_URL_TEMPLATE, or pass endpoint=url.
        os.environ["HF_ENDPOINT"] = url
        # modelscope_hub reads MODELSCOPE_ENDPOINT on every call.
        os.environ["MODELSCOPE_ENDPOINT"] = url

Each repo has a single version.  Its commit id is `commit_id(repo_dir)`, a sha1
of the file names and contents, returned for the branches ``main`` / ``master``.
Any other 40-hex revision is accepted too and echoed back as the commit, so that
revisions pinned in a config resolve to the local files.

Endpoints (only those huggingface_hub 1.33 and modelscope 1.40 call to download):
  HF  GET       /api/models/{repo}/revision/{rev}   repo_info: JSON with "sha"
  HF  GET       /api/models/{repo}/tree/{rev}       JSON list {type,path,size,oid}
  HF  HEAD|GET  /{repo}/resolve/{rev}/{path}        X-Repo-Commit, ETag, Content-Length
  HF  the same under /api/datasets/... and /datasets/{repo}/resolve/...  (repo_type="dataset")
  MS  GET       /api/v1/models/{repo}/repo/files    {"Data": {"Files": [{Path,Type,Size,Sha256}]}}
  MS  GET       /api/v1/models/{repo}/repo          file bytes (query Revision, FilePath)
Anything else is a plain 404 (huggingface_hub's best-effort GET /api/agent-harnesses,
modelscope's GET /api/v1/repos/internalAccelerationInfo probe: both ignore it).
No X-Xet-Hash header and no xetHash field are ever sent, so huggingface_hub stays
on plain HTTP.  Errors are 404s carrying the X-Error-Code huggingface_hub maps to
RepositoryNotFoundError / RevisionNotFoundError / EntryNotFoundError.
"""

import contextlib
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

_HEX40 = re.compile(r"[0-9a-f]{40}")


def _files(repo_dir: Path) -> dict[str, bytes]:
    """All files of a repo folder: posix path relative to it -> bytes."""
    return {p.relative_to(repo_dir).as_posix(): p.read_bytes() for p in sorted(repo_dir.rglob("*")) if p.is_file()}


def _git_oid(data: bytes) -> str:
    """The git blob sha1, which the Hub uses as a (non-LFS) file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def commit_id(repo_dir: Path) -> str:
    """Commit id the fake reports for `main`: changes whenever a file changes."""
    h = hashlib.sha1()
    for path, data in _files(Path(repo_dir)).items():
        h.update(f"{path}\0{_git_oid(data)}\0".encode())
    return h.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    root: Path  # set on the subclass made by serve_hub
    log: list | None

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body=b"", headers=(), head=False):
        self.send_response(status)
        for key, value in [("Content-Length", str(len(body))), *headers]:
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head):
        url = urlsplit(self.path)
        if self.log is not None:
            self.log.append(f"{self.command} {url.path}")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        try:
            if parts[:3] == ["api", "v1", "models"] and parts[5:6] == ["repo"]:  # ModelScope
                return self._modelscope(parts[3:5], parts[6:], query, head)
            if parts[:2] in (["api", "models"], ["api", "datasets"]) and parts[4:5] in (["revision"], ["tree"]) \
                    and len(parts) > 5:
                return self._hf_api(parts[2:4], parts[4], parts[5], head)
            if parts[:1] == ["datasets"] and parts[3:4] == ["resolve"] and len(parts) > 5:
                return self._hf_resolve(parts[1:3], parts[4], "/".join(parts[5:]), head)
            if parts[2:3] == ["resolve"] and len(parts) > 4:
                return self._hf_resolve(parts[:2], parts[3], "/".join(parts[4:]), head)
        except LookupError as missing:  # raised by _repo(): (error code, message)
            code, msg = missing.args
            return self._send(404, msg.encode(), [("X-Error-Code", code), ("X-Error-Message", msg)], head)
        self._send(404, b"not served by the fake hub", head=head)

    def _repo(self, org_name, revision):
        """(files, commit) of repo org/name at `revision`, or LookupError."""
        repo_dir = self.root.joinpath(*org_name)
        if len(org_name) != 2 or ".." in org_name or not repo_dir.is_dir():
            raise LookupError("RepoNotFound", f"no repo {'/'.join(org_name)}")
        if revision in ("main", "master"):
            return _files(repo_dir), commit_id(repo_dir)
        if _HEX40.fullmatch(revision):
            return _files(repo_dir), revision
        raise LookupError("RevisionNotFound", f"no revision {revision}")

    def _json(self, obj, head):
        self._send(200, json.dumps(obj).encode(), [("Content-Type", "application/json")], head)

    def _hf_api(self, org_name, kind, revision, head):
        files, commit = self._repo(org_name, revision)
        if kind == "revision":  # -> ModelInfo; snapshot_download only needs "sha"
            siblings = [{"rfilename": p} for p in files]
            return self._json({"id": "/".join(org_name), "sha": commit, "siblings": siblings}, head)
        tree = [{"type": "file", "path": p, "size": len(d), "oid": _git_oid(d)} for p, d in files.items()]
        self._json(tree, head)  # one page: no `Link: rel="next"` header

    def _hf_resolve(self, org_name, revision, path, head):
        files, commit = self._repo(org_name, revision)
        if path not in files:
            raise LookupError("EntryNotFound", f"no file {path}")
        data = files[path]
        # X-Repo-Commit names the snapshot folder; ETag names the blob in the cache.
        headers = [("X-Repo-Commit", commit), ("ETag", f'"{_git_oid(data)}"')]
        self._send(200, data, [("Content-Type", "application/octet-stream"), *headers], head)

    def _modelscope(self, org_name, rest, query, head):
        files, _ = self._repo(org_name, query.get("Revision", "master"))
        if rest == ["files"]:  # listing; Sha256 lets modelscope verify each file
            entries = [
                {"Path": p, "Name": p.rsplit("/", 1)[-1], "Type": "blob", "Size": len(d),
                 "Sha256": hashlib.sha256(d).hexdigest()}
                for p, d in files.items()
            ]
            return self._json({"Code": 200, "Success": True, "Data": {"Files": entries}}, head)
        if rest == [] and query.get("FilePath") in files:
            return self._send(200, files[query["FilePath"]], head=head)
        raise LookupError("EntryNotFound", f"no file {query.get('FilePath')}")


@contextlib.contextmanager
def serve_hub(root: Path, log: list | None = None):
    """Serve `root` as a hub on 127.0.0.1:<ephemeral port>; yield its URL.

    If `log` is given, "METHOD /path" of every request is appended to it.
    """
    handler = type("Handler", (_Handler,), {"root": Path(root).resolve(), "log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
