"""T5 adapter for the early-exit engine: how T5 computes, layer by layer, reusing the loaded HF modules.

The adapter knows nothing about exit policies. Positions are explicit (see deploying_common): a span gives
each row's tokens their true positions, so a deep layer with a short cache (FREE's stale deep layers) gets the
true relative positions of the tokens it is given.

T5, T5 v1.1, mT5 and LongT5 share one relative-position bias (block 0's) across the decoder; umT5 has one in every
layer, and its layers compute it themselves, assuming the queries follow the layer's longest cached row (see layer()).
"""

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from models.deploying_common import Session, Span, encoder_decoder_session, heads, make_span

# Decoder blocks whose forward (with sdpa attention, in eval mode) is what T5Adapter._direct computes, op for op.
_DIRECT_BLOCKS = {"T5Block", "MT5Block", "LongT5Block"}


class T5Adapter:
    def __init__(self, model):
        self.model = model
        dec = model.decoder
        self.blocks = dec.block
        self.num_layers = len(dec.block)
        self.norm = dec.final_layer_norm
        self.embed_tokens = dec.embed_tokens
        self.lm_head = model.lm_head
        self.per_layer_bias = model.config.model_type == "umt5"
        attns = [b.layer[0].SelfAttention for b in dec.block]
        self.rel_attns = attns if self.per_layer_bias else attns[:1]
        self.scale = model.config.d_model**-0.5 if getattr(model.config, "scale_decoder_outputs", False) else None
        self._tables = [None] * len(self.rel_attns)  # relative-position bias of positions 0..T-1, grown on demand
        # an adapter lives for one generate() call, so the model's mode and attention are fixed while it does
        self.direct = (not self.per_layer_bias and all(type(b).__name__ in _DIRECT_BLOCKS for b in dec.block)
                       and not model.training and model.config._attn_implementation == "sdpa")
        # each layer's modules, looked up once: nn.Module attribute lookups are a tenth of a batch-1 step
        self._parts = [(b.layer[0].layer_norm, b.layer[0].SelfAttention, b.layer[1].layer_norm,
                        b.layer[1].EncDecAttention, b.layer[-1].layer_norm, b.layer[-1].DenseReluDense)
                       for b in dec.block] if self.direct else None

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              depth: int | None = None, enc: torch.Tensor | None = None) -> Session:
        """Encode the (padded) batch unless its encoder output `enc` is given; cross-attention K/V of every layer
        once; the decoder starts empty. (`depth`, the decoder-only prefill depth, is unused.)
        """
        if enc is None:
            enc = self.model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        attns = [b.layer[1].EncDecAttention for b in self.blocks]
        return encoder_decoder_session(enc, attention_mask, [(a.k, a.v, a.key_value_proj_dim) for a in attns])

    def span(self, starts, n=1, causal: bool = True) -> Span:
        w = self.lm_head.weight
        s = make_span(starts, n, causal, w.dtype, w.device)
        # each table's bias at the span's positions, selected when first used; _direct's attention masks
        s.extra = SimpleNamespace(bias=[None] * len(self._tables), self_mask=None, cross_mask=None)
        return s

    def _table(self, j: int, end: int) -> torch.Tensor:
        # A bias depends only on key - query, so one table serves every span: row p of it equals compute_bias for a
        # query at position p, without recomputing buckets per step.
        t = self._tables[j]
        if t is None or t.shape[-1] < end:
            size = max(end, 2 * (t.shape[-1] if t is not None else 32))
            t = self._tables[j] = self.rel_attns[j].compute_bias(size, size, device=self.lm_head.weight.device)
        return t

    def _bias(self, span: Span, i: int) -> torch.Tensor:
        """Layer i's relative-position bias for the span's queries at their true positions."""
        j = i if self.per_layer_bias else 0
        bias = span.extra.bias
        if bias[j] is None:
            t = self._table(j, span.end)
            if span.same_start is not None:
                bias[j] = t[:, :, span.same_start:span.same_start + span.nmax, :span.end]
            else:
                bias[j] = t[0][:, span.positions, :span.end].transpose(0, 1)
        return bias[j]

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        return self.embed_tokens(ids)  # T5 has no absolute positions

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        if self.direct:
            return self._direct(sess, i, h, span)
        if not self.per_layer_bias:
            sess.begin(span)
            return self.blocks[i](h, span.mask, self._bias(span, i), sess.enc, sess.cross_mask, None,
                                  cache=sess.cache)[0]
        # A umT5 layer takes no bias: it adds its own for queries at past, past + 1, ... with past its longest cached
        # row. Where the span's true positions differ (rows at different places, a stale deep layer), the additive
        # mask carries the difference.
        past = sess.kv.get_seq_length(i)
        mask = span.mask
        if span.same_start != past:
            true = self._bias(span, i)
            assumed = self._table(i, max(past + span.nmax, span.end))[:, :, past:past + span.nmax, :span.end]
            delta = true - assumed
            mask = delta if mask is None else mask + delta
        sess.begin(span)
        return self.blocks[i](h, mask, sess.enc, encoder_attention_mask=sess.cross_mask, cache=sess.cache)

    def _direct(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        """What the HF block computes at inference with sdpa, without what it redoes at every layer: the attention
        masks (relative bias + span mask; zeros + encoder padding) are made once per span and shared by the layers,
        where the HF block adds and copies them in each layer. The states are (rows * tokens, d) inside the layer:
        a projection of a 2-D input is one matrix product, the same one HF's 3-D input is folded into."""
        norm1, a, norm2, ca, norm3, ff = self._parts[i]
        rows, n, d = h.shape
        ext = span.extra
        if ext.self_mask is None:  # HF's sdpa path: position_bias (+ the float mask), contiguous
            bias = self._bias(span, i)
            ext.self_mask = (bias if span.mask is None else bias + span.mask).contiguous()
        split = lambda t: t.view(rows, n, -1, a.key_value_proj_dim).transpose(1, 2)  # noqa: E731
        h = h.reshape(rows * n, d)
        x = norm1(h)
        sess.begin(span)
        k, v = sess.kv.update(split(a.k(x)), split(a.v(x)), i)
        h = _clamp16(h + _attend(a, split(a.q(x)), k, v, ext.self_mask))
        cross = sess.cross.layers[i]
        q = split(ca.q(norm2(h)))
        if ext.cross_mask is None:  # a layer without relative bias attends with a zero bias (+ the padding mask)
            zeros = torch.zeros((1, ca.n_heads, n, cross.keys.shape[2]), device=q.device, dtype=q.dtype)
            ext.cross_mask = (zeros if sess.cross_mask is None else zeros + sess.cross_mask).contiguous()
        h = _clamp16(h + _attend(ca, q, cross.keys, cross.values, ext.cross_mask))
        return _clamp16(h + ff(norm3(h))).view(rows, n, d)

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h)

    def logits(self, h: torch.Tensor, head=None) -> torch.Tensor:
        """Exit logits; `head` (a Shortlist) replaces the LM head."""
        z = self.norm(h)
        return (head or self.lm_head)(z * self.scale if self.scale is not None else z)

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> None:
        """State propagation: layer i's K/V for the span's tokens, which skipped it, from their exit state.

        T5 keys carry no position (the relative bias is added to the scores).
        """
        layer = self.blocks[i].layer[0]
        attn, x = layer.SelfAttention, layer.layer_norm(h)
        sess.begin(span)
        sess.kv.update(heads(attn.k, x, attn.key_value_proj_dim), heads(attn.v, x, attn.key_value_proj_dim), i)


def _attend(attn, q, k, v, mask) -> torch.Tensor:
    """HF's sdpa attention and output projection of T5Attention for queries q (rows, heads, n, head_dim), as
    (rows * n, d)."""
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, scale=attn.scaling)
    return attn.o(o.transpose(1, 2).contiguous().reshape(q.shape[0] * q.shape[2], -1))


def _clamp16(h: torch.Tensor) -> torch.Tensor:
    """T5Block's clamp of float16 states after each sub-layer (a no-op in other dtypes)."""
    if h.dtype != torch.float16:
        return h
    top = torch.finfo(h.dtype).max
    clamp_value = torch.where(torch.isinf(h).any(), top - 1000, top)
    return torch.clamp(h, min=-clamp_value, max=clamp_value)
