"""Evaluating a served model: a real `swift deploy` of a tiny model on localhost, reached through
its OpenAI-compatible endpoint, with the same resumable shards as local inference."""

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import orjson
import pytest
from sarchat_bench.core.io import iter_jsonl
from support.commands import cli, run_cli
from support.workflow import snakemake

pytestmark = [pytest.mark.swift, pytest.mark.workflow]
KEY = "sarchat-test-key"
DEMO = "demo: {seed: 8, images: {train: 6, test: 6}}\n"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("served")
    snakemake(work, "results/sarchat/train.jsonl", "results/sarchat/test/count.jsonl",
              "results/sarchat/test/refer_multi.jsonl", extra_config=DEMO)
    return work


@pytest.fixture(scope="module")
def server(workdir):
    """`swift deploy` of a tiny LLaVA-1.5, started as its server process (the `swift deploy`
    launcher would not pass a SIGTERM on), on a free port, with an API key."""
    model = workdir / "tiny-served"
    built = run_cli("tiny-model", "--architecture", "llava1_5_hf", "--out", model, "--corpus",
                    workdir / "results" / "sarchat" / "train.jsonl")
    assert built.returncode == 0, built.stderr
    log = open(workdir / "deploy.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELSCOPE_CACHE": str(workdir / "ms")}
    proc = subprocess.Popen([sys.executable, "-m", "swift.cli.deploy", "--model", str(model), "--model_type",
                             "llava1_5_hf", "--template", "llava1_5_hf", "--infer_backend", "transformers", "--host",
                             "127.0.0.1", "--port", "0", "--served_model_name", "tiny", "--torch_dtype", "float32",
                             "--max_new_tokens", "16", "--temperature", "0", "--api_key", KEY],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
    deadline, url = time.monotonic() + 180, None
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", (workdir / "deploy.log").read_text())
        if found:
            try:
                urllib.request.urlopen(found.group(1) + "/health", timeout=2)
                url = found.group(1)
                break
            except OSError:
                pass
        time.sleep(0.5)
    assert url, (workdir / "deploy.log").read_text()[-3000:]
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


@pytest.fixture
def flaky(server):
    """A proxy that answers the first request of every record with HTTP 503: a server that fails
    some requests (a stand-in only in what it adds: the answers come from the real server)."""
    seen, lock = set(), threading.Lock()

    class Proxy(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                first = body not in seen
                seen.add(body)
            if first:
                self.send_response(503)
                self.end_headers()
                self.wfile.write(b"busy")
                return
            request = urllib.request.Request(server + self.path, data=body, method="POST",
                                             headers={k: v for k, v in self.headers.items() if k != "Host"})
            with urllib.request.urlopen(request, timeout=120) as reply:
                data = reply.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()


def served(base_url, key_env="SARCHAT_TEST_KEY", model="tiny"):
    return (DEMO + "run: [served]\nmodels: {served: {family: Served tiny LLaVA-1.5, params_b: 0.0001, mode: zero_shot,"
            f" source: {{endpoint: {{base_url: '{base_url}/v1', model: {model}, api_key_env: {key_env}}}}},"
            " infer: {max_new_tokens: 16, concurrency: 2, retries: 2, format_instruction: 'Answer briefly.'}}}\n")


@pytest.fixture
def proxy(server):
    """A proxy in front of the real server whose answer to a request is `answer(body)`: None
    forwards it, a (status, content type, body) triple is sent instead."""
    rules = {}

    class Proxy(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            instead = rules["answer"](body)
            if instead is None:
                request = urllib.request.Request(server + self.path, data=body, method="POST",
                                                 headers={k: v for k, v in self.headers.items() if k != "Host"})
                with urllib.request.urlopen(request, timeout=120) as reply:
                    instead = (200, "application/json", reply.read())
            status, kind, data = instead
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server_ = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server_.serve_forever, daemon=True).start()

    def use(answer):
        rules["answer"] = answer
        return f"http://127.0.0.1:{server_.server_address[1]}"

    yield use
    server_.shutdown()


def infer_log(workdir, cell="count"):
    return (workdir / "results" / "logs" / "infer" / "served" / f"{cell}.1-of-1.log").read_text()


def test_an_endpoint_that_refuses_every_request_stops_the_job(workdir, server):
    """A wrong served-model name: the real server answers every request with a client error. The
    job stops with one line, and nothing is left that could be scored as a model's answers."""
    result = snakemake(workdir, "results/scores/served/count.json", check=False,
                       extra_config=served(server, model="nope"), env={"SARCHAT_TEST_KEY": KEY})
    assert result.returncode != 0
    log = infer_log(workdir)
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in log, log[-3000:]
    assert re.fullmatch(rf"error: {server}/v1: every request was refused with HTTP 4\d\d \(\d+ of \d+, model "
                        r"'nope'\): .*nope.*; check the entry's source.endpoint \(base_url, model\)", errors[0])
    predictions = workdir / "results" / "predictions" / "served"
    assert not (predictions / "count.jsonl").exists() and not list(predictions.glob("shards/*.jsonl"))
    partial = predictions / "work" / "count.1-of-1.partial.jsonl"
    assert not partial.exists() or partial.read_bytes().count(b"\n") == 1  # its manifest, no refusal kept


def test_a_reply_that_is_not_a_chat_completion_is_retried_then_one_line(workdir, proxy):
    login = b"<!DOCTYPE html><html><body><form>Sign in to continue</form></body></html>"
    url = proxy(lambda body: (200, "text/html", login))
    result = snakemake(workdir, "results/scores/served/count.json", check=False, extra_config=served(url),
                       env={"SARCHAT_TEST_KEY": KEY})
    assert result.returncode != 0
    log = infer_log(workdir)
    assert "Traceback" not in log and "JSONDecodeError" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {url}/v1: ") and " failed 3 times, last: HTTP 200 " \
        "that is not a chat completion (text/html): '<!DOCTYPE html><html><body><form>Sign in" in errors[0], log
    assert "(attempt 1 of 3); retrying" in log
    assert not (workdir / "results" / "predictions" / "served" / "count.jsonl").exists()


def test_a_client_error_for_one_record_among_answered_ones_is_that_records_failure(workdir, proxy):
    test = [orjson.loads(line) for line in (workdir / "results" / "sarchat" / "test" / "count.jsonl").read_bytes()
            .splitlines()]
    refused = test[len(test) // 2]
    marker = refused["messages"][0]["content"].replace("<image>", "").strip()
    # The question is repeated for other images, so the refusal is recognised by the image.
    image_file = workdir / "results" / "demo" / "SARDet_100K" / refused["images"][0]  # relative to the root
    image = __import__("base64").b64encode(image_file.read_bytes()).decode()[:200].encode()
    url = proxy(lambda body: (400, "application/json", b'{"error": "image too large"}')
                if image in body and marker.encode()[:20] in body else None)
    snakemake(workdir, "results/scores/served/count.json", extra_config=served(url),
              env={"SARCHAT_TEST_KEY": KEY})
    answers = {r["id"]: r["response"] for r in iter_jsonl(workdir / "results" / "predictions" / "served" /
                                                          "count.jsonl")}
    assert answers[refused["id"]] == "" and sum(1 for a in answers.values() if a) >= len(test) - 2
    assert f"{refused['id']}: {url}/v1 refused the request (HTTP 400: " in infer_log(workdir)


def test_a_served_model_is_scored_through_the_workflow_despite_failing_requests(workdir, flaky):
    snakemake(workdir, "results/scores/served/count.json", "results/scores/served/refer_multi.json",
              extra_config=served(flaky), env={"SARCHAT_TEST_KEY": KEY})
    for cell in ("count", "refer_multi"):
        ids = [r["id"] for r in iter_jsonl(workdir / "results" / "sarchat" / "test" / f"{cell}.jsonl")]
        predicted = [r["id"] for r in iter_jsonl(workdir / "results" / "predictions" / "served" / f"{cell}.jsonl")]
        assert predicted == ids
        score = orjson.loads((workdir / "results" / "scores" / "served" / f"{cell}.json").read_bytes())
        assert score["n_samples"] == len(ids) and score["format_instruction"] == "Answer briefly."
    log = (workdir / "results" / "logs" / "infer" / "served" / "count.1-of-1.log").read_text()
    assert "HTTP 503: busy (attempt 1 of 3); retrying" in log


def test_a_killed_shard_against_a_server_resumes(workdir, server, tmp_path):
    test = workdir / "results" / "sarchat" / "test" / "count.jsonl"
    spec = json.dumps({"model_path": f"{server}/v1", "model_type": None, "template": None, "env": {}, "load": {},
                       "environment": "default", "settings": {"backend": "transformers", "max_new_tokens": 16,
                                                              "torch_dtype": "float32"},
                       "source": {"endpoint": {"base_url": f"{server}/v1", "model": "tiny",
                                               "api_key_env": "SARCHAT_TEST_KEY"}}})
    run = json.dumps({"options": {"batch_size": 1, "requests_per_call": 1, "concurrency": 1, "retries": 0,
                                  "request_timeout_s": 60}, "cache_dir": str(tmp_path), "threads": 1,
                      "image_root": str(workdir / "results" / "demo" / "SARDet_100K")})
    out, partial = tmp_path / "out.jsonl", tmp_path / "part.jsonl"
    args = ["infer", "--model", "served", "--spec", spec, "--run", run, "--test", test, "--out", out,
            "--partial", partial]
    job = cli(*args, env={"SARCHAT_TEST_KEY": KEY}, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < 3):
        time.sleep(0.1)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    done = partial.read_bytes().count(b"\n") - 1
    assert done >= 2 and not out.exists()
    job = cli(*args, env={"SARCHAT_TEST_KEY": KEY})
    log = job.communicate(timeout=300)[0]
    assert job.returncode == 0, log
    assert f"{done} already done" in log
    assert [r["id"] for r in iter_jsonl(out)] == [r["id"] for r in iter_jsonl(test)]
    # A refused key stops the job with one line, instead of scoring a cell of empty answers.
    job = cli(*args, env={"SARCHAT_TEST_KEY": "wrong"})
    log = job.communicate(timeout=300)[0]
    assert job.returncode == 1 and "error: " in log and "the API key was refused" in log
