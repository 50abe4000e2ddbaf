"""LLaMA-family adapter for the early-exit engine (decoder-only: LLaMA, Qwen2, Mistral), reusing the loaded HF
modules (the same module names and decoder-layer signature; Qwen2's q/k/v biases live inside its projections).

Same interface as T5Adapter, with the decoder-only differences (FREE_SPEC.md section 8):
- `start()` prefills every row's prompt (padding removed: each row's tokens sit at positions 0..) through
  ALL layers (prefill never exits) in one batched pass; the session holds each row's prompt and the state
  of its last prompt position; the engine continues from there;
- RoPE positions are the tokens' TRUE positions, carried by the span; a stale deep layer's span in FREE's
  parallel pass is rotated at the stacked tokens' own positions, not at that layer's cache length or layer 0's;
- `fill_kv` applies RoPE to the propagated keys at the tokens' positions;
- grouped-query attention: K/V have num_key_value_heads heads (HF's attention repeats them);
- the final norm is RMSNorm and the LM head is untied, with no output scale.
"""

import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from models.deploying_common import RaggedCache, Session, Span, heads, make_span


class LlamaAdapter:
    def __init__(self, model):
        self.model = model
        base = model.model
        self.layers = base.layers
        self.num_layers = len(base.layers)
        self.embed_tokens = base.embed_tokens
        self.norm = base.norm
        self.rotary = base.rotary_emb
        self.lm_head = model.lm_head
        # Sliding-window layers (Mistral, Qwen2 with use_sliding_window) see only the last `window` keys; the
        # engine's masks are plain causal, which is the same thing until a sequence reaches the window.
        cfg = model.config
        types = getattr(cfg, "layer_types", None)
        self.window = getattr(cfg, "sliding_window", None) if types is None or "sliding_attention" in types else None

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None, enc: torch.Tensor | None = None) -> Session:
        """Prefill: every row's prompt (its padding, left or right, removed) through the first `depth` layers.
        (`enc`, an encoder-decoder's encoder output, is unused.)"""
        if input_ids.shape[0] > 1 and getattr(self.rotary, "rope_type", "default") in ("dynamic", "longrope"):
            # HF rescales these from the largest position in the call, which a batch shares across its rows
            raise ValueError(f"RoPE type {self.rotary.rope_type!r} depends on the batch: decode with batch size 1")
        rows = input_ids if attention_mask is None else [r[m.bool()] for r, m in zip(input_ids, attention_mask)]
        prompts = [r.tolist() for r in rows]
        n = torch.tensor([len(p) for p in prompts])
        if int(n.min()) == 0:
            raise ValueError("Decoder-only generation needs a non-empty prompt in every row")
        ids = torch.zeros(len(prompts), int(n.max()), dtype=torch.long, device=input_ids.device)
        for b, p in enumerate(prompts):
            ids[b, :len(p)] = torch.tensor(p)
        kv = RaggedCache(len(prompts), self.num_layers)
        sess = Session(kv=kv, cache=kv, prompts=prompts)
        span = self.span(torch.zeros_like(n), n)
        h = self.embed(ids, span)
        for i in range(depth or self.num_layers):
            h = self.layer(sess, i, h, span)
        last = h[torch.arange(len(prompts), device=h.device), (n - 1).to(h.device)]
        sess.first_hidden = last[:, None]
        return sess

    def span(self, starts, n=1, causal: bool = True) -> Span:
        w = self.lm_head.weight
        s = make_span(starts, n, causal, w.dtype, w.device)
        if self.window is not None and s.end > self.window:
            raise ValueError(f"This model's sliding-window attention ({self.window} tokens) is not supported by the "
                             f"early-exit engine beyond the window: keep prompt + new tokens within {self.window}")
        s.extra = self.rotary(w, s.positions)  # (cos, sin) at the true positions; the tensor gives dtype and device
        return s

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        return self.embed_tokens(ids)  # positions enter through RoPE inside attention

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        sess.begin(span)
        return self.layers[i](h, attention_mask=span.mask, position_ids=span.positions, cache=sess.cache,
                              use_cache=True, position_embeddings=span.extra)

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(h))

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> None:
        """State propagation: layer i's K/V for the span's tokens, which skipped it, from their exit state."""
        layer = self.layers[i]
        attn, x = layer.self_attn, layer.input_layernorm(h)
        k = heads(attn.k_proj, x, attn.head_dim)
        _, k = apply_rotary_pos_emb(k, k, *span.extra)  # the keys only
        sess.begin(span)
        sess.kv.update(k, heads(attn.v_proj, x, attn.head_dim), i)
