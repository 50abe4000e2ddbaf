"""A process that decodes with the CPU product layouts (fast_kernels) exits cleanly: nothing on stderr.

deploying_common.derived caches tensors computed from a weight (a fused q/k/v matrix, a shortlist's rows, a
transpose) and drops them when the weight dies, through a weak reference's callback. A derived tensor can be the
weight of another entry (the transpose of the fused matrix, when the measured layout reads it), so at interpreter
exit, when Python sets the module's globals to None and the cache is freed, such an entry's callback still runs;
it used to print one "Exception ignored ... _DERIVED.pop" traceback per entry (61 on SmolLM2)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import torch
from transformers import LlamaConfig

import models.deploying_common as dc
from models import EffLlamaForCausalLM

# The layout is chosen by timing; pin the one that derives W's transpose (x @ W_t) for every shape, so that the
# fused q/k/v and gate/up matrices and the shortlist's rows, themselves derived, get entries of their own.
def transposed_layout(W, **_):
    for n in range(1, dc.MAX_TUNED_ROWS + 1):
        dc._LAYOUT[(*W.shape, n, torch.get_num_threads())] = "x@Wt"
dc.tune_layouts = transposed_layout

cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0)
torch.manual_seed(0)
model = EffLlamaForCausalLM(cfg).eval()
model.config.exit_token_ranking = list(range(3, 35))
model.config.update(dict(use_shallow_deep=True, shallow_exit_layer=2, shallow2deep_conf_type="softmax",
                         shallow2deep_conf_threshold=0.3, exact_verification=True, fast_kernels=True,
                         exit_shortlist_size=32))
out = model.generate(input_ids=torch.randint(3, 64, (1, 8)), max_new_tokens=8)
derived = {id(t) for _, per in dc._DERIVED.values() for _, t in per.values()}
print("new tokens", out.shape[1] - 8, "entries of derived tensors", sum(k in derived for k in dc._DERIVED))
"""


def test_decoding_with_fast_kernels_exits_without_tracebacks():
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    # the case that failed: decoded, and derived tensors with entries of their own (4 layers x 2 fused + shortlist)
    assert int(words[2]) == 8 and int(words[-1]) == 9, r.stdout
    assert r.stderr == ""
