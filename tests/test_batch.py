"""Batched early exit: every row of a padded batch decodes exactly as it does alone, for every method and
architecture, while rows exit at different layers in the same step and finish at different times."""

import collections
import functools

import pytest
import torch
from transformers import T5ForConditionalGeneration
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

import test_engine
from models.engine import Engine
from models.free import Free
from models.policy import ThresholdState
from models.stats import DecodeStats
from test_architectures import ARCHS, CALM, FREE, L, THRESHOLDS, Arch, close
from test_engine import set_method

NEW = 12


class T5(Arch):
    start, eos = 0, 1
    hf_cls = T5ForConditionalGeneration

    def make(self, **exit_cfg):
        return test_engine.make_model(**exit_cfg)

    def depth(self, k):
        return dict(num_decoder_layers=k)

    def hf_generate(self, m, x, **kw):
        return T5ForConditionalGeneration.generate(m, input_ids=x, max_new_tokens=NEW, **{"do_sample": False, **kw},
                                                   cache=EncoderDecoderCache(DynamicCache(), DynamicCache()))


ALL = {"t5": T5(), **ARCHS}
arch_params = pytest.mark.parametrize("arch", list(ALL.values()), ids=list(ALL))

METHODS = {
    "full": {},
    "static2": dict(static_exit_layer=2),
    **{f"calm{t}": dict(CALM, exit_conf_threshold=t) for t in THRESHOLDS},
    "calm_state": dict(CALM, exit_conf_type="state", exit_conf_threshold=0.9),
    **{f"free{t}": dict(FREE, shallow2deep_conf_threshold=t) for t in THRESHOLDS},
    "free_verify": dict(FREE, shallow2deep_conf_threshold=0.3, exact_verification=True),
    "free_rollback": dict(FREE, shallow2deep_conf_threshold=0.3, rollback_conf_threshold=0.5),
    "free_copy": dict(FREE, shallow2deep_conf_threshold=0.5, copy_skipped_hidden_states=True),
    "free_bidirectional": dict(FREE, shallow2deep_conf_threshold=0.5, parallel_causal_mask=False),
    "free_no_wait": dict(FREE, shallow2deep_conf_threshold=0.5, deep_pass_wait=0.0),
    # (deep_pass_wait defaults to 1.0: free0.5 and free_verify are the wait-for-all schedule)
    "free_wait_half": dict(FREE, shallow2deep_conf_threshold=0.5, deep_pass_wait=0.5),
    "free_verify_no_wait": dict(FREE, shallow2deep_conf_threshold=0.3, exact_verification=True, deep_pass_wait=0.0),
    "free_adaptive": dict(FREE, shallow2deep_conf_threshold=0.3, use_adapt_threshold=True, adapt_explore_every=3),
}


def pad_batch(arch, m, xs):
    """HF's layout: encoder inputs right-padded, decoder-only prompts left-padded; and the attention mask."""
    T = max(x.shape[1] for x in xs)
    ids = torch.full((len(xs), T), m.config.pad_token_id or 0)
    mask = torch.zeros(len(xs), T, dtype=torch.long)
    for b, x in enumerate(xs):
        cols = slice(0, x.shape[1]) if arch.encoder_decoder else slice(T - x.shape[1], T)
        ids[b, cols], mask[b, cols] = x[0], 1
    return ids, mask


def decode(m, arch, ids, mask=None, eos="arch", new=NEW):
    """The engine with a fresh threshold state: (rows, session, counts)."""
    policy = m.exit_policy()
    eng = Engine(m.adapter_cls(m), policy, ThresholdState(policy), getattr(m, "cm_head", None))
    st = DecodeStats(num_layers=L)
    rows, sess = eng.run(ids, mask, arch.start, new, arch.eos if eos == "arch" else eos, st)
    return rows, sess, st


def alone(m, arch, xs, **kw):
    """Every row decoded on its own: (new tokens per row, summed counts)."""
    out, total = [], DecodeStats(num_layers=L)
    for x in xs:
        rows, _, st = decode(m, arch, x, **kw)
        out += [r.tokens[r.prompt_len:] for r in rows]
        total.add(st)
    return out, total


# What FREE's batch schedule changes: work (merged deep passes, tokens decoded on trial and discarded), never
# the tokens, the per-token records or the passes each row stands for.
WORK = {"avg_layers_per_token", "layer_flops_per_token", "exit_ratio", "discarded_tokens"}


def same_counts(a: DecodeStats, b: DecodeStats, work=True):
    sa, sb = a.summary(), b.summary()
    if not work:
        sa, sb = ({k: v for k, v in x.items() if k not in WORK} for x in (sa, sb))
    assert sa == sb
    assert [(r.exit_layer, r.parallel) for r in a.records] == [(r.exit_layer, r.parallel) for r in b.records]
    # float noise
    assert [r.confidence for r in a.records] == pytest.approx([r.confidence for r in b.records], abs=5e-4)


@arch_params
@pytest.mark.parametrize("method", list(METHODS.values()), ids=list(METHODS))
def test_batch_equals_each_row_alone(arch, method):
    m = arch.make()
    set_method(m, **method)
    xs = arch.inputs(6, seed=3)
    rows, _, st = decode(m, arch, *pad_batch(arch, m, xs))
    ref, ref_st = alone(m, arch, xs)
    assert [r.tokens[r.prompt_len:] for r in rows] == ref
    # one row alone, or a deep pass at every deep token, is the published schedule: the same work too
    same_counts(st, ref_st, work=not method.get("use_shallow_deep") or method.get("deep_pass_wait") == 0.0)


@arch_params
def test_rows_exit_differently_in_the_same_step_and_finish_at_different_times(arch, monkeypatch):
    if arch.uniform:
        pytest.skip("this family's tiny random model repeats tokens: no end token ends rows at different steps")
    m = arch.make()
    g = torch.Generator().manual_seed(4)
    xs = [torch.randint(3, 64, (1, n), generator=g) for n in (2, 40, 9, 25, 3, 17, 31, 5)]  # very different lengths
    ids, mask = pad_batch(arch, m, xs)
    # an end token that the rows produce at different steps, so they leave the batch one by one
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5)
    streams = [r.tokens[r.prompt_len:] for r in decode(m, arch, ids, mask, eos=None)[0]]
    first = lambda t: {s.index(t) if t in s else NEW for s in streams}  # noqa: E731
    # (not one a row emits first: a decoder-only row would end at its prefill, before the batch steps)
    eos = max((t for t in range(64) if all(s[:1] != [t] for s in streams)), key=lambda t: len(first(t)))
    assert len(first(eos)) >= 2

    sizes, mixed = [], []
    step = Free.step

    def watched(self, call, batch):
        st = call.stats
        steps, exits = st.steps, st.exits
        step(self, call, batch)
        sizes.append((len(batch), call.session.kv.lens.shape[1]))
        mixed.append(0 < st.exits - exits < st.steps - steps)  # some rows exited at S, others did not

    monkeypatch.setattr(Free, "step", watched)
    rows, _, st = decode(m, arch, ids, mask, eos=eos)
    monkeypatch.undo()
    ref, ref_st = alone(m, arch, xs, eos=eos)
    assert [r.tokens[r.prompt_len:] for r in rows] == ref
    same_counts(st, ref_st, work=False)
    assert len({len(t) for t in ref}) >= 2
    batch_sizes = [b for b, _ in sizes]
    assert all(b == cached for b, cached in sizes)  # finished rows left the caches too
    assert batch_sizes == sorted(batch_sizes, reverse=True) and batch_sizes[0] == len(xs) and batch_sizes[-1] < len(xs)
    assert any(mixed)


@arch_params
def test_trial_tokens_that_the_deep_layers_change_are_cut_back(arch):
    if arch.uniform:
        pytest.skip("this family's tiny random model repeats tokens: its deep layers change no trial token")
    m = arch.make()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.3)
    xs = arch.inputs(8, seed=7)
    rows, _, st = decode(m, arch, *pad_batch(arch, m, xs))
    assert st.discarded_tokens > 0  # rows went on past a trial token the deep pass then changed
    assert [r.tokens[r.prompt_len:] for r in rows] == alone(m, arch, xs)[0]


@arch_params
@pytest.mark.parametrize("wait", [0.0, 0.5, 1.0])
def test_free_deep_kv_of_every_row_equals_its_teacher_forced_pass(arch, wait):
    m = arch.make()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5, deep_pass_wait=wait)
    xs = arch.inputs(6, seed=5)
    rows, sess, st = decode(m, arch, *pad_batch(arch, m, xs), eos=None)
    assert st.parallel_passes > 0 and 0 < st.exits < st.steps
    # the session still holds the rows that finished last: every row when no row waits (all finish together)
    assert len(sess.order) == len(xs) if wait == 0 else len(sess.order) >= 1
    for s, b in enumerate(sess.order):
        x, r = xs[b], rows[b]
        ref = arch.teacher_forced_cache(m, x, r.tokens[:-1])
        for j in range(L):
            keys, values = sess.kv.row(j, s)
            n = keys.shape[1]
            assert n == len(r.tokens) - 1 - (len(r.stack) if j >= 2 else 0)
            if n == 0:  # this row never went deep
                continue
            assert close(keys, ref.layers[j].keys[0, :, :n])
            assert close(values, ref.layers[j].values[0, :, :n])


@functools.lru_cache(maxsize=None)
def batch_verification_case(name):
    """One model per family, its padded batch and HF's greedy output for it, shared by the thresholds below."""
    arch = ALL[name]
    m = arch.make()
    ids, mask = pad_batch(arch, m, arch.inputs(6, seed=6))
    return m, ids, mask, arch.hf_generate(m, ids, attention_mask=mask)


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.6])
def test_verification_in_a_batch_equals_the_full_model_in_a_batch(name, thr):
    m, ids, mask, ref = batch_verification_case(name)
    set_method(m, **FREE, shallow2deep_conf_threshold=thr, exact_verification=True)
    assert m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW).tolist() == ref.tolist()
    assert m.pop_exit_stats().exits > 0


def test_bart_decoding_past_its_positions_fails_clearly():
    arch = ALL["bart"]
    m = arch.make()  # max_position_embeddings 64
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5)
    ids, mask = pad_batch(arch, m, arch.inputs(3))
    m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=60)  # padding rows may pass the last position
    with pytest.raises(ValueError, match="64 decoder positions"):
        decode(m, arch, ids, mask, eos=None, new=80)


def test_batch_dependent_rope_is_refused_in_a_batch():
    arch = ALL["llama"]
    torch.manual_seed(0)
    m = arch.eff_cls(arch.config(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4})).eval()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5)
    ids, mask = pad_batch(arch, m, arch.inputs(3))
    with pytest.raises(ValueError, match="RoPE type 'dynamic' depends on the batch"):
        m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5)
    assert m.generate(input_ids=ids[:1], attention_mask=mask[:1], max_new_tokens=5).shape[0] == 1


def test_adaptive_threshold_is_fixed_within_a_batch_and_refit_between_batches():
    arch = ALL["t5"]
    m = arch.make()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.3, use_adapt_threshold=True, adapt_explore_every=3)
    for seed in range(3):
        ids, mask = pad_batch(arch, m, arch.inputs(4, seed=seed))
        m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW)
    thresholds = m.pop_exit_stats().thresholds
    assert len(thresholds) == 12 and thresholds[:4] == [0.3] * 4
    per_batch = [set(thresholds[i:i + 4]) for i in range(0, 12, 4)]
    assert all(len(s) == 1 for s in per_batch)
    assert collections.Counter(thresholds)[0.3] < 12, "the estimator was refit between batches"
