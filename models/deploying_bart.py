"""BART-family adapter for the early-exit engine (BART, mBART, Marian, Pegasus: the same decoder-layer signature
and module names), reusing the loaded HF modules.

Same interface as T5Adapter. What the family changes:
- absolute positions, taken from the span's true positions, so a deep layer with a short cache still sees each
  token at its own position (positions enter at the embedding only, so a layer's keys do not depend on position):
  learned (BART, mBART: offset 2 inside HF's module) or a fixed sinusoidal table (Marian, Pegasus), read as a table;
- the embedding is scaled by sqrt(d_model) when config.scale_embedding (BART / mBART inside their embedding
  module, Marian / Pegasus by the decoder's `embed_scale`), then BART and mBART apply `layernorm_embedding`;
- BART and Marian layers are post-LN (each ends in its own LayerNorm), so their exits need no shared final norm;
  mBART and Pegasus layers are pre-LN and the decoder ends in `layer_norm`, which every exit then goes through;
- the LM head adds `final_logits_bias`;
- the decoder layers return a tensor, not a tuple.
"""

import torch
import torch.nn.functional as F

from models.deploying_common import Session, Span, encoder_decoder_session, heads, make_span


class BartAdapter:
    def __init__(self, model):
        self.model = model
        dec = model.get_decoder()
        self.dec = dec
        self.layers = dec.layers
        self.num_layers = len(dec.layers)
        self.final_norm = getattr(dec, "layer_norm", None)
        self.pre_ln = self.final_norm is not None  # (mBART, Pegasus) a pre-LN decoder ends in its own norm
        self.embed_scale = getattr(dec, "embed_scale", 1.0)  # Marian / Pegasus scale outside the embedding
        self.embed_norm = getattr(dec, "layernorm_embedding", None)
        self.lm_head = model.lm_head
        self.bias = model.final_logits_bias

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None, enc: torch.Tensor | None = None) -> Session:
        """Encode the (padded) batch unless its encoder output `enc` is given; cross-attention K/V of every layer
        once; the decoder starts empty."""
        if enc is None:
            enc = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        attns = [layer.encoder_attn for layer in self.layers]
        return encoder_decoder_session(enc, attention_mask, [(a.k_proj, a.v_proj, a.head_dim) for a in attns])

    def span(self, starts, n=1, causal: bool = True) -> Span:
        w = self.lm_head.weight
        return make_span(starts, n, causal, w.dtype, w.device)

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        pos = self.dec.embed_positions
        offset = getattr(pos, "offset", 0)
        limit = pos.weight.shape[0] - offset  # max_position_embeddings
        positions = span.positions
        if span.end > limit:
            real = torch.arange(span.nmax)[None, :] < torch.tensor(span.n)[:, None]
            if bool((positions.cpu()[real] >= limit).any()):
                raise ValueError(f"{type(self.model).__name__} has {limit} decoder positions "
                                 f"(max_position_embeddings): decode fewer tokens")
            positions = positions.clamp(max=limit - 1)  # padding queries (their output is dropped)
        h = self.dec.embed_tokens(ids) * self.embed_scale + F.embedding(positions + offset, pos.weight)
        return self.embed_norm(h) if self.embed_norm is not None else h

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        sess.begin(span)
        return self.layers[i](h, span.mask, sess.enc, encoder_attention_mask=sess.cross_mask, cache=sess.cache)

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.final_norm(h) if self.final_norm is not None else h

    def logits(self, h: torch.Tensor, head=None) -> torch.Tensor:
        """Exit logits; `head` (a Shortlist, which carries its share of the bias) replaces the LM head."""
        return self.lm_head(self.normed(h)) + self.bias if head is None else head(self.normed(h))

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> None:
        """State propagation: layer i's K/V for the span's tokens, which skipped it, from their exit state.

        A post-LN layer's self-attention reads the layer input directly, a pre-LN one its normed input; keys carry
        no position.
        """
        layer = self.layers[i]
        attn, x = layer.self_attn, layer.self_attn_layer_norm(h) if self.pre_ln else h
        sess.begin(span)
        sess.kv.update(heads(attn.k_proj, x, attn.head_dim), heads(attn.v_proj, x, attn.head_dim), i)
