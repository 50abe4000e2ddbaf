"""Decoder-only adapter for the early-exit engine: every family whose decoder layers have LLaMA's signature and
module names (LLaMA, Llama 3, Qwen2, Qwen3, Mistral, Phi-3, Gemma 2, Gemma 3), reusing the loaded HF modules.
What the families change lives inside HF's modules (q/k/v biases, q/k norms, fused projections, (1 + w) norms,
scaled embeddings, attention soft-capping); what the adapter must know is the per-layer attention pattern and the
final-logit soft-cap.

Same interface as T5Adapter (models/deploying_common.py), with the decoder-only differences:
- `start()` prefills every row's prompt (padding removed: each row's tokens sit at positions 0..) through
  ALL layers (prefill never exits) in one batched pass; the session holds each row's prompt and the state
  of its last prompt position; the engine continues from there;
- RoPE positions are the tokens' TRUE positions, carried by the span; a stale deep layer's span in FREE's
  parallel pass is rotated at the stacked tokens' own positions, not at that layer's cache length or layer 0's;
- layers differ by type (`config.layer_types`): sliding-window layers get a windowed mask, and Gemma 3 rotates
  them with their own RoPE base; the span carries (mask, cos/sin) per layer type;
- `fill_kv` lets HF's attention compute the propagated K/V (its projections, norms and RoPE) and stops it there;
- grouped-query attention: K/V have num_key_value_heads heads (HF's attention repeats them).
"""

import inspect

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, apply_rotary_pos_emb

from models.deploying_common import RaggedCache, Session, Span, derived, fast_product, make_span, windowed

FULL, SLIDING = "full_attention", "sliding_attention"


def soft_cap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Gemma's final-logit soft-cap, cap * tanh(logits / cap); every exit gets the one the last layer gets."""
    return logits if cap is None else torch.tanh(logits / cap) * cap


def layer_types(config, num_layers: int) -> list[str]:
    """Each layer's attention type; families without `layer_types` (Mistral, Phi-3) slide in every layer when
    they have a window."""
    types = getattr(config, "layer_types", None)
    if types is not None:
        return list(types)
    return [SLIDING if getattr(config, "sliding_window", None) is not None else FULL] * num_layers


class _Written(Exception):
    """Raised by _WriteOnly once the K/V are in the cache."""


class _WriteOnly:
    """The cache of one attention call that only has to write its K/V: HF's attention computes them exactly, in
    the family's own way, and the call stops before the scores it does not need."""

    def __init__(self, kv: RaggedCache):
        self.kv = kv

    def update(self, k, v, layer, *args, **kwargs):
        self.kv.update(k, v, layer)
        raise _Written


class LlamaAdapter:
    def __init__(self, model):
        self.model = model
        base = model.model
        cfg = model.config
        self.layers = base.layers
        self.num_layers = len(base.layers)
        self.embed_tokens = base.embed_tokens  # Gemma's scales by sqrt(hidden_size) itself
        self.norm = base.norm
        self.rotary = base.rotary_emb
        self.lm_head = model.lm_head
        self.cap = getattr(cfg, "final_logit_softcapping", None)
        self.types = layer_types(cfg, self.num_layers)
        self.window = getattr(cfg, "sliding_window", None) if SLIDING in self.types else None
        # Gemma 3 rotates each layer type with its own base: its rotary module takes the type
        self.rope_by_type = "layer_type" in inspect.signature(self.rotary.forward).parameters
        self.block = getattr(model, "exit_block", None)  # an exit that attends: cache slot num_layers
        self.block_layer = getattr(cfg, "exit_block_layer", None) if self.block is not None else None
        self.direct = False  # see use_direct_layers

    def use_direct_layers(self) -> None:
        """With the CPU product layouts (fast_kernels), plain LLaMA layers are computed here rather than by HF's
        modules: the same math with fused q/k/v and gate/up products and a third of the operator calls (a layer's
        dispatch overhead is about as large as its products for one token on a small model). Rounding differs
        from HF's modules, as with the layouts themselves. Other families keep HF's layers."""
        self.direct = all(self._plain(m) for m in [*self.layers, *([self.block] if self.block is not None else [])])

    def _plain(self, layer) -> bool:
        a, mlp = layer.self_attn, layer.mlp
        return (type(layer) is LlamaDecoderLayer and a.q_proj.bias is None and a.o_proj.bias is None
                and mlp.gate_proj.bias is None and mlp.down_proj.bias is None
                and getattr(mlp.act_fn, "__name__", type(mlp.act_fn).__name__) in ("silu", "SiLU", "SiLUActivation")
                and a.config._attn_implementation in ("sdpa", "eager") and self.cap is None)

    def _direct(self, layer, sess: Session, h: torch.Tensor, span: Span, mask, rope) -> torch.Tensor:
        a, mlp = layer.self_attn, layer.mlp
        qw = a.q_proj.weight
        qkv = derived(qw, "qkv", lambda w: torch.cat([w, a.k_proj.weight, a.v_proj.weight]).detach())
        gw = mlp.gate_proj.weight
        gu = derived(gw, "gate_up", lambda w: torch.cat([w, mlp.up_proj.weight]).detach())
        ow, dw = a.o_proj.weight, mlp.down_proj.weight
        b, n, _ = h.shape
        x = layer.input_layernorm(h)
        y = fast_product(x, qkv).view(b, n, -1, a.head_dim).transpose(1, 2)
        hq = a.config.num_attention_heads
        q, k, v = y[:, :hq], y[:, hq:hq + (y.shape[1] - hq) // 2], y[:, hq + (y.shape[1] - hq) // 2:]
        q, k = apply_rotary_pos_emb(q, k, *rope)
        sess.begin(span)
        K, V = sess.kv.update(k, v, a.layer_idx)
        o = F.scaled_dot_product_attention(q, K, V, attn_mask=mask, scale=a.scaling, enable_gqa=K.shape[1] != hq)
        h = h + fast_product(o.transpose(1, 2).reshape(b, n, -1), ow)
        g, u = fast_product(layer.post_attention_layernorm(h), gu).chunk(2, dim=-1)
        return h + fast_product(F.silu(g) * u, dw)

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None, enc: torch.Tensor | None = None, block: bool = False) -> Session:
        """Prefill: every row's prompt (its padding, left or right, removed) through the first `depth` layers,
        and with `block` the exit block over layer exit_block_layer's states (its K/V for the prompt).
        (`enc`, an encoder-decoder's encoder output, is unused.)"""
        rope = getattr(self.rotary, "rope_type", "default")
        batch_dependent = {"dynamic", "longrope"} & set(rope.values() if isinstance(rope, dict) else [rope])
        if input_ids.shape[0] > 1 and batch_dependent:
            # HF rescales these from the largest position in the call, which a batch shares across its rows
            raise ValueError(f"RoPE type {batch_dependent.pop()!r} depends on the batch: decode with batch size 1")
        rows = input_ids if attention_mask is None else [r[m.bool()] for r, m in zip(input_ids, attention_mask)]
        prompts = [r.tolist() for r in rows]
        n = torch.tensor([len(p) for p in prompts])
        if int(n.min()) == 0:
            raise ValueError("Decoder-only generation needs a non-empty prompt in every row")
        ids = torch.zeros(len(prompts), int(n.max()), dtype=torch.long, device=input_ids.device)
        for b, p in enumerate(prompts):
            ids[b, :len(p)] = torch.tensor(p)
        kv = RaggedCache(len(prompts), self.num_layers + (self.block is not None))
        sess = Session(kv=kv, cache=kv, prompts=prompts)
        span = self.span(torch.zeros_like(n), n)
        h = self.embed(ids, span)
        for i in range(depth or self.num_layers):
            h = self.layer(sess, i, h, span)
            if block and i + 1 == self.block_layer:
                self.exit_block(sess, h, span)
        last = h[torch.arange(len(prompts), device=h.device), (n - 1).to(h.device)]
        sess.first_hidden = last[:, None]
        return sess

    def span(self, starts, n=1, causal: bool = True) -> Span:
        w = self.lm_head.weight  # gives dtype and device
        s = make_span(starts, n, causal, w.dtype, w.device)
        kinds = set(self.types)
        rope = ({t: self.rotary(w, s.positions, t) for t in kinds} if self.rope_by_type
                else dict.fromkeys(kinds, self.rotary(w, s.positions)))
        # layer type -> (mask, (cos, sin) at the true positions)
        s.extra = {t: (windowed(s, self.window, w.dtype) if t == SLIDING else s.mask, rope[t]) for t in kinds}
        return s

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        return self.embed_tokens(ids)  # positions enter through RoPE inside attention

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        mask, rope = span.extra[self.types[i]]
        if self.direct:
            return self._direct(self.layers[i], sess, h, span, mask, rope)
        sess.begin(span)
        return self.layers[i](h, attention_mask=mask, position_ids=span.positions, cache=sess.cache,
                              use_cache=True, position_embeddings=rope)

    def exit_block(self, sess: Session, h: torch.Tensor, span: Span) -> torch.Tensor:
        """The exit block on layer exit_block_layer's states (writes its own K/V)."""
        mask, rope = span.extra[self.types[-1]]
        if self.direct:
            return self._direct(self.block, sess, h, span, mask, rope)
        sess.begin(span)
        return self.block(h, attention_mask=mask, position_ids=span.positions, cache=sess.cache, use_cache=True,
                          position_embeddings=rope)

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h)

    def logits(self, h: torch.Tensor, head=None) -> torch.Tensor:
        """Exit logits; `head` (a Shortlist) replaces the LM head."""
        return soft_cap((head or self.lm_head)(self.norm(h)), self.cap)

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> None:
        """State propagation: layer i's K/V for the span's tokens, which skipped it, from their exit state."""
        layer = self.layers[i]
        mask, rope = span.extra[self.types[i]]
        sess.begin(span)
        try:
            layer.self_attn(hidden_states=layer.input_layernorm(h), position_embeddings=rope, attention_mask=mask,
                            position_ids=span.positions, cache=_WriteOnly(sess.kv))
        except _Written:
            return
        raise RuntimeError(f"{type(layer.self_attn).__name__} wrote no K/V to its cache")
