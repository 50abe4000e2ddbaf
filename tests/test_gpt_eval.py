"""gpt_eval against a local stub of an OpenAI-compatible endpoint (127.0.0.1, port 0); no other network."""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gpt_eval.cli import main
from gpt_eval.client import RateLimiter, retry_after_seconds
from gpt_eval.prompts import parse_likert, parse_pairwise

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "sk-TEST-secret-7f3a9c1e5b2d"
KEY_ENV = "GPT_EVAL_TEST_KEY"
N = 6
SCORES = {"alpha": {"relevance": 4, "informativeness": 5, "fluency": 5, "coherence": 3},
          "beta": {"relevance": 2, "informativeness": 3, "fluency": 4, "coherence": 5}}


def judge(messages):
    """Deterministic judge. Likert: scores by system (summaries start with 'alpha'/'beta'). Pairwise, by sample
    i: i%3==0 prefers alpha, 1 prefers beta, 2 always says "1" (position bias: the two orders disagree)."""
    prompt = messages[0]["content"]
    if "Candidate summary:" in prompt:
        system = prompt.split("Candidate summary:\n<<<\n")[1].split()[0]
        return json.dumps(SCORES[system])
    first = prompt.split("Summary 1:\n<<<\n")[1].split()
    i = int(first[2])
    if i % 3 == 2:
        return '{"winner": 1}'
    preferred = "alpha" if i % 3 == 0 else "beta"
    return 'Sure. ```json\n{"winner": %d}\n```' % (1 if first[0] == preferred else 2)


class Stub:
    """Counts requests per conversation; `respond(messages, n)` (n = times this conversation was seen) returns
    (status, body or answer text, headers)."""

    def __init__(self, respond=None, key=SECRET):
        self.counts, self.auth, self.lock = Counter(), [], threading.Lock()
        self.respond = respond or (lambda m, n: (200, judge(m), {}))
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/v1/chat/completions"
                key = json.dumps(body["messages"])
                with stub.lock:
                    stub.counts[key] += 1
                    n = stub.counts[key]
                    stub.auth.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != f"Bearer {key_expected}":
                    status, payload, headers = 401, '{"error": {"message": "invalid api key"}}', {}
                else:
                    status, text, headers = stub.respond(body["messages"], n)
                    payload = (json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}],
                                           "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
                               if status == 200 else text)
                data = payload.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        key_expected = key
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    @property
    def total(self):
        return sum(self.counts.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    made = []

    def make(*a, **k):
        made.append(Stub(*a, **k))
        return made[-1]
    yield make
    for s in made:
        s.close()


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # urllib would send 127.0.0.1 through a proxy
    src = tmp_path / "test.jsonl"
    src.write_text("".join(json.dumps({"dialogue": f"dialogue {i}", "summary": f"reference {i}"}) + "\n"
                           for i in range(N)))
    (tmp_path / "a.txt").write_text("\n".join(f"alpha summary {i}" for i in range(N)))  # as run_summarization
    (tmp_path / "b.txt").write_text("\n".join(f"beta summary {i}" for i in range(N)) + "\n")
    return tmp_path


def argv(d, url, *extra):
    return ["--sources", str(d / "test.jsonl"), "--references", str(d / "test.jsonl"), "--pred_a", str(d / "a.txt"),
            "--pred_b", str(d / "b.txt"), "--name_a", "full", "--name_b", "free", "--base_url", url,
            "--model", "judge-1", "--api_key_env", KEY_ENV, "--output_dir", str(d / "out"), "--concurrency", "4",
            "--backoff_base", "0.001", "--backoff_max", "0.01", "--max_requests_per_minute", "0", *extra]


def load(d, name="aggregate.json"):
    return json.loads((d / "out" / name).read_text())


def records(d):
    return [json.loads(ln) for ln in (d / "out" / "results.jsonl").read_text().splitlines()]


def test_scores_and_pairwise_agreement_rule(stub, inputs, capsys):
    s = stub()
    assert main(argv(inputs, s.url)) == 0
    agg = load(inputs)
    for name, system in (("full", "alpha"), ("free", "beta")):
        for c, v in SCORES[system].items():
            assert agg["likert"][name][c] == {"mean": v, "n": N}
    # i%3==0 -> full wins in both orders, 1 -> free wins in both, 2 -> position bias, orders disagree -> tie
    assert {k: agg["pairwise"][k] for k in ("win", "tie", "loss", "n")} == {"win": 2, "tie": 2, "loss": 2, "n": 6}
    assert agg["unparseable"]["total"] == 0 and agg["missing"] == 0
    assert s.total == 4 * N and set(s.counts.values()) == {1}
    out = capsys.readouterr().out
    assert "| relevance | 4.00 (6) | 2.00 (6) |" in out and "| 6 samples | 2 | 2 | 2 |" in out
    if HAVE_MPL:
        assert (inputs / "out" / "likert.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        ET.parse(inputs / "out" / "likert.svg")  # the SVG fallback without matplotlib
    # A rerun sends nothing and reports the same.
    assert main(argv(inputs, s.url)) == 0
    assert s.total == 4 * N and load(inputs)["pairwise"]["win"] == 2


def test_429_and_500_are_retried(stub, inputs):
    def flaky(m, n):  # every conversation first gets a 429 (Retry-After 0) then a 500, then the answer
        return {1: (429, "slow down", {"Retry-After": "0"}), 2: (500, "oops", {})}.get(n, (200, judge(m), {}))
    s = stub(flaky)
    assert main(argv(inputs, s.url)) == 0
    assert load(inputs)["likert"]["full"]["fluency"] == {"mean": 5, "n": N}
    assert set(s.counts.values()) == {3} and len(s.counts) == 4 * N


def test_gives_up_after_max_retries(stub, inputs, capsys):
    s = stub(lambda m, n: (503, "down", {}))
    assert main(argv(inputs, s.url, "--max_retries", "2", "--concurrency", "1")) == 1
    assert "HTTP 503" in capsys.readouterr().err
    assert set(s.counts.values()) == {3}


def test_interrupted_run_resumes_without_resending(stub, inputs):
    s = stub()
    assert main(argv(inputs, s.url, "--max_requests", "5")) == 0
    assert s.total == 5 and load(inputs)["missing"] == 4 * N - 5
    assert main(argv(inputs, s.url, "--max_requests", "7")) == 0
    assert s.total == 12
    assert main(argv(inputs, s.url)) == 0
    assert s.total == 4 * N and set(s.counts.values()) == {1}  # no request seen twice
    assert load(inputs)["missing"] == 0 and load(inputs)["pairwise"]["n"] == N
    assert len(records(inputs)) == 4 * N


def test_endpoint_failing_midway_then_resume(stub, inputs, capsys):
    answered = []

    def dies(m, n):  # answers 8 requests, then the server is broken for good
        if len(answered) < 8:
            answered.append(json.dumps(m))
            return (200, judge(m), {})
        return (500, "broken", {})
    s = stub(dies)
    assert main(argv(inputs, s.url, "--concurrency", "1", "--max_retries", "1")) == 1
    assert "kept failing (HTTP 500)" in capsys.readouterr().err
    assert len(records(inputs)) == 8
    s2 = stub()
    assert main(argv(inputs, s2.url)) == 0
    assert s2.total == 4 * N - 8 and not set(s2.counts) & set(answered)  # answered ones are not asked again
    assert load(inputs)["missing"] == 0 and len(records(inputs)) == 4 * N


def test_unparseable_recorded_retried_once_counted(stub, inputs):
    def sloppy(m, n):
        prompt = m[0]["content"]
        if "Candidate summary:\n<<<\nalpha summary 0" in prompt:  # fixed by the retry
            return (200, "It is a good summary." if len(m) == 1 else judge(m[:1]), {})
        if "Candidate summary:\n<<<\nalpha summary 1" in prompt:  # never parseable
            return (200, "Relevance is high.", {})
        if "Summary 1:\n<<<\nbeta summary 2" in prompt:  # pairwise, one order never parseable
            return (200, '{"winner": "both"}', {})
        return (200, judge(m), {})
    s = stub(sloppy)
    assert main(argv(inputs, s.url)) == 0
    agg = load(inputs)
    assert agg["unparseable"] == {"likert": 1, "pairwise": 1, "total": 2, "retried": 3}
    assert agg["likert"]["full"]["relevance"]["n"] == N - 1
    assert agg["pairwise"]["n"] == N - 1  # sample 2 dropped; the other tie sample remains
    assert s.total == 4 * N + 3  # exactly one extra request per unparseable answer
    retries = [json.loads(k) for k in s.counts if len(json.loads(k)) == 3]
    assert len(retries) == 3 and retries[0][1]["role"] == "assistant"
    recs = records(inputs)
    bad = [r for r in recs if r["answer"] == "Relevance is high."]
    assert [r["attempt"] for r in bad] == [1, 2] and all(r["parsed"] is None for r in bad)
    # A rerun sends nothing more: the unparseable ones are finished after their one retry.
    assert main(argv(inputs, s.url)) == 0 and s.total == 4 * N + 3


def run_cli(d, url, env_key):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env[KEY_ENV] = env_key
    return subprocess.run([sys.executable, "-m", "gpt_eval", *argv(d, url)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_key_never_leaks(stub, inputs):
    # The stub echoes the Authorization header back in its answers and error bodies: still no trace of it.
    def echo(m, n):
        if n == 1 and "alpha summary 3" in m[0]["content"]:
            return (500, f"upstream error, auth was Bearer {SECRET}", {})
        return (200, judge(m) + f" (seen key {SECRET})", {})
    s = stub(echo)
    p = run_cli(inputs, s.url, SECRET)
    assert p.returncode == 0, p.stderr
    assert set(s.auth) == {f"Bearer {SECRET}"}  # the key was sent...
    assert SECRET not in p.stdout + p.stderr  # ...but never shown or written
    files = [os.path.join(r, f) for r, _, fs in os.walk(inputs / "out") for f in fs]
    chart = "likert.png" if HAVE_MPL else "likert.svg"
    assert {os.path.basename(f) for f in files} >= {"results.jsonl", "aggregate.json", chart}
    for f in files:
        assert SECRET not in open(f, encoding="utf-8", errors="replace").read()


def test_bad_key_clear_error(stub, inputs):
    s = stub()
    wrong = "sk-WRONG-key-0123456789abcdef"
    p = run_cli(inputs, s.url, wrong)
    assert p.returncode == 1
    assert "rejected the API key (HTTP 401)" in p.stderr and KEY_ENV in p.stderr
    assert wrong not in p.stdout + p.stderr
    assert s.total <= 4  # stopped at once, not once per request (at most the in-flight ones)
    for r, _, fs in os.walk(inputs / "out"):
        for f in fs:
            assert wrong not in open(os.path.join(r, f)).read()


def test_unreachable_endpoint_clear_error(inputs, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    assert main(argv(inputs, url, "--max_retries", "1")) == 1
    err = capsys.readouterr().err
    assert f"could not reach the endpoint at {url}" in err


def test_mismatched_lengths_clear_error(inputs, capsys):
    (inputs / "b.txt").write_text("\n".join(f"beta summary {i}" for i in range(N - 2)))
    assert main(argv(inputs, "http://127.0.0.1:9/v1")) == 2
    err = capsys.readouterr().err
    assert "input lengths differ" in err and f"pred_b={N - 2}" in err and f"pred_a={N}" in err
    # With --max_samples, the first rows of each are used (predictions written with --max_predict_samples).
    assert main(argv(inputs, "http://127.0.0.1:9/v1", "--max_samples", str(N - 1))) == 2
    assert "fewer rows" in capsys.readouterr().err


def test_parsers():
    assert parse_likert('```json\n{"Relevance": "4", "informativeness": 3, "fluency": 5.0, "coherence": 2}\n```') \
        == {"relevance": 4, "informativeness": 3, "fluency": 5, "coherence": 2}
    assert parse_likert('{"relevance": 6, "informativeness": 3, "fluency": 5, "coherence": 2}') is None
    assert parse_likert('{"relevance": 4}') is None and parse_likert("4/5") is None
    assert parse_pairwise('{"winner": 2}') == "2" and parse_pairwise('{"winner": "Tie"}') == "tie"
    assert parse_pairwise("1") == "1" and parse_pairwise('{"winner": 3}') is None and parse_pairwise("") is None


def test_rate_limiter_and_retry_after():
    now = [0.0]

    class FakeStop:  # waiting advances the fake clock instead of sleeping
        def wait(self, t):
            now[0] += t
            return False

    lim = RateLimiter(rpm=2, tpm=1000, clock=lambda: now[0])
    assert lim.acquire(10, FakeStop()) and lim.acquire(10, FakeStop()) and now[0] == 0
    assert lim.acquire(10, FakeStop()) and now[0] == pytest.approx(60)  # third request waits for the window
    lim = RateLimiter(rpm=0, tpm=100, clock=lambda: now[0])
    start = now[0]
    assert lim.acquire(70, FakeStop()) and lim.acquire(70, FakeStop()) and now[0] - start == pytest.approx(60)
    assert lim.acquire(500, FakeStop())  # larger than the budget: goes alone once the window is empty
    assert retry_after_seconds("3") == 3 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def test_plain_text_and_column_inputs(tmp_path):
    from gpt_eval.client import InputError
    from gpt_eval.data import load_inputs
    (tmp_path / "src.txt").write_text("doc one\ndoc two\n")
    (tmp_path / "ref.jsonl").write_text('{"target": "ref one"}\n{"target": "ref two"}\n')
    (tmp_path / "p.txt").write_text("pred one\n\n")  # an empty prediction is kept as ""
    assert load_inputs(tmp_path / "src.txt", tmp_path / "ref.jsonl", tmp_path / "p.txt", tmp_path / "p.txt",
                       summary_column="target") == (["doc one", "doc two"], ["ref one", "ref two"],
                                                    ["pred one", ""], ["pred one", ""])
    with pytest.raises(InputError, match="--summary_column"):
        load_inputs(tmp_path / "src.txt", tmp_path / "ref.jsonl", tmp_path / "p.txt", tmp_path / "p.txt")
