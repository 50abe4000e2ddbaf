"""Methods whose tokens are never checked: the full model, static exiting and CALM.

Every method gives the Engine the same four things: `depth` (the layers of a step that does not exit), `begin`
(per-call set-up), `step` (one decoding step of the unfinished rows, emitting through the engine), `next_logits`
(the same step for beam search: each row's logits and record, nothing emitted) and `final_count` (how many of a
row's tokens no later pass can change: what a streamer may see). FREE (models/free.py) is the one method with
tokens on trial.
"""

import torch

from models.stats import TokenRecord
from util.skip_conf import decayed_threshold, needs_logits


class FullDepth:
    """Every row through the first `depth` layers: the full model (depth L, our reference path that must equal HF
    generate) or static exiting (depth k, equal to a model truncated to k decoder layers)."""

    block = False  # no exit block to prefill (FREE's exit at S may be one)

    def __init__(self, engine, depth: int):
        self.engine, self.depth = engine, depth

    def begin(self, call, batch_size: int) -> None:
        pass

    def step(self, call, batch) -> None:
        self.engine.choose(call, batch, *self.next_logits(call, batch))

    def next_logits(self, call, batch):
        e = self.engine
        call.stats.steps += len(batch)
        tok, pos = e.inputs(batch)
        span = e.adapter.span(pos)
        h = e.run_layers(call, e.adapter.embed(tok, span), span, range(self.depth))
        return e.head(h, self.depth)[:, -1], [TokenRecord(self.depth) for _ in batch]

    @staticmethod
    def final_count(r) -> int:
        return len(r.tokens)


class Calm(FullDepth):
    """CALM (Schuster et al. 2022): before layer i (i >= min_layer) the confidence of the layer-i exit is checked,
    against a threshold that may decay with the position; an exited token's remaining layers get K/V from its exit
    state (state propagation), so every layer's cache keeps the same length."""

    def __init__(self, engine):
        super().__init__(engine, engine.num_layers)

    def threshold_at(self, pos: int) -> float:
        p = self.engine.policy
        if p.position_temp is None:
            return p.threshold
        return decayed_threshold(p.threshold, pos + 1, p.max_answer_length or 1, p.position_temp,
                                           variant=p.decay_variant)

    def next_logits(self, call, batch):
        """Every row climbs until its confidence passes the threshold. A row that exits keeps its exit state as
        the input of every later layer, so the layers the batch still runs for the other rows write exactly
        its state-propagated K/V (a layer's K/V depend on its input only); its outputs there are dropped. Once
        every row has exited, the remaining layers get K/V from the exit states directly.
        The bookkeeping is Python lists, not tensors: a check costs a fraction of a layer on a small model, and
        each tensor op on a handful of rows is dispatch overhead (at batch 1 no row is ever gathered)."""
        e, st = self.engine, call.stats
        p, L = e.policy, e.num_layers
        st.steps += len(batch)
        tok, pos = e.inputs(batch)
        span = e.adapter.span(pos)
        h = e.adapter.embed(tok, span)
        thr = [self.threshold_at(q) for q in pos.tolist()]
        climbing, h_prev = list(range(len(batch))), None
        out, records = [None] * len(batch), [None] * len(batch)
        logits_needed = needs_logits(p.conf_type)
        for i in range(L):
            if i >= p.min_layer:
                hl = _rows(h, climbing)
                logits = e.head(hl, i, draft=True) if logits_needed else None
                c = e.confidence(hl, logits, None if h_prev is None else _rows(h_prev, climbing))
                leave = [q for q, b in enumerate(climbing) if c[q] > thr[b]]
                if leave:
                    ex = _rows(logits, leave) if logits is not None else e.head(_rows(hl, leave), i, draft=True)
                    for k, q in enumerate(leave):
                        b = climbing[q]
                        out[b], records[b] = ex[k, -1], TokenRecord(i, c[q])
                    st.kv_fill_tokens += (L - i) * len(leave)
                    st.sequential_layers += i * len(leave)
                    st.block_tokens += i * len(leave)
                    st.exits += len(leave)
                    gone = set(leave)
                    climbing = [b for q, b in enumerate(climbing) if q not in gone]
                    if not climbing:
                        for j in range(i, L):  # state propagation for every row
                            e.adapter.fill_kv(call.session, j, h, span)
                        return torch.stack(out), records
            h_prev, h = h, e.adapter.layer(call.session, i, h, span)
            if len(climbing) < len(batch):
                exited = [b for b in range(len(batch)) if b not in climbing]
                h[exited] = h_prev[exited]  # exited rows keep their exit state
        st.sequential_layers += L * len(climbing)
        st.block_tokens += L * len(climbing)
        logits = e.head(_rows(h, climbing), L)[:, -1]
        for q, b in enumerate(climbing):
            out[b], records[b] = logits[q], TokenRecord(L)
        return torch.stack(out), records


def _rows(x: torch.Tensor, idx: list) -> torch.Tensor:
    """Rows `idx` (ascending) of x; x itself when they are all of its rows, so a full batch is never gathered."""
    return x if len(idx) == x.shape[0] else x[idx]
