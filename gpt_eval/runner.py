"""Requests to send, the append-only results file, and the parallel run that resumes from it."""

import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .client import Stopped, redact
from .prompts import RETRY_LIKERT, RETRY_PAIRWISE, likert_prompt, pairwise_prompt, parse_likert, parse_pairwise

log = logging.getLogger("gpt_eval")


@dataclass
class Task:
    kind: str   # "likert" or "pairwise"
    index: int  # sample index
    tag: str    # likert: "a"/"b" (which system); pairwise: "ab" (A shown first) or "ba" (B shown first)
    model: str
    prompt: str

    @property
    def id(self) -> str:
        # Stable across runs: same inputs, model and prompt -> same id, which is what resuming relies on.
        key = json.dumps([self.kind, self.index, self.tag, self.model, self.prompt], ensure_ascii=False)
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def parse(self, text):
        return parse_likert(text) if self.kind == "likert" else parse_pairwise(text)


def build_tasks(sources, references, preds_a, preds_b, model) -> list[Task]:
    """Per sample: one Likert request per system (all four criteria at once), and the pairwise question in
    both orders so that a judge's preference for a position cancels out."""
    tasks = []
    for i, (src, ref, a, b) in enumerate(zip(sources, references, preds_a, preds_b)):
        tasks.append(Task("likert", i, "a", model, likert_prompt(src, ref, a)))
        tasks.append(Task("likert", i, "b", model, likert_prompt(src, ref, b)))
        tasks.append(Task("pairwise", i, "ab", model, pairwise_prompt(src, ref, a, b)))
        tasks.append(Task("pairwise", i, "ba", model, pairwise_prompt(src, ref, b, a)))
    return tasks


class ResultsFile:
    """results.jsonl: one line per finished request, appended and flushed as answers arrive, so whatever was
    answered before an interruption is kept and not asked again."""

    def __init__(self, path: str, secret: str | None = None):
        self.path, self._secret = path, secret
        self._lock = threading.Lock()

    def load(self) -> dict[str, list[dict]]:
        """id -> its records in file order (an unparseable first answer is followed by its retry)."""
        records = {}
        if not os.path.exists(self.path):
            return records
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                    records.setdefault(rec["id"], []).append(rec)
                except (ValueError, KeyError, TypeError):
                    # Typically the last line cut short by a kill; that request is simply asked again.
                    log.warning("%s:%d is not a complete record; ignored", self.path, n)
        return records

    def append(self, rec: dict):
        line = redact(json.dumps(rec, ensure_ascii=False), self._secret) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def next_attempt(records: list[dict]) -> int | None:
    """1 if never answered, 2 if the only answer was unparseable (the one retry), None if finished."""
    if not records:
        return 1
    last = records[-1]
    return 2 if last.get("parsed") is None and last.get("attempt", 1) < 2 else None


def _run_task(task: Task, attempt: int, prior_answer, client, results: ResultsFile, names):
    try:
        _ask(task, attempt, prior_answer, client, results, names)
    except BaseException:
        client.stop.set()  # at once, so that no other thread starts a request after a fatal error
        raise


def _ask(task: Task, attempt: int, prior_answer, client, results: ResultsFile, names):
    messages = [{"role": "user", "content": task.prompt}]
    while True:
        if attempt == 2:  # show the judge its unparseable answer and ask for the JSON only
            retry = RETRY_LIKERT if task.kind == "likert" else RETRY_PAIRWISE
            messages = messages[:1] + [{"role": "assistant", "content": prior_answer or ""},
                                       {"role": "user", "content": retry}]
        answer, usage = client.complete(messages)
        parsed = task.parse(answer)
        rec = {"id": task.id, "kind": task.kind, "index": task.index, "tag": task.tag, "model": task.model,
               "attempt": attempt, "answer": answer, "parsed": parsed, "usage": usage, "time": time.time()}
        if task.kind == "likert":
            rec["system"] = names[task.tag]
        results.append(rec)
        if parsed is not None or attempt == 2:
            return
        log.warning("unparseable answer for %s sample %d (%s); asking once more", task.kind, task.index, task.tag)
        attempt, prior_answer = 2, answer


def run(tasks: list[Task], client, results: ResultsFile, names: dict, concurrency=4, max_requests=None) -> int:
    """Send every task not yet finished in `results`; returns how many were held back by max_requests."""
    done = results.load()
    todo = []
    for t in tasks:
        attempt = next_attempt(done.get(t.id, []))
        if attempt is not None:
            todo.append((t, attempt, done[t.id][-1]["answer"] if attempt == 2 else None))
    log.info("%d requests, %d already answered in %s, %d to send", len(tasks), len(tasks) - len(todo),
             results.path, len(todo))
    skipped = 0
    if max_requests is not None and len(todo) > max_requests:
        skipped, todo = len(todo) - max_requests, todo[:max_requests]
    if not todo:
        return skipped
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    futures = [pool.submit(_run_task, t, a, prev, client, results, names) for t, a, prev in todo]
    finished, step = 0, max(5, len(futures) // 10)  # about ten progress lines
    try:
        pending = set(futures)
        while pending:
            ready, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in ready:
                f.result()  # re-raises the first fatal error (bad key, unreachable endpoint, ...)
                finished += 1
                if finished % step == 0 or finished == len(futures):
                    log.info("answered %d/%d", finished, len(futures))
    except BaseException as e:
        # Fatal error or Ctrl-C: stop the other threads (they check `stop` before each request and while
        # sleeping), keep what was written, and report the real error, not the Stopped it caused elsewhere.
        client.stop.set()
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True)
        if isinstance(e, Stopped):
            errors = [f.exception() for f in futures if f.done() and not f.cancelled()]
            real = next((x for x in errors if x is not None and not isinstance(x, Stopped)), None)
            if real is not None:
                raise real from None
        raise
    pool.shutdown(wait=True)
    return skipped
