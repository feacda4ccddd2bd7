"""Sharded, resumable inference through ms-swift's Python API.

A shard is a contiguous slice of a test file. Completed records are appended to an
undeclared `.partial` file and fsync'ed after every call to the engine, so a killed job loses
at most the call in flight; on restart a truncated last line is cut off and ids already done are
skipped. The partial file's first line is its manifest (core.workstate): the model, adapter,
settings and records it was made from. A partial file made from anything else (a retrained
adapter, changed settings, a regenerated test file) is discarded, never merged. Only when
the shard is complete is its declared output written (atomically, in test-file order);
Snakemake deletes the declared outputs of a failed job, never the partial file. A CUDA
out-of-memory error halves the batch and carries on.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import orjson

from sarchat_bench.core.errors import InputError, SarchatError
from sarchat_bench.core.io import atomic_output, iter_jsonl
from sarchat_bench.core.sharding import shard_range_by_group
from sarchat_bench.core.workstate import describe_change, digest
from sarchat_bench.models.jobs import ModelJob
from sarchat_bench.paper.records import with_image_files

log = logging.getLogger(__name__)
PredictFn = Callable[[Sequence[dict]], list[str]]


def shard_records(test_path, shard: tuple[int, int]) -> list[dict]:
    records = []
    ids = set()
    for i, rec in enumerate(iter_jsonl(test_path), start=1):
        rid = rec.get("id")
        if not isinstance(rid, str) or not isinstance(rec.get("messages"), list) or not rec["messages"] \
                or not isinstance(rec.get("images"), list):
            raise InputError(test_path, "test record needs a string 'id', 'messages' and 'images'", record=f"line {i}")
        if rid in ids:
            raise InputError(test_path, "duplicated id", record=f"line {i} (id {rid})")
        ids.add(rid)
        records.append(rec)
    # An image's records stay in one shard, so that one engine sees them all (vLLM's prefix cache).
    return records[slice(*shard_range_by_group([image_key(r) for r in records], shard))]


def image_key(record: dict) -> tuple:
    return tuple(record["images"])


def grouped_by_image(records: list[dict]) -> list[dict]:
    """The records with each image's together, images in order of first appearance (a stable
    regrouping: the test files already hold an image's records side by side)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(image_key(r), []).append(r)
    return [r for group in groups.values() for r in group]


def batch_end(records: list[dict], start: int, size: int) -> int:
    """Where the engine call that starts at `start` ends: whole images' records, at most `size`
    of them; only an image with more records than a call holds is split."""
    end, total = start, len(records)
    while end < total:
        group_end = end + 1
        while group_end < total and image_key(records[group_end]) == image_key(records[end]):
            group_end += 1
        if group_end - start <= size:
            end = group_end
        elif end == start:
            return start + size
        else:
            break
    return end


def records_digest(records: list[dict]) -> str:
    return digest(records)


def read_partial(path, made_from: dict) -> dict[str, str]:
    """Responses already written to a partial file made from `made_from`. A file made from
    anything else is deleted (logged); a truncated or corrupt tail (a job killed mid-write) is
    cut off so that the file ends with a complete record."""
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    try:
        header = orjson.loads(lines[0]) if lines and lines[0].endswith(b"\n") else None
    except orjson.JSONDecodeError:
        header = None
    old = header.get("made_from") if isinstance(header, dict) else None
    if old != made_from:
        reason = describe_change(old, made_from) if isinstance(old, dict) else "it has no manifest"
        log.warning("%s: discarding %d earlier answers: %s", path, max(0, len(lines) - 1), reason)
        path.unlink()
        return {}
    done: dict[str, str] = {}
    good_end = len(lines[0])
    for line in lines[1:]:
        if not line.endswith(b"\n"):
            break
        try:
            rec = orjson.loads(line)
            done[rec["id"]] = rec["response"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            break
        good_end += len(line)
    if good_end < len(data):
        log.warning("%s: cut %d bytes of an incomplete record (job killed mid-write)", path, len(data) - good_end)
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
    return done


def is_out_of_memory(err: BaseException) -> bool:
    try:
        import torch

        if isinstance(err, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return "out of memory" in str(err).lower()


def run_shard(records: list[dict], predict: PredictFn, out_path, partial_path, *, batch_size: int,
              made_from: dict, progress_every_s: float = 30.0) -> dict:
    """Predict every record not yet in `partial_path` (if it was made from `made_from`), `batch_size`
    records per call to `predict`; then write `out_path` in record order."""
    partial_path = Path(partial_path)
    partial_path.parent.mkdir(parents=True, exist_ok=True)
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    done = read_partial(partial_path, made_from)
    wanted = {r["id"] for r in records}
    todo = grouped_by_image([r for r in records if r["id"] not in done])
    log.info("%s: %d records, %d already done, %d to predict (batch size %d)", out_path, len(records),
             len(records) - len(todo), len(todo), batch_size)
    start = last = time.monotonic()
    with open(partial_path, "ab") as partial:
        if partial.tell() == 0:  # a new partial file starts with its manifest
            manifest = {"made_from": made_from}
            partial.write(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE))
            partial.flush()
        kept = partial.tell()  # what earlier runs left, kept whatever this one does
        i = 0
        while i < len(todo):
            batch = todo[i:batch_end(todo, i, batch_size)]
            try:
                responses = predict(batch)
            except Exception as err:  # noqa: BLE001 - only out-of-memory is handled; the rest re-raised
                if getattr(err, "refusals_written", False):
                    partial.truncate(kept)  # refusals of the whole job, not answers: never resumed
                if not is_out_of_memory(err) or batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)
                log.warning("out of memory; batch size halved to %d and batch retried", batch_size)
                _free_gpu_memory()
                continue
            if len(responses) != len(batch):
                raise RuntimeError(f"engine returned {len(responses)} responses for {len(batch)} requests")
            partial.write(b"".join(orjson.dumps({"id": r["id"], "response": s}, option=orjson.OPT_APPEND_NEWLINE)
                                   for r, s in zip(batch, responses)))
            partial.flush()
            os.fsync(partial.fileno())
            for r, s in zip(batch, responses):
                done[r["id"]] = s
            i += len(batch)
            if time.monotonic() - last >= progress_every_s:
                rate = i / (time.monotonic() - start)
                log.info("%s: %d/%d predicted (%.1f records/s, about %.0f min left)", out_path, i, len(todo), rate,
                         (len(todo) - i) / rate / 60)
                last = time.monotonic()
        if hasattr(predict, "finish"):
            try:
                predict.finish()
            except Exception as err:  # noqa: BLE001 - re-raised
                if getattr(err, "refusals_written", False):
                    partial.truncate(kept)
                raise
    missing = wanted - done.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} records of the shard have no prediction")
    with atomic_output(out_path) as out:
        for r in records:
            out.write(orjson.dumps({"id": r["id"], "response": done[r["id"]]}, option=orjson.OPT_APPEND_NEWLINE))
    partial_path.unlink()
    return {"records": len(records), "predicted_now": i, "seconds": round(time.monotonic() - start, 2)}


def _free_gpu_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def predict_shard(job: ModelJob, *, test: str, shard: tuple[int, int], out, partial, source_info=None,
                  adapter_info=None) -> dict:
    """Predict one shard of a test file with the job's model (resumable; see the module's text)
    and record the shard's provenance beside it."""
    from sarchat_bench.core.io import read_json
    from sarchat_bench.core.provenance import write_inference
    from sarchat_bench.models.sources import OFFLINE, cache_env, local_model, source_identity

    spec, options = job.spec, job.run.options
    # Before ms-swift and the hub libraries are imported: they read these at import time.
    os.environ.update({**cache_env(job.run.cache_dir), **OFFLINE, **{k: str(v) for k, v in spec.env.items()}})
    records = shard_records(test, shard)
    if instruction := spec.settings.get("format_instruction"):  # zero-shot: say how to answer
        records = [{**r, "messages": [{**r["messages"][0], "content": f"{r['messages'][0]['content']} {instruction}"},
                                      *r["messages"][1:]]} for r in records]
    model_path, load = local_model(spec, source_info, job.run.model_lock)
    adapter = read_json(adapter_info) if adapter_info else None
    made_from = {"spec": spec.as_dict(), "model": source_identity(model_path, spec.source),
                 "adapter": adapter["adapter_digest"] if adapter else None, "records": records_digest(records)}
    # The images resolved after the manifest: answers made from the same records are kept
    # wherever the images are mounted now.
    records = with_image_files(records, job.run.image_root, test)
    settings = spec.settings
    endpoint = spec.source.get("endpoint")
    if endpoint:  # a served model: the requests go to it, nothing is loaded here
        predict = EndpointPredictor(endpoint["base_url"], endpoint["model"], api_key_env=endpoint.get("api_key_env"),
                                    max_new_tokens=settings["max_new_tokens"], concurrency=options["concurrency"],
                                    retries=options["retries"], timeout_s=options["request_timeout_s"])
        per_call = options["concurrency"]
    else:
        if job.run.threads:
            import torch

            torch.set_num_threads(job.run.threads)  # the job's CPUs, not every core of the node
        predict = swift_predictor(model_path, model_type=spec.model_type, template=spec.template,
                                  adapters=[adapter["adapter"]] if adapter else None, backend=settings["backend"],
                                  torch_dtype=settings["torch_dtype"], max_new_tokens=settings["max_new_tokens"],
                                  batch_size=options["batch_size"],
                                  engine_kwargs={**load, **settings.get("engine_kwargs", {})})
        per_call = options["requests_per_call"] if settings["backend"] == "vllm" else options["batch_size"]
    summary = run_shard(records, predict, out, partial, batch_size=per_call, made_from=made_from)
    training = {k: adapter[k] for k in ("training_samples", "samples_over_max_length", "max_length")
                if k in adapter} if adapter else None
    write_inference(out, made_from, training)
    return summary


def merge_shards(test_path, shard_paths: list, out_path) -> int:
    """Concatenate shard outputs; the ids must be exactly the test file's, in order."""
    expected = [rec["id"] for rec in iter_jsonl(test_path)]
    got = []
    with atomic_output(out_path) as out:
        for path in shard_paths:
            for line_no, rec in enumerate(iter_jsonl(path), start=1):
                if not isinstance(rec.get("id"), str) or not isinstance(rec.get("response"), str):
                    raise InputError(path, "prediction needs string 'id' and 'response'", record=f"line {line_no}")
                got.append(rec["id"])
                out.write(orjson.dumps({"id": rec["id"], "response": rec["response"]},
                                       option=orjson.OPT_APPEND_NEWLINE))
        if got != expected:
            dup = len(got) - len(set(got))
            missing = len(set(expected) - set(got))
            raise InputError(out_path, f"merged shards do not match {test_path}: {missing} ids missing, "
                                       f"{dup} duplicated, {len(set(got) - set(expected))} unknown")
    return len(got)


def swift_predictor(model: str, *, model_type: str, template: str, adapters: list[str] | None, backend: str,
                    torch_dtype: str, max_new_tokens: int, batch_size: int,
                    engine_kwargs: dict | None = None) -> PredictFn:
    """A predict function over an ms-swift engine (greedy decoding). `model` is a local folder;
    `engine_kwargs` carry the registry entry's load options (attn_impl, local_repo_path)."""
    import torch
    from swift.infer_engine import InferRequest, RequestConfig

    dtype = getattr(torch, torch_dtype)
    kwargs = dict(engine_kwargs or {})
    if backend == "transformers":
        from swift.infer_engine import TransformersEngine

        engine = TransformersEngine(model, model_type=model_type, template_type=template, adapters=adapters or None,
                                    torch_dtype=dtype, max_batch_size=batch_size, **kwargs)
    elif backend == "vllm":
        from swift.infer_engine import VllmEngine

        engine = VllmEngine(model, model_type=model_type, template_type=template, adapters=adapters or None,
                            torch_dtype=dtype, **vllm_kwargs(kwargs, adapters))
    else:
        raise ValueError(f"unknown inference backend {backend!r} (transformers or vllm)")
    config = RequestConfig(max_tokens=max_new_tokens, temperature=0)

    def predict(batch: Sequence[dict]) -> list[str]:
        answers = [""] * len(batch)
        good = [i for i, rec in enumerate(batch) if images_readable(rec)]
        requests = [InferRequest(messages=[batch[i]["messages"][0]], images=list(batch[i]["images"])) for i in good]
        for i, response in zip(good, engine.infer(requests, config, use_tqdm=False) if requests else [], strict=True):
            answers[i] = response.choices[0].message.content or ""
        return answers

    return predict


def vllm_kwargs(engine_kwargs: dict, adapters: list[str] | None) -> dict:
    """VllmEngine's keyword arguments: the entry's own, over these defaults."""
    kwargs = dict(engine_kwargs)
    # An image's questions share their prefix (system prompt, the image): vLLM computes it once
    # per image when it is cached (run_shard sends an image's records in one call).
    kwargs.setdefault("enable_prefix_caching", True)
    if adapters:
        kwargs.setdefault("enable_lora", True)
        kwargs.setdefault("max_lora_rank", 64)
    kwargs.pop("local_repo_path", None)  # vLLM loads models with its own code
    return kwargs


def images_readable(record: dict) -> bool:
    """Whether every image of a record decodes. One that does not gets an empty answer (a
    failure the scorer counts) and a log line naming the file, instead of failing the shard."""
    from PIL import Image

    for path in record["images"]:
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, SyntaxError, ValueError) as err:
            log.warning("%s: cannot read image %s (%s); its answer is left empty", record["id"], path, err)
            return False
    return True


class EndpointError(SarchatError, RuntimeError):
    pass


def _data_url(path: str) -> str:
    import base64
    import mimetypes

    kind = mimetypes.guess_type(path)[0] or "image/jpeg"
    return f"data:{kind};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


def _chat_content(reply) -> str | None:
    """The answer of an OpenAI chat completion, or None when the body is not one (an HTML login
    page of a proxy, an error object, JSON without `choices`)."""
    try:
        message = reply.json()["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if content is None:  # a message without text (a refusal, a tool call): an empty answer
        return ""
    return content if isinstance(content, str) else None


def _shown(text: str, limit: int = 200) -> str:
    """The start of a reply body on one line."""
    flat = " ".join(text.split())
    return flat[:limit] + ("..." if len(flat) > limit else "")


# A served model whose first answers are all the same client error is refused, not answered:
# a wrong served-model name (404), a path that is not an OpenAI endpoint. The job stops after
# this many in a row, before any answer came, instead of scoring a cell of empty answers.
REFUSALS_BEFORE_STOP = 8


class EndpointPredictor:
    """A predict function over an OpenAI-compatible chat endpoint (vLLM, `swift deploy`, an API):
    greedy decoding, the image as a data URL, at most `concurrency` requests at a time.

    A connection error, a timeout, a 5xx/429 answer, or a 200 whose body is not a chat
    completion is retried with exponential back-off, up to `retries` times; then the call fails
    with one line (the shard's partial file keeps what was done). A 4xx answer to one record (a
    bad image, a prompt too long) is that record's failure: an empty answer, logged. But when
    the job's first `REFUSALS_BEFORE_STOP` requests (or all of them, in a smaller shard) get the
    same client error and none was answered, the endpoint refuses the job, not a record: it
    stops with one line naming the endpoint, the status and the server's message. A refused API
    key stops the job at once. The key is read from the environment variable the registry entry
    names, never from config or params."""

    def __init__(self, base_url: str, served_model: str, *, api_key_env: str | None, max_new_tokens: int,
                 concurrency: int, retries: int, timeout_s: float, backoff_s: float = 1.0,
                 refusals_before_stop: int = REFUSALS_BEFORE_STOP):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import requests

        self.base_url, self.served_model = base_url, served_model
        self.url = base_url.rstrip("/") + "/chat/completions"
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        if api_key_env and not key:
            raise EndpointError(f"{base_url}: the API key variable {api_key_env} is not set")
        self.api_key_env = api_key_env
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.max_new_tokens, self.retries, self.timeout_s, self.backoff_s = max_new_tokens, retries, timeout_s, \
            backoff_s
        self.refusals_before_stop = refusals_before_stop
        self.session = requests.Session()
        self.pool = ThreadPoolExecutor(max_workers=concurrency)
        self.lock = threading.Lock()
        self.answered = 0
        self.refusals: list[tuple[int, str]] = []  # (status, message) of each refusal before any answer

    def __call__(self, batch: Sequence[dict]) -> list[str]:
        answers = list(self.pool.map(self._ask, batch))
        self._check_refusals(final=False)
        return answers

    def finish(self) -> None:
        """Called when the shard is done: a job whose every request was refused is an error."""
        self._check_refusals(final=True)

    def _check_refusals(self, final: bool) -> None:
        with self.lock:
            refusals, answered = list(self.refusals), self.answered
        if answered or not refusals:
            return
        statuses = {status for status, _ in refusals}
        if len(statuses) == 1 and (final or len(refusals) >= self.refusals_before_stop):
            status, message = refusals[0]
            raise EndpointRefused(f"{self.base_url}: every request was refused with HTTP {status} "
                                  f"({len(refusals)} of {len(refusals)}, model {self.served_model!r}): {message}; "
                                  "check the entry's source.endpoint (base_url, model)")

    def _ask(self, rec: dict) -> str:
        import requests

        text = rec["messages"][0]["content"].replace("<image>", "").strip()
        content = [*({"type": "image_url", "image_url": {"url": _data_url(p)}} for p in rec["images"]),
                   {"type": "text", "text": text}]
        body = {"model": self.served_model, "messages": [{"role": "user", "content": content}], "temperature": 0,
                "max_tokens": self.max_new_tokens}
        error = ""
        for attempt in range(self.retries + 1):
            try:
                reply = self.session.post(self.url, json=body, headers=self.headers, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as err:
                error = f"{type(err).__name__}: {err}"
            else:
                if reply.status_code == 200:
                    answer = _chat_content(reply)
                    if answer is not None:
                        with self.lock:
                            self.answered += 1
                        return answer
                    error = (f"HTTP 200 that is not a chat completion ({reply.headers.get('content-type', 'no type')}"
                             f"): {_shown(reply.text)!r}")
                else:
                    error = f"HTTP {reply.status_code}: {_shown(reply.text, 300)}"
                    if reply.status_code in (401, 403) or "api key" in reply.text.lower():
                        raise EndpointError(f"{self.base_url}: the API key was refused ({error}); check "
                                            f"${self.api_key_env}")
                    if 400 <= reply.status_code < 500 and reply.status_code not in (408, 429):
                        log.warning("%s: %s refused the request (%s); its answer is left empty", rec["id"],
                                    self.base_url, error)
                        with self.lock:
                            self.refusals.append((reply.status_code, _shown(reply.text, 300)))
                        return ""
            if attempt < self.retries:
                wait = self.backoff_s * 2 ** attempt
                log.warning("%s: %s (attempt %d of %d); retrying in %.0f s", rec["id"], error, attempt + 1,
                            self.retries + 1, wait)
                time.sleep(wait)
        raise EndpointError(f"{self.base_url}: {rec['id']} failed {self.retries + 1} times, last: {error}")


class EndpointRefused(EndpointError):
    """Every request of the job got the same client error: the empty answers this run wrote are
    refusals, not answers, and run_shard takes them back."""

    refusals_written = True
