"""lm-evaluation-harness runs early-exit decoding (issue 34 item 4): its own `hf` backend loads a saved checkpoint
with trust_remote_code, the exit settings come as --gen_kwargs, and the task is the project's offline
generate_until task (scripts/make_lm_eval_task.py)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from build_model import build  # noqa: E402
from make_lm_eval_task import write_task  # noqa: E402

FREE = "use_shallow_deep=True,shallow_exit_layer=1,shallow2deep_conf_type=softmax,shallow2deep_conf_threshold=0.0"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("lm_eval_llama"))
    build(d, vocab_size=300, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_decoder_layers=3, corpus_lines=600,
          model_type="llama", dropout=0.0)
    tasks = str(tmp_path_factory.mktemp("tasks"))
    write_task(tasks, n=4, prefix="", suffix="\nSummary: ", max_tokens=10)
    os.environ.setdefault("HF_MODULES_CACHE", str(tmp_path_factory.mktemp("modules")))
    return d, tasks


def responses(d, tasks, trust, gen_kwargs=None):
    """Each document's generated text from lm_eval's own evaluator (what `lm_eval --model hf` runs)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={d},trust_remote_code={trust}",
                                  tasks=["ee_dialogsum"], task_manager=TaskManager(include_path=tasks),
                                  gen_kwargs=gen_kwargs, batch_size=2, device="cpu", log_samples=True)
    samples = sorted(out["samples"]["ee_dialogsum"], key=lambda s: s["doc_id"])
    assert "exact_match,none" in out["results"]["ee_dialogsum"]
    return [s["resps"][0][0] for s in samples]


def test_lm_eval_hf_backend_decodes_with_the_exit_settings(setup):
    d, tasks = setup
    hf = responses(d, tasks, trust=False)  # the plain HF model lm_eval would load without our code
    assert responses(d, tasks, trust=True, gen_kwargs=f"{FREE},exact_verification=True") == hf
    lossy = responses(d, tasks, trust=True, gen_kwargs=FREE)
    assert lossy != hf, "the lossy method changed nothing: lm_eval may not have decoded with it"


def test_lm_eval_cli_runs_from_the_checkpoint(setup, tmp_path):
    d, tasks = setup
    exe = os.path.join(os.path.dirname(sys.executable), "lm_eval")
    p = subprocess.run([exe, "--model", "hf", "--model_args", f"pretrained={d},trust_remote_code=True",
                        "--include_path", tasks, "--tasks", "ee_dialogsum", "--gen_kwargs", FREE, "--device", "cpu",
                        "--batch_size", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "ee_dialogsum" in p.stdout and "exact_match" in p.stdout
