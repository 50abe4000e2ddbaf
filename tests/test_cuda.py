"""The exactness oracles again on a CUDA device (skipped without one; `bash scripts/gpu_check.sh` runs them with the
benchmark). The engine keeps its bookkeeping (cache lengths, spans, decisions) on the CPU and its tensors on the
model's device, so these check that nothing assumes a CPU tensor: tokens equal HF generate() on the same device
(greedy, under every processor setting, and sampled with the same seed), static exit equals the truncated model,
verification equals the full model while exiting, verified sampling has the full model's distribution, a padded
batch that exits equals each row alone, beam search equals HF's, float16 decodes as HF decodes in float16, and the
T5 adapter's own layer is HF's block bit for bit there.

TEST_DEVICE=cpu runs the same tests on the CPU (to check the tests themselves on a machine without a GPU).
"""

import os

import pytest
import torch

import models.free as free
import test_sampling
from test_architectures import CALM, FREE, close
from test_batch import ALL, pad_batch
from test_engine import check_t5_direct_layer, make_model, set_method
from test_generation import PROCESSORS, VERIFY, new_tokens

DEV = os.environ.get("TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEV == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")
NEW = 12
arch_params = pytest.mark.parametrize("arch", list(ALL.values()), ids=list(ALL))
ARCH_IDS = ["t5", "bart", "llama"]
three_archs = pytest.mark.parametrize("arch", [ALL[a] for a in ARCH_IDS], ids=ARCH_IDS)


def on_device(arch, dtype=torch.float32, **exit_cfg):
    m = arch.make().to(DEV, dtype)
    set_method(m, **exit_cfg)
    return m


def ours(m, x, **kw):
    return m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True, **kw)


def inputs(arch, n, seed=0):
    return [x.to(DEV) for x in arch.inputs(n, seed=seed)]


@arch_params
@pytest.mark.parametrize("method", [dict(), dict(FREE, shallow2deep_conf_threshold=1.0),
                                    dict(CALM, exit_conf_threshold=1.0)], ids=["full", "free", "calm"])
def test_never_exit_equals_hf_generate(arch, method):
    m = on_device(arch, **method)
    for x in inputs(arch, 3):
        ref = arch.hf_generate(m, x, output_scores=True, return_dict_in_generate=True)
        got = ours(m, x, output_scores=True, return_dict_in_generate=True)
        assert got.sequences.tolist() == ref.sequences.tolist()
        assert close(torch.stack(got.scores), torch.stack(ref.scores))


@arch_params
def test_static_exit_equals_truncated_model(arch):
    m = on_device(arch, static_exit_layer=2)
    trunc = arch.truncated(m.cpu(), 2).to(DEV)
    m.to(DEV)
    for x in inputs(arch, 3):
        assert ours(m, x).tolist() == arch.hf_generate(trunc, x).tolist()


def check_verification(arch, m):
    """FREE + exact verification gives HF's tokens while exiting, and some checked exits were rejected."""
    checked = rollbacks = 0
    for x in inputs(arch, 6, seed=2):
        ref = arch.hf_generate(m, x)
        for t in (0.0, 0.3):
            set_method(m, **FREE, shallow2deep_conf_threshold=t, exact_verification=True)
            assert ours(m, x).tolist() == ref.tolist(), t
            st = m.pop_exit_stats()
            checked, rollbacks = checked + st.checked, rollbacks + st.rollbacks
            set_method(m)
    assert 0 < rollbacks < checked


@arch_params
def test_verification_equals_full_model_while_exiting(arch):
    check_verification(arch, on_device(arch))


@arch_params
@pytest.mark.parametrize("method", [dict(FREE, shallow2deep_conf_threshold=0.5), dict(CALM, exit_conf_threshold=0.5)],
                         ids=["free", "calm"])
def test_padded_batch_that_exits_equals_each_row_alone(arch, method):
    m = on_device(arch, **method)
    xs = arch.inputs(4, seed=3)
    ids, mask = pad_batch(arch, m, xs)
    m.pop_exit_stats()
    both = ours(m, ids.to(DEV), attention_mask=mask.to(DEV))
    assert m.pop_exit_stats().exits > 0  # rows left early in the batch, not only alone
    for b, x in enumerate(xs):
        alone = ours(m, x.to(DEV))[0]
        row = both[b] if arch.encoder_decoder else both[b, ids.shape[1] - x.shape[1]:]
        assert row[:alone.shape[0]].tolist() == alone.tolist()


@arch_params
def test_beam_search_equals_hf(arch):
    m = on_device(arch)
    for x in inputs(arch, 2):
        kw = dict(num_beams=4, num_return_sequences=2, length_penalty=0.8)
        assert ours(m, x, **kw).tolist() == arch.hf_generate(m, x, **kw).tolist()


# ---- generation settings ---------------------------------------------------------------------------------------

@three_archs
@pytest.mark.parametrize("name", PROCESSORS)
def test_processors_never_exit_and_verification_equal_hf(arch, name):
    m = on_device(arch)
    n_hf = lambda x: 1 if arch.encoder_decoder else x.shape[1]  # noqa: E731  (HF's input length, for min_length)
    for x in inputs(arch, 2, seed=1):
        kw = PROCESSORS[name](arch, new_tokens(arch, arch.hf_generate(m, x), x)[0], n_hf(x))
        if kw is None:
            pytest.skip(f"HF refuses {name} for this family")
        ref = arch.hf_generate(m, x, output_scores=True, return_dict_in_generate=True, **kw)
        for method in (dict(FREE, shallow2deep_conf_threshold=1.0), dict(CALM, exit_conf_threshold=1.0), VERIFY):
            set_method(m, **method)
            got = ours(m, x, output_scores=True, return_dict_in_generate=True, **kw)
            assert got.sequences.tolist() == ref.sequences.tolist(), method
        set_method(m)


@three_archs
@pytest.mark.parametrize("method", [dict(), dict(CALM, exit_conf_threshold=1.0)], ids=["full", "calm"])
def test_sampling_draws_what_hf_draws_with_the_same_seed(arch, method):
    m = on_device(arch, **method)
    for x in inputs(arch, 2, seed=8):
        for kw in (dict(do_sample=True), dict(do_sample=True, temperature=0.7, top_p=0.9, top_k=20),
                   dict(do_sample=True, min_p=0.05, repetition_penalty=1.2, typical_p=0.9)):
            torch.manual_seed(1)
            ref = arch.hf_generate(m, x, **kw)  # HF's sampling (do_sample=True), the T5 cache workaround included
            torch.manual_seed(1)
            assert ours(m, x, **kw).tolist() == ref.tolist(), kw


def test_verified_sampling_has_the_full_models_distribution(monkeypatch):
    """test_sampling's enumeration on the device, with a threshold where some tokens exit and some are on trial."""
    m = make_model().to(DEV)
    x = torch.randint(2, 64, (1, 7), generator=torch.Generator().manual_seed(3)).to(DEV)
    exact = test_sampling.exact_distribution(m, x)
    set_method(m, **FREE, shallow2deep_conf_threshold=0.3, exact_verification=True)
    m.pop_exit_stats()
    got = test_sampling.sampled_distribution(m, x)
    st = m.pop_exit_stats()
    assert 0 < st.rollbacks < st.checked
    assert test_sampling.tv(got, exact) < 0.06  # 3,000 samples: about 0.04 of it is sampling noise
    monkeypatch.setattr(free, "accept_or_resample", lambda p, q, x: x)  # the negative control: accept always
    assert test_sampling.tv(test_sampling.sampled_distribution(m, x, calls=2), exact) > 0.15


# ---- float16 and the T5 adapter's own layer --------------------------------------------------------------------

@three_archs
def test_float16_decodes_as_hf_decodes_in_float16(arch):
    """Never-exit FREE and CALM give HF's float16 tokens on the same device, and verification does while exiting."""
    m = on_device(arch, torch.float16)
    for x in inputs(arch, 3):
        ref = arch.hf_generate(m, x, output_scores=True, return_dict_in_generate=True)
        for method in (dict(), dict(FREE, shallow2deep_conf_threshold=1.0), dict(CALM, exit_conf_threshold=1.0)):
            set_method(m, **method)
            got = ours(m, x, output_scores=True, return_dict_in_generate=True)
            assert got.sequences.tolist() == ref.sequences.tolist(), method
            assert close(torch.stack(got.scores).float(), torch.stack(ref.scores).float(), tol=1e-2)
    set_method(m)
    check_verification(arch, m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_t5_direct_layer_is_the_hf_block_bit_for_bit(dtype):
    """The adapter's own T5 layer against the HF block it replaces, on the device: the same outputs and K/V, bit
    for bit, for ragged rows, several queries per row and encoder padding."""
    check_t5_direct_layer(dtype, DEV)
