"""Checkpoints that load anywhere (issue 34 item 2): save_pretrained writes auto_map and the runtime's code, and
`AutoModelFor*.from_pretrained(dir, trust_remote_code=True)` in an interpreter without this repository on its path
gives the early-exit model: HF's tokens when no token exits, exact verification's tokens with exits and
rejections."""

import ast
import json
import os
import subprocess
import sys
import sysconfig

import pytest
import torch
from transformers import LlamaForCausalLM, T5ForConditionalGeneration

from tests.conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from build_model import build  # noqa: E402

PROMPT = [[5, 17, 42, 9, 77, 31]]
NEW = 12
FREE = dict(use_shallow_deep=True, shallow_exit_layer=1, shallow2deep_conf_type="softmax")

CHILD = r"""
import sys
sys.path += sys.argv[4:]  # the installed packages only: -S skipped site, so no .pth put this repository back
import importlib.util, json, torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM
assert importlib.util.find_spec("models") is None and importlib.util.find_spec("additional_args") is None
d, auto, free = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
m = getattr(sys.modules["transformers"], auto).from_pretrained(d, trust_remote_code=True).eval()
x = torch.tensor(%s)
kw = dict(max_new_tokens=%d, do_sample=False)
out = {"class": f"{type(m).__module__}.{type(m).__name__}"}
out["never"] = m.generate(x, **kw, **free, shallow2deep_conf_threshold=1.0).tolist()
out["never_exits"] = m.pop_exit_stats().exits
out["verify"] = m.generate(x, **kw, **free, shallow2deep_conf_threshold=0.0, exact_verification=True).tolist()
st = m.pop_exit_stats()
out["exits"], out["rejected"] = st.exits, st.rollbacks
print(json.dumps(out))
""" % (PROMPT, NEW)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    out = {}
    for kind in ("llama", "t5"):
        d = str(tmp_path_factory.mktemp(f"remote_{kind}"))
        # equal encoder and decoder depths: HF's own T5 generate() needs them (its cache bug with unequal depths)
        build(d, vocab_size=300, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_layers=3, num_decoder_layers=3,
              corpus_lines=600, model_type=kind, dropout=0.0)
        out[kind] = d
    return out


@pytest.mark.parametrize("kind, auto, plain", [("llama", "AutoModelForCausalLM", LlamaForCausalLM),
                                               ("t5", "AutoModelForSeq2SeqLM", T5ForConditionalGeneration)])
def test_saved_checkpoint_loads_with_trust_remote_code_without_this_repository(checkpoints, tmp_path, kind, auto,
                                                                               plain):
    d = checkpoints[kind]
    cfg = json.load(open(os.path.join(d, "config.json")))
    module, cls = cfg["auto_map"][auto].split(".")
    assert os.path.isfile(os.path.join(d, f"{module}.py"))
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    # -I: no current directory, no PYTHONPATH, no user site; -S: no site-packages processing (the editable install
    # of this repository is a .pth there): the child adds the site-packages folders alone
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    p = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD, d, auto, json.dumps(FREE), *site], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["class"].startswith("transformers_modules.") and got["class"].endswith(f"{module}.{cls}")
    ref = plain.from_pretrained(d).eval().generate(torch.tensor(PROMPT), max_new_tokens=NEW, do_sample=False)
    assert got["never"] == ref.tolist() and got["never_exits"] == 0
    assert got["verify"] == ref.tolist()
    assert got["exits"] > 0 and got["rejected"] > 0


def test_the_saved_code_imports_only_torch_transformers_numpy_and_the_standard_library(checkpoints):
    allowed = {"torch", "transformers", "numpy", *sys.stdlib_module_names}
    for kind, d in checkpoints.items():
        files = [f for f in os.listdir(d) if f.endswith(".py")]
        assert "engine.py" in files and "run_summarization.py" not in files
        for f in files:
            tree = ast.parse(open(os.path.join(d, f)).read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Try):  # optional imports (starlette's HTTP error) are guarded
                    continue
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
                bad = [n for n in names if n.split(".")[0] not in allowed]
                if bad and not _guarded(tree, node):
                    raise AssertionError(f"{kind}/{f} imports {bad}")


def _guarded(tree, target) -> bool:
    return any(isinstance(n, ast.Try) and any(target is c for b in n.body for c in ast.walk(b)) for n in ast.walk(tree))
