"""The early-exit engine on a tiny random T5, against HF generate() and teacher-forced passes."""

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models import EffT5ForConditionalGeneration
from models.engine import Engine
from models.methods import Calm
from models.policy import ThresholdState
from models.stats import DecodeStats

L = 4
NEW = 14


def make_model(**exit_cfg):
    # initializer_factor 10 makes a random model's greedy output varied (factor 1 decodes pad forever).
    cfg = T5Config(vocab_size=64, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_layers=2, num_decoder_layers=L,
                   dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                   initializer_factor=10.0, **exit_cfg)
    torch.manual_seed(0)
    m = EffT5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # softer logits at every exit, so confidences spread over [0, 1]
        m.decoder.final_layer_norm.weight.mul_(0.05)
    return m


def inputs(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(2, 64, (1, int(torch.randint(5, 12, (1,), generator=g))), generator=g) for _ in range(n)]


def set_method(m, **kw):
    for k in ("static_exit_layer", "use_early_exit", "use_shallow_deep", "exact_verification", "use_adapt_threshold",
              "copy_skipped_hidden_states", "rollback_conf_threshold"):
        setattr(m.config, k, None)
    m.config.update(kw)
    m.reset_exit_state()


def hf_greedy(m, x, **kw):
    # HF's own greedy search; the fresh cache is the documented workaround for unequal T5 depths.
    return T5ForConditionalGeneration.generate(m, input_ids=x, max_new_tokens=NEW, do_sample=False,
                                               cache=EncoderDecoderCache(DynamicCache(), DynamicCache()), **kw)


FREE = dict(use_shallow_deep=True, shallow_exit_layer=2, shallow2deep_conf_type="softmax")
CALM = dict(use_early_exit=True, exit_conf_type="softmax", exit_min_layer=1)


def run_engine(m, x):
    """The engine on one row: ([start] + new tokens, the row with its session as .sess, counts)."""
    policy = m.exit_policy()
    eng = Engine(m.adapter_cls(m), policy, ThresholdState(policy), getattr(m, "cm_head", None))
    st = DecodeStats(num_layers=L)
    (seq,), seq.sess = eng.run(x, None, 0, NEW, 1, st)
    return seq.tokens, seq, st


@pytest.mark.parametrize("method", [dict(), dict(FREE, shallow2deep_conf_threshold=1.0),
                                    dict(CALM, exit_conf_threshold=1.0)])
def test_never_exit_equals_hf_generate_tokens_and_logits(method):
    m = make_model()
    set_method(m, **method)
    for x in inputs():
        ref = hf_greedy(m, x, output_scores=True, return_dict_in_generate=True)
        tokens, seq, st = run_engine(m, x) if method else (None, None, None)
        if not method:  # our full-depth path
            m.config.update({})
            policy = m.exit_policy()
            assert policy.method == "full"
            tokens, seq, st = run_engine(m, x)
        assert tokens == ref.sequences[0].tolist()
        assert st.exits == 0
        got = torch.stack(seq.scores)
        want = torch.cat(ref.scores)
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_t5_direct_layer_is_the_hf_block_bit_for_bit(dtype):
    """The adapter's own T5 layer (masks made once per span) against the HF block it replaces: the same outputs and
    K/V, bit for bit, for ragged rows, several queries per row and encoder padding (float16: with T5's clamps)."""
    check_t5_direct_layer(dtype, "cpu")


def check_t5_direct_layer(dtype, device):
    m = make_model().to(device, dtype)
    ad = m.adapter_cls(m)
    assert ad.direct and m.config._attn_implementation == "sdpa"
    g = torch.Generator().manual_seed(1)
    x = torch.randint(2, 64, (3, 9), generator=g)
    mask = torch.ones_like(x)
    mask[1, 6:], mask[2, 4:] = 0, 0
    ids = [torch.randint(2, 64, (3, 3), generator=g).to(device) for _ in range(3)]
    got = {}
    for direct in (True, False):
        ad.direct = direct
        sess, states = ad.start(x.to(device), mask.to(device)), []
        for (starts, n), step in zip((([0, 0, 0], [3, 2, 1]), ([3, 2, 1], [1, 1, 1]), ([4, 3, 2], [1, 2, 3])), ids):
            span = ad.span(starts, n)
            h = ad.embed(step[:, :span.nmax], span)
            for i in range(L):
                h = ad.layer(sess, i, h, span)
            states.append(h)
        got[direct] = states, [t for i in range(L) for r in range(3) for t in sess.kv.row(i, r)]
    for a, b in zip(*(got[d][0] + got[d][1] for d in (True, False))):
        assert a.device.type == torch.device(device).type and torch.equal(a, b)


def test_eager_attention_decodes_through_the_hf_blocks():
    """With eager attention the adapter's own layer (which is HF's sdpa path) stands aside: still HF's tokens."""
    m = make_model()
    m.set_attn_implementation("eager")
    assert not (m.config._attn_implementation == "sdpa")
    for x in inputs(2):
        assert run_engine(m, x)[0] == hf_greedy(m, x)[0].tolist()


def test_generate_front_door_uses_engine_and_matches_hf():
    m = make_model()
    x = torch.cat([inputs(1, 3)[0]] * 2)
    ref = hf_greedy(m, x)
    assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True), ref)
    set_method(m, **FREE, shallow2deep_conf_threshold=1.0)
    assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW), ref)
    assert m.pop_exit_stats().sequences == 2


@pytest.mark.parametrize("k", [1, 2, 3])
def test_static_exit_equals_truncated_model(k):
    m = make_model()
    set_method(m, static_exit_layer=k)
    cfg = m.config.to_dict()
    cfg.update(num_decoder_layers=k, static_exit_layer=None)
    trunc = T5ForConditionalGeneration(T5Config(**cfg)).eval()
    missing, unexpected = trunc.load_state_dict(m.state_dict(), strict=False)
    assert not missing
    for x in inputs():
        ref = trunc.generate(input_ids=x, max_new_tokens=NEW, do_sample=False, use_cache=False)
        assert m.generate(input_ids=x, max_new_tokens=NEW).tolist() == ref.tolist()
    assert m.pop_exit_stats().summary()["avg_layers_per_token"] == k


THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


def mixed_runs(m, method, n=6):
    """(input, engine result) for every input and threshold where exits and deep steps both happen."""
    for x in inputs(n):
        for thr in THRESHOLDS:
            set_method(m, **method, **{("exit_conf_threshold" if "use_early_exit" in method
                                        else "shallow2deep_conf_threshold"): thr})
            tokens, seq, st = run_engine(m, x)
            if 0 < st.exits < st.steps:
                yield x, tokens, seq, st


def close(a, b, tol=1e-4):
    """Within tol, relative to the tensor's scale (this model's K/V reach |300|, float32 noise is ~1e-5 of that)."""
    return bool((a - b).abs().max() <= tol * max(1.0, float(b.abs().max())))


@torch.no_grad()
def teacher_forced_cache(m, x, tokens):
    out = m(input_ids=x, decoder_input_ids=torch.tensor([tokens]), use_cache=True)
    return out.cache.self_attention_cache


def test_free_deep_kv_equals_teacher_forced_pass_after_mixed_exits():
    m = make_model()
    checked = 0
    for x, tokens, seq, st in mixed_runs(m, FREE, n=12):
        if st.parallel_passes == 0:
            continue
        ref = teacher_forced_cache(m, x, tokens[:-1])
        for j in range(L):
            keys, values = seq.sess.kv.row(j)
            n = keys.shape[1]
            assert n > 0
            if j < 2:
                assert n == len(tokens) - 1  # shallow layers saw every input
            assert close(keys, ref.layers[j].keys[0, :, :n])
            assert close(values, ref.layers[j].values[0, :, :n])
        checked += 1
    assert checked >= 3


def test_calm_caches_stay_equal_length_after_every_step(monkeypatch):
    m = make_model()
    step = Calm.step

    def checked(self, call, batch):
        step(self, call, batch)
        for j, r in enumerate(batch):  # every row: every layer holds all inputs so far
            lens = {call.session.cache_len(i, j) for i in range(L)}
            assert lens == {len(r.tokens) - 1}, lens

    monkeypatch.setattr(Calm, "step", checked)

    mixed = 0
    for x, *_ in mixed_runs(m, CALM):
        policy = m.exit_policy()
        eng = Engine(m.adapter_cls(m), policy, ThresholdState(policy))
        st = DecodeStats(num_layers=L)
        eng.run(x, None, 0, NEW, 1, st)
        mixed += 0 < st.exits < st.steps
    assert mixed >= 3


@pytest.mark.parametrize("thr", [0.0, 0.05, 0.2, 0.5])
def test_free_verification_equals_full_model_while_exiting(thr):
    m = make_model()
    total_exits = 0
    for x in inputs(5, seed=2):
        ref = hf_greedy(m, x)
        set_method(m, **FREE, shallow2deep_conf_threshold=thr, exact_verification=True)
        out = m.generate(input_ids=x, max_new_tokens=NEW)
        assert out.tolist() == ref.tolist()
        st = m.pop_exit_stats()
        total_exits += st.exits
        assert st.tokens == ref.shape[1] - 1
    assert total_exits > 0


def test_free_without_verification_differs_when_exits_are_wrong_and_counts_are_consistent():
    m = make_model()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.0)
    x = torch.cat([inputs(1, 2)[0]])
    m.generate(input_ids=x, max_new_tokens=NEW)
    s = m.pop_exit_stats().summary()
    assert s["exit_ratio"] > 0.9 and s["avg_layers_per_token"] < L


def test_rollback_at_zero_cross_entropy_rejects_every_stacked_token():
    # CE > 0 holds for any emitted token, so every parallel pass rolls back to its first stacked token:
    # every token a deep pass has seen is the full model's (unlike exact_verification, the published rollback
    # leaves the tokens still stacked at the end unchecked), and the record shows the rollbacks.
    m = make_model()
    rolled = 0
    for x, tokens, seq, st in mixed_runs(m, dict(FREE, rollback_conf_threshold=0.0)):
        checked = len(tokens) - len(seq.stack)
        assert tokens[:checked] == hf_greedy(m, x)[0].tolist()[:checked]
        assert st.rolled_back_tokens >= st.rollbacks
        rolled += st.rollbacks
    assert rolled > 0


def test_copy_variant_fills_deep_kv_from_the_shallow_state():
    m = make_model()
    runs = list(mixed_runs(m, dict(FREE, copy_skipped_hidden_states=True)))
    assert runs and all(st.kv_fill_tokens > 0 for *_, st in runs if st.exits and st.steps > st.exits)
    for _, tokens, seq, st in runs:  # every layer's cache covers the deep-processed prefix
        lens = [seq.sess.cache_len(j) for j in range(L)]
        assert lens[0] == len(tokens) - 1 and min(lens[2:]) >= len(tokens) - 1 - len(seq.stack)


def test_adaptive_threshold_is_refit_between_sequences():
    m = make_model()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.3, use_adapt_threshold=True, adapt_explore_every=3)
    for x in inputs(12):
        m.generate(input_ids=x, max_new_tokens=NEW)
    st = m.pop_exit_stats()
    assert len(st.thresholds) == 12 and st.thresholds[0] == 0.3
    bmm = m.exit_state.for_policy(m.exit_policy()).bmm
    assert len(bmm) > 0 and all(0.3 <= t <= 0.9 for t in st.thresholds)
    assert bmm.history, "the estimator was refit"


def test_exit_settings_survive_save_and_load(tmp_path):
    m = make_model(**FREE, shallow2deep_conf_threshold=0.1)
    x = inputs(1, 5)[0]
    before = m.generate(input_ids=x, max_new_tokens=NEW)
    m.save_pretrained(tmp_path)
    m2 = EffT5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert m2.exit_policy().method == "free" and m2.exit_policy().threshold == 0.1
    assert torch.equal(m2.generate(input_ids=x, max_new_tokens=NEW), before)


@pytest.mark.parametrize("cfg, match", [
    (dict(use_shallow_deep=True, shallow_exit_layer=4, shallow2deep_conf_type="softmax"), "1..3"),
    (dict(use_shallow_deep=True, shallow_exit_layer=2), "shallow2deep_conf_type"),
    (dict(use_early_exit=True, exit_conf_type="meta"), "meta head"),
    (dict(use_early_exit=True, exit_conf_type="softmax", static_exit_layer=2), "one decoding method"),
    (dict(FREE, deep_pass_wait=2.0), r"deep_pass_wait 2.0 is outside \[0, 1\]"),
])
def test_bad_decoding_settings_fail_clearly(cfg, match):
    m = make_model()
    set_method(m, **cfg)
    with pytest.raises(ValueError, match=match):
        m.generate(input_ids=inputs(1)[0], max_new_tokens=4)


def test_padded_batch_rows_decode_like_single_rows():
    m = make_model()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.2)
    xs = inputs(3, seed=7)
    singles = [m.generate(input_ids=x, max_new_tokens=NEW)[0] for x in xs]
    width = max(x.shape[1] for x in xs)
    ids = torch.zeros(3, width, dtype=torch.long)
    mask = torch.zeros(3, width, dtype=torch.long)
    for i, x in enumerate(xs):
        ids[i, :x.shape[1]], mask[i, :x.shape[1]] = x[0], 1
    batch = m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW)
    for i, s in enumerate(singles):
        assert batch[i, :len(s)].tolist() == s.tolist()


def test_one_checker_for_exit_settings_in_flags_and_configs():
    """The command line and a config (set in code or loaded) accept and refuse the same values with the same
    message; static_exit_layer = L is the full depth, as published."""
    import copy

    from additional_args import AdditionalArguments, update_config
    m = make_model()
    x = inputs(1)[0]
    set_method(m, static_exit_layer=L)
    assert m.exit_policy().method == "full"
    assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True), hf_greedy(m, x))
    update_config(copy.deepcopy(m.config), AdditionalArguments(static_exit_layer=L))
    for cfg, match in ((dict(static_exit_layer=L + 1), f"static_exit_layer {L + 1} is outside 1..{L}"),
                       (dict(static_exit_layer=0), f"static_exit_layer 0 is outside 1..{L}"),
                       (dict(FREE, shallow_exit_layer=L), f"shallow_exit_layer {L} is outside 1..{L - 1}"),
                       (dict(CALM, exit_conf_threshold=1.5), r"exit_conf_threshold 1.5 is outside \[0, 1\]"),
                       (dict(FREE, shallow2deep_conf_type="state"), "state compares consecutive layers")):
        set_method(m, **cfg)
        with pytest.raises(ValueError, match=match):
            m.generate(input_ids=x, max_new_tokens=4)
        for k in cfg:
            setattr(m.config, k, None)
        with pytest.raises(ValueError, match=match):
            update_config(copy.deepcopy(m.config), AdditionalArguments(**cfg))


def test_a_checkpoint_trained_with_free_losses_decodes_with_every_method():
    """The training settings a FREE checkpoint carries (its loss needs a shallow layer) do not bind decoding: the
    benchmark resets the exit settings to try each method, the shallow layer included."""
    m = make_model(intermediate_loss_fn="shallowdeep_kd_dyna", distill_layer_alpha=0.5, shallow_exit_layer=2,
                   output_hidden_states_decoder=True)
    x = inputs(1)[0]
    for method in (dict(shallow_exit_layer=None), dict(CALM, exit_conf_threshold=0.5, shallow_exit_layer=None),
                   dict(static_exit_layer=2)):
        set_method(m, **method)
        assert m.generate(input_ids=x, max_new_tokens=4, use_engine=True).shape[1] > 1

