"""FREE (Bae et al. 2023): a shallow-deep module with synchronized parallel decoding, as a drafter and a verifier.

One confidence check after S layers (the shallow exit, or an exit block that attends). An exited token pushes its
layer-S state on the row's stack and leaves the deep caches short; the next deep token runs stack + itself through
layers S..L-1 in one causal pass, which writes exact deep K/V for all of them (synchronized parallel decoding,
Sec. 3.2). With exact verification the deep predictions of the stacked tokens are compared with what was emitted
and the row is cut back at the first disagreement (greedy: the deep argmax; sampling: speculative sampling's
test), so the output is the full model's -- self-speculative decoding whose draft length the confidence sets.
rollback_conf_threshold is the published, looser criterion (cross-entropy of the emitted token under the deep
logits above a threshold). The threshold may be the adaptive Beta-mixture estimate (Sec. 3.3).

In a batch a token the deep layers must decide is emitted on trial with the shallow prediction and its row goes
on; the deep pass waits until `wait` of the unfinished rows have such tokens (0: at once, the published
schedule) and then runs each of those rows' stacks up to its last trial token: exactly the passes the row would
have run alone, merged, with the same K/V and logits.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.stats import TokenRecord


@dataclass
class StackedToken:
    """A token whose deep K/V are not filled yet."""

    h: torch.Tensor  # (1, 1, d) layer-S state
    conf: float
    deep: bool  # the deep layers decide this token (low confidence, or explored); emitted on trial until then
    counted: int  # the row's confident-step count after this step (restored when the row is cut back here)
    logits: torch.Tensor | None = None  # beam search: the layer-S logits (the adaptive threshold compares them)


class Free:
    def __init__(self, engine):
        self.engine, self.depth = engine, engine.num_layers
        p = engine.policy
        self.shallow_layer, self.verify, self.rollback = p.shallow_layer, p.verify, p.rollback
        # the exit at S may be a block that attends (trained for that layer): it runs on every token's layer-S
        # state, so its own cache is always complete, and is cut back with the rest
        self.block = getattr(engine.adapter, "block_layer", None) == p.shallow_layer

    def begin(self, call, batch_size: int) -> None:
        # the adaptive threshold is refit between batches, fixed within one
        call.stats.thresholds.extend([self.engine.threshold.new_sequence()] * batch_size)

    # ---- the token loop -------------------------------------------------------------------------------
    def step(self, call, batch) -> None:
        """Shallow layers for every row not waiting; then, when enough rows need them, one deep pass.

        A token the deep layers must decide (confidence at or below the threshold) is emitted on trial with the
        shallow prediction. Where the deep prediction later differs from a trial token, the row is cut back and
        takes the deep token, so every row's output is the one it gets alone; only the work past a changed token
        is lost (`discarded_tokens`). A layer call costs about the same over the whole batch as over part of it,
        so both passes take every row, the others as padding (no tokens, nothing kept) -- no gathered copy of
        the caches either.
        """
        e, st = self.engine, call.stats
        ready = [not r.waiting for r in batch]
        if any(ready):
            h, logits, c = self.shallow_pass(call, batch, ready)
            go = [j for j in range(len(batch)) if ready[j]]
            ys, processed = call.rules.choose([batch[j] for j in go], logits if len(go) == len(batch) else logits[go])
            thr = e.threshold.value
            for q, j in enumerate(go):
                r = batch[j]
                deep = self.push(r, h[j:j + 1], c[j], thr)
                e.emit(call, r, logits[j], processed[q], TokenRecord(self.shallow_layer, c[j]), ys[q])
                st.exits += not deep
                if r.stop:
                    r.waiting = self.unchecked(r)
        due = [j for j, r in enumerate(batch) if r.waiting or any(it.deep for it in r.stack)]
        if due and (len(due) >= self.rows_for_deep_pass(len(batch)) or all(r.waiting for r in batch)):
            self.deep_pass(call, batch, due)

    def shallow_pass(self, call, batch, ready):
        """The shallow layers for the ready rows (the others ride along as padding): (states, layer-S logits,
        confidences)."""
        e, S = self.engine, self.shallow_layer
        call.stats.steps += sum(ready)
        tok, pos = e.inputs(batch)
        span = e.adapter.span(pos, torch.tensor(ready, dtype=torch.long))
        h = e.run_layers(call, e.adapter.embed(tok, span), span, range(S))
        if self.block:
            logits = e.adapter.logits(e.adapter.exit_block(call.session, h, span), e.shortlist)[:, -1]
        else:
            logits = e.head(h, S, draft=True)[:, -1]
        return h, logits, e.confidence(h, logits[:, None])

    def push(self, r, h, conf: float, thr: float, logits=None) -> bool:
        """Push a row's layer-S state; whether the deep layers decide its token (low confidence, or explored)."""
        deep = True
        if conf > thr:
            r.confident_steps += 1
            deep = self.engine.threshold.explore(r.confident_steps - 1) or self.draft_is_full(r)
        r.stack.append(StackedToken(h, conf, deep, r.confident_steps, logits))
        return deep

    def draft_is_full(self, r) -> bool:
        """Whether the row has drafted max_draft exits since its last deep token (draft-length control: the next
        token goes deep, and the deep pass verifies the run; the cap comes from the cost of the deep pass)."""
        cap = self.engine.policy.max_draft
        if cap is None:
            return False
        drafted = 0
        for it in reversed(r.stack):
            if it.deep:
                break
            drafted += 1
        return drafted >= cap

    def unchecked(self, r) -> bool:
        """Whether a row may not end yet: tokens on trial, or (an exact mode) tokens the deep layers did not check."""
        return any(it.deep for it in r.stack) or (self.verify and bool(r.stack))

    def rows_for_deep_pass(self, batch_size: int) -> int:
        # One trial token per pass where a pass must put its tokens at consecutive positions with a causal mask:
        # the copy variant fills the stacked tokens apart from the trial one; the bidirectional pass would let a
        # trial token see later ones.
        p = self.engine.policy
        if p.copy_skipped or not p.causal:
            return 1
        return max(1, math.ceil(p.wait * batch_size - 1e-9))  # 1e-9: 0.14 * 50 is 7.000000000000001

    def final_count(self, r) -> int:
        """How many of r.tokens no deep pass can change any more (what a streamer may see)."""
        exact = self.verify or self.rollback is not None
        k = next((i for i, it in enumerate(r.stack) if it.deep or exact), len(r.stack))
        return r.stack_start + k

    # ---- the deep pass ---------------------------------------------------------------------------------
    def deep_pass(self, call, batch, due):
        """The due rows' stacks, each up to its last trial token (all of it for a final check), through the deep
        layers in one pass; then each row's trial tokens are decided and its checks run."""
        sent, ran, deep_logits = self.run_deep_layers(call, batch, due)
        for j in due:
            self.resolve(call, j, batch[j], sent[j], len(sent[j]) - len(ran[j]), deep_logits)

    def run_deep_layers(self, call, batch, due):
        """(the stacked tokens each row sent, those that ran the layers rather than being copied,
        {(row, index in ran): deep logits} where a decision or a check needs them)."""
        e, st = self.engine, call.stats
        p, S, L = e.policy, self.shallow_layer, e.num_layers
        sent = [[] for _ in batch]
        for j in due:
            r = batch[j]
            last_trial = max((i for i, it in enumerate(r.stack) if it.deep), default=-1) + 1
            sent[j] = r.stack[:len(r.stack) if r.waiting and self.verify else last_trial]
        starts = call.session.kv.lens[S].clone()  # deep caches hold every token before the stacked ones
        if p.copy_skipped:  # one trial token, last: the tokens before it get K/V from their layer-S state
            copied = [len(s) - 1 if s else 0 for s in sent]
            if any(copied):
                span = e.adapter.span(starts, copied)
                X = _padded([s[:k] for s, k in zip(sent, copied)])
                for j in range(S, L):
                    e.adapter.fill_kv(call.session, j, X, span)
                st.kv_fill_tokens += (L - S) * sum(copied)
                starts += torch.tensor(copied)
            ran = [s[k:] for s, k in zip(sent, copied)]
        else:
            ran = sent
        span = e.adapter.span(starts, torch.tensor([len(s) for s in ran]), causal=p.causal)
        X = e.run_layers(call, _padded(ran), span, range(S, L))
        every = self.verify or self.rollback is not None or p.adapt
        where = [(j, i) for j in due for i, it in enumerate(ran[j]) if every or it.deep]
        deep_logits = {}
        if where:
            rows = torch.tensor([j for j, _ in where], device=X.device)
            cols = torch.tensor([i for _, i in where], device=X.device)
            deep_logits = dict(zip(where, e.head(X[rows, cols][:, None], L)[:, 0]))
        return sent, ran, deep_logits

    def resolve(self, call, j, r, sent, copied, deep_logits):
        """Row r (batch index j) after a deep pass: walk the tokens it sent in order, decide trial tokens, run
        the checks, and cut the row back at the first change. `copied`: leading tokens whose K/V were copied (no
        logits).

        Counts follow the passes the row would have run alone: a segment is the exited tokens before a deep
        token (or before a final check), one pass each.
        """
        e, st, rules = self.engine, call.stats, call.rules
        base = r.stack_start  # r.tokens index of sent[0]
        r.stack, r.waiting = r.stack[len(sent):], False
        segment = 0  # index in `sent` of the current segment's first token
        for i, it in enumerate(sent[copied:], copied):
            t = base + i
            dl = deep_logits.get((j, i - copied))
            if dl is None:  # an exited token nothing checks
                continue
            deep_scores = rules.process([r], dl[None], [t])[0]
            emitted, draft_scores = r.tokens[t], r.scores[r.slot(t)]
            if e.policy.adapt:  # did the shallow exit choose what the deep layers choose?
                e.threshold.bmm.add([it.conf], [int(draft_scores.argmax()) == int(deep_scores.argmax())])
            if it.deep or self.verify:  # the deep layers decide: greedy agreement, or speculative sampling's test
                st.checked += not it.deep
                y = (accept_or_resample(deep_scores, draft_scores, emitted) if rules.sample
                     else int(deep_scores.argmax()))
                changed = y != emitted
            elif self.rollback is not None:
                ce = F.cross_entropy(dl[None].float(), torch.tensor([emitted], device=dl.device))
                changed = bool(ce > self.rollback)
                y = rules.pick(deep_scores[None])[0] if changed else emitted
            else:
                changed = False
            if changed:
                end = next((k for k in range(i, len(sent)) if sent[k].deep), len(sent) - 1)  # segment's last
                self.count_parallel(r, base + segment, end - segment + (not sent[end].deep), st)
                if not it.deep:  # the published rollback / exact verification of an exited token
                    st.rollbacks += 1
                    st.rolled_back_tokens += end - i + (not sent[end].deep)
                st.discarded_tokens += len(r.tokens) - 1 - (base + end)  # decoded only on trial
                r.cut(t)
                r.stack, r.confident_steps = [], it.counted
                call.session.kv.crop(j, t)
                e.emit(call, r, dl, deep_scores, TokenRecord(e.num_layers, it.conf if it.deep else None), y)
                return
            if it.deep:
                self.count_parallel(r, base + segment, i - segment, st)
                segment = i + 1
                r.scores[r.slot(t)], r.logits[r.slot(t)] = deep_scores, dl
                r.records[r.slot(t)] = TokenRecord(e.num_layers, it.conf)
        if segment < len(sent):  # a final check: the exited tokens after the last deep one
            self.count_parallel(r, base + segment, len(sent) - segment, st)

    def count_parallel(self, r, start, k, st):
        """k exited tokens from r.tokens[start] went through the deep layers in parallel (copied: only K/V)."""
        if k > 0 and not self.engine.policy.copy_skipped:
            st.parallel_passes += 1
            st.parallel_tokens += k
            for rec in r.records[r.slot(start):r.slot(start) + k]:
                rec.parallel = True

    # ---- beam search ------------------------------------------------------------------------------------
    def next_logits(self, call, batch):
        """A token the deep layers decide gets their logits in this very step (the deep pass runs at once, the
        published schedule), since a beam's score must come from the distribution its token is kept under; so
        there are no trial tokens and nothing is cut back."""
        e, st = self.engine, call.stats
        S, L = self.shallow_layer, e.num_layers
        h, logits, c = self.shallow_pass(call, batch, [True] * len(batch))
        thr, records, due = e.threshold.value, [], []
        for j, r in enumerate(batch):
            deep = self.push(r, h[j:j + 1], c[j], thr, logits[j])
            records.append(TokenRecord(L if deep else S, c[j]))
            if deep:
                due.append(j)
            else:
                st.exits += 1
        if due:
            sent, ran, deep_logits = self.run_deep_layers(call, batch, due)
            logits = logits.clone()
            for j in due:
                r, its, copied = batch[j], sent[j], len(sent[j]) - len(ran[j])
                if e.policy.adapt:  # did the shallow exit choose what the deep layers choose?
                    for i, it in enumerate(its[copied:], copied):
                        agree = int(it.logits.argmax()) == int(deep_logits[j, i - copied].argmax())
                        e.threshold.bmm.add([it.conf], [agree])
                logits[j] = deep_logits[j, len(ran[j]) - 1]
                self.count_parallel(r, r.stack_start + 1, len(its) - 1, st)  # the exited tokens before it
                r.stack = []
        return logits, records


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


def _padded(stacks) -> torch.Tensor:
    """(rows, longest, d): each row's stacked layer-S states, right-padded with zeros (a row may have none)."""
    ref = next(s[0].h for s in stacks if s)
    X = ref.new_zeros(len(stacks), max(map(len, stacks)), ref.shape[-1])
    for b, s in enumerate(stacks):
        if s:
            X[b, :len(s)] = torch.cat([x.h for x in s], dim=1)[0]
    return X
