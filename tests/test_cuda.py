"""The exactness oracles again on a CUDA device (skipped without one; `bash scripts/gpu_check.sh` runs them with the
benchmark). The engine keeps its bookkeeping (cache lengths, spans, decisions) on the CPU and its tensors on the
model's device, so these check that nothing assumes a CPU tensor: tokens equal HF generate() on the same device,
static exit equals the truncated model, verification equals the full model while exiting, a padded batch equals
each row alone, and beam search equals HF's.
"""

import pytest
import torch

from test_architectures import CALM, FREE, close
from test_batch import ALL, pad_batch
from test_engine import set_method

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
NEW = 12
arch_params = pytest.mark.parametrize("arch", list(ALL.values()), ids=list(ALL))


def on_cuda(arch, **exit_cfg):
    m = arch.make().to("cuda")
    set_method(m, **exit_cfg)
    return m


def ours(m, x, **kw):
    return m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True, **kw)


@arch_params
@pytest.mark.parametrize("method", [dict(), dict(FREE, shallow2deep_conf_threshold=1.0),
                                    dict(CALM, exit_conf_threshold=1.0)], ids=["full", "free", "calm"])
def test_never_exit_equals_hf_generate(arch, method):
    m = on_cuda(arch, **method)
    for x in arch.inputs(3):
        x = x.cuda()
        ref = arch.hf_generate(m, x, output_scores=True, return_dict_in_generate=True)
        got = ours(m, x, output_scores=True, return_dict_in_generate=True)
        assert got.sequences.tolist() == ref.sequences.tolist()
        assert close(torch.stack(got.scores), torch.stack(ref.scores))


@arch_params
def test_static_exit_equals_truncated_model(arch):
    m = on_cuda(arch, static_exit_layer=2)
    trunc = arch.truncated(m.cpu(), 2).to("cuda")
    m.to("cuda")
    for x in arch.inputs(3):
        assert ours(m, x.cuda()).tolist() == arch.hf_generate(trunc, x.cuda()).tolist()


@arch_params
def test_verification_equals_full_model_while_exiting(arch):
    m = on_cuda(arch)
    exits = 0
    for x in arch.inputs(3, seed=2):
        ref = arch.hf_generate(m, x.cuda())
        set_method(m, **FREE, shallow2deep_conf_threshold=0.3, exact_verification=True)
        assert ours(m, x.cuda()).tolist() == ref.tolist()
        exits += m.pop_exit_stats().exits
        set_method(m)
    assert exits > 0


@arch_params
@pytest.mark.parametrize("method", [dict(FREE, shallow2deep_conf_threshold=0.5), dict(CALM, exit_conf_threshold=0.5)],
                         ids=["free", "calm"])
def test_padded_batch_equals_each_row_alone(arch, method):
    m = on_cuda(arch, **method)
    xs = arch.inputs(4, seed=3)
    ids, mask = pad_batch(arch, m, xs)
    both = ours(m, ids.cuda(), attention_mask=mask.cuda())
    for b, x in enumerate(xs):
        alone = ours(m, x.cuda())[0]
        row = both[b] if arch.encoder_decoder else both[b, ids.shape[1] - x.shape[1]:]
        assert row[:alone.shape[0]].tolist() == alone.tolist()


@arch_params
def test_beam_search_equals_hf(arch):
    m = on_cuda(arch)
    for x in arch.inputs(2):
        kw = dict(num_beams=4, num_return_sequences=2, length_penalty=0.8)
        assert ours(m, x.cuda(), **kw).tolist() == arch.hf_generate(m, x.cuda(), **kw).tolist()
