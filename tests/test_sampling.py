"""Sampling with early exit, and FREE's deep pass as a speculative-sampling test: verified FREE samples from
exactly the full model's (processed, warped) distribution. Tiny vocabulary, so distributions can be enumerated."""


import pytest
import torch
from transformers import LogitsProcessorList, T5ForConditionalGeneration, TemperatureLogitsWarper, TopKLogitsWarper
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

import models.free as free
from test_architectures import CALM, FREE
from test_batch import ALL, pad_batch
from test_engine import make_model, set_method

NEW = 10
METHODS = {
    "full": {}, "static2": dict(static_exit_layer=2), "calm": dict(CALM, exit_conf_threshold=0.5),
    "free": dict(FREE, shallow2deep_conf_threshold=0.5),
    "free_verify": dict(FREE, shallow2deep_conf_threshold=0.3, exact_verification=True),
    "free_rollback": dict(FREE, shallow2deep_conf_threshold=0.3, rollback_conf_threshold=0.5),
}
ARCH_IDS = ["t5", "bart", "llama"]
WARP = dict(do_sample=True, temperature=1.5, top_k=4)


def sample(m, x, seed, mask=None, new=NEW, **kw):
    torch.manual_seed(seed)
    return m.generate(input_ids=x, attention_mask=mask, max_new_tokens=new, use_engine=True, **kw)


@pytest.mark.parametrize("arch", [ALL[a] for a in ARCH_IDS], ids=ARCH_IDS)
def test_full_path_samples_what_hf_samples_with_the_same_seed(arch):
    m = arch.make()
    for x in arch.inputs(3, seed=8):
        for kw in (dict(do_sample=True), dict(do_sample=True, temperature=0.7, top_p=0.9, top_k=20),
                   dict(do_sample=True, min_p=0.05, repetition_penalty=1.2)):
            torch.manual_seed(1)
            if arch is ALL["t5"]:  # the fresh cache: the documented workaround for unequal T5 depths
                ref = T5ForConditionalGeneration.generate(m, input_ids=x, max_new_tokens=NEW, **kw,
                                                          cache=EncoderDecoderCache(DynamicCache(), DynamicCache()))
            else:
                ref = arch.hf_cls.generate(m, input_ids=x, max_new_tokens=NEW, **kw)
            assert sample(m, x, 1, **kw).tolist() == ref.tolist(), kw


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_tokens_and_top_k_1_is_greedy(method):
    m = make_model()
    set_method(m, **METHODS[method])
    for x in [torch.randint(2, 64, (1, 7), generator=torch.Generator().manual_seed(s)) for s in range(3)]:
        a, b = sample(m, x, 5, **WARP), sample(m, x, 5, **WARP)
        assert torch.equal(a, b)
        greedy = m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True)
        assert torch.equal(sample(m, x, 6, do_sample=True, top_k=1), greedy)


# ---- the distribution test -------------------------------------------------------------------------------------
# The samples are STEPS new tokens long: tokens after the first STEPS are not counted, and they do not change how the
# first STEPS are drafted, checked and resampled (a deep pass settles a row's stacked tokens in order and cuts the
# row at its first change), so decoding them would only cost time.
STEPS = 3
EOS = 1


def exact_distribution(m, x):
    """P(first STEPS new tokens) of the full model under WARP's warpers, by enumeration (stopping at EOS)."""
    warp = LogitsProcessorList([TemperatureLogitsWarper(WARP["temperature"]), TopKLogitsWarper(WARP["top_k"])])
    out = {}

    def walk(prefix, prob):
        if len(prefix) == STEPS or (prefix and prefix[-1] == EOS):
            out[tuple(prefix)] = prob
            return
        dec = torch.tensor([[0] + prefix], device=x.device)
        with torch.no_grad():
            logits = m(input_ids=x, decoder_input_ids=dec).logits[:, -1]
        p = torch.softmax(warp(dec, logits), -1)[0]
        for y in torch.nonzero(p > 0)[:, 0].tolist():
            walk(prefix + [y], prob * float(p[y]))

    walk([], 1.0)
    return out


def sampled_distribution(m, x, rows=250, calls=12, seed=0):
    """Empirical distribution of the first STEPS tokens: `rows` copies of the prompt per call, several calls."""
    counts = {}
    for c in range(calls):
        out = sample(m, x.repeat(rows, 1), seed + c, new=STEPS, **WARP)[:, 1:1 + STEPS].tolist()
        for r in out:
            counts[outcome(r)] = counts.get(outcome(r), 0) + 1
    n = rows * calls
    return {k: v / n for k, v in counts.items()}


def outcome(r):
    """A sample's first STEPS tokens, up to and including EOS (what exact_distribution enumerates)."""
    return tuple(r[:r.index(EOS) + 1] if EOS in r else r)


def tv(p, q):
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


@pytest.fixture(scope="module")
def dist_case():
    m = make_model()
    x = torch.randint(2, 64, (1, 7), generator=torch.Generator().manual_seed(3))
    return m, x, exact_distribution(m, x)


VERIFY = dict(FREE, shallow2deep_conf_threshold=0.0, exact_verification=True)  # every token exits: all verified


def test_verified_free_sampling_has_the_full_models_distribution(dist_case, monkeypatch):
    m, x, exact = dist_case
    assert abs(sum(exact.values()) - 1) < 1e-5
    set_method(m, **VERIFY)
    m.pop_exit_stats()
    verified = sampled_distribution(m, x)
    st = m.pop_exit_stats()
    assert 0 < st.rollbacks < st.checked  # shallow proposals were both rejected and accepted
    assert tv(verified, exact) < 0.06  # 3,000 samples: about 0.04 of it is sampling noise
    # the same test fails for wrong acceptance rules
    monkeypatch.setattr(free, "accept_or_resample", lambda p, q, x: x)  # accept always: the shallow distribution
    always = sampled_distribution(m, x, calls=2)  # about 1.0 from the exact one: 500 samples are noise of ~0.15
    monkeypatch.setattr(free, "accept_or_resample", wrong_resample)  # resample from p, not from the residual
    from_p = sampled_distribution(m, x)
    assert tv(always, exact) > 0.15 and tv(from_p, exact) > 0.06, (tv(always, exact), tv(from_p, exact))


def wrong_resample(p_logits, q_logits, x):
    p, q = torch.softmax(p_logits, -1), torch.softmax(q_logits, -1)
    if float(torch.rand(())) * float(q[x]) < float(p[x]):
        return x
    return int(torch.multinomial(p, 1))


def test_every_row_of_a_padded_batch_has_the_full_models_distribution(monkeypatch):
    """Six different prompts sampled together (padded), each row's distribution equals its own exact one; the same
    measurement with the shallow distribution accepted always (a wrong verifier) fails the bound."""
    arch = ALL["t5"]
    m = make_model()
    xs = [torch.randint(2, 64, (1, n), generator=torch.Generator().manual_seed(10 + n)) for n in (4, 5, 6, 7, 8, 9)]
    exact = [exact_distribution(m, x) for x in xs]
    ids, mask = pad_batch(arch, m, xs)
    set_method(m, **VERIFY)

    def row_tvs(calls, rows=25):
        counts = [dict() for _ in xs]
        for c in range(calls):
            out = sample(m, ids.repeat_interleave(rows, 0), 100 + c, mask=mask.repeat_interleave(rows, 0),
                         new=STEPS, **WARP)
            for i, r in enumerate(out[:, 1:1 + STEPS].tolist()):
                counts[i // rows][outcome(r)] = counts[i // rows].get(outcome(r), 0) + 1
        return [tv({k: v / (calls * rows) for k, v in cnt.items()}, e) for e, cnt in zip(exact, counts)]

    tvs = row_tvs(40)
    # 1,000 samples a row over up to 64 sequences: about 0.07 of total variation is sampling noise
    assert sum(tvs) / len(tvs) < 0.09 and max(tvs) < 0.13, tvs
    monkeypatch.setattr(free, "accept_or_resample", lambda p, q, x: x)  # accept always: the shallow distribution
    wrong = row_tvs(8)  # 200 samples a row: noise about 0.15, far below this control's distance from the exact one
    assert sum(wrong) / len(wrong) > 0.09, wrong
