"""Every registered family besides T5 (tests/test_engine.py): the same exit losses and the same decoding engine,
checked against HF.

Each architecture is a tiny random model whose greedy output varies and whose exit confidences spread over
[0, 1] (see `Arch.make`), so thresholds in 0.3..0.9 give runs that mix exits and deep steps.
"""

import functools

import pytest
import torch
from transformers import (BartConfig, BartForConditionalGeneration, Gemma2Config, Gemma2ForCausalLM,
                          Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, LongT5Config,
                          LongT5ForConditionalGeneration, MarianConfig, MarianMTModel, MBartConfig,
                          MBartForConditionalGeneration, MistralConfig, MistralForCausalLM, MT5Config,
                          MT5ForConditionalGeneration, PegasusConfig, PegasusForConditionalGeneration, Phi3Config,
                          Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM, T5Config,
                          T5ForConditionalGeneration, UMT5Config, UMT5ForConditionalGeneration)
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models import (EffBartForConditionalGeneration, EffGemma2ForCausalLM, EffGemma3ForCausalLM, EffLlamaForCausalLM,
                    EffLongT5ForConditionalGeneration, EffMarianMTModel, EffMBartForConditionalGeneration,
                    EffMistralForCausalLM, EffMT5ForConditionalGeneration, EffPegasusForConditionalGeneration,
                    EffPhi3ForCausalLM, EffQwen2ForCausalLM, EffQwen3ForCausalLM, EffT5ForConditionalGeneration,
                    EffUMT5ForConditionalGeneration, add_lora)
from models.engine import Engine
from models.policy import ThresholdState
from models.stats import DecodeStats
from util import losses
from test_engine import set_method  # noqa: E402  (tests/ is on sys.path under pytest)

L = 4
NEW = 12
WINDOW = 6  # sliding-window families: prompts (5..11 tokens) reach it, prompts + NEW new tokens pass it
FREE = dict(use_shallow_deep=True, shallow_exit_layer=2, shallow2deep_conf_type="softmax")
CALM = dict(use_early_exit=True, exit_conf_type="softmax", exit_min_layer=1)
THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
LOSSES = ["ce", "weighted_ce", "shallowdeep_ce", "shallowdeep_kd_last", "shallowdeep_kd_unif", "shallowdeep_kd_dyna"]


class Arch:
    """What the tests need to know about one architecture."""

    eff_cls = hf_cls = None
    start = eos = None
    encoder_decoder = True
    uniform = False  # its tiny random model repeats tokens: too few shallow/deep disagreements for some batch tests

    def config(self, **kw):
        raise NotImplementedError

    def soften(self, m):
        """Make a random model decode varied tokens with spread-out confidences."""

    def make(self, config=None, **exit_cfg):
        torch.manual_seed(0)
        m = self.eff_cls(config or self.config(**exit_cfg)).eval()
        with torch.no_grad():
            self.soften(m)
        return m

    def reshaped(self, config, k, **shape):
        """The config with k decoder layers (and other sizes as given)."""
        cfg = config.to_dict()
        cfg.update(self.depth(k), **shape)
        if cfg.get("layer_types"):  # a cut model keeps its first k layers, with their attention types
            cfg["layer_types"] = cfg["layer_types"][:k]
        return type(config)(**cfg)

    def truncated(self, m, k):
        """HF's own model with k decoder layers and m's weights."""
        t = self.fresh(self.reshaped(m.config, k)).eval()
        missing, _ = t.load_state_dict(m.state_dict(), strict=False)
        assert not missing
        return t

    def fresh(self, config):
        """HF's own model for a config, random weights."""
        return self.hf_cls(config)

    def inputs(self, n=4, seed=0):
        g = torch.Generator().manual_seed(seed)
        return [torch.randint(3, 64, (1, int(torch.randint(5, 12, (1,), generator=g))), generator=g) for _ in range(n)]

    def hf_generate(self, m, x, new=NEW, **kw):
        """HF's own generate (bypassing ours): greedy search unless do_sample is given."""
        return self.hf_cls.generate(m, input_ids=x, max_new_tokens=new, **{"do_sample": False, **kw})

    def teacher_forced_cache(self, m, x, tokens):
        """Every decoder layer's self-attention cache of a full pass over the decoded tokens."""
        out = m(input_ids=x, decoder_input_ids=torch.tensor([tokens]), use_cache=True,
                cache=EncoderDecoderCache(DynamicCache(), DynamicCache()))
        return out.cache.self_attention_cache

    def train_batch(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randint(3, 64, (2, 7), generator=g)
        y = torch.randint(3, 64, (2, 5), generator=g)
        y[1, 3:] = -100
        return dict(input_ids=x, labels=y)

    def by_hand_hidden(self, m, out):
        """H[1..L] and the exit logits function, written out for this architecture."""
        raise NotImplementedError


class Bart(Arch):
    eff_cls, hf_cls, start, eos = EffBartForConditionalGeneration, BartForConditionalGeneration, 2, 2
    config_cls, family = BartConfig, {}  # what a family of BART's layer signature sets on top

    def config(self, **kw):
        return self.config_cls(vocab_size=64, d_model=32, encoder_layers=2, decoder_layers=L,
                               encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                               decoder_ffn_dim=64, max_position_embeddings=64, dropout=0.0, attention_dropout=0.0,
                               activation_dropout=0.0, forced_eos_token_id=None, init_std=0.2, bos_token_id=0,
                               pad_token_id=1, eos_token_id=2, decoder_start_token_id=2, **self.family, **kw)

    def soften(self, m):
        # Random BART decodes one token forever: the encoder context dominates and the tied head echoes it.
        for layer in m.model.decoder.layers:
            layer.encoder_attn.out_proj.weight.mul_(0.03)
            layer.final_layer_norm.weight.mul_(3.0)  # sharper exits: confidences spread over [0, 1]
            layer.final_layer_norm.bias.mul_(3.0)
        m.final_logits_bias.normal_(0, 0.5)  # non-zero, so a missing bias shows
        if getattr(m.model.decoder, "layer_norm", None) is not None:  # pre-LN: every exit goes through it
            m.model.decoder.layer_norm.weight.mul_(4.0)

    def depth(self, k):
        return dict(decoder_layers=k)

    def first_decoder_layer(self, m):
        return m.model.decoder.layers[0]

    def by_hand_hidden(self, m, out):
        # post-LN layers, no final decoder norm: the layer outputs are the exits (pre-LN: through the final norm);
        # head + final_logits_bias
        hs, norm = out.decoder_hidden_states, getattr(m.model.decoder, "layer_norm", None)
        H = list(hs[1:]) if norm is None else [norm(h) for h in hs[1:-1]] + [hs[-1]]
        return H, lambda h: m.lm_head(h) + m.final_logits_bias


class MBart(Bart):
    """Pre-LN layers with a final decoder norm, scaled embeddings (its language-code first token: see below)."""

    eff_cls, hf_cls = EffMBartForConditionalGeneration, MBartForConditionalGeneration
    config_cls, family = MBartConfig, dict(scale_embedding=True)


class Marian(Bart):
    """opus-mt: post-LN, sinusoidal positions, scaled embeddings, no embedding norm."""

    eff_cls, hf_cls = EffMarianMTModel, MarianMTModel
    config_cls, family = MarianConfig, dict(scale_embedding=True)
    uniform = True


class Pegasus(Bart):
    """Pre-LN with a final decoder norm, sinusoidal positions, scaled embeddings."""

    eff_cls, hf_cls = EffPegasusForConditionalGeneration, PegasusForConditionalGeneration
    config_cls, family = PegasusConfig, dict(scale_embedding=True)
    uniform = True


class LongT5(Arch):
    eff_cls, hf_cls, start, eos = EffLongT5ForConditionalGeneration, LongT5ForConditionalGeneration, 0, 1
    config_cls, family = LongT5Config, {}  # what a family of T5's decoder sets on top
    scaled = True  # the head's input is scaled by d_model**-0.5 (tied head)

    def config(self, **kw):
        # encoder and decoder depths differ on purpose (transformers 5 sizes generate()'s cache from the encoder depth)
        return self.config_cls(vocab_size=64, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_layers=2,
                               num_decoder_layers=L, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
                               eos_token_id=1, **self.family, **kw)

    def soften(self, m):
        # A random T5 decoder echoes its input token (residual stream + tied head): stronger self-attention and
        # feed-forward outputs break the echo, a sharper final norm spreads the exit confidences over [0, 1].
        for block in m.decoder.block:
            block.layer[0].SelfAttention.o.weight.mul_(3.0)
            block.layer[2].DenseReluDense.wo.weight.mul_(3.0)
        m.decoder.final_layer_norm.weight.mul_(3.0)

    def depth(self, k):
        return dict(num_decoder_layers=k)

    def first_decoder_layer(self, m):
        return m.decoder.block[0]

    def hf_generate(self, m, x, **kw):
        return super().hf_generate(m, x, cache=EncoderDecoderCache(DynamicCache(), DynamicCache()), **kw)

    def by_hand_hidden(self, m, out):
        hs, d = out.decoder_hidden_states, m.decoder
        assert getattr(m.config, "scale_decoder_outputs", False) == self.scaled
        scale = m.config.d_model**-0.5 if self.scaled else 1.0
        return [d.dropout(d.final_layer_norm(h)) for h in hs[1:-1]] + [hs[-1]], lambda h: m.lm_head(h * scale)


def untie_head(m):
    """T5 v1.1 / mT5 checkpoints have their own LM head, but transformers 5 ties it to the embeddings of a model
    built from a config (loading keeps a checkpoint's own head): give the model one."""
    if m.lm_head.weight is m.shared.weight:
        m.lm_head.weight = torch.nn.Parameter(m.shared.weight.detach().clone().normal_(0, 1.0))
    return m


class T5v11(LongT5):
    """T5 v1.1 / Flan-T5: gated-GELU feed-forward, untied LM head without the d_model**-0.5 scale."""

    eff_cls, hf_cls = EffT5ForConditionalGeneration, T5ForConditionalGeneration
    config_cls, family = T5Config, dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    scaled = False

    def soften(self, m):
        untie_head(m)
        super().soften(m)

    def fresh(self, config):
        return untie_head(super().fresh(config))  # before it takes an untied model's weights


class MT5(T5v11):
    """mT5: T5 v1.1 (its head is never scaled; its config has no setting for it)."""

    eff_cls, hf_cls = EffMT5ForConditionalGeneration, MT5ForConditionalGeneration
    config_cls, family = MT5Config, {}


class UMT5(T5v11):
    """umT5: mT5 with a relative-position bias of its own in every decoder layer (its checkpoints untie the head,
    so the head is unscaled)."""

    eff_cls, hf_cls = EffUMT5ForConditionalGeneration, UMT5ForConditionalGeneration
    config_cls, family = UMT5Config, dict(tie_word_embeddings=False)

    def soften(self, m):
        super().soften(m)
        for block in m.decoder.block:  # biases as large as the scores, so a layer with another's bias shows
            block.layer[0].SelfAttention.relative_attention_bias.weight.normal_(0, 2.0)


class Llama(Arch):
    eff_cls, hf_cls, start, eos = EffLlamaForCausalLM, LlamaForCausalLM, None, 2
    encoder_decoder = False
    config_cls, family = LlamaConfig, {}  # what a family of LLaMA's layer signature sets on top

    def config(self, **kw):
        # grouped-query attention: 4 query heads share 2 K/V heads
        return self.config_cls(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=L,
                               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                               initializer_range=1.0, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                               **self.family, **kw)

    def depth(self, k):
        return dict(num_hidden_layers=k)

    def first_decoder_layer(self, m):
        return m.model.layers[0]

    def teacher_forced_cache(self, m, x, tokens):
        return m(input_ids=torch.tensor([tokens]), use_cache=True, cache=DynamicCache()).cache

    def train_batch(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randint(3, 64, (2, 9), generator=g)
        mask = torch.ones_like(x)
        mask[1, :2] = 0  # left padding
        y = x.clone()
        y[:, :3] = -100  # prompt
        y[1, :2] = -100
        return dict(input_ids=x, attention_mask=mask, labels=y)

    def by_hand_hidden(self, m, out):
        hs = out.hidden_states
        return [m.model.norm(h) for h in hs[1:-1]] + [hs[-1]], m.lm_head


class Qwen2(Llama):
    """LLaMA's layer signature with biases on the q/k/v projections (tied embeddings at small sizes)."""

    eff_cls, hf_cls = EffQwen2ForCausalLM, Qwen2ForCausalLM
    config_cls, family = Qwen2Config, dict(tie_word_embeddings=True)

    def soften(self, m):
        for layer in m.model.layers:  # non-zero biases, so a dropped bias shows
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)


class Qwen3(Llama):
    """LLaMA's layer signature with RMSNorm on queries and keys per head (tied embeddings at small sizes)."""

    eff_cls, hf_cls = EffQwen3ForCausalLM, Qwen3ForCausalLM
    config_cls, family = Qwen3Config, dict(head_dim=8, tie_word_embeddings=True)

    def soften(self, m):
        for layer in m.model.layers:  # non-trivial norm weights, so a skipped k_norm shows in propagated keys
            layer.self_attn.k_norm.weight.normal_(1, 0.5)
            layer.self_attn.q_norm.weight.normal_(1, 0.5)


class Mistral(Llama):
    """LLaMA's layer signature with sliding-window attention in every layer; prompts + new tokens pass the window."""

    eff_cls, hf_cls = EffMistralForCausalLM, MistralForCausalLM
    config_cls, family = MistralConfig, dict(sliding_window=WINDOW)


class Phi3(Llama):
    """Fused qkv and gate/up projections; partial RoPE (Phi-4-mini rotates 3/4 of each head)."""

    eff_cls, hf_cls = EffPhi3ForCausalLM, Phi3ForCausalLM
    config_cls, family = Phi3Config, dict(partial_rotary_factor=0.5, tie_word_embeddings=False)


class Gemma2(Llama):
    """Embeddings scaled by sqrt(d), (1 + w) norms, norms after attention and MLP, attention and final-logit
    soft-caps (small, so that a missing cap shows), sliding layers alternating with global ones."""

    eff_cls, hf_cls = EffGemma2ForCausalLM, Gemma2ForCausalLM
    config_cls = Gemma2Config
    family = dict(head_dim=8, query_pre_attn_scalar=8, sliding_window=WINDOW, final_logit_softcapping=10.0,
                  attn_logit_softcapping=5.0)

    def soften(self, m):
        # (1 + w) norms start at w = 0: make them matter. The scaled embedding outweighs the normed layer outputs,
        # and the tied head echoes it: a smaller embedding and larger post-norms break the echo.
        m.model.embed_tokens.weight.mul_(0.2)
        m.model.norm.weight.fill_(3.0)  # sharper exits: confidences spread over [0, 1]
        for layer in m.model.layers:
            layer.input_layernorm.weight.normal_(0, 0.5)
            layer.pre_feedforward_layernorm.weight.normal_(0, 0.5)
            layer.post_attention_layernorm.weight.normal_(3, 1)
            layer.post_feedforward_layernorm.weight.normal_(3, 1)


    def by_hand_hidden(self, m, out):
        H, head = super().by_hand_hidden(m, out)
        cap = m.config.final_logit_softcapping
        return H, (head if cap is None else lambda h: torch.tanh(head(h) / cap) * cap)


class Gemma3(Gemma2):
    """Gemma 2's layers with q/k norms instead of soft-caps; its sliding layers rotate with their own RoPE base.
    Its pattern (five sliding layers, one global) shortened to two, one, one."""

    eff_cls, hf_cls = EffGemma3ForCausalLM, Gemma3ForCausalLM
    config_cls = Gemma3TextConfig
    family = dict(head_dim=8, query_pre_attn_scalar=8, sliding_window=WINDOW,
                  layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"])


class Llama3(Llama):
    """Llama 3.x: `rope_type: llama3` frequency scaling (its end tokens are several ids: see test_generation)."""

    family = dict(rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 16})


ARCHS = {"bart": Bart(), "llama": Llama(), "longt5": LongT5(), "qwen2": Qwen2(), "mistral": Mistral(),
         "llama3": Llama3(), "t5v11": T5v11(), "mt5": MT5(), "qwen3": Qwen3(), "phi3": Phi3(), "gemma2": Gemma2(),
         "gemma3": Gemma3(), "mbart": MBart(), "marian": Marian(), "pegasus": Pegasus(),
         "umt5": UMT5()}
arch_params = pytest.mark.parametrize("arch", list(ARCHS.values()), ids=list(ARCHS))


def run_engine(arch, m, x):
    """Engine on one row; seq.tokens is laid out like HF's output row ([start] + new, or prompt + new)."""
    policy = m.exit_policy()
    eng = Engine(m.adapter_cls(m), policy, ThresholdState(policy), getattr(m, "cm_head", None))
    st = DecodeStats(num_layers=L)
    (seq,), seq.sess = eng.run(x, None, arch.start, NEW, arch.eos, st)
    return seq, st


def mixed_runs(arch, m, method, n=6):
    """(input, seq, stats) for every input and threshold where exits and deep steps both happen."""
    key = "exit_conf_threshold" if "use_early_exit" in method else "shallow2deep_conf_threshold"
    for x in arch.inputs(n):
        for thr in THRESHOLDS:
            set_method(m, **method, **{key: thr})
            seq, st = run_engine(arch, m, x)
            if 0 < st.exits < st.steps:
                yield x, seq, st


def close(a, b, tol=1e-4):
    """Within tol, relative to the tensor's scale."""
    a, b = a.detach(), b.detach()
    return bool((a - b).abs().max() <= tol * max(1.0, float(b.abs().max())))


# ---- training model -----------------------------------------------------------------------------------

@arch_params
def test_exit_hidden_states_are_the_truncated_models_outputs(arch):
    """Checks the hidden-state layout: exit k's logits are those of HF's model cut to k decoder layers."""
    m = arch.make()
    batch = arch.train_batch()
    out = m(**batch, output_hidden_states=True, use_cache=False)
    H = m.exit_hidden_states(out.decoder_hidden_states if arch.encoder_decoder else out.hidden_states)
    assert len(H) == L
    assert close(m.exit_logits(H[-1]), out.logits, 1e-5)
    for k in (1, 2, 3):
        ref = arch.truncated(m, k)(**batch, use_cache=False).logits
        assert close(m.exit_logits(H[k - 1]), ref, 1e-5), k


@arch_params
@pytest.mark.parametrize("loss_fn", LOSSES)
def test_training_loss_equals_util_losses_by_hand(arch, loss_fn):
    m = arch.make(intermediate_loss_fn=loss_fn, shallow_exit_layer=2, distill_layer_alpha=0.5,
                  output_hidden_states_decoder=True, do_layer_transformation=loss_fn.startswith("shallowdeep_kd"))
    m.train()  # dropout is 0: deterministic
    batch = arch.train_batch()
    out = m(**batch)
    m.config.intermediate_loss_fn = None  # the plain HF forward, to rebuild the loss by hand
    plain = m(**batch, output_hidden_states=True)
    m.config.intermediate_loss_fn = loss_fn
    H, logits_fn = arch.by_hand_hidden(m, plain)
    y = batch["labels"]
    if not arch.encoder_decoder:  # the state at t predicts token t + 1
        H, y = [h[:, :-1] for h in H], y[:, 1:]
    want = losses.intermediate_loss(loss_fn, H, logits_fn, y, 2, 0.5, transform=getattr(m, "layer_transformation",
                                                                                          None))
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-5)
    first = arch.first_decoder_layer(m)
    before = [p.detach().clone() for p in first.parameters()]
    out.loss.backward()
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    assert any(not torch.equal(a, b) for a, b in zip(before, first.parameters()))
    if loss_fn.startswith("shallowdeep_kd"):
        assert m.layer_transformation.weight.grad is not None


@arch_params
def test_meta_head_training_touches_only_the_head(arch):
    m = arch.make(train_meta_cm_head=True, exit_conf_type="meta", output_hidden_states_decoder=True).train()
    out = m(**arch.train_batch())
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert m.cm_head[0].weight.grad is not None
    assert all(p.grad is None for n, p in m.named_parameters() if "cm_head" not in n)


@arch_params
def test_lora_wrap_and_one_step(arch):
    from peft import PeftModelForCausalLM, PeftModelForSeq2SeqLM

    m = arch.make(intermediate_loss_fn="shallowdeep_kd_dyna", shallow_exit_layer=2, distill_layer_alpha=0.5,
                  do_layer_transformation=True)
    pm = add_lora(m, dict(lora_rank=4, lora_alpha=8, lora_dropout=0.0, lora_target_modules=None,
                          train_meta_cm_head=False))
    assert isinstance(pm, PeftModelForSeq2SeqLM if arch.encoder_decoder else PeftModelForCausalLM)
    pm.train()
    trainable = {n: p.detach().clone() for n, p in pm.named_parameters() if p.requires_grad}
    assert any("lora_B" in n for n in trainable) and any("layer_transformation" in n for n in trainable)
    opt = torch.optim.SGD([p for p in pm.parameters() if p.requires_grad], lr=0.1)
    loss = pm(**arch.train_batch()).loss
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    changed = {n for n, p in pm.named_parameters() if n in trainable and not torch.equal(p, trainable[n])}
    assert any("lora_B" in n for n in changed) and any("layer_transformation" in n for n in changed)


@arch_params
def test_save_and_load_keep_exit_settings_and_heads(arch, tmp_path):
    m = arch.make(**FREE, shallow2deep_conf_threshold=0.8, do_layer_transformation=True,
                  exit_conf_type="meta")
    with torch.no_grad():
        m.cm_head[2].bias.fill_(0.3)
        m.layer_transformation.weight.mul_(2)
    m.save_pretrained(tmp_path)
    m2 = arch.eff_cls.from_pretrained(tmp_path)
    assert m2.config.shallow_exit_layer == 2 and m2.config.shallow2deep_conf_threshold == 0.8
    assert m2.exit_policy().method == "free"
    sd2 = m2.state_dict()
    for k, v in m.state_dict().items():
        assert torch.equal(v, sd2[k]), k


@arch_params
def test_plain_checkpoint_loads_with_identity_layer_transformation(arch, tmp_path):
    torch.manual_seed(0)
    arch.hf_cls(arch.config()).save_pretrained(tmp_path)
    cfg = type(arch.config()).from_pretrained(tmp_path)
    cfg.do_layer_transformation, cfg.exit_conf_type = True, "meta"
    m = arch.eff_cls.from_pretrained(tmp_path, config=cfg)
    d = m.exit_hidden_size
    assert torch.equal(m.layer_transformation.weight, torch.eye(d)) and not m.layer_transformation.bias.any()
    assert torch.isfinite(m.cm_head[0].weight).all()


# ---- decoding engine ----------------------------------------------------------------------------------

@arch_params
@pytest.mark.parametrize("method", [dict(), dict(FREE, shallow2deep_conf_threshold=1.0),
                                    dict(CALM, exit_conf_threshold=1.0)], ids=["full", "free", "calm"])
def test_never_exit_equals_hf_generate_tokens_and_logits(arch, method):
    m = arch.make()
    set_method(m, **method)
    for x in arch.inputs():
        ref = arch.hf_generate(m, x, output_scores=True, return_dict_in_generate=True)
        seq, st = run_engine(arch, m, x)
        assert seq.tokens == ref.sequences[0].tolist()
        assert st.exits == 0
        assert close(torch.stack(seq.scores), torch.cat(ref.scores))


@arch_params
def test_generate_front_door_uses_engine_and_matches_hf(arch):
    m = arch.make()
    x = arch.inputs(1, 3)[0]
    ref = arch.hf_generate(m, x)
    assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True), ref)
    set_method(m, **FREE, shallow2deep_conf_threshold=1.0)
    assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW), ref)
    assert m.pop_exit_stats().sequences == 1


@arch_params
@pytest.mark.parametrize("k", [1, 2, 3])
def test_static_exit_equals_truncated_model(arch, k):
    m = arch.make()
    set_method(m, static_exit_layer=k)
    trunc = arch.truncated(m, k)
    for x in arch.inputs(3):
        assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW), arch.hf_generate(trunc, x))
    assert m.pop_exit_stats().summary()["avg_layers_per_token"] == k


@arch_params
def test_fill_kv_writes_what_the_layer_itself_would(arch):
    """State propagation's K/V for tokens at positions p.. equal the layer's own K/V for the same input."""
    m = arch.make()
    ad = m.adapter_cls(m)
    x = arch.inputs(1)[0]
    torch.manual_seed(1)
    h = torch.randn(1, 5, m.exit_hidden_size)
    i = 2
    ran, filled = ad.start(x), ad.start(x)
    p = ran.cache_len(i)  # a decoder-only prompt is already in every layer's cache
    ad.layer(ran, i, h[:, :2], ad.span([p], 2))  # positions p, p + 1
    ad.layer(ran, i, h[:, 2:], ad.span([p + 2], 3))  # positions p + 2 .. p + 4
    ad.fill_kv(filled, i, h[:, :2], ad.span([p], 2))
    ad.fill_kv(filled, i, h[:, 2:], ad.span([p + 2], 3))
    (k1, v1), (k2, v2) = ran.kv.row(i), filled.kv.row(i)
    assert k1.shape[1] == p + 5
    assert close(k2, k1, 1e-5)
    assert close(v2, v1, 1e-5)


@arch_params
def test_free_deep_kv_equals_teacher_forced_pass_after_mixed_exits(arch):
    m = arch.make()
    checked = 0
    for x, seq, st in mixed_runs(arch, m, FREE):
        if st.parallel_passes == 0:
            continue
        ref = arch.teacher_forced_cache(m, x, seq.tokens[:-1])
        for j in range(L):
            keys, values = seq.sess.kv.row(j)
            n = keys.shape[1]
            if j < 2:
                assert n == len(seq.tokens) - 1  # shallow layers saw every input
            else:
                assert n == len(seq.tokens) - 1 - len(seq.stack)  # deep layers: all but the stacked tokens
            assert close(keys, ref.layers[j].keys[0, :, :n])
            assert close(values, ref.layers[j].values[0, :, :n])
        checked += 1
    assert checked >= 3


@arch_params
def test_calm_state_propagation_keeps_caches_equal_length(arch):
    m = arch.make()
    mixed = 0
    for x, seq, st in mixed_runs(arch, m, CALM):
        lens = {seq.sess.cache_len(j) for j in range(L)}
        assert lens == {len(seq.tokens) - 1}, lens
        mixed += 1
    assert mixed >= 3


@functools.lru_cache(maxsize=None)
def verification_case(name):
    """One model per family, its inputs and HF's greedy output for each, shared by the thresholds below."""
    arch = ARCHS[name]
    m = arch.make()
    xs = arch.inputs(6, seed=2)
    return m, xs, [arch.hf_generate(m, x) for x in xs]


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize("thr", [0.0, 0.3])  # every token exits; exits mixed with deep steps
def test_free_verification_equals_full_model_while_exiting(name, thr):
    m, xs, refs = verification_case(name)
    st = DecodeStats()
    for x, ref in zip(xs, refs):
        set_method(m, **FREE, shallow2deep_conf_threshold=thr, exact_verification=True)
        assert m.generate(input_ids=x, max_new_tokens=NEW).tolist() == ref.tolist()
        st.add(m.pop_exit_stats())
    # exits happened, and the deep layers both kept and rejected some: the check was not vacuous
    assert st.exits > 0 and 0 < st.rollbacks < st.checked, st.summary()


# ---- decoder-only specifics ---------------------------------------------------------------------------

def test_llama_assistant_early_exit_runs_and_equals_plain_greedy():
    arch = ARCHS["llama"]
    m = arch.make()
    for x in arch.inputs(2):
        plain = arch.hf_generate(m, x)
        assert torch.equal(arch.hf_generate(m, x, assistant_early_exit=2), plain)
        assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW, assistant_early_exit=2), plain)


@pytest.mark.parametrize("method", [dict(), dict(FREE, shallow2deep_conf_threshold=0.5)], ids=["full", "free"])
def test_llama_left_padded_batch_decodes_like_single_rows(method):
    arch = ARCHS["llama"]
    m = arch.make()
    set_method(m, **method)
    xs = arch.inputs(3, seed=7)
    singles = [m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True)[0] for x in xs]
    width = max(x.shape[1] for x in xs)
    ids = torch.zeros(3, width, dtype=torch.long)
    mask = torch.zeros(3, width, dtype=torch.long)
    for i, x in enumerate(xs):
        ids[i, width - x.shape[1]:], mask[i, width - x.shape[1]:] = x[0], 1
    batch = m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, use_engine=True)
    for i, (x, s) in enumerate(zip(xs, singles)):
        assert batch[i, :width - x.shape[1]].tolist() == [0] * (width - x.shape[1])  # the padding stays
        assert batch[i, width - x.shape[1]:width - x.shape[1] + len(s)].tolist() == s.tolist()
    if not method:  # the full path also equals HF's own batched greedy search
        assert torch.equal(batch, arch.hf_generate(m, ids, attention_mask=mask))


def test_llama_max_length_counts_the_prompt():
    arch = ARCHS["llama"]
    m = arch.make()
    x = arch.inputs(1)[0]
    out = m.generate(input_ids=x, max_length=x.shape[1] + 5, use_engine=True)
    assert torch.equal(out, LlamaForCausalLM.generate(m, input_ids=x, max_length=x.shape[1] + 5, do_sample=False))


# ---- build_model.py and loading ------------------------------------------------------------------------

@pytest.mark.parametrize("model_type", ["bart", "llama", "longt5", "qwen2", "mistral", "t5v1_1", "mt5", "qwen3", "phi3",
                                        "gemma2", "gemma3_text", "umt5", "mbart", "marian", "pegasus"])
def test_build_model_folder_loads_with_tokenizer_and_decodes(model_type, tmp_path):
    from additional_args import AdditionalArguments, ModelArguments
    from models import MODEL_CLASSES, load_model_and_tokenizer
    from scripts.build_model import build

    build(str(tmp_path), model_type=model_type, vocab_size=400, d_model=32, d_ff=64, num_heads=2, d_kv=16,
          num_layers=2, num_decoder_layers=4, corpus_lines=100)
    model, tok, s = load_model_and_tokenizer(
        ModelArguments(model_name_or_path=str(tmp_path)),
        AdditionalArguments(use_shallow_deep=True, shallow_exit_layer=2, shallow2deep_conf_type="softmax",
                            shallow2deep_conf_threshold=0.5))
    assert model.config.model_type == {"t5v1_1": "t5"}.get(model_type, model_type)
    assert type(model) is MODEL_CLASSES[model.config.model_type] and s["shallow_exit_layer"] == 2
    assert model.config.pad_token_id == tok.pad_token_id and model.config.eos_token_id == tok.eos_token_id
    text = "Amanda: I baked cookies. Do you want some? Ünïcode"
    if model_type == "bart":
        from transformers import BartTokenizer

        assert isinstance(tok, BartTokenizer)
        assert [tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token] == \
            ["<s>", "</s>", "<pad>", "<unk>", "<mask>"]
        assert model.config.decoder_start_token_id == tok.eos_token_id and model.config.forced_eos_token_id is None
    if model_type in ("t5v1_1", "mt5", "umt5"):  # gated GELU; an untied head, saved and loaded as such, never scaled
        assert model.config.is_gated_act and not getattr(model.config, "scale_decoder_outputs", False)
        assert model.lm_head.weight is not model.shared.weight
        assert not torch.equal(model.lm_head.weight, model.shared.weight)
    if model_type in ("llama", "mistral", "phi3", "gemma2", "gemma3_text"):
        assert tok.padding_side == "left" and tok.bos_token == "<s>" and tok.pad_token == "<pad>"
        assert tok(text).input_ids[0] == tok.bos_token_id and tok(text).input_ids[-1] != tok.eos_token_id
    if model_type in ("qwen2", "qwen3"):  # Qwen's byte-level BPE: no BOS, <|endoftext|> ends and pads, tied head
        assert tok.padding_side == "left" and tok.bos_token is None and tok.pad_token == tok.eos_token
        assert model.config.tie_word_embeddings
        attn = model.model.layers[0].self_attn
        assert attn.q_proj.bias is not None if model_type == "qwen2" else hasattr(attn, "k_norm")
    if model_type == "gemma2":  # soft-caps; sliding layers alternate with global ones
        assert (model.config.attn_logit_softcapping, model.config.final_logit_softcapping) == (50.0, 30.0)
        assert model.config.layer_types[:2] == ["sliding_attention", "full_attention"]
    if model_type == "gemma3_text":  # 512-token sliding layers (every sixth is global: none of these four)
        assert model.config.sliding_window == 512 and model.config.layer_types[0] == "sliding_attention"
    dec = getattr(getattr(model, "model", None), "decoder", None)
    if model_type in ("mbart", "marian", "pegasus"):  # scaled embeddings; pre-LN with a final norm but Marian
        assert model.config.scale_embedding and (getattr(dec, "layer_norm", None) is None) == (model_type == "marian")
        assert model.config.forced_eos_token_id == tok.eos_token_id
    if model_type in ("marian", "pegasus"):  # sinusoidal positions; <pad> starts the decoder
        assert "Sinusoidal" in type(dec.embed_positions).__name__
        assert model.config.decoder_start_token_id == tok.pad_token_id
    if model_type == "marian":  # opus-mt's ids: </s> 0, <unk> 1, <pad> last
        assert (tok.eos_token_id, tok.unk_token_id, tok.pad_token_id) == (0, 1, len(tok) - 1)
    if model_type == "pegasus":  # Pegasus's reserved ids
        assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 105)
    lang = tok.convert_tokens_to_ids("de_DE") if model_type == "mbart" else None
    if model_type == "mbart":  # mBART-50: [en_XX] text </s> in, </s> starts the decoder, de_DE forced first
        ids = tok(text).input_ids
        assert ids[0] == tok.convert_tokens_to_ids("en_XX") and ids[-1] == tok.eos_token_id
        assert model.config.decoder_start_token_id == tok.eos_token_id
        assert model.generation_config.forced_bos_token_id == lang
        assert tok(text_target="Hallo").input_ids[0] == lang
    if model_type not in ("longt5", "t5v1_1", "mt5", "umt5"):  # byte-level / byte-fallback / accented letters kept
        assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text
    enc = tok(["summarize: " + text, "short"], return_tensors="pt", padding=True)
    model.eval()
    out = model.generate(**enc, max_new_tokens=6)
    assert out.shape[0] == 2 and model.pop_exit_stats().sequences == 2
    if lang is not None:
        assert out[:, 1].tolist() == [lang, lang]


# Widths of small published checkpoints (attention exactly: width, heads, K/V heads, head size); two layers, random
# weights, a small vocabulary. Where the checkpoint's feed-forward would make the test slow, a narrower one (1024).
PUBLISHED = {
    "flan-t5-base": ("t5v11", dict(d_model=768, d_ff=2048, num_heads=12, d_kv=64)),
    "mt5-small": ("mt5", dict(d_model=512, d_ff=1024, num_heads=6, d_kv=64)),
    "umt5-small": ("umt5", dict(d_model=512, d_ff=1024, num_heads=6, d_kv=64)),
    "bart-base": ("bart", dict(d_model=768, encoder_attention_heads=12, decoder_attention_heads=12,
                               encoder_ffn_dim=3072, decoder_ffn_dim=3072)),
    "opus-mt-en-de": ("marian", dict(d_model=512, encoder_attention_heads=8, decoder_attention_heads=8,
                                     encoder_ffn_dim=2048, decoder_ffn_dim=2048)),
    "mbart-large-50-narrow-MLP": ("mbart", dict(d_model=1024, encoder_attention_heads=16, decoder_attention_heads=16,
                                                encoder_ffn_dim=1024, decoder_ffn_dim=1024)),
    "pegasus-large-narrow-MLP": ("pegasus", dict(d_model=1024, encoder_attention_heads=16,
                                                 decoder_attention_heads=16, encoder_ffn_dim=1024,
                                                 decoder_ffn_dim=1024)),
    "SmolLM2-135M": ("llama", dict(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                                   intermediate_size=1536)),
    "Qwen2.5-0.5B": ("qwen2", dict(hidden_size=896, num_attention_heads=14, num_key_value_heads=2, head_dim=64,
                                   intermediate_size=4864)),
    "Qwen3-0.6B": ("qwen3", dict(hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                 intermediate_size=3072)),
    "Mistral-7B-narrow-MLP": ("mistral", dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
                                               head_dim=128, intermediate_size=1024)),
    "Phi-3-mini-narrow-MLP": ("phi3", dict(hidden_size=3072, num_attention_heads=32, num_key_value_heads=32,
                                           head_dim=96, intermediate_size=1024,
                                           rope_parameters=dict(rope_type="default", rope_theta=10000.0,
                                                                partial_rotary_factor=1.0))),
    "gemma-2-2b-narrow-MLP": ("gemma2", dict(hidden_size=2304, num_attention_heads=8, num_key_value_heads=4,
                                             head_dim=256, query_pre_attn_scalar=256, intermediate_size=1024)),
    "gemma-3-1b": ("gemma3", dict(hidden_size=1152, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                                  query_pre_attn_scalar=256, intermediate_size=6912)),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_width_never_exit_equals_hf_generate(name):
    """A shape test at real width (not a quality test): tokens and logits of the engine's full path equal HF's."""
    arch, shape = ARCHS[PUBLISHED[name][0]], PUBLISHED[name][1]
    m = arch.make(arch.reshaped(arch.config(), 2, **shape))
    set_method(m, **dict(FREE, shallow_exit_layer=1), shallow2deep_conf_threshold=1.0)
    x = arch.inputs(1)[0]
    ref = arch.hf_generate(m, x, new=4, output_scores=True, return_dict_in_generate=True)
    out = m.generate(input_ids=x, max_new_tokens=4, output_scores=True, return_dict_in_generate=True)
    assert torch.equal(out.sequences, ref.sequences)
    assert close(torch.cat(out.scores), torch.cat(ref.scores))


def test_mbart_language_code_is_forced_first_with_exits():
    """mBART-50 generation configs force the target language's code as the first token (forced_bos_token_id)."""
    arch = ARCHS["mbart"]
    m = arch.make()
    lang = 60
    set_method(m, **FREE, shallow2deep_conf_threshold=0.3, exact_verification=True)
    exits = 0
    for x in arch.inputs(3, seed=2):
        ref = arch.hf_generate(m, x, forced_bos_token_id=lang)
        assert ref[0, 1] == lang
        assert torch.equal(m.generate(input_ids=x, max_new_tokens=NEW, forced_bos_token_id=lang), ref)
        exits += m.pop_exit_stats().exits
    assert exits > 0


@pytest.mark.parametrize("name", ["mistral", "gemma2", "gemma3"])
def test_sliding_window_matters_in_the_matrix(name):
    """The sliding-window families decode past their window in every test above: without it HF's own greedy output
    differs, so the matrix (engine == HF generate) fails if the engine ignores the window."""
    arch = ARCHS[name]
    m = arch.make()
    xs = arch.inputs()
    windowed = [arch.hf_generate(m, x) for x in xs]
    m.config.sliding_window = 10**6  # HF's masks and the adapter read it at each call
    unwindowed = [arch.hf_generate(m, x) for x in xs]
    assert any(not torch.equal(a, b) for a, b in zip(windowed, unwindowed))
    assert all(torch.equal(m.generate(input_ids=x, max_new_tokens=NEW, use_engine=True), b)
               for x, b in zip(xs, unwindowed))


def test_umt5_per_layer_bias_matters_in_the_matrix():
    """umT5's layers each have their own relative-position bias: with layer 0's in every layer HF's own greedy
    output differs, so the matrix fails if the adapter gives a layer another's bias (in a batch, where rows sit at
    different positions, the adapter corrects the bias each layer adds; test_batch)."""
    arch = ARCHS["umt5"]
    m = arch.make()
    xs = arch.inputs()
    own = [arch.hf_generate(m, x) for x in xs]
    first = m.decoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
    for block in m.decoder.block[1:]:
        block.layer[0].SelfAttention.relative_attention_bias.weight.data.copy_(first)
    shared = [arch.hf_generate(m, x) for x in xs]
    assert any(not torch.equal(a, b) for a, b in zip(own, shared))
