"""The early-exit decoding engine: one token loop for every architecture and every exit method.

An adapter (deploying_*.py) says how a model computes one layer over a span of positions; a method object says
which layers each token runs (models/methods.py: full, static, CALM; models/free.py: FREE); the Engine keeps the
loop, the rows and the statistics. In the terms of self-speculative decoding every method is a drafter whose
tokens leave at an exit, and FREE with exact verification adds the verifier: one deep pass over a drafted run.

Greedy search and sampling run in Engine.run (HF's processors and criteria applied by Rules); every row of a batch
takes its own exit decisions and gives the tokens it gives alone. Beam search (models/beam.py) drives the engine a
step at a time through `open`, `next_logits` and `reorder`. Statistics are returned as data; timing lives outside.
"""

import copy
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from models.deploying_common import Shortlist
from models.methods import Calm, FullDepth
from models.free import Free
from models.policy import Policy, ThresholdState
from models.stats import DecodeStats, TokenRecord
from util.skip_conf import confidence as logits_confidence, meta, state_saturation

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
        # A criterion is asked about one row's history at a time, trial tokens included, so what it remembers
        # between calls must not outlive the call: lm-evaluation-harness's stop-sequence criterion marks a batch
        # index done for good, which would end every other row (and a row whose trial token is later replaced).
        kept = [(c, {k: copy.copy(v) for k, v in vars(c).items() if isinstance(v, (list, dict, set))})
                for c in self.criteria]
        try:
            return bool(self.criteria(self._tensor([r], [r.history()], S), S)[r.b])
        finally:
            for c, state in kept:
                vars(c).update(state)



@dataclass
class Row:
    """One sequence of the batch.

    Index scheme, used everywhere: `tokens[t]` is the row's t-th token, prompt (or [start]) first; an emitted token
    tokens[t] (t >= prompt_len) was chosen from scores[t - prompt_len] (processed logits) and logits[t - prompt_len]
    (raw), and records[t - prompt_len] describes it (`slot(t)` is that index). FREE's stack holds the states of the
    last len(stack) tokens: stack[i] belongs to tokens[len(tokens) - len(stack) + i] (`stack_start`).
    """

    tokens: list
    prompt_len: int
    b: int = 0  # index in the caller's batch
    head: list = field(default_factory=list)  # the row's input as HF lays it out (padded prompt, or [start])
    stack: list = field(default_factory=list)  # FREE: a StackedToken per token not yet through the deep layers
    scores: list = field(default_factory=list)
    logits: list = field(default_factory=list)
    stop: bool = False  # a stopping criterion holds after the last token
    streamed: int = 0  # tokens handed to the streamer (prompt included)
    records: list = field(default_factory=list)  # TokenRecord per emitted token
    confident_steps: int = 0  # FREE steps above the threshold so far (the exploration schedule counts these)
    waiting: bool = False  # FREE: would finish, but tokens on trial (or, verifying, unchecked ones) are left

    @property
    def new(self) -> int:
        return len(self.tokens) - self.prompt_len

    @property
    def stack_start(self) -> int:
        return len(self.tokens) - len(self.stack)

    def slot(self, t: int) -> int:
        return t - self.prompt_len

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


@dataclass
class DecodeCall:
    """One generate call's state, passed to every step: the adapter's session (the caches), HF's rules (None for
    beam search, where HF processes the scores itself) and the counts."""

    session: object
    stats: DecodeStats
    rules: Rules | None = None


class Engine:
    """Decodes a batch; every row takes its own exit decisions.

    Every layer call takes all unfinished rows: a call costs about the same for the whole batch as for part
    of it, and picking rows out would copy their caches. Rows with nothing of their own to compute ride along
    (see each method). Rows that finish leave the batch (their caches are dropped), so they stop costing compute.
    A row's tokens are the ones it gets alone, up to floating-point noise: batched matrix products and a padded
    encoder change logits in the last bits, which can flip a decision whose confidence sits within ~1e-4 of its
    threshold. Statistics count per token as when each row is decoded alone; FREE's batch schedule adds what it
    changes: merged deep passes and discarded trial work.
    """

    def __init__(self, adapter, policy: Policy, threshold: ThresholdState | None = None, meta_head=None,
                 exit_adapters=None):
        self.adapter, self.policy = adapter, policy
        self.num_layers = adapter.num_layers
        self.threshold = threshold or ThresholdState(policy)
        self.meta_head = meta_head
        self.exit_adapters = dict(exit_adapters or {})  # layer -> trained module in front of the shared head
        self.device = adapter.lm_head.weight.device
        if policy.fast_kernels and hasattr(adapter, "use_direct_layers"):
            adapter.use_direct_layers()
        self.shortlist = (Shortlist(policy.shortlist, adapter.lm_head, getattr(adapter, "bias", None))
                          if policy.shortlist else None)
        if policy.method in ("full", "static"):
            self.method = FullDepth(self, policy.static_layer if policy.method == "static" else self.num_layers)
        elif policy.method == "calm":
            self.method = Calm(self)
        else:
            self.method = Free(self)
        self.depth = self.method.depth  # layers of a step that does not exit (and of a decoder-only prefill)

    # ---- what every method computes with -----------------------------------------------------------
    def head(self, h, layer: int, draft: bool = False):
        """Exit logits of layer `layer`'s state: through its trained exit adapter, if any, then the shared head
        (a `draft` exit, whose token a confidence decides, scores only the shortlist when there is one)."""
        a = self.exit_adapters.get(layer)
        head = self.shortlist if draft and layer < self.num_layers else None
        return self.adapter.logits(a(h) if a is not None else h, head)

    def confidence(self, h, logits, h_prev=None) -> list:
        """Per-row confidence as Python floats (one host transfer; compared with thresholds as Python floats)."""
        kind = self.policy.conf_type
        if kind == "meta":
            c = meta(self.meta_head, self.adapter.normed(h))
        elif kind == "state":
            c = state_saturation(h_prev, h)
        else:
            c = logits_confidence(kind, logits=logits)
        return c.reshape(-1).tolist()

    def inputs(self, batch):
        """Each row's last token and its position: the input of the next step."""
        tok = torch.tensor([[r.tokens[-1]] for r in batch], device=self.device)
        pos = torch.tensor([len(r.tokens) - 1 for r in batch])
        return tok, pos

    def run_layers(self, call, h, span, layers):
        """Full blocks over a span: one sequential pass per row with tokens, n tokens of block compute each."""
        for i in layers:
            h = self.adapter.layer(call.session, i, h, span)
        call.stats.sequential_layers += len(layers) * sum(k > 0 for k in span.n)  # padding rows do not count
        call.stats.block_tokens += len(layers) * sum(span.n)
        return h

    def emit(self, call, r, logits, processed, record, y: int) -> None:
        r.tokens.append(y)
        r.logits.append(logits)
        r.scores.append(processed)
        r.records.append(record)
        r.stop = call.rules.stops(r)

    def choose(self, call, batch, logits, records):
        """Greedy or sampling: each row's token from its next-token logits."""
        ys, processed = call.rules.choose(batch, logits)
        for j, (r, y) in enumerate(zip(batch, ys)):
            self.emit(call, r, logits[j], processed[j], records[j], y)

    # ---- a call ---------------------------------------------------------------------------------------
    def open(self, input_ids, attention_mask, start_token, stats, encoder_out=None, copies: int = 1):
        """A batch's DecodeCall and rows. With `copies` > 1 the rows come in runs of that many identical ones (HF
        repeats every input num_beams times for beam search): each distinct row is encoded or prefilled once and
        its caches are copied."""
        ids, mask, enc = input_ids, attention_mask, encoder_out
        if copies > 1:
            ids, mask, enc = (None if t is None else t[::copies] for t in (input_ids, attention_mask, encoder_out))
        sess = self.adapter.start(ids, mask, depth=self.depth, enc=enc,
                                  **({"block": True} if self.method.block else {}))
        if copies > 1:
            sess.select(torch.arange(ids.shape[0]).repeat_interleave(copies).tolist())
        B = input_ids.shape[0]
        if sess.prompts is not None:  # decoder-only: HF's history starts with the row as given, padding included
            rows = [Row(list(pr), len(pr), b, input_ids[b].tolist()) for b, pr in enumerate(sess.prompts)]
        else:
            rows = [Row([start_token], 1, b, [start_token]) for b in range(B)]
        call = DecodeCall(sess, stats)
        self.method.begin(call, B)
        return call, rows

    def first_logits(self, call, rows):
        """Decoder-only: the first new token's logits, from the state of each prompt's end (prefill never exits)."""
        n, depth, st = len(rows), self.depth, call.stats
        st.steps += n
        st.sequential_layers += depth * n
        st.block_tokens += depth * n
        return self.head(call.session.first_hidden, depth)[:, 0], [TokenRecord(depth) for _ in rows]

    # ---- beam search (models/beam.py keeps the beams; the engine gives each beam's logits) ------------------
    @torch.no_grad()
    def next_logits(self, call, rows):
        """(next-token logits of every row at the layer it exits at, their records): one step of every row."""
        if call.session.first_hidden is not None:
            out = self.first_logits(call, rows)
            call.session.first_hidden = None
            return out
        return self.method.next_logits(call, rows)

    def reorder(self, call, rows, src: list, tokens: list, records: list):
        """Beam search: the next step's row q continues rows[src[q]] with tokens[q] (chosen from the logits behind
        records[src[q]]), with a copy of everything that row owns: its K/V of every layer and their lengths, FREE's
        stack of tokens waiting for the deep layers and its exploration counter."""
        new = [replace(rows[s], tokens=rows[s].tokens + [y], stack=list(rows[s].stack),
                       records=rows[s].records + [records[s]]) for s, y in zip(src, tokens)]
        if src != list(range(len(rows))):
            call.session.select(src)
        return new

    def _stream(self, r, streamer) -> None:
        end = self.method.final_count(r)
        for y in r.tokens[r.streamed:end]:
            streamer.put(torch.tensor([y]))
        r.streamed = max(r.streamed, end)

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
        call, rows = self.open(input_ids, attention_mask, start_token, st, encoder_out)
        call.rules = Rules(B, max_new_tokens, eos, processors, criteria, sample)
        sess = call.session
        for r in rows:
            r.stop, r.streamed = max_new_tokens <= 0, r.prompt_len
        if sess.first_hidden is not None and max_new_tokens > 0:
            self.choose(call, rows, *self.first_logits(call, rows))
        active = list(range(B))  # unfinished rows, in the session's order
        while True:
            if streamer is not None:
                self._stream(rows[0], streamer)
            keep = [j for j, b in enumerate(active) if not (rows[b].stop and not rows[b].waiting)]
            if not keep:
                break
            if len(keep) < len(active):
                sess.select(keep)
                active = [active[j] for j in keep]
            self.method.step(call, [rows[b] for b in active])
        if streamer is not None:
            streamer.end()
        sess.order = active
        st.sequences += B
        st.tokens += sum(r.new for r in rows)
        for r in rows:
            st.records.extend(r.records)
        return rows, sess
