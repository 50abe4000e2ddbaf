"""generate() with an exit method honours HF's generation settings: processors, stopping criteria, several end
tokens, streaming, return_dict_in_generate; every GenerationConfig field is applied or refused by name."""

import pytest
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, WatermarkingConfig
from transformers.generation.streamers import BaseStreamer

from models.generation import APPLIED, INACTIVE, NO_EFFECT, REFUSED
from test_architectures import CALM, FREE, L
from test_batch import ALL, pad_batch
from test_engine import set_method

NEW = 12
ARCH_IDS = ["t5", "bart", "llama"]
arch_params = pytest.mark.parametrize("arch", [ALL[a] for a in ARCH_IDS], ids=ARCH_IDS)

# Settings a released checkpoint may ship, with token ids taken from HF's plain output p (new tokens) for the
# input at hand, so that each one changes it (n: HF's input length, which min_length counts).
PROCESSORS = {
    "repetition_penalty": lambda arch, p, n: dict(repetition_penalty=1.5),
    "encoder_repetition_penalty": lambda arch, p, n: dict(encoder_repetition_penalty=5.0),  # > 1: favours input
    # the tiny models never copy their input on their own, so the penalty above makes them, and the block acts
    "encoder_no_repeat_ngram_size": lambda arch, p, n: dict(encoder_no_repeat_ngram_size=1,
                                                         encoder_repetition_penalty=5.0)
    if arch.encoder_decoder else None,  # HF refuses it for decoder-only models
    "sequence_bias": lambda arch, p, n: dict(sequence_bias={(p[1],): -20.0, (p[2], p[3]): -20.0}),
    # an end token the plain output never gives, which the growing bonus makes it give
    "exponential_decay_length_penalty": lambda arch, p, n: dict(exponential_decay_length_penalty=(2, 2.0),
                                                             eos_token_id=[arch.eos, min(set(range(3, 60)) - set(p))]),
    "min_length": lambda arch, p, n: dict(min_length=n + 6, eos_token_id=[arch.eos, p[2]]),
    "prefix_allowed_tokens_fn": lambda arch, p, n: dict(prefix_allowed_tokens_fn=lambda b, ids: list(range(3, 20))),
    "no_repeat_ngram_size": lambda arch, p, n: dict(no_repeat_ngram_size=2),
    "min_new_tokens": lambda arch, p, n: dict(min_new_tokens=6, eos_token_id=[arch.eos, p[2]]),
    "bad_words": lambda arch, p, n: dict(bad_words_ids=[[p[1]], [p[3], p[4]]]),
    "forced_bos_eos": lambda arch, p, n: dict(forced_bos_token_id=11, forced_eos_token_id=12),
    "suppress": lambda arch, p, n: dict(suppress_tokens=[p[0], p[2]]),
    "begin_suppress": lambda arch, p, n: dict(begin_suppress_tokens=[p[0]]),
    "two_eos": lambda arch, p, n: dict(eos_token_id=[arch.eos, p[3]]),
}
VERIFY = dict(FREE, shallow2deep_conf_threshold=0.4, exact_verification=True)

_MODELS = {}


def model(arch):
    if arch not in _MODELS:
        _MODELS[arch] = arch.make()
    return _MODELS[arch]


def hf(arch, m, ids, mask=None, **kw):
    return arch.hf_generate(m, ids, attention_mask=mask, **kw)


def ours(m, ids, mask=None, **kw):
    return m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, **kw)


def new_tokens(arch, out, ids):
    """Each row's new tokens (HF's layout: after [start], or after the padded prompt)."""
    return [r.tolist() for r in out[:, 1 if arch.encoder_decoder else ids.shape[1]:]]


_PLAIN = {}


def plain(arch, m, x):
    """HF's output without settings (memoized: the models do not change)."""
    key = (type(arch).__name__, tuple(x[0].tolist()))
    if key not in _PLAIN:
        _PLAIN[key] = hf(arch, m, x)
    return _PLAIN[key]


def settings(arch, m, x, name):
    """The setting's keywords for input x, or None where it does not apply to this family."""
    n = 1 if arch.encoder_decoder else x.shape[1]  # HF's input: [start], or the prompt
    return PROCESSORS[name](arch, new_tokens(arch, plain(arch, m, x), x)[0], n)


@arch_params
@pytest.mark.parametrize("name", PROCESSORS)
def test_never_exit_and_verification_equal_hf_under_processors(arch, name):
    m = model(arch)
    if settings(arch, m, arch.inputs(1, seed=1)[0], name) is None:
        pytest.skip(f"HF refuses {name} for this family")
    for x in arch.inputs(2, seed=1):
        kw = settings(arch, m, x, name)
        ref = hf(arch, m, x, output_scores=True, return_dict_in_generate=True, **kw)
        for method, use_engine in ((dict(), True), (dict(FREE, shallow2deep_conf_threshold=1.0), None),
                                   (dict(CALM, exit_conf_threshold=1.0), None), (VERIFY, None)):
            set_method(m, **method)
            got = ours(m, x, use_engine=use_engine, output_scores=True, return_dict_in_generate=True, **kw)
            assert got.sequences.tolist() == ref.sequences.tolist(), (name, method)
            if method is not VERIFY:  # verified exits keep the shallow scores of the tokens they confirm
                for a, b in zip(got.scores, ref.scores, strict=True):
                    assert torch.allclose(a, b, atol=1e-4), (name, method, (a - b).abs().max())
    set_method(m)


SUPPORT = ("eos_token_id", "encoder_repetition_penalty")  # keywords a setting above needs to act on these models


def baseline(arch, m, x, name):
    """The setting's keywords without the setting itself (so the setting alone must change the output)."""
    kw = settings(arch, m, x, name)
    base = {k: v for k, v in kw.items() if k in SUPPORT and k != name}
    return {} if base == kw else base


@arch_params
def test_processors_change_the_output(arch):
    """The processor settings above are not vacuous on these inputs."""
    m = model(arch)
    applicable = {n for n in PROCESSORS if settings(arch, m, arch.inputs(1, seed=1)[0], n) is not None}
    changed = {n for x in arch.inputs(2, seed=1) for n in applicable
               if not torch.equal(hf(arch, m, x, **settings(arch, m, x, n)), hf(arch, m, x, **baseline(arch, m, x, n)))}
    assert changed == applicable, applicable - changed


# Sampling warpers: they act only when sampling, so they are checked by seed (the full path and never-exiting
# methods draw exactly what HF draws) and by their effect on the draw.
WARPERS = {"typical_p": dict(typical_p=0.5), "epsilon_cutoff": dict(epsilon_cutoff=0.05),
           "eta_cutoff": dict(eta_cutoff=0.05), "top_h": dict(top_h=0.5)}


@arch_params
@pytest.mark.parametrize("name", WARPERS)
def test_sampling_warpers_are_applied_as_hf_applies_them(arch, name):
    m = model(arch)
    changed = False
    for x in arch.inputs(2, seed=1):
        kw = dict(do_sample=True, temperature=1.5, **WARPERS[name])
        torch.manual_seed(7)
        ref = hf(arch, m, x, **kw)
        torch.manual_seed(7)
        changed |= not torch.equal(ref, hf(arch, m, x, do_sample=True, temperature=1.5))
        # (FREE draws its trial tokens from the shallow exit and then takes the deep test, so its draws follow
        # HF's in distribution, not seed by seed: tests/test_sampling.py checks that, under top-k / top-p)
        for method, use_engine in ((dict(), True), (dict(CALM, exit_conf_threshold=1.0), None)):
            set_method(m, **method)
            torch.manual_seed(7)
            assert ours(m, x, use_engine=use_engine, **kw).tolist() == ref.tolist(), (name, method)
    assert changed, f"{name} did not change a draw"
    set_method(m)


@arch_params
def test_verification_with_cutbacks_equals_hf_under_history_processors(arch):
    """Exact verification cuts rows back; the token taken at a cut must see the history at the cut (a no-repeat
    n-gram block and a repetition penalty depend on it), at batch 1 and in a padded batch of 6."""
    m = model(arch)
    set_method(m, **VERIFY)
    xs = arch.inputs(6, seed=2)
    kw = dict(no_repeat_ngram_size=2, repetition_penalty=1.3)
    m.pop_exit_stats()
    for x in xs:
        assert ours(m, x, **kw)[0].tolist() == hf(arch, m, x, **kw)[0].tolist()
    assert m.pop_exit_stats().rollbacks > 0  # cuts happened
    ids, mask = pad_batch(arch, m, xs)
    want = hf(arch, m, ids, mask, **kw)
    got = ours(m, ids, mask, **kw)
    assert got.tolist() == want.tolist()
    set_method(m)


@arch_params
@pytest.mark.parametrize("method", ["calm", "free", "free_wait"])
def test_batch_rows_equal_each_row_alone_under_processors(arch, method):
    m = model(arch)
    # "free": the published schedule (a deep pass at every low-confidence token); "free_wait": the default
    cfg = {"calm": dict(CALM, exit_conf_threshold=0.5), "free": dict(FREE, shallow2deep_conf_threshold=0.5,
                                                                    deep_pass_wait=0.0),
           "free_wait": dict(FREE, shallow2deep_conf_threshold=0.5, deep_pass_wait=1.0)}[method]
    set_method(m, **cfg)
    xs = arch.inputs(6, seed=3)
    kw = dict(no_repeat_ngram_size=2, repetition_penalty=1.3, bad_words_ids=[[5]])
    m.pop_exit_stats()
    singles = [new_tokens(arch, ours(m, x, **kw), x)[0] for x in xs]
    assert m.pop_exit_stats().exits > 0
    ids, mask = pad_batch(arch, m, xs)
    batch = new_tokens(arch, ours(m, ids, mask, **kw), ids)
    for b, s in enumerate(singles):
        assert batch[b][:len(s)] == s
    st = m.pop_exit_stats()
    if method == "free_wait":
        assert st.discarded_tokens > 0  # trial tokens were cut back in the batch
    set_method(m)


class Recorder(BaseStreamer):
    def __init__(self):
        self.puts, self.ended = [], False

    def put(self, value):
        self.puts.append(value.reshape(-1).tolist())

    def end(self):
        self.ended = True


@arch_params
@pytest.mark.parametrize("method", ["full", "free", "verify", "calm"])
def test_streamed_tokens_are_final(arch, method):
    m = model(arch)
    cfg = {"full": dict(), "free": dict(FREE, shallow2deep_conf_threshold=0.5), "verify": VERIFY,
           "calm": dict(CALM, exit_conf_threshold=0.5)}[method]
    set_method(m, **cfg)
    for x in arch.inputs(3, seed=4):
        s = Recorder()
        out = ours(m, x, streamer=s, use_engine=True)[0].tolist()
        first, rest = s.puts[0], [t for p in s.puts[1:] for t in p]
        assert first == (x[0].tolist() if not arch.encoder_decoder else [arch.start])
        assert first + rest == out and s.ended  # append-only: anything streamed and later changed would show here
        assert len(s.puts) > 2
    ids, mask = pad_batch(arch, m, arch.inputs(2))
    with pytest.raises(ValueError, match="batch size 1"):
        ours(m, ids, mask, streamer=Recorder(), use_engine=True)
    set_method(m)


@arch_params
def test_return_dict_matches_hf_for_the_full_path(arch):
    m = model(arch)
    xs = arch.inputs(3, seed=5)
    ids, mask = pad_batch(arch, m, xs)
    kw = dict(return_dict_in_generate=True, output_scores=True, output_logits=True)
    ref = hf(arch, m, ids, mask, **kw)
    got = ours(m, ids, mask, use_engine=True, **kw)
    assert type(got).__mro__[1] is type(ref)
    assert got.sequences.tolist() == ref.sequences.tolist()
    assert len(got.scores) == len(ref.scores) == len(got.logits) == len(ref.logits)
    done = [False] * len(xs)
    eos = arch.eos
    for s, (a, b, la, lb) in enumerate(zip(got.scores, ref.scores, got.logits, ref.logits)):
        assert a.shape == b.shape and la.shape == lb.shape
        for r in range(len(xs)):
            if not done[r]:
                assert torch.allclose(a[r], b[r], atol=1e-4) and torch.allclose(la[r], lb[r], atol=1e-4)
            done[r] = done[r] or int(ref.sequences[r, ids.shape[1] if not arch.encoder_decoder else 1 + s]) == eos
    assert got.exit_layers.shape == (len(xs), len(got.scores)) and int(got.exit_layers.max()) == L


def test_stop_strings_and_max_time_with_a_tokenizer(tiny_t5):
    from transformers import AutoTokenizer

    from models import EffT5ForConditionalGeneration
    tok = AutoTokenizer.from_pretrained(tiny_t5)
    m = EffT5ForConditionalGeneration.from_pretrained(tiny_t5).eval()
    x = tok(["summarize: Anna met Ben at the station on Monday."], return_tensors="pt").input_ids
    plain = m.generate(input_ids=x, max_new_tokens=16)
    text = tok.decode(plain[0, 1:])
    stop = text.split()[2] if len(text.split()) > 2 else text[:3]
    ref = m.generate(input_ids=x, max_new_tokens=16, stop_strings=[stop], tokenizer=tok)
    for cfg in (dict(), dict(FREE, shallow2deep_conf_threshold=0.5, exact_verification=True)):
        set_method(m, **cfg)
        got = m.generate(input_ids=x, max_new_tokens=16, stop_strings=[stop], tokenizer=tok, use_engine=True)
        assert got.tolist() == ref.tolist()
        assert got.shape[1] < plain.shape[1]
        assert m.generate(input_ids=x, max_new_tokens=16, max_time=0.0, use_engine=True).shape[1] == 2


def test_custom_processor_and_criteria_see_hf_layout_histories():
    arch = ALL["llama"]
    m = model(arch)
    seen = []

    class Spy(LogitsProcessor):
        def __call__(self, input_ids, scores):
            seen.append(input_ids.clone())
            return scores

    ids, mask = pad_batch(arch, m, arch.inputs(2, seed=6))
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5)
    out = ours(m, ids, mask, logits_processor=LogitsProcessorList([Spy()]))
    # every history a row was given is a prefix of that row's final output, in HF's (left-padded) layout; the spy
    # saw at least one call per new token
    assert len(seen) >= out.shape[1] - ids.shape[1] > 0
    for h in seen:
        assert any(out[b, :h.shape[1]].tolist() == h[b].tolist() for b in range(2))
    set_method(m)


REFUSED_VALUES = {
    "num_beam_groups": 2, "diversity_penalty": 0.5,
    "constraints": ["c"], "force_words_ids": [[5]], "penalty_alpha": 0.6, "dola_layers": "low", "guidance_scale": 1.5,
    "watermarking_config": WatermarkingConfig(bias=2.0), "token_healing": True, "prompt_lookup_num_tokens": 3,
    "max_matching_ngram_size": 2, "assistant_early_exit": 1, "speculation_type": "mtp", "use_mtp": True,
    "output_attentions": True, "output_hidden_states": True,
}


def test_every_generation_config_field_is_applied_or_refused():
    fields = set(GenerationConfig().to_dict())
    groups = [APPLIED, INACTIVE, NO_EFFECT, set(REFUSED)]
    unclassified = fields - set().union(*groups)
    assert not unclassified, f"GenerationConfig fields neither applied nor refused: {sorted(unclassified)}"
    assert sum(len(g) for g in groups) == len(set().union(*groups)), "a field is in two groups"
    assert set(REFUSED_VALUES) == set(REFUSED)
    arch = ALL["t5"]
    m = model(arch)
    set_method(m, **FREE, shallow2deep_conf_threshold=0.5)
    x = arch.inputs(1)[0]
    for k, v in REFUSED_VALUES.items():
        gc = GenerationConfig(max_new_tokens=4)
        setattr(gc, k, v)  # as a checkpoint's generation_config.json would carry it
        with pytest.raises(ValueError, match=k):  # ours, or HF's own validation where it refuses first
            m.generate(input_ids=x, generation_config=gc)
    set_method(m)


def test_inputs_the_engine_cannot_start_from_are_refused():
    t5, llama = model(ALL["t5"]), model(ALL["llama"])
    set_method(t5, **FREE, shallow2deep_conf_threshold=0.5)
    set_method(llama, **FREE, shallow2deep_conf_threshold=0.5)
    x = ALL["t5"].inputs(1)[0]
    with pytest.raises(ValueError, match="decoder_input_ids"):
        t5.generate(input_ids=x, decoder_input_ids=torch.tensor([[0, 5, 6]]), max_new_tokens=4)
    with pytest.raises(ValueError, match="inputs_embeds"):
        llama.generate(inputs_embeds=torch.randn(1, 5, 32), max_new_tokens=4)
    set_method(t5)
    set_method(llama)
