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

Decoding is greedy; rows of a batch are decoded one at a time (each row its own exit decisions).
Statistics are returned as data; timing lives outside.
"""

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from additional_args import EXIT_DEFAULTS
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


def _setting(cfg, key):
    """An exit setting from the config; the project default where the config has none (or None)."""
    value = getattr(cfg, key, None)
    return EXIT_DEFAULTS.get(key) if value is None else value


def policy_from_config(cfg, num_layers: int, has_meta_head: bool) -> Policy:
    """The decoding policy a config describes; ValueError for settings that cannot decode."""
    g = partial(_setting, cfg)
    static, calm, free = g("static_exit_layer"), g("use_early_exit"), g("use_shallow_deep")
    chosen = [n for n, on in (("static", static is not None), ("calm", calm), ("free", free)) if on]
    if len(chosen) > 1:
        raise ValueError(f"Choose one decoding method, got {' and '.join(chosen)}")
    method = chosen[0] if chosen else "full"
    p = Policy(method=method)
    if method == "static":
        if not 1 <= static <= num_layers:
            raise ValueError(f"static_exit_layer {static} is outside 1..{num_layers}")
        p.static_layer = static
    elif method == "calm":
        p.conf_type = g("exit_conf_type")
        if p.conf_type is None:
            raise ValueError("--use_early_exit needs --exit_conf_type (softmax, softmax_max, state or meta)")
        p.threshold = g("exit_conf_threshold")
        p.min_layer = max(1, g("exit_min_layer") or 1)
        if p.min_layer >= num_layers:
            raise ValueError(f"exit_min_layer {p.min_layer} leaves no layer to exit at (decoder has {num_layers})")
        p.position_temp = g("exit_position_temp")
        p.decay_variant = g("exit_decay_variant")
        p.max_answer_length = g("max_answer_length")
    elif method == "free":
        S = g("shallow_exit_layer")
        if S is None or not 1 <= S < num_layers:
            raise ValueError(f"shallow_exit_layer {S} must be in 1..{num_layers - 1}")
        p.shallow_layer, p.conf_type = S, g("shallow2deep_conf_type")
        if p.conf_type is None:
            raise ValueError("--use_shallow_deep needs --shallow2deep_conf_type (softmax, softmax_max, state or meta)")
        if p.conf_type == "state":
            raise ValueError("'state' compares consecutive layers; FREE checks once at S: use softmax or meta")
        p.threshold = g("shallow2deep_conf_threshold")
        p.copy_skipped = g("copy_skipped_hidden_states")
        p.causal = g("parallel_causal_mask")
        p.rollback = g("rollback_conf_threshold")
        p.verify = g("exact_verification")
        p.adapt = g("use_adapt_threshold")
        if not g("parallel_gen_token") and not p.copy_skipped:
            raise ValueError("parallel_gen_token False needs copy_skipped_hidden_states True (deep K/V must come "
                             "from somewhere)")
        if (p.verify or p.rollback is not None) and (p.copy_skipped or not p.causal):
            raise ValueError("exact_verification / rollback need the causal parallel pass (no copying)")
    if p.conf_type is not None:
        if not 0.0 <= p.threshold <= 1.0:
            raise ValueError(f"confidence threshold {p.threshold} is outside [0, 1]")
        if p.conf_type not in skip_conf.CONF_TYPES:
            raise ValueError(f"confidence type {p.conf_type!r} is not one of {skip_conf.CONF_TYPES}")
        if p.conf_type == "meta" and not has_meta_head:
            raise ValueError("confidence 'meta' needs a trained meta head: this checkpoint has none; train it with "
                             "--train_meta_cm_head True")
    return p


@dataclass
class TokenRecord:
    exit_layer: int
    confidence: float | None = None
    parallel: bool = False  # its deep K/V were filled by a later parallel pass


@dataclass
class DecodeStats:
    """Counts over one or more generate calls (sums, so they aggregate by addition)."""

    num_layers: int = 0
    sequences: int = 0
    tokens: int = 0  # emitted and kept
    steps: int = 0  # decoding steps, including those later rolled back
    sequential_layers: int = 0  # layers on each step's critical path
    block_tokens: int = 0  # (layer, token) pairs run through a full block, parallel fill included
    kv_fill_tokens: int = 0  # (layer, token) pairs that only got K/V (state propagation / copying)
    exits: int = 0
    parallel_passes: int = 0
    parallel_tokens: int = 0
    rollbacks: int = 0
    rolled_back_tokens: int = 0
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
            "rolled_back_tokens": self.rolled_back_tokens,
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
        self.step = 0

    @property
    def value(self) -> float:
        return self.bmm.threshold if self.bmm is not None else self.fixed

    def new_sequence(self) -> float:
        if self.bmm is not None and len(self.bmm) > 0:
            self.bmm.update()
        return self.value

    def explore(self) -> bool:
        self.step += 1
        return self.bmm is not None and self.bmm.should_explore(self.step - 1)


@dataclass
class _Seq:
    """One sequence being decoded."""

    sess: object
    tokens: list
    stack: list = field(default_factory=list)  # FREE: (layer-S state, confidence, shallow logits) per exited token
    scores: list = field(default_factory=list)  # logits each emitted token was taken from


class Engine:
    def __init__(self, adapter, policy: Policy, threshold: ThresholdState | None = None, meta_head=None):
        self.ad, self.p = adapter, policy
        self.L = adapter.num_layers
        self.thr = threshold or ThresholdState(policy, None)
        self.meta_head = meta_head

    # ---- confidence -------------------------------------------------------------------------------
    def _confidence(self, h, logits, h_prev=None):
        t = self.p.conf_type
        if t == "meta":
            return float(skip_conf.meta(self.meta_head, self.ad.normed(h))[0])
        if t == "state":
            return float(skip_conf.state_saturation(h_prev, h)[0])
        return float(skip_conf.confidence(t, logits=logits)[0])

    # ---- one decoding step per method: input token at position pos -> next token --------------------
    def _layers(self, seq, h, span, layers, st):
        """Run full blocks over a span; one sequential pass, span.n tokens of block compute per layer."""
        for i in layers:
            h = self.ad.layer(seq.sess, i, h, span)
        st.sequential_layers += len(layers)
        st.block_tokens += len(layers) * span.n
        return h

    def _step_full(self, seq, tok, pos, st, depth=None):
        depth = depth or self.L
        span = self.ad.span(pos, 1)
        h = self._layers(seq, self.ad.embed(tok, span), span, range(depth), st)
        self._emit(seq, st, self.ad.logits(h)[0, -1], TokenRecord(depth))

    def _step_calm(self, seq, tok, pos, st):
        p = self.p
        span = self.ad.span(pos, 1)
        h = self.ad.embed(tok, span)
        thr = skip_conf.decayed_threshold(p.threshold, pos + 1, p.max_answer_length or 1, p.position_temp,
                                          variant=p.decay_variant) if p.position_temp is not None else p.threshold
        h_prev = None
        for i in range(self.L):
            if i >= p.min_layer:
                logits = self.ad.logits(h) if skip_conf.needs_logits(p.conf_type) else None
                c = self._confidence(h, logits, h_prev)
                if c > thr:
                    for j in range(i, self.L):
                        self.ad.fill_kv(seq.sess, j, h, pos)
                    logits = logits if logits is not None else self.ad.logits(h)
                    st.kv_fill_tokens += self.L - i
                    st.sequential_layers += i
                    st.block_tokens += i
                    st.exits += 1
                    self._emit(seq, st, logits[0, -1], TokenRecord(i, c))
                    return
            h_prev, h = h, self.ad.layer(seq.sess, i, h, span)
        st.sequential_layers += self.L
        st.block_tokens += self.L
        self._emit(seq, st, self.ad.logits(h)[0, -1], TokenRecord(self.L))

    def _step_free(self, seq, tok, pos, st, last_allowed: bool):
        S = self.p.shallow_layer
        span = self.ad.span(pos, 1)
        h = self._layers(seq, self.ad.embed(tok, span), span, range(S), st)
        logits = self.ad.logits(h)
        c = self._confidence(h, logits)
        if c > self.thr.value and not self.thr.explore():
            seq.stack.append((h, c, logits))
            y = self._emit(seq, st, logits[0, -1], TokenRecord(S, c))
            st.exits += 1
            if self.p.verify and (last_allowed or y == self._eos):
                self._deep_pass(seq, None, st)  # an exact mode may not end on unverified tokens
            return
        self._deep_pass(seq, (h, c, logits), st)

    def _deep_pass(self, seq, current, st):
        """Run the stacked tokens (+ the current one) through the deep layers in one pass; emit / verify."""
        p, S, L = self.p, self.p.shallow_layer, self.L
        items = seq.stack + ([current] if current is not None else [])
        seq.stack = []
        k = len(items) - (current is not None)  # stacked (already emitted) tokens
        start = seq.sess.cache_len(S)  # deep caches hold every token before the stacked ones
        if p.copy_skipped and k > 0:
            stacked = torch.cat([it[0] for it in items[:k]], dim=1)
            for j in range(S, L):
                self.ad.fill_kv(seq.sess, j, stacked, start)
            st.kv_fill_tokens += (L - S) * k
            items, start = items[k:], start + k
        X = torch.cat([it[0] for it in items], dim=1)
        X = self._layers(seq, X, self.ad.span(start, X.shape[1], causal=p.causal), range(S, L), st)
        if k > 0 and not p.copy_skipped:
            st.parallel_passes += 1
            st.parallel_tokens += k
            for r in st.records[-k:]:  # the stacked tokens' records are the newest
                r.parallel = True
        need_all = k > 0 and not p.copy_skipped and (p.verify or p.rollback is not None or p.adapt)
        deep_logits = self.ad.logits(X if need_all else X[:, -1:])[0]
        deep_pred = deep_logits.argmax(-1)
        if need_all and p.adapt:
            shallow_pred = torch.stack([it[2][0, -1].argmax() for it in items])
            self.thr.bmm.add([it[1] for it in items], (shallow_pred == deep_pred).tolist())
        elif p.adapt and current is not None:
            self.thr.bmm.add([current[1]], [bool(current[2][0, -1].argmax() == deep_pred[-1])])  # upstream dropped these
        if need_all and (p.verify or p.rollback is not None):
            emitted = seq.tokens[-k:]  # stacked token j's output, the input at the position after it
            for j in range(k):
                if p.verify:
                    bad = int(deep_pred[j]) != emitted[j]
                else:
                    bad = F.cross_entropy(deep_logits[j:j + 1].float(), torch.tensor([emitted[j]])) > p.rollback
                if bad:
                    keep = len(seq.tokens) - k + j  # tokens up to and including the input at the cut position
                    st.rollbacks += 1
                    st.rolled_back_tokens += k - j
                    del seq.tokens[keep:]
                    del seq.scores[keep - 1:]
                    del st.records[len(st.records) - (k - j):]
                    self.ad.crop(seq.sess, keep)
                    self._emit(seq, st, deep_logits[j], TokenRecord(L))
                    return
        if current is not None:
            self._emit(seq, st, deep_logits[-1], TokenRecord(L, current[1]))

    # ---- the token loop -------------------------------------------------------------------------------
    @staticmethod
    def _emit(seq, st, logits, record) -> int:
        y = int(logits.argmax())
        seq.tokens.append(y)
        seq.scores.append(logits)
        st.records.append(record)
        return y

    @torch.no_grad()
    def decode_one(self, input_ids, attention_mask, start_token: int, max_new_tokens: int, eos: int | None,
                   st: DecodeStats):
        """Decode one sequence; returns (new tokens, sequence state).

        The adapter's session says what is already decoded: an encoder-decoder starts from
        [start_token] with empty decoder caches; a decoder-only model has run its prompt through every
        layer (prefill never exits; static exiting is a truncated model, so its prefill stops at k) and
        hands over the prompt and the logits of its last position. That first token is counted like a
        decoding step over `depth` layers; the rest of the prompt, like an encoder, is not counted.
        """
        self._eos = eos
        depth = self.p.static_layer if self.p.method == "static" else self.L
        sess = self.ad.start(input_ids, attention_mask, depth=depth)
        prompt = sess.prompt if getattr(sess, "prompt", None) is not None else [start_token]
        seq = _Seq(sess=sess, tokens=list(prompt))
        if self.p.method == "free":
            st.thresholds.append(self.thr.new_sequence())
        if getattr(sess, "first_logits", None) is not None and max_new_tokens > 0:
            st.steps += 1
            st.sequential_layers += depth
            st.block_tokens += depth
            self._emit(seq, st, sess.first_logits, TokenRecord(depth))
        device = input_ids.device
        while True:
            n_new = len(seq.tokens) - len(prompt)
            if n_new >= max_new_tokens or (n_new > 0 and seq.tokens[-1] == eos):
                break
            pos = len(seq.tokens) - 1  # the input token's position
            tok = torch.tensor([[seq.tokens[-1]]], device=device)
            st.steps += 1
            if self.p.method == "full":
                self._step_full(seq, tok, pos, st)
            elif self.p.method == "static":
                self._step_full(seq, tok, pos, st, depth=self.p.static_layer)
            elif self.p.method == "calm":
                self._step_calm(seq, tok, pos, st)
            else:
                self._step_free(seq, tok, pos, st, last_allowed=n_new + 1 >= max_new_tokens)
        st.sequences += 1
        st.tokens += len(seq.tokens) - len(prompt)
        return seq.tokens[len(prompt):], seq

    def generate(self, input_ids, attention_mask=None, *, start_token: int, max_new_tokens: int,
                 eos: int | None) -> tuple[list, DecodeStats]:
        """New tokens of every row (each row decoded alone, without its padding) and the counts."""
        st = DecodeStats(num_layers=self.L)
        rows = []
        for b in range(input_ids.shape[0]):
            ids = input_ids[b:b + 1]
            if attention_mask is not None:
                ids = ids[:, attention_mask[b].bool()]
            rows.append(self.decode_one(ids, None, start_token, max_new_tokens, eos, st)[0])
        return rows, st


def _first(*values):
    return next((v for v in values if v is not None), None)


class EarlyExitGenerationMixin:
    """Routes `generate()` into the engine when the config selects an exit method (or `use_engine=True`).

    The model keeps two things between calls, both on purpose: `exit_stats`, the counts of every engine
    call since the last `pop_exit_stats()` (Seq2SeqTrainer only sees tokens), and the adaptive threshold,
    which by design learns across sequences until `reset_exit_state()`.
    """

    adapter_cls = None

    def exit_policy(self) -> Policy:
        adapter = self.adapter_cls(self)
        return policy_from_config(self.config, adapter.num_layers, self._has_trained_meta_head())

    def _has_trained_meta_head(self) -> bool:
        return hasattr(self, "cm_head") and bool(getattr(self.config, "meta_head_trained", False))

    def pop_exit_stats(self) -> DecodeStats:
        st = getattr(self, "_exit_stats", None) or DecodeStats()
        self._exit_stats = DecodeStats()
        return st

    def reset_exit_state(self) -> None:
        self._threshold_state = None
        self._exit_stats = DecodeStats()

    def _threshold(self, policy: Policy) -> ThresholdState:
        key = (policy.threshold, policy.adapt, policy.shallow_layer, policy.conf_type)
        if getattr(self, "_threshold_key", None) != key or getattr(self, "_threshold_state", None) is None:
            self._threshold_state, self._threshold_key = ThresholdState(policy, self.config), key
        return self._threshold_state

    def generate(self, input_ids=None, attention_mask=None, use_engine: bool | None = None, **kwargs):
        policy = self.exit_policy()
        if policy.method == "full" and not use_engine:
            return super().generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        gc = kwargs.pop("generation_config", None) or self.generation_config
        num_beams = kwargs.pop("num_beams", None) or gc.num_beams or 1
        do_sample = kwargs.pop("do_sample", None)
        do_sample = gc.do_sample if do_sample is None else do_sample
        if num_beams > 1 or do_sample:
            raise ValueError(f"Early-exit decoding ({policy.method}) supports greedy search only; got "
                             f"num_beams={num_beams}, do_sample={do_sample}")
        if input_ids is None:
            raise ValueError("Early-exit generate() needs input_ids")
        cfg = self.config
        max_new = kwargs.pop("max_new_tokens", None)
        max_length = kwargs.pop("max_length", None)
        if max_new is None:  # HF counts the start token, or a decoder-only model's (padded) prompt, in max_length
            max_new = (max_length or gc.max_length or 20) - (1 if cfg.is_encoder_decoder else input_ids.shape[1])
        for k in ("synced_gpus", "use_cache", "cache", "past_key_values", "min_length", "min_new_tokens", "labels"):
            kwargs.pop(k, None)
        unknown = {k for k, v in kwargs.items() if v is not None and v is not False}  # e.g. return_dict_in_generate
        if unknown:
            raise ValueError(f"Early-exit generate() does not support {sorted(unknown)}")
        pad = _first(gc.pad_token_id, cfg.pad_token_id)
        start = _first(getattr(cfg, "decoder_start_token_id", None), gc.decoder_start_token_id, pad)
        eos = _first(gc.eos_token_id, cfg.eos_token_id)
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        pad = _first(pad, eos, 0)
        engine = Engine(self.adapter_cls(self), policy, self._threshold(policy), getattr(self, "cm_head", None))
        rows, st = engine.generate(input_ids, attention_mask, start_token=start, max_new_tokens=max_new, eos=eos)
        # HF's layout: encoder-decoder rows are [start] + new tokens; decoder-only rows are the (padded) prompt + new.
        head = input_ids if not cfg.is_encoder_decoder else torch.full_like(input_ids[:, :1], start)
        out = torch.full((len(rows), head.shape[1] + max(map(len, rows))), pad, dtype=torch.long,
                         device=input_ids.device)
        out[:, :head.shape[1]] = head
        for b, r in enumerate(rows):
            out[b, head.shape[1]:head.shape[1] + len(r)] = torch.tensor(r, dtype=torch.long)
        if getattr(self, "_exit_stats", None) is None:
            self._exit_stats = DecodeStats()
        self._exit_stats.add(st)
        return out
