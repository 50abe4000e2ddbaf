"""BART adapter for the early-exit engine: how BART computes, layer by layer, reusing the loaded HF modules.

Same interface as T5Adapter. What BART changes:
- learned absolute positions (offset 2 inside HF's module), taken from the span's true positions, so a
  deep layer with a short cache still sees each token at its own position (positions enter at the
  embedding only, so a layer's keys do not depend on position);
- the embedding is scaled (BartScaledWordEmbedding, sqrt(d_model) when config.scale_embedding) and goes
  through `layernorm_embedding`;
- layers are post-LN (each ends in its own LayerNorm), so the exits need no shared final norm; a
  decoder `layer_norm` (mBART-style) is applied when the model has one;
- the LM head is tied to the embeddings and adds `final_logits_bias`;
- BartDecoderLayer returns a tensor, not a tuple.
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
        limit = pos.weight.shape[0] - pos.offset  # max_position_embeddings
        positions = span.positions
        if span.end > limit:
            real = torch.arange(span.nmax)[None, :] < torch.tensor(span.n)[:, None]
            if bool((positions.cpu()[real] >= limit).any()):
                raise ValueError(f"BART has {limit} decoder positions (max_position_embeddings): decode fewer tokens")
            positions = positions.clamp(max=limit - 1)  # padding queries (their output is dropped)
        h = self.dec.embed_tokens(ids) + F.embedding(positions + pos.offset, pos.weight)
        return self.dec.layernorm_embedding(h)

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        sess.begin(span)
        return self.layers[i](h, span.mask, sess.enc, encoder_attention_mask=sess.cross_mask, cache=sess.cache)

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.final_norm(h) if self.final_norm is not None else h

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.normed(h)) + self.bias

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> None:
        """State propagation: layer i's K/V for the span's tokens, which skipped it, from their exit state.

        BART's self-attention reads the layer input directly (post-LN) and keys carry no position.
        """
        attn = self.layers[i].self_attn
        sess.begin(span)
        sess.kv.update(heads(attn.k_proj, h, attn.head_dim), heads(attn.v_proj, h, attn.head_dim), i)
