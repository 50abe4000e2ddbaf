"""The draft forms of issue "early exit that pays on a real checkpoint": a shortlist draft head, an exit block that
attends, draft-length control and the CPU product layouts -- each checked against HF generate on the same weights
(never-exit and verification, with exits and rejections asserted), batch against each row alone, the exit
block's own cache against a teacher-forced pass, save/load, and verified sampling's distribution with a shortlist
and tokens on trial."""

import os
import sys

import pytest
import torch
import torch.nn.functional as F
from transformers import DynamicCache

from models import EffLlamaForCausalLM
from models.deploying_common import LAYOUT_MS, LAYOUTS, MAX_TUNED_ROWS, Shortlist, fast_kernels, fast_product
from test_architectures import ARCHS, FREE, NEW
from test_engine import make_model, set_method
from test_sampling import exact_distribution, sampled_distribution, tv

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
LLAMA = ARCHS["llama"]
SHORT = list(range(3, 35))  # 32 of the 64 tokens (EOS, id 2, left out: a row then ends only after a deep token)
VERIFY = dict(FREE, shallow2deep_conf_threshold=0.3, exact_verification=True)


def settings(m, **kw):
    set_method(m, **kw)
    for k in ("exit_shortlist_size", "max_draft_tokens", "fast_kernels"):
        setattr(m.config, k, kw.get(k))


def llama(**cfg):
    m = LLAMA.make(**cfg)
    m.config.exit_token_ranking = SHORT
    return m


def check_verification(m, **kw):
    """FREE + exact verification == HF generate on several prompts, with exits and rejections both happening."""
    settings(m, **VERIFY, **kw)
    m.pop_exit_stats()
    for x in LLAMA.inputs(4, seed=1):
        assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW), LLAMA.hf_generate(m, x))
    st = m.pop_exit_stats()
    assert st.exits > 0 and 0 < st.rollbacks < st.checked, st.summary()
    return st


@pytest.mark.parametrize("form", ["shortlist", "block", "block_shortlist"])
def test_verification_and_never_exit_equal_hf_generate(form):
    m = llama(**({"exit_block_layer": 2} if "block" in form else {}))
    kw = {"exit_shortlist_size": len(SHORT)} if "shortlist" in form else {}
    check_verification(m, **kw)
    settings(m, **dict(VERIFY, exact_verification=False, shallow2deep_conf_threshold=1.0), **kw)  # never exits
    for x in LLAMA.inputs(3, seed=2):
        assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW), LLAMA.hf_generate(m, x))
    assert m.pop_exit_stats().exits == 0


def test_shortlist_drafts_only_its_tokens_and_the_final_layer_scores_all():
    m = llama()
    settings(m, **dict(FREE, shallow2deep_conf_threshold=0.0), exit_shortlist_size=8)  # every token exits at 2
    x = LLAMA.inputs(1, seed=3)[0]
    out = m.generate(input_ids=x, max_new_tokens=NEW, return_dict_in_generate=True, output_scores=True)
    new = out.sequences[0, x.shape[1]:].tolist()
    assert out.exit_layers[0, 0] == 4 and (out.exit_layers[0, 1:] == 2).all()  # the prefill's token is full depth
    assert set(new[1:]) <= set(SHORT[:8])
    outside = torch.ones(64, dtype=torch.bool)
    outside[SHORT[:8]] = False
    assert torch.isinf(out.scores[1][0, outside]).all() and torch.isfinite(out.scores[0][0]).all()
    with pytest.raises(ValueError, match="larger than the checkpoint's exit_token_ranking"):
        settings(m, **FREE, shallow2deep_conf_threshold=0.5, exit_shortlist_size=33)
        m.generate(input_ids=x, max_new_tokens=2)
    m.config.exit_token_ranking = None
    with pytest.raises(ValueError, match="needs the checkpoint's exit_token_ranking"):
        settings(m, **FREE, shallow2deep_conf_threshold=0.5, exit_shortlist_size=8)
        m.generate(input_ids=x, max_new_tokens=2)


def test_shortlist_logits_are_the_heads_rows():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    ids = [7, 3, 40, 11]
    s = Shortlist(ids, head, bias=torch.arange(50.0))
    z = torch.randn(2, 1, 16)
    got = s(z)
    full = head(z) + torch.arange(50.0)
    assert torch.allclose(got[..., ids], full[..., ids], atol=1e-5)
    assert torch.isinf(got).sum() == 2 * (50 - len(ids))
    for bad in ([], [3, 3], [50]):
        with pytest.raises(ValueError, match="distinct token ids"):
            Shortlist(bad, head)


def test_draft_length_is_capped_and_verification_stays_exact():
    m = llama()
    st = check_verification(m, max_draft_tokens=2)
    assert st.parallel_tokens <= 2 * st.parallel_passes
    settings(m, **dict(VERIFY, shallow2deep_conf_threshold=0.0), max_draft_tokens=2)  # confident everywhere
    m.pop_exit_stats()
    x = LLAMA.inputs(1, seed=4)[0]
    out = m.generate(input_ids=x, max_new_tokens=NEW, return_dict_in_generate=True)
    assert torch.equal(out.sequences, LLAMA.hf_generate(m, x))
    layers = out.exit_layers[0, 1:].tolist()
    runs, n = [], 0
    for k in layers:  # exits in a row, between deep tokens
        n = n + 1 if k == 2 else 0
        runs.append(n)
    assert max(runs) <= 2, layers
    with pytest.raises(ValueError, match="max_draft_tokens 0 must be >= 1"):
        settings(m, **VERIFY, max_draft_tokens=0)
        m.generate(input_ids=x, max_new_tokens=2)


def test_exit_block_batch_equals_rows_alone_and_its_cache_is_the_teacher_forced_one():
    m = llama(exit_block_layer=2)
    settings(m, **dict(FREE, shallow2deep_conf_threshold=0.5), exit_shortlist_size=len(SHORT))
    xs = LLAMA.inputs(3, seed=7)
    alone = [m.generate(input_ids=x, max_new_tokens=NEW)[0, x.shape[1]:].tolist() for x in xs]
    width = max(x.shape[1] for x in xs)
    ids, mask = torch.zeros(3, width, dtype=torch.long), torch.zeros(3, width, dtype=torch.long)
    for i, x in enumerate(xs):
        ids[i, width - x.shape[1]:], mask[i, width - x.shape[1]:] = x[0], 1
    out = m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW)[:, width:].tolist()
    for a, b in zip(alone, out):
        assert b[:len(a)] == a
    # the block's K/V after a decode = the block over the teacher-forced layer-2 states of the whole sequence
    from models.engine import Engine
    from models.stats import DecodeStats
    x = xs[0]
    eng = Engine(m.adapter_cls(m), m.exit_policy(), m.exit_state.for_policy(m.exit_policy()))
    rows, sess = eng.run(x, None, None, NEW, [2], DecodeStats(num_layers=4))
    seq = torch.tensor([rows[0].tokens])
    n = int(sess.kv.lens[4, 0])
    assert n == seq.shape[1] - 1  # every token but the last (not yet fed) went through the block
    with torch.no_grad():
        h2 = m.model(input_ids=seq[:, :n], output_hidden_states=True).hidden_states[2]
        cache = DynamicCache()
        m.exit_block.self_attn.layer_idx = 0
        pos = torch.arange(n)[None]
        m.exit_block(h2, attention_mask=None, position_ids=pos, cache=cache, use_cache=True,
                     position_embeddings=m.model.rotary_emb(h2, pos))
        m.exit_block.self_attn.layer_idx = 4
    k, v = sess.kv.row(4)
    assert torch.allclose(k, cache.layers[0].keys[0], atol=1e-5) and torch.allclose(v, cache.layers[0].values[0],
                                                                                     atol=1e-5)


def test_exit_block_and_ranking_survive_save_and_load(tmp_path):
    m = llama(exit_block_layer=2)
    m.save_pretrained(tmp_path)
    again = EffLlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert again.config.exit_block_layer == 2 and again.config.exit_token_ranking == SHORT
    for (k1, a), (k2, b) in zip(m.exit_block.state_dict().items(), again.exit_block.state_dict().items()):
        assert k1 == k2 and torch.equal(a, b)
    for mm in (m, again):
        settings(mm, **dict(FREE, shallow2deep_conf_threshold=0.0), exit_shortlist_size=16)
    x = LLAMA.inputs(1, seed=5)[0]
    kw = dict(max_new_tokens=6, return_dict_in_generate=True, output_scores=True)
    a, b = m.generate(input_ids=x, **kw), again.generate(input_ids=x, **kw)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.scores[2], b.scores[2])
    with torch.no_grad():
        again.exit_block.mlp.down_proj.weight.mul_(3.0)
    assert not torch.equal(again.generate(input_ids=x, **kw).scores[2], b.scores[2])  # the block is what drafts


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9])
def test_every_product_layout_is_the_same_product_and_the_measured_fastest_is_used(n):
    torch.manual_seed(n)
    for out_f, in_f in ((96, 32), (32, 96), (200, 40)):
        W, x = torch.randn(out_f, in_f), torch.randn(1, n, in_f)
        Wt, want = W.t().contiguous(), F.linear(x, W)
        for f in LAYOUTS.values():
            assert torch.allclose(f(x.reshape(n, -1), W, Wt), want.reshape(n, -1), atol=1e-5)
        got = fast_product(x, W)
        assert got.shape == want.shape
        if n > MAX_TUNED_ROWS:
            assert torch.equal(got, want)
        else:  # the layout the measurement chose, bit for bit
            times = LAYOUT_MS[(out_f, in_f, torch.get_num_threads())][n]
            assert set(times) == set(LAYOUTS) and all(t > 0 for t in times.values())
            assert torch.equal(got.reshape(n, -1), LAYOUTS[min(times, key=times.get)](x.reshape(n, -1), W, Wt))


def test_fast_kernels_decode_like_hf_and_leave_the_modules_as_they_were():
    m = llama()
    settings(m, fast_kernels=True)
    for x in LLAMA.inputs(4, seed=6):
        assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW), LLAMA.hf_generate(m, x))
    assert m.pop_exit_stats().tokens > 0  # the engine decoded (fast kernels route a no-exit config there)
    assert not any("forward" in vars(mod) for mod in m.modules())
    with pytest.raises(RuntimeError):
        with fast_kernels(m):
            raise RuntimeError("inside")
    assert not any("forward" in vars(mod) for mod in m.modules())
    check_verification(m, fast_kernels=True, exit_shortlist_size=len(SHORT), max_draft_tokens=3)


def test_verified_sampling_with_a_shortlist_and_trial_tokens_has_the_full_models_distribution():
    """Speculative sampling's test with a shortlist draft (q is zero outside it) and a threshold at which some
    tokens exit and the others are drafted on trial: the samples follow the full model's distribution."""
    m = make_model()
    m.config.exit_token_ranking = list(range(1, 33))
    x = torch.randint(2, 64, (1, 7), generator=torch.Generator().manual_seed(3))
    exact = exact_distribution(m, x)
    settings(m, **dict(FREE, shallow2deep_conf_threshold=0.3, exact_verification=True), exit_shortlist_size=32)
    m.pop_exit_stats()
    got = sampled_distribution(m, x)
    st = m.pop_exit_stats()
    assert 0 < st.exits < st.steps and 0 < st.rollbacks < st.checked, st.summary()
    assert tv(got, exact) < 0.06
    set_method(m, **dict(FREE, shallow2deep_conf_threshold=0.3))  # lossy FREE with the shortlist: not the same
    lossy = sampled_distribution(m, x, calls=2)  # about 1.0 from the exact one: 500 samples are noise of ~0.15
    assert tv(lossy, exact) > 0.1, tv(lossy, exact)


def test_cost_curve_measures_every_term_and_predicts(tmp_path):
    import cost_curve

    llama().save_pretrained(tmp_path / "m")
    res = cost_curve.main(["--model_name_or_path", str(tmp_path / "m"), "--layers", "2", "--shortlists", "16",
                           "--context", "8", "--reps", "3", "--acceptance", "0.5", "--out", str(tmp_path / "o")])
    for kind in ("hf_kernels", "fast_kernels"):
        c = res[kind]
        assert len(c["layer"]) == 8 and len(c["deep"][2]) == 8 and c["full_step"] > 0 and c["shortlist"][16][1] > 0
    assert (tmp_path / "o" / "cost_curve.json").exists()
    c = res["fast_kernels"]  # the formula: one accepted token in two (a = 0.5), g = 1
    want = 1.5 * c["full_step"] / (2 * (2 * c["layer"][1] + c["shortlist"][16][1]) + c["deep"][2][2])
    assert res["predicted_speedup_vs_full_step"]["S=2 K=16 g=1 a=0.5"] == round(want, 3)
    block = 1.5 * c["full_step"] / (2 * (3 * c["layer"][1] + c["shortlist"][16][1]) + c["deep"][2][2])
    assert cost_curve.predict(c, 2, 1, 0.5, c["shortlist"][16][1], block=True) == round(block, 3)  # one layer more


def test_benchmark_refuses_unknown_methods_and_leaves_missing_batch_cells_blank():
    from types import SimpleNamespace

    import benchmark
    from util.checks import InputError

    a = SimpleNamespace(shallow_exit_layer=2, exit_shortlist_size=None, max_draft_tokens=None, deep_pass_wait=None,
                        assistant_early_exit=True, static_layers=None, calm_conf_types=["softmax"],
                        calm_thresholds=[0.8], calm_min_layer=None, free_thresholds=[0.5], adapt_init=0.8,
                        num_beams=1, verify_thresholds=None, fast_kernels=True, methods=["full", "fre_verify"])
    with pytest.raises(InputError, match="--methods fre_verify: no such method"):
        benchmark.method_table(a, 4)
    a.methods = ["hf_generate", "free_verify"]
    table = benchmark.method_table(a, 4)
    assert table["hf_generate"] == ("hf", {}) and table["free_verify_0.5"][1]["fast_kernels"] is True
    row = dict(tokens_per_s=10.0, time_s=1.0, quality=20.0, quality_vs_full=1.0, speedup_vs_full=1.0)
    md = benchmark.sweep_markdown({"full": {"1": row, "8": row}, "hf_assistant_early_exit": {"1": row}})
    assert md.splitlines()[-1].endswith("|  |")  # no batch-8 row for HF's assisted decoding: a blank cell
