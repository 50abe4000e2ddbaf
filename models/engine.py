"""The early-exit decoding engine: one token loop for every architecture and every exit policy.

An adapter (deploying_*.py) says how a model computes one layer over a span of positions; this module
decides which layers run. Methods:

- full:   every layer (our reference path; must equal HF greedy generate()).
- static: the first k layers (equals a model truncated to k decoder layers).
- calm:   before layer i (i >= exit_min_layer) the confidence of the layer-i exit is checked; on exit
          the remaining layers get K/V from the exit state (state propagation), so every layer's cache
          keeps the same length.
- free:   one check after S layers. Exited tokens push their layer-S state on a stack and leave the deep
          caches short; the next deep token runs stack + itself through layers S..L-1 in one causal pass,
          which writes exact deep K/V for all of them (synchronized parallel decoding). With
          exact_verification the deep predictions of the stacked tokens are compared with what was
          emitted and the sequence is cut back at the first disagreement, so greedy output equals the
          full model's. rollback_conf_threshold is the published, looser criterion (cross-entropy of the
          emitted token under the deep logits above a threshold).

Greedy search and sampling run in Engine.run (HF's processors and criteria applied by Rules); every row of a batch
takes its own exit decisions and gives the tokens it gives alone (see Engine and Engine._step_free for how FREE
schedules its deep passes in a batch). Beam search (models/beam.py) drives the engine a step at a time through
`next_logits` and `reorder`.
Statistics are returned as data; timing lives outside.
"""

import math
from dataclasses import dataclass, field, replace
from functools import partial

import torch
import torch.nn.functional as F

from additional_args import EXIT_DEFAULTS, validate_exit_settings
from models.deploying_common import Shortlist
from util import skip_conf
from util.bmm import BetaMixtureThreshold

@dataclass
class Policy:
    method: str = "full"
    static_layer: int | None = None
    conf_type: str | None = None
    threshold: float = 1.0
    min_layer: int = 1
    position_temp: float | None = None
    decay_variant: str = "calm"
    max_answer_length: int | None = None
    shallow_layer: int | None = None
    copy_skipped: bool = False
    causal: bool = True
    rollback: float | None = None
    verify: bool = False
    adapt: bool = False
    wait: float = 0.0  # FREE in a batch: share of unfinished rows with trial tokens that triggers a deep pass
    max_draft: int | None = None  # FREE: at most this many exits in a row; the next token goes deep
    shortlist: tuple | None = None  # token ids a confidence-gated exit scores (None: the whole vocabulary)
    fast_kernels: bool = False  # CPU: product layouts by shape (deploying_common.fast_product)


def _setting(cfg, key):
    """An exit setting from the config; the project default where the config has none (or None)."""
    value = getattr(cfg, key, None)
    return EXIT_DEFAULTS.get(key) if value is None else value


def policy_from_config(cfg, num_layers: int, has_meta_head: bool) -> Policy:
    """The decoding policy a config describes; ValueError for settings that cannot decode (the same checker as
    the command line's, so a value is accepted or refused alike from flags, code or a checkpoint)."""
    s = {k: _setting(cfg, k) for k in EXIT_DEFAULTS}
    # Decoding reads no training settings: a checkpoint trained with FREE's losses decodes with any method, or none.
    validate_exit_settings({**s, "intermediate_loss_fn": None, "train_meta_cm_head": False}, num_layers)
    static, calm, free = s["static_exit_layer"], s["use_early_exit"], s["use_shallow_deep"]
    method = "static" if static is not None else "calm" if calm else "free" if free else "full"
    if method == "static" and static == num_layers:
        method, static = "full", None  # every layer: the full model
    p = Policy(method=method, static_layer=static, fast_kernels=bool(s["fast_kernels"]))
    K = s["exit_shortlist_size"]
    if K is not None and method in ("calm", "free"):
        ranking = getattr(cfg, "exit_token_ranking", None)
        if not ranking:
            raise ValueError("--exit_shortlist_size needs the checkpoint's exit_token_ranking (the tokens the model "
                             "emits, most frequent first; scripts/train_exit_adapter.py writes it)")
        if K > len(ranking):
            raise ValueError(f"--exit_shortlist_size {K} is larger than the checkpoint's exit_token_ranking "
                             f"({len(ranking)} tokens)")
        p.shortlist = tuple(ranking[:K])
    if method == "calm":
        p.conf_type, p.threshold = s["exit_conf_type"], s["exit_conf_threshold"]
        p.min_layer = max(1, s["exit_min_layer"] or 1)
        p.position_temp, p.decay_variant = s["exit_position_temp"], s["exit_decay_variant"]
        p.max_answer_length = getattr(cfg, "max_answer_length", None)
    elif method == "free":
        p.shallow_layer, p.conf_type = s["shallow_exit_layer"], s["shallow2deep_conf_type"]
        p.threshold = s["shallow2deep_conf_threshold"]
        p.copy_skipped, p.causal = s["copy_skipped_hidden_states"], s["parallel_causal_mask"]
        p.rollback, p.verify = s["rollback_conf_threshold"], s["exact_verification"]
        p.adapt, p.wait = s["use_adapt_threshold"], s["deep_pass_wait"]
        p.max_draft = s["max_draft_tokens"]
    if p.conf_type == "meta" and not has_meta_head:
        raise ValueError("confidence 'meta' needs a trained meta head: this checkpoint has none; train it with "
                         "--train_meta_cm_head True")
    return p


@dataclass
class TokenRecord:
    exit_layer: int
    confidence: float | None = None
    parallel: bool = False  # its deep K/V were filled by a later parallel pass


def exit_tensors(records: list, steps: int):
    """(exit layers, confidences) of shape (rows, steps) from each row's TokenRecords (None or absent: padding,
    -1 and NaN), as generate() returns them."""
    layers = torch.full((len(records), steps), -1, dtype=torch.long)
    conf = torch.full((len(records), steps), float("nan"))
    for b, row in enumerate(records):
        for s, rec in enumerate(row):
            if rec is not None:
                layers[b, s] = rec.exit_layer
                if rec.confidence is not None:
                    conf[b, s] = rec.confidence
    return layers, conf


@dataclass
class DecodeStats:
    """Counts over one or more generate calls (sums, so they aggregate by addition)."""

    num_layers: int = 0
    sequences: int = 0
    tokens: int = 0  # emitted and kept
    steps: int = 0  # decoding steps, including those later rolled back or discarded
    sequential_layers: int = 0  # layers on each step's critical path
    block_tokens: int = 0  # (layer, token) pairs run through a full block, parallel fill included (rows riding
    # along in a batch are not counted: their work is what a single row would skip)
    kv_fill_tokens: int = 0  # (layer, token) pairs that only got K/V (state propagation / copying)
    exits: int = 0
    parallel_passes: int = 0
    parallel_tokens: int = 0
    rollbacks: int = 0  # exited tokens the deep layers rejected (verification) or rolled back
    checked: int = 0  # exited tokens the deep layers checked (verification)
    rolled_back_tokens: int = 0
    discarded_tokens: int = 0  # FREE in a batch: tokens decoded past a deep-layer token that the deep pass changed
    thresholds: list = field(default_factory=list)
    records: list = field(default_factory=list)

    def add(self, other: "DecodeStats") -> None:
        for k, v in vars(other).items():
            if k == "num_layers":
                self.num_layers = v
            elif isinstance(v, list):
                getattr(self, k).extend(v)
            else:
                setattr(self, k, getattr(self, k) + v)

    def summary(self) -> dict:
        t = max(self.tokens, 1)
        return {
            "avg_layers_per_token": round(self.sequential_layers / t, 4),
            "layer_flops_per_token": round(self.block_tokens / t, 4),
            "kv_fill_per_token": round(self.kv_fill_tokens / t, 4),
            "exit_ratio": round(self.exits / max(self.steps, 1), 4),
            "parallel_passes": self.parallel_passes,
            "parallel_tokens": self.parallel_tokens,
            "rollbacks": self.rollbacks,
            "checked": self.checked,  # acceptance rate of verified exits: 1 - rollbacks / checked
            "rolled_back_tokens": self.rolled_back_tokens,
            "discarded_tokens": self.discarded_tokens,
            "generated_tokens": self.tokens,
            "num_layers": self.num_layers,
        }


class ThresholdState:
    """FREE's threshold across calls: fixed, or the adaptive Beta-mixture estimate (refit before each sequence)."""

    def __init__(self, policy: Policy, cfg):
        self.fixed = policy.threshold
        self.bmm = None
        if policy.adapt:
            g = partial(_setting, cfg)
            self.bmm = BetaMixtureThreshold(
                init_threshold=policy.threshold, grid_min=g("adapt_grid_min"), grid_max=g("adapt_grid_max"),
                grid_points=g("adapt_grid_points"), zeta=g("adapt_zeta"), max_updates=g("adapt_max_updates"),
                window=g("adapt_window"), explore_every=g("adapt_explore_every"))

    @property
    def value(self) -> float:
        return self.bmm.threshold if self.bmm is not None else self.fixed

    def new_sequence(self) -> float:
        if self.bmm is not None and len(self.bmm) > 0:
            self.bmm.update()
        return self.value

    def explore(self, step: int) -> bool:
        """Whether a sequence's `step`-th confident step takes the deep pass anyway (per sequence, so a row's
        decisions do not depend on the other rows of its batch)."""
        return self.bmm is not None and self.bmm.should_explore(step)


class Rules:
    """HF's logits processors and stopping criteria, applied at the one place a token is chosen.

    HF builds both from the merged generation config and the call (generate() hands them to the engine); the
    engine calls them for every emitted token with the row's history as HF lays it out (the row's input as given,
    padding included, then its tokens up to that point -- after a cut-back, the history at the cut). A call gets
    the whole batch's shape with the row at its own index, since some processors hold per-row state (the padding
    lengths of the repetition penalty, the encoder ids of the encoder n-gram block); the other indices repeat
    the row. Exit decisions never see processed logits: confidence is measured on the raw exit logits.
    """

    def __init__(self, batch_size: int = 1, max_new_tokens: int = 20, eos=None, processors=None, criteria=None,
                 sample: bool = False):
        self.B, self.max_new, self.sample = batch_size, max_new_tokens, sample
        self.eos = frozenset([eos] if isinstance(eos, int) else eos or ())
        self.proc = processors if processors else None
        self.criteria = criteria if criteria else None

    def _tensor(self, rows, hists, like):
        H = torch.tensor([hists[0]] * self.B, dtype=torch.long, device=like.device)
        for r, h in zip(rows, hists):
            H[r.b] = torch.tensor(h, dtype=torch.long)
        return H

    def choose(self, rows, logits, upto=None):
        """(tokens, processed logits) for rows whose raw logits are `logits` (n, V); `upto[q]`: choose the token at
        index upto[q] of rows[q].tokens (default: the next one)."""
        P = self.process(rows, logits, upto)
        return self.pick(P), P

    def pick(self, processed) -> list:
        """Greedy: the argmax; sampling: a draw from the softmax of the processed (warped) logits, as HF draws."""
        if self.sample:
            return torch.multinomial(F.softmax(processed, dim=-1), num_samples=1)[:, 0].tolist()
        return processed.argmax(-1).tolist()

    def process(self, rows, logits, upto=None):
        """The processed logits (see choose)."""
        if self.proc is None:
            return logits
        out = torch.empty_like(logits)
        groups = {}
        for q, r in enumerate(rows):
            h = r.history(None if upto is None else upto[q])
            groups.setdefault(len(h), []).append((q, h))
        for qh in groups.values():
            qs = [q for q, _ in qh]
            S = logits[qs[0]].expand(self.B, -1).clone()
            for q in qs:
                S[rows[q].b] = logits[q]
            P = self.proc(self._tensor([rows[q] for q in qs], [h for _, h in qh], logits), S)
            for q in qs:
                out[q] = P[rows[q].b]
        return out

    def stops(self, r) -> bool:
        """Whether row r ends after its last token (HF's criteria: length, end tokens, stop strings, time, ...)."""
        if r.new >= self.max_new or (r.new > 0 and r.tokens[-1] in self.eos):
            return True
        if self.criteria is None:
            return False
        S = r.scores[-1].expand(self.B, -1)
        return bool(self.criteria(self._tensor([r], [r.history()], S), S)[r.b])


@dataclass
class _Item:
    """A FREE token whose deep K/V are not filled yet."""

    h: torch.Tensor  # (1, 1, d) layer-S state
    conf: float
    deep: bool  # the deep layers decide this token (low confidence, or explored); emitted on trial until then
    counted: int  # the row's confident-step count after this step (restored when the row is cut back here)
    logits: torch.Tensor | None = None  # beam search: the layer-S logits (the adaptive threshold compares them)


@dataclass
class _Row:
    """One sequence of the batch."""

    tokens: list  # prompt (or [start]) + emitted tokens
    prompt_len: int
    b: int = 0  # index in the caller's batch
    head: list = field(default_factory=list)  # the row's input as HF lays it out (padded prompt, or [start])
    stack: list = field(default_factory=list)  # FREE: _Item per token not yet through the deep layers
    scores: list = field(default_factory=list)  # processed logits each emitted token was chosen from
    logits: list = field(default_factory=list)  # the raw logits behind them
    stop: bool = False  # a stopping criterion holds after the last token
    streamed: int = 0  # tokens handed to the streamer (prompt included)
    records: list = field(default_factory=list)  # TokenRecord per emitted token
    confident_steps: int = 0  # FREE steps above the threshold so far (the exploration schedule counts these)
    waiting: bool = False  # FREE: would finish, but tokens on trial (or, verifying, unchecked ones) are left

    @property
    def new(self) -> int:
        return len(self.tokens) - self.prompt_len

    def history(self, upto: int | None = None) -> list:
        """HF's input_ids of this row before token index `upto` of `tokens` (default: all of them)."""
        return self.head + self.tokens[self.prompt_len:upto]

    def cut(self, keep: int) -> None:
        """Keep the first `keep` tokens (prompt included)."""
        gone = len(self.tokens) - keep
        del self.tokens[keep:]
        del self.scores[len(self.scores) - gone:]
        del self.logits[len(self.logits) - gone:]
        del self.records[len(self.records) - gone:]


class Engine:
    """Decodes a batch; every row takes its own exit decisions.

    Every layer call takes all unfinished rows: a call costs about the same for the whole batch as for part
    of it, and picking rows out would copy their caches. Rows with nothing of their own to compute ride along:
    a CALM row that exited feeds its exit state to the later layers (which writes its state-propagated K/V),
    a FREE row that waits or has nothing to run is padding (see _step_free). Rows that finish leave the batch
    (their caches are dropped), so they stop costing compute. A row's tokens are the ones it gets alone, up to
    floating-point
    noise: batched matrix products and a padded encoder change logits in the last bits, which can flip a
    decision whose confidence sits within ~1e-4 of its threshold. Statistics count per token as when each row is
    decoded alone; FREE's batch schedule adds what it changes: merged deep passes and discarded trial work.
    """

    def __init__(self, adapter, policy: Policy, threshold: ThresholdState | None = None, meta_head=None,
                 exit_adapters=None):
        self.ad, self.p = adapter, policy
        self.L = adapter.num_layers
        self.thr = threshold or ThresholdState(policy, None)
        self.meta_head = meta_head
        self.exit_adapters = dict(exit_adapters or {})  # layer -> trained module in front of the shared head
        self.device = adapter.lm_head.weight.device
        self.depth = policy.static_layer if policy.method == "static" else self.L  # layers of a non-exiting step
        if policy.fast_kernels and hasattr(adapter, "use_direct_layers"):
            adapter.use_direct_layers()
        self.shortlist = (Shortlist(policy.shortlist, adapter.lm_head, getattr(adapter, "bias", None))
                          if policy.shortlist else None)
        # FREE's exit at S may be a block that attends (trained for that layer): it runs on every token's layer-S
        # state, so its own cache is always complete, and is cut back with the rest
        self.block = policy.method == "free" and getattr(adapter, "block_layer", None) == policy.shallow_layer

    def _head(self, h, layer: int, draft: bool = False):
        """Exit logits of layer `layer`'s state: through its trained exit adapter, if any, then the shared head
        (a `draft` exit, whose token a confidence decides, scores only the shortlist when there is one)."""
        a = self.exit_adapters.get(layer)
        head = self.shortlist if draft and layer < self.L else None
        return self.ad.logits(a(h) if a is not None else h, head)

    # ---- confidence -------------------------------------------------------------------------------
    def _confidence(self, h, logits, h_prev=None) -> list:
        """Per-row confidence as Python floats (one host transfer; compared with thresholds as Python floats)."""
        t = self.p.conf_type
        if t == "meta":
            c = skip_conf.meta(self.meta_head, self.ad.normed(h))
        elif t == "state":
            c = skip_conf.state_saturation(h_prev, h)
        else:
            c = skip_conf.confidence(t, logits=logits)
        return c.reshape(-1).tolist()

    def _calm_threshold(self, pos: int) -> float:
        p = self.p
        if p.position_temp is None:
            return p.threshold
        return skip_conf.decayed_threshold(p.threshold, pos + 1, p.max_answer_length or 1, p.position_temp,
                                           variant=p.decay_variant)

    # ---- one decoding step per method, over the unfinished rows (in session order) --------------------
    def _inputs(self, batch):
        tok = torch.tensor([[r.tokens[-1]] for r in batch], device=self.device)
        pos = torch.tensor([len(r.tokens) - 1 for r in batch])  # the input tokens' positions
        return tok, pos

    def _layers(self, sess, h, span, layers, st):
        """Run full blocks over a span: one sequential pass per row with tokens, n tokens of block compute each."""
        for i in layers:
            h = self.ad.layer(sess, i, h, span)
        st.sequential_layers += len(layers) * sum(k > 0 for k in span.n)  # padding rows do not count
        st.block_tokens += len(layers) * sum(span.n)
        return h

    def _step_full(self, sess, batch, st, depth):
        self._choose(batch, *self._full_logits(sess, batch, st, depth))

    def _step_calm(self, sess, batch, st):
        self._choose(batch, *self._calm_logits(sess, batch, st))

    def _choose(self, batch, logits, records):
        """Greedy or sampling: each row's token from its next-token logits."""
        ys, proc = self.rules.choose(batch, logits)
        for j, (r, y) in enumerate(zip(batch, ys)):
            self._emit(r, logits[j], proc[j], records[j], y)

    def _full_logits(self, sess, batch, st, depth):
        """(next-token logits of every row, their records) through the first `depth` layers."""
        st.steps += len(batch)
        tok, pos = self._inputs(batch)
        span = self.ad.span(pos)
        h = self._layers(sess, self.ad.embed(tok, span), span, range(depth), st)
        return self._head(h, depth)[:, -1], [TokenRecord(depth) for _ in batch]

    def _calm_logits(self, sess, batch, st):
        """Every row climbs until its confidence passes the threshold. A row that exits keeps its exit state as
        the input of every later layer, so the layers the batch still runs for the other rows write exactly
        its state-propagated K/V (a layer's K/V depend on its input only); its outputs there are dropped. Once
        every row has exited, the remaining layers get K/V from the exit states directly.
        The bookkeeping is Python lists, not tensors: a check costs a fraction of a layer on a small model, and
        each tensor op on a handful of rows is dispatch overhead (at batch 1 no row is ever gathered)."""
        p, L = self.p, self.L
        st.steps += len(batch)
        tok, pos = self._inputs(batch)
        span = self.ad.span(pos)
        h = self.ad.embed(tok, span)
        thr = [self._calm_threshold(q) for q in pos.tolist()]
        live, h_prev = list(range(len(batch))), None  # rows still climbing
        out, records = [None] * len(batch), [None] * len(batch)
        logits_needed = skip_conf.needs_logits(p.conf_type)
        for i in range(L):
            if i >= p.min_layer:
                hl = _rows(h, live)
                logits = self._head(hl, i, draft=True) if logits_needed else None
                c = self._confidence(hl, logits, None if h_prev is None else _rows(h_prev, live))
                o = [q for q, b in enumerate(live) if c[q] > thr[b]]
                if o:
                    ex = _rows(logits, o) if logits is not None else self._head(_rows(hl, o), i, draft=True)
                    for k, q in enumerate(o):
                        b = live[q]
                        out[b], records[b] = ex[k, -1], TokenRecord(i, c[q])
                    st.kv_fill_tokens += (L - i) * len(o)
                    st.sequential_layers += i * len(o)
                    st.block_tokens += i * len(o)
                    st.exits += len(o)
                    gone = set(o)
                    live = [b for q, b in enumerate(live) if q not in gone]
                    if not live:
                        for j in range(i, L):  # state propagation for every row
                            self.ad.fill_kv(sess, j, h, span)
                        return torch.stack(out), records
            h_prev, h = h, self.ad.layer(sess, i, h, span)
            if len(live) < len(batch):
                exited = [b for b in range(len(batch)) if b not in live]
                h[exited] = h_prev[exited]  # exited rows keep their exit state
        st.sequential_layers += L * len(live)
        st.block_tokens += L * len(live)
        logits = self._head(_rows(h, live), L)[:, -1]
        for q, b in enumerate(live):
            out[b], records[b] = logits[q], TokenRecord(L)
        return torch.stack(out), records

    def _step_free(self, sess, batch, st):
        """Shallow layers for every row not waiting; then, when enough rows need them, one deep pass.

        A token the deep layers must decide (confidence at or below the threshold) is emitted on trial with the
        shallow prediction and its row goes on. The deep pass runs once `wait` of the unfinished rows have such
        tokens (0: at once, the published schedule) and takes each of those rows' stacks up to its last trial
        token: exactly the passes the row would have run alone, merged, with the same K/V and logits. Where the
        deep prediction differs from a trial token, the row is cut back and takes the deep token, so every
        row's output is the one it gets alone; only the work past a changed token is lost (`discarded_tokens`).
        A layer call costs about the same over the whole batch as over part of it, so both passes take every
        row, the others as padding (no tokens, nothing kept) -- no gathered copy of the caches either.
        """
        S = self.p.shallow_layer
        ready = [not r.waiting for r in batch]
        if any(ready):
            h, logits, c = self._shallow(sess, batch, ready, st)
            go = [j for j in range(len(batch)) if ready[j]]
            ys, proc = self.rules.choose([batch[j] for j in go], logits if len(go) == len(batch) else logits[go])
            thr = self.thr.value
            for q, j in enumerate(go):
                r = batch[j]
                deep = self._stack(r, h[j:j + 1], c[j], thr)
                self._emit(r, logits[j], proc[q], TokenRecord(S, c[j]), ys[q])
                st.exits += not deep
                if r.stop:
                    r.waiting = self._unsettled(r)
        due = [j for j, r in enumerate(batch) if r.waiting or any(it.deep for it in r.stack)]
        if due and (len(due) >= self._due_rows(len(batch)) or all(r.waiting for r in batch)):
            self._deep_pass(sess, batch, due, st)

    def _shallow(self, sess, batch, ready, st):
        """The shallow layers for the ready rows (the others ride along as padding): (states, layer-S logits,
        confidences)."""
        st.steps += sum(ready)
        tok, pos = self._inputs(batch)
        span = self.ad.span(pos, torch.tensor(ready, dtype=torch.long))
        h = self._layers(sess, self.ad.embed(tok, span), span, range(self.p.shallow_layer), st)
        if self.block:
            logits = self.ad.logits(self.ad.exit_block(sess, h, span), self.shortlist)[:, -1]
        else:
            logits = self._head(h, self.p.shallow_layer, draft=True)[:, -1]
        return h, logits, self._confidence(h, logits[:, None])

    def _stack(self, r, h, conf: float, thr: float, logits=None) -> bool:
        """Push a row's layer-S state; whether the deep layers decide its token (low confidence, or explored)."""
        deep = True
        if conf > thr:
            r.confident_steps += 1
            deep = self.thr.explore(r.confident_steps - 1) or self._draft_full(r)
        r.stack.append(_Item(h, conf, deep, r.confident_steps, logits))
        return deep

    def _draft_full(self, r) -> bool:
        """Whether the row has drafted max_draft exits since its last deep token (draft-length control: the next
        token goes deep, and the deep pass verifies the run; the cap comes from the cost of the deep pass)."""
        if self.p.max_draft is None:
            return False
        run = 0
        for it in reversed(r.stack):
            if it.deep:
                break
            run += 1
        return run >= self.p.max_draft

    def _unsettled(self, r) -> bool:
        """Whether a row may not end yet: tokens on trial, or (an exact mode) tokens the deep layers did not check."""
        return any(it.deep for it in r.stack) or (self.p.verify and bool(r.stack))

    def _due_rows(self, batch_size: int) -> int:
        # One trial token per pass where a pass must put its tokens at consecutive positions with a causal mask:
        # the copy variant fills the stacked tokens apart from the trial one; the bidirectional pass would let a
        # trial token see later ones.
        if self.p.copy_skipped or not self.p.causal:
            return 1
        return max(1, math.ceil(self.p.wait * batch_size - 1e-9))  # 1e-9: 0.14 * 50 is 7.000000000000001

    def _deep_pass(self, sess, batch, due, st):
        """The due rows' stacks, each up to its last trial token (all of it for a final check), through the deep
        layers in one pass; then each row's trial tokens are settled and its checks run."""
        items, run, at = self._deep_run(sess, batch, due, st)
        for j in due:
            self._settle(sess, j, batch[j], items[j], len(items[j]) - len(run[j]), at, st)

    def _deep_run(self, sess, batch, due, st):
        """The deep pass itself: (the items each row sent, those that ran the layers rather than being copied,
        {(row, index in run): deep logits} where a decision or a check needs them)."""
        p, S, L = self.p, self.p.shallow_layer, self.L
        items = [[] for _ in batch]
        for j in due:
            r = batch[j]
            last = max((i for i, it in enumerate(r.stack) if it.deep), default=-1) + 1
            upto = len(r.stack) if r.waiting and p.verify else last
            items[j] = r.stack[:upto]
        starts = sess.kv.lens[S].clone()  # deep caches hold every token before the stacked ones
        if p.copy_skipped:  # one trial token, last: the tokens before it get K/V from their layer-S state
            ks = [len(it) - 1 if it else 0 for it in items]
            if any(ks):
                span = self.ad.span(starts, ks)
                X = _padded([it[:k] for it, k in zip(items, ks)])
                for j in range(S, L):
                    self.ad.fill_kv(sess, j, X, span)
                st.kv_fill_tokens += (L - S) * sum(ks)
                starts += torch.tensor(ks)
            run = [it[k:] for it, k in zip(items, ks)]
        else:
            run = items
        n = torch.tensor([len(it) for it in run])
        span = self.ad.span(starts, n, causal=p.causal)
        X = self._layers(sess, _padded(run), span, range(S, L), st)
        # deep logits where a decision or a check needs them
        every = p.verify or p.rollback is not None or p.adapt
        where = [(j, i) for j in due for i, it in enumerate(run[j]) if every or it.deep]
        at = {}
        if where:
            rows = torch.tensor([j for j, _ in where], device=X.device)
            cols = torch.tensor([i for _, i in where], device=X.device)
            at = dict(zip(where, self._head(X[rows, cols][:, None], L)[:, 0]))
        return items, run, at

    def _settle(self, sess, j, r, items, copied, at, st):
        """One row after a deep pass: walk its processed tokens in order, decide trial tokens, run the checks,
        and cut the row back at the first change. `copied`: leading tokens whose K/V were copied (no logits).

        Counts follow the passes the row would have run alone: a segment is the exited tokens before a deep
        token (or before a final check), one pass each.
        """
        p, L = self.p, self.L
        first = len(r.tokens) - len(r.stack)  # index in r.tokens of the first stacked item's token
        r.stack, r.waiting = r.stack[len(items):], False
        seg = 0  # the current segment's first item
        for i, it in enumerate(items[copied:], copied):
            t = first + i
            dl = at.get((j, i - copied))
            if dl is None:  # an exited token nothing checks
                continue
            pl = self.rules.process([r], dl[None], [t])[0]
            x, q = r.tokens[t], r.scores[t - r.prompt_len]  # the emitted token and what it was chosen from
            if p.adapt:  # did the shallow exit choose what the deep layers choose?
                self.thr.bmm.add([it.conf], [int(q.argmax()) == int(pl.argmax())])
            if it.deep or p.verify:  # the deep layers decide: greedy agreement, or speculative sampling's test
                st.checked += not it.deep
                y = accept_or_resample(pl, q, x) if self.rules.sample else int(pl.argmax())
                changed = y != x
            elif p.rollback is not None:
                ce = F.cross_entropy(dl[None].float(), torch.tensor([x], device=dl.device))
                changed = bool(ce > p.rollback)
                y = self.rules.pick(pl[None])[0] if changed else x
            else:
                changed = False
            if changed:
                end = next((x for x in range(i, len(items)) if items[x].deep), len(items) - 1)  # segment's last
                exited = end - seg + (not items[end].deep)
                self._segment(r, first + seg, exited, st)
                if not it.deep:  # the published rollback / exact verification of an exited token
                    st.rollbacks += 1
                    st.rolled_back_tokens += end - i + (not items[end].deep)
                st.discarded_tokens += len(r.tokens) - 1 - (first + end)  # decoded only on trial
                r.cut(t)
                r.stack, r.confident_steps = [], it.counted
                sess.kv.crop(j, t)
                self._emit(r, dl, pl, TokenRecord(L, it.conf if it.deep else None), y)
                return
            if it.deep:
                self._segment(r, first + seg, i - seg, st)
                seg = i + 1
                r.scores[t - r.prompt_len], r.logits[t - r.prompt_len] = pl, dl
                r.records[t - r.prompt_len] = TokenRecord(L, it.conf)
        if seg < len(items):  # a final check: the exited tokens after the last deep one
            self._segment(r, first + seg, len(items) - seg, st)

    def _segment(self, r, start, k, st):
        """k exited tokens from r.tokens[start] went through the deep layers in parallel (copied: only K/V)."""
        if k > 0 and not self.p.copy_skipped:
            st.parallel_passes += 1
            st.parallel_tokens += k
            for rec in r.records[start - r.prompt_len:start - r.prompt_len + k]:
                rec.parallel = True

    # ---- the token loop -------------------------------------------------------------------------------
    def _emit(self, r, logits, processed, record, y: int) -> None:
        r.tokens.append(y)
        r.logits.append(logits)
        r.scores.append(processed)
        r.records.append(record)
        r.stop = self.rules.stops(r)

    @staticmethod
    def _finished(r) -> bool:
        return r.stop and not r.waiting

    def _settled(self, r) -> int:
        """How many of r.tokens no deep pass can change any more (what a streamer may see)."""
        exact = self.p.verify or self.p.rollback is not None
        k = next((i for i, it in enumerate(r.stack) if it.deep or exact), len(r.stack))
        return len(r.tokens) - len(r.stack) + k

    def _stream(self, r, streamer) -> None:
        end = self._settled(r)
        for y in r.tokens[r.streamed:end]:
            streamer.put(torch.tensor([y]))
        r.streamed = max(r.streamed, end)

    def open(self, input_ids, attention_mask, start_token, st, encoder_out=None, copies: int = 1):
        """A batch's session and rows. With `copies` > 1 the rows come in runs of that many identical ones (HF
        repeats every input num_beams times for beam search): each distinct row is encoded or prefilled once and
        its caches are copied."""
        ids, mask, enc = input_ids, attention_mask, encoder_out
        if copies > 1:
            ids, mask, enc = (None if t is None else t[::copies] for t in (input_ids, attention_mask, encoder_out))
        sess = self.ad.start(ids, mask, depth=self.depth, enc=enc, **({"block": True} if self.block else {}))
        if copies > 1:
            sess.select(torch.arange(ids.shape[0]).repeat_interleave(copies).tolist())
        B = input_ids.shape[0]
        if sess.prompts is not None:  # decoder-only: HF's history starts with the row as given, padding included
            rows = [_Row(list(pr), len(pr), b, input_ids[b].tolist()) for b, pr in enumerate(sess.prompts)]
        else:
            rows = [_Row([start_token], 1, b, [start_token]) for b in range(B)]
        if self.p.method == "free":  # the adaptive threshold is refit between batches, fixed within one
            st.thresholds.extend([self.thr.new_sequence()] * B)
        return sess, rows

    def _first_logits(self, sess, rows, st):
        """Decoder-only: the first new token's logits, from the state of each prompt's end (prefill never exits)."""
        n, depth = len(rows), self.depth
        st.steps += n
        st.sequential_layers += depth * n
        st.block_tokens += depth * n
        return self._head(sess.first_hidden, depth)[:, 0], [TokenRecord(depth) for _ in rows]

    # ---- beam search (models/beam.py keeps the beams; the engine gives each beam's logits) ------------------
    @torch.no_grad()
    def next_logits(self, sess, rows, st):
        """(next-token logits of every row at the layer it exits at, their records): one step of every row."""
        if sess.first_hidden is not None:
            out = self._first_logits(sess, rows, st)
            sess.first_hidden = None
            return out
        if self.p.method in ("full", "static"):
            return self._full_logits(sess, rows, st, self.depth)
        if self.p.method == "calm":
            return self._calm_logits(sess, rows, st)
        return self._free_logits(sess, rows, st)

    def _free_logits(self, sess, batch, st):
        """FREE for beam search: a token the deep layers decide gets their logits in this very step (the deep
        pass runs at once, the published schedule), since a beam's score must come from the distribution its
        token is kept under; so there are no trial tokens and nothing is cut back."""
        S, L = self.p.shallow_layer, self.L
        h, logits, c = self._shallow(sess, batch, [True] * len(batch), st)
        thr, records, due = self.thr.value, [], []
        for j, r in enumerate(batch):
            deep = self._stack(r, h[j:j + 1], c[j], thr, logits[j])
            records.append(TokenRecord(L if deep else S, c[j]))
            if deep:
                due.append(j)
            else:
                st.exits += 1
        if due:
            items, run, at = self._deep_run(sess, batch, due, st)
            logits = logits.clone()
            for j in due:
                r, its, copied = batch[j], items[j], len(items[j]) - len(run[j])
                if self.p.adapt:  # did the shallow exit choose what the deep layers choose?
                    for i, it in enumerate(its[copied:], copied):
                        self.thr.bmm.add([it.conf], [int(it.logits.argmax()) == int(at[j, i - copied].argmax())])
                logits[j] = at[j, len(run[j]) - 1]
                self._segment(r, len(r.tokens) - len(its) + 1, len(its) - 1, st)  # the exited tokens before it
                r.stack = []
        return logits, records

    def reorder(self, sess, rows, src: list, tokens: list, records: list):
        """Beam search: the next step's row q continues rows[src[q]] with tokens[q] (chosen from the logits behind
        records[src[q]]), with a copy of everything that row owns: its K/V of every layer and their lengths, FREE's
        stack of tokens waiting for the deep layers and its exploration counter."""
        new = [replace(rows[s], tokens=rows[s].tokens + [y], stack=list(rows[s].stack),
                       records=rows[s].records + [records[s]]) for s, y in zip(src, tokens)]
        if src != list(range(len(rows))):
            sess.select(src)
        return new

    @torch.no_grad()
    def run(self, input_ids, attention_mask, start_token: int, max_new_tokens: int, eos, st: DecodeStats,
            processors=None, criteria=None, encoder_out=None, streamer=None, sample: bool = False):
        """Decode a (padded) batch; returns its rows and the session (holding the rows in `sess.order`).

        The adapter's session says what is already decoded: an encoder-decoder starts every row from
        [start_token] with empty decoder caches (its encoder output may be given); a decoder-only model has run
        each prompt through every layer (prefill never exits; static exiting is a truncated model, so its prefill
        stops at k) and hands over the prompts and the states of their last positions. That first token is counted
        like a decoding step over `depth` layers; the rest of the prompt, like an encoder, is not counted.
        `eos` is one end-token id or several; `processors` / `criteria` are HF's lists (see Rules); a streamer
        (batch size 1) gets each token once it is final.
        """
        B = input_ids.shape[0]
        self.rules = Rules(B, max_new_tokens, eos, processors, criteria, sample)
        depth = self.depth
        sess, rows = self.open(input_ids, attention_mask, start_token, st, encoder_out)
        for r in rows:
            r.stop, r.streamed = max_new_tokens <= 0, r.prompt_len
        if sess.first_hidden is not None and max_new_tokens > 0:
            self._choose(rows, *self._first_logits(sess, rows, st))
        active = list(range(B))  # unfinished rows, in the session's order
        while True:
            if streamer is not None:
                self._stream(rows[0], streamer)
            keep = [j for j, b in enumerate(active) if not self._finished(rows[b])]
            if not keep:
                break
            if len(keep) < len(active):
                sess.select(keep)
                active = [active[j] for j in keep]
            batch = [rows[b] for b in active]
            if self.p.method in ("full", "static"):
                self._step_full(sess, batch, st, depth)
            elif self.p.method == "calm":
                self._step_calm(sess, batch, st)
            else:
                self._step_free(sess, batch, st)
        if streamer is not None:
            streamer.end()
        sess.order = active
        st.sequences += B
        st.tokens += sum(r.new for r in rows)
        for r in rows:
            st.records.extend(r.records)
        return rows, sess


def accept_or_resample(p_logits, q_logits, x: int) -> int:
    """Speculative sampling's test (Leviathan et al. 2023; Chen et al. 2023): keep x, drawn from q, with probability
    min(1, p(x) / q(x)); otherwise draw from the normalised residual max(0, p - q). The result is distributed as p
    (the deep layers' processed, warped distribution) whatever q is."""
    p, q = F.softmax(p_logits.float(), -1), F.softmax(q_logits.float(), -1)
    if float(torch.rand((), device=p.device)) * float(q[x]) < float(p[x]):
        return x
    res = (p - q).clamp_min(0)
    total = float(res.sum())
    return int(torch.multinomial(res / total if total > 0 else p, 1))


def _rows(x: torch.Tensor, idx: list) -> torch.Tensor:
    """Rows `idx` (ascending) of x; x itself when they are all of its rows, so a full batch is never gathered."""
    return x if len(idx) == x.shape[0] else x[idx]


def _padded(items) -> torch.Tensor:
    """(rows, longest, d): each row's stacked layer-S states, right-padded with zeros (a row may have none)."""
    ref = next(it[0].h for it in items if it)
    X = ref.new_zeros(len(items), max(map(len, items)), ref.shape[-1])
    for b, it in enumerate(items):
        if it:
            X[b, :len(it)] = torch.cat([x.h for x in it], dim=1)[0]
    return X
