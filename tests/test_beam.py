"""Beam search with early exit (models/beam.py): every beam a row of the engine's batch, with its own exits.

Oracles: HF's own beam search on the same weights (full path, never-exit thresholds), on a truncated model
(static exit), teacher-forced passes over each surviving beam's tokens (FREE's K/V after exits), and each input
decoded alone (a batch of inputs).
"""

import pytest
import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models.engine import Engine
from test_architectures import CALM, FREE, L, close
from test_batch import ALL, pad_batch
from test_engine import set_method

NEW = 10
BEAM_ARCHS = {k: ALL[k] for k in ("t5", "bart", "llama")}
arch_params = pytest.mark.parametrize("arch", list(BEAM_ARCHS.values()), ids=list(BEAM_ARCHS))
SETTINGS = {
    "b2": dict(num_beams=2),
    "b4_lp_ngram_ret2": dict(num_beams=4, length_penalty=0.6, no_repeat_ngram_size=2, num_return_sequences=2),
    "b4_early": dict(num_beams=4, early_stopping=True, length_penalty=1.5),
    "b3_never": dict(num_beams=3, early_stopping="never", length_penalty=0.0, num_return_sequences=3),
}
_models = {}


def model(arch):
    """One model per architecture for the whole module (the tests set its exit method)."""
    name = type(arch).__name__
    if name not in _models:
        _models[name] = arch.make()
    return _models[name]


def ours(m, x, mask=None, **kw):
    return m.generate(input_ids=x, attention_mask=mask, max_new_tokens=NEW, use_engine=True,
                      return_dict_in_generate=True, output_scores=True, **kw)


def hf(arch, m, x, mask=None, **kw):
    """HF's own beam search (bypassing our generate()); `m` may be a plain HF model."""
    if arch.encoder_decoder:  # a fresh cache: HF sizes its default one by the encoder's depth
        kw["cache"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
    return arch.hf_cls.generate(m, input_ids=x, attention_mask=mask, max_new_tokens=NEW, return_dict_in_generate=True,
                                output_scores=True, **kw)


def same(got, ref):
    assert got.sequences.tolist() == ref.sequences.tolist()
    assert close(got.sequences_scores, ref.sequences_scores)
    assert torch.equal(got.beam_indices, ref.beam_indices)


@arch_params
@pytest.mark.parametrize("setting", list(SETTINGS), ids=list(SETTINGS))
def test_full_path_equals_hf_beam_search(arch, setting):
    m = model(arch)
    set_method(m)
    for x in arch.inputs(3):
        got, ref = ours(m, x, **SETTINGS[setting]), hf(arch, m, x, **SETTINGS[setting])
        same(got, ref)
        a, b = torch.stack(got.scores), torch.stack(ref.scores)
        assert torch.equal(a.isinf(), b.isinf()) and close(a.nan_to_num(neginf=0), b.nan_to_num(neginf=0))
        assert (got.exit_layers[got.beam_indices >= 0] == L).all()


@arch_params
@pytest.mark.parametrize("method", [dict(FREE, shallow2deep_conf_threshold=1.0),
                                    dict(CALM, exit_conf_threshold=1.0)], ids=["free", "calm"])
def test_never_exit_thresholds_equal_hf_beam_search(arch, method):
    m = model(arch)
    set_method(m, **method)
    for x in arch.inputs(2):
        same(ours(m, x, **SETTINGS["b4_lp_ngram_ret2"]), hf(arch, m, x, **SETTINGS["b4_lp_ngram_ret2"]))
    assert m.pop_exit_stats().exits == 0


@arch_params
def test_static_exit_equals_beam_search_of_the_truncated_model(arch):
    m = model(arch)
    set_method(m, static_exit_layer=2)
    trunc = arch.truncated(m, 2)
    for x in arch.inputs(2):
        got = ours(m, x, num_beams=3, num_return_sequences=2)
        same(got, hf(arch, trunc, x, num_beams=3, num_return_sequences=2))
        assert (got.exit_layers[got.beam_indices >= 0] == 2).all()


class Checked(Engine):
    """After every beam reorder: each surviving beam's caches against a teacher-forced pass over its tokens."""

    arch = m = x = None
    checked = reordered = 0

    def reorder(self, call, rows, src, tokens, records):
        new = super().reorder(call, rows, src, tokens, records)
        Checked.reordered += src != list(range(len(src)))
        for q, r in enumerate(new):
            ref = self.arch.teacher_forced_cache(self.m, self.x, r.tokens[:-1])
            for j in range(L):
                keys, values = call.session.kv.row(j, q)
                n = 0 if keys is None else keys.shape[1]  # a deep layer that no pass has reached yet
                if self.policy.method == "free":  # shallow layers: every input; deep ones: all but the stacked tokens
                    assert n == len(r.tokens) - 1 - (len(r.stack) if j >= self.policy.shallow_layer else 0)
                    if n:
                        assert close(keys, ref.layers[j].keys[0, :, :n])
                        assert close(values, ref.layers[j].values[0, :, :n])
                else:  # CALM: state propagation keeps every layer's length; the first layer always runs
                    assert n == len(r.tokens) - 1
                    if j == 0:
                        assert close(keys, ref.layers[0].keys[0, :, :n])
            Checked.checked += 1
        return new


@arch_params
@pytest.mark.parametrize("method", [dict(FREE, shallow2deep_conf_threshold=0.5),
                                    dict(FREE, shallow2deep_conf_threshold=0.4, use_adapt_threshold=True,
                                         adapt_explore_every=3),
                                    dict(CALM, exit_conf_threshold=0.6)], ids=["free", "free_adaptive", "calm"])
def test_caches_of_every_surviving_beam_after_exits(arch, method, monkeypatch):
    m = model(arch)
    set_method(m, **method)
    monkeypatch.setattr("models.generation.Engine", Checked)
    Checked.arch, Checked.m = arch, m
    Checked.checked = Checked.reordered = 0
    exits = steps = 0
    for x in arch.inputs(3):
        Checked.x = x
        out = ours(m, x, num_beams=3)
        st = m.pop_exit_stats()
        exits, steps = exits + st.exits, steps + st.steps
        layers = out.exit_layers[out.beam_indices >= 0]
        assert ((layers > 0) & (layers <= L)).all()
    assert 0 < exits < steps  # exits and deep steps both happened
    assert Checked.checked > 20 and Checked.reordered > 0


@arch_params
@pytest.mark.parametrize("method", [dict(), dict(FREE, shallow2deep_conf_threshold=0.5),
                                    dict(CALM, exit_conf_threshold=0.6)], ids=["full", "free", "calm"])
def test_two_inputs_times_four_beams_equal_each_input_alone(arch, method):
    m = model(arch)
    set_method(m, **method)
    kw = dict(num_beams=4, num_return_sequences=2, length_penalty=0.8)
    xs = arch.inputs(2, seed=5)
    ids, mask = pad_batch(arch, m, xs)
    both = ours(m, ids, mask, **kw)
    pad = m.config.pad_token_id or 0
    for b, x in enumerate(xs):
        alone = ours(m, x, **kw)
        for k in range(2):
            row = both.sequences[2 * b + k]
            if not arch.encoder_decoder:  # the batch's prompts are left-padded
                row = row[ids.shape[1] - x.shape[1]:]
            n = alone.sequences.shape[1]
            assert row[:n].tolist() == alone.sequences[k].tolist() and (row[n:] == pad).all()
            assert close(both.sequences_scores[2 * b + k], alone.sequences_scores[k])


def test_several_end_tokens_and_beam_sampling_equal_hf():
    arch = BEAM_ARCHS["llama"]
    m = model(arch)
    set_method(m)
    for x in arch.inputs(2):
        kw = dict(num_beams=3, eos_token_id=[2, 7, 11], num_return_sequences=2)
        same(ours(m, x, **kw), hf(arch, m, x, **kw))
        kw = dict(num_beams=3, do_sample=True, temperature=0.7, top_k=20)
        torch.manual_seed(3)
        got = ours(m, x, **kw)
        torch.manual_seed(3)
        same(got, hf(arch, m, x, **kw))


@pytest.mark.parametrize("extra", [dict(exact_verification=True), dict(rollback_conf_threshold=0.5)])
def test_beams_refuse_deep_checks_of_exited_tokens(extra):
    arch = BEAM_ARCHS["t5"]
    m = model(arch)
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5, **extra)
    with pytest.raises(ValueError, match="exact_verification or rollback_conf_threshold"):
        ours(m, arch.inputs(1)[0], num_beams=2)
    ours(m, arch.inputs(1)[0])  # greedy still decodes with the check



def test_sampling_returns_several_sequences_per_input_as_hf_does():
    arch = BEAM_ARCHS["llama"]
    m = model(arch)
    x = arch.inputs(1)[0]
    kw = dict(do_sample=True, num_return_sequences=3, top_k=10)
    set_method(m)
    torch.manual_seed(4)
    got = ours(m, x, **kw)
    torch.manual_seed(4)
    assert got.sequences.tolist() == hf(arch, m, x, **kw).sequences.tolist()
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5)
    assert ours(m, x, **kw).sequences.shape[0] == 3
