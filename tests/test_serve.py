"""`transformers serve <checkpoint> --trust-remote-code` serves early-exit decoding (issue 34 item 3): the method per
request through `generation_config`, streamed and not, exact modes equal to model.generate, a bad setting answered
400 with the checker's message while the server keeps serving, concurrent clients, a cancelled stream."""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import urllib.error
import urllib.request

import openai
import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from models import EffLlamaForCausalLM
from tests.conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from build_model import build  # noqa: E402

FREE = dict(use_shallow_deep=True, shallow_exit_layer=1, shallow2deep_conf_type="softmax")
VERIFY = dict(FREE, shallow2deep_conf_threshold=0.0, exact_verification=True)
LOSSY = dict(FREE, shallow2deep_conf_threshold=0.0)
NEW = 16
MESSAGES = [[{"role": "user", "content": text}] for text in
            ("the market opened higher", "tom and anna met at the station", "what did the report say", "hello")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("served_llama"))
    build(d, vocab_size=300, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_decoder_layers=3, corpus_lines=600,
          model_type="llama", dropout=0.0, chat_template=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = os.path.join(os.path.dirname(sys.executable), "transformers")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path_factory.mktemp("modules")), "PYTHONPATH": ""}
    log = open(os.path.join(d, "serve.log"), "w")
    proc = subprocess.Popen([exe, "serve", d, "--trust-remote-code", "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu"], cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, open(os.path.join(d, "serve.log")).read()[-3000:]
            time.sleep(0.5)
        yield d, base, openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0, timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def clean(d) -> list:
    """The tiny tokenizer's byte tokens and broken pieces: a random model strings them into invalid UTF-8, which the
    server's incremental decoder (tokenizers' DecodeStream) refuses mid-stream, whoever generated them. Every
    request suppresses them (a generation setting HF applies, beside the exit settings)."""
    tok = AutoTokenizer.from_pretrained(d)
    return sorted(i for t, i in tok.get_vocab().items() if t.startswith("<0x") or "\ufffd" in tok.decode([i]))


def ask(client, d, messages, settings, stream=False, max_tokens=NEW):
    gc = json.dumps({**settings, "max_new_tokens": max_tokens, "do_sample": False, "suppress_tokens": clean(d)})
    r = client.chat.completions.create(model=d, messages=messages, max_tokens=max_tokens, stream=stream,
                                       extra_body={"generation_config": gc})
    if not stream:
        return r.choices[0].message.content
    return "".join(c.choices[0].delta.content or "" for c in r if c.choices)


def local(d, messages, settings, plain=False):
    """What model.generate gives in this process on the prompt serve builds (the chat template's)."""
    tok = AutoTokenizer.from_pretrained(d)
    x = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    m = (LlamaForCausalLM if plain else EffLlamaForCausalLM).from_pretrained(d).eval()
    out = m.generate(**x, max_new_tokens=NEW, do_sample=False, suppress_tokens=clean(d), **({} if plain else settings))
    return tok.decode(out[0, x["input_ids"].shape[1]:], skip_special_tokens=True)


def test_exact_and_lossy_requests_equal_model_generate_streamed_or_not(served):
    d, _, client = served
    differs = 0
    for messages in MESSAGES[:2]:
        hf = local(d, messages, {}, plain=True)
        assert ask(client, d, messages, VERIFY) == hf == local(d, messages, VERIFY)
        assert ask(client, d, messages, VERIFY, stream=True) == hf
        lossy = local(d, messages, LOSSY)
        assert ask(client, d, messages, LOSSY) == lossy == ask(client, d, messages, LOSSY, stream=True)
        differs += lossy != hf
    assert differs, "the lossy method changed nothing: the server may not have applied it"


def test_a_bad_exit_setting_is_a_400_with_the_checkers_message_and_the_server_keeps_serving(served):
    d, base, client = served
    for bad, message in ((dict(FREE, shallow_exit_layer=9), "shallow_exit_layer 9 is outside 1..2"),
                         (dict(FREE, shallow2deep_threshold=0.3), "unknown fields ['shallow2deep_threshold']")):
        with pytest.raises(openai.BadRequestError) as e:
            ask(client, d, MESSAGES[0], bad)
        assert e.value.status_code == 400 and message in e.value.response.json()["detail"]
    with pytest.raises(openai.APIError) as e:  # a stream has begun (status 200): the error is its event
        ask(client, d, MESSAGES[0], dict(FREE, shallow2deep_conf_threshold=2.0), stream=True)
    assert "shallow2deep_conf_threshold 2.0 is outside [0, 1]" in e.value.body
    assert ask(client, d, MESSAGES[0], VERIFY) == local(d, MESSAGES[0], {}, plain=True)


def test_eight_concurrent_clients_four_requests_each(served):
    d, _, client = served
    want = {(i, name): local(d, MESSAGES[i], s) for i in range(len(MESSAGES))
            for name, s in (("verify", VERIFY), ("lossy", LOSSY))}

    def client_work(c):
        got = []
        for r in range(4):
            i, name = (c + r) % len(MESSAGES), ("verify", "lossy")[(c + r) % 2]
            got.append(((i, name), ask(client, d, MESSAGES[i], VERIFY if name == "verify" else LOSSY,
                                       stream=bool(r % 2))))
        return got

    with ThreadPoolExecutor(8) as pool:
        answers = [a for got in pool.map(client_work, range(8)) for a in got]
    assert len(answers) == 32 and all(text == want[key] for key, text in answers)


def test_a_cancelled_stream_frees_the_worker(served):
    d, base, client = served
    long_gc = json.dumps({**LOSSY, "max_new_tokens": 1900, "min_new_tokens": 1900, "do_sample": False,
                          "suppress_tokens": clean(d)})
    body = {"model": d, "messages": MESSAGES[3], "stream": True, "max_tokens": 1900, "generation_config": long_gc}
    t0 = time.perf_counter()
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        chunks = 0
        for line in r:
            chunks += line.startswith(b"data:")
            if chunks >= 4:
                break  # the client goes away mid-stream
    t1 = time.perf_counter()
    assert ask(client, d, MESSAGES[0], VERIFY) == local(d, MESSAGES[0], {}, plain=True)
    after = time.perf_counter() - t1
    # the whole stream: 1,900 tokens, timed on the same prompt in this process
    x = torch.tensor([[1] * 20])
    m = EffLlamaForCausalLM.from_pretrained(d).eval()
    s = time.perf_counter()
    m.generate(x, max_new_tokens=300, min_new_tokens=300, do_sample=False, **LOSSY)
    full = (time.perf_counter() - s) * 1900 / 300
    assert after < 0.5 * full, (t1 - t0, after, full)
