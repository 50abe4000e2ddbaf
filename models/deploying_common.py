"""What every adapter shares: the batch's ragged K/V cache, the span of positions a call computes, the session.

The engine decodes a batch in which every row is at its own place: after a run of exits one row's deep layers
hold fewer tokens than another's, a decoder-only row's prompt is shorter, a rolled-back row is cut. So the
cache keeps, per layer, one buffer (rows, heads, capacity, head_dim) in which slot t holds the token at
position t, and a length per row and layer; every call takes every row and says at which positions
(`Span.starts`, `Span.n` tokens each, right-padded to `Span.nmax`; a row with nothing to do has n = 0).
Padding queries write K/V at or
past their row's length; a row's length only grows by a call that writes every slot it covers, so a slot below
the length always holds a real token. The mask a call gets lets each query see the keys at positions up to its
own (or, for the bidirectional variant, its row's whole span); junk past a row's length is only ever seen by
that row's own padding queries, whose outputs are dropped.
The HF layers are reused unchanged: they call `cache.update()`, which writes at the span's positions and
returns the buffers up to the span's last position.
"""

import statistics
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Protocol

import torch
import torch.nn.functional as F
from transformers.cache_utils import EncoderDecoderCache


@dataclass
class Span:
    starts: list  # first position of each row's tokens
    n: list  # real tokens per row; the rest up to nmax are padding
    ends: torch.Tensor  # (b,) starts + n on CPU: each row's cache length after the call
    nmax: int
    end: int  # keys the call attends over: max(starts) + nmax
    positions: torch.Tensor  # (b, nmax) true positions, on the model's device
    mask: torch.Tensor | None  # (b, 1, nmax, end) additive; None when every key is visible to every query
    same_start: int | None  # the common first position when every row has the same, else None
    longest: int  # max(ends): the longest row's cache length after the call
    extra: object = None  # what the architecture adds (T5: relative bias; LLaMA: RoPE cos/sin)

    @property
    def size(self) -> int:
        return len(self.starts)


def make_span(starts, n, causal: bool, dtype, device) -> Span:
    # Python lists: a span is built once per pass and batches are small, so tensor ops would cost more here.
    starts = starts.tolist() if torch.is_tensor(starts) else list(starts)
    n = n.tolist() if torch.is_tensor(n) else list(n) if isinstance(n, (list, tuple)) else [n] * len(starts)
    nmax = max(n)
    end = max(starts) + nmax
    same_start = starts[0] if all(x == starts[0] for x in starts) else None
    if same_start is not None:
        positions = torch.arange(same_start, same_start + nmax, device=device).expand(len(starts), -1)
    else:
        positions = torch.tensor([[x + i for i in range(nmax)] for x in starts], device=device)
    ends = [x + k for x, k in zip(starts, n)]
    longest = max(ends)
    ends = torch.tensor(ends)
    if same_start is not None and nmax == 1:
        mask = None  # one query per row over a prefix every row has in full (for nmax > 1 HF's sdpa would
        # assume a causal span starting at key 0 and crop the keys, so longer spans always get a mask)
    else:
        keys = torch.arange(end, device=device)
        if causal:
            visible = keys[None, None, :] <= positions[:, :, None]
        else:
            visible = (keys[None, :] < ends.to(device)[:, None])[:, None, :].expand(-1, nmax, -1)
        mask = torch.zeros(visible.shape, dtype=dtype, device=device).masked_fill(~visible, torch.finfo(dtype).min)
        mask = mask[:, None]
    return Span(starts, n, ends, nmax, end, positions, mask, same_start, longest)


def windowed(span: Span, window: int, dtype) -> torch.Tensor | None:
    """The span's mask for a sliding-window layer: a query at position q sees only keys q - window < k <= q
    (HF's sliding-window overlay); the same as the span's mask while no query reaches the window."""
    if max(span.starts) + span.nmax <= window:
        return span.mask
    keys = torch.arange(span.end, device=span.positions.device)
    old = keys[None, None, :] <= span.positions[:, :, None] - window
    mask = span.mask if span.mask is not None else torch.zeros(old.shape, dtype=dtype, device=old.device)[:, None]
    return mask.masked_fill(old[:, None], torch.finfo(dtype).min)


class RaggedCache:
    """Decoder self-attention K/V of a batch; row r's layer i holds positions 0 .. lens[i, r] - 1."""

    def __init__(self, batch: int, num_layers: int):
        self.keys, self.values = [None] * num_layers, [None] * num_layers
        self.lens = torch.zeros(num_layers, batch, dtype=torch.long)
        self.longest = [0] * num_layers  # lens[i].max() as Python ints: HF layers ask for it at every call
        self.span = None  # set by the adapter before each layer call

    def update(self, k, v, layer, *args, **kwargs):
        s = self.span
        if self.keys[layer] is None or self.keys[layer].shape[2] < s.end:
            self._grow(layer, k, s.end)
        K, V = self.keys[layer], self.values[layer]
        if s.same_start is not None:
            a, b = s.same_start, s.same_start + s.nmax
            K[:, :, a:b], V[:, :, a:b] = k, v
        else:
            positions = _on(s.positions, K)  # layers of one model may sit on several devices
            r = torch.arange(K.shape[0], device=K.device)[:, None].expand(-1, s.nmax)
            K[r, :, positions], V[r, :, positions] = k.transpose(1, 2), v.transpose(1, 2)
        self.lens[layer] = s.ends
        self.longest[layer] = s.longest
        return K[:, :, :s.end], V[:, :, :s.end]

    def _grow(self, layer, like, need):
        old = self.keys[layer]
        cap = max(need, 2 * old.shape[2] if old is not None else 64)
        shape = (self.lens.shape[1], like.shape[1], cap, like.shape[3])
        K, V = like.new_zeros(shape), like.new_zeros(shape)
        if old is not None:
            K[:, :, :old.shape[2]], V[:, :, :old.shape[2]] = old, self.values[layer]
        self.keys[layer], self.values[layer] = K, V

    def get_seq_length(self, layer: int = 0) -> int:
        return self.longest[layer]

    def crop(self, row: int, length: int) -> None:
        self.lens[:, row].clamp_(max=length)
        self._remeasure()

    def select(self, keep: torch.Tensor) -> None:
        self.lens = self.lens[:, keep]
        self._remeasure()
        self.keys = [K[_on(keep, K)] if K is not None else None for K in self.keys]
        self.values = [V[_on(keep, V)] if V is not None else None for V in self.values]

    def _remeasure(self) -> None:
        """`longest` again from `lens`, after a change that is not a layer call's update."""
        self.longest = self.lens.max(1).values.tolist() if self.lens.numel() else [0] * len(self.longest)

    def row(self, layer: int, row: int = 0):
        """(keys, values) of one row's valid prefix in one layer, (heads, length, head_dim) each."""
        n = int(self.lens[layer, row])
        if self.keys[layer] is None:
            return None, None
        return self.keys[layer][row, :, :n], self.values[layer][row, :, :n]


class CrossKV:
    """Cross-attention K/V of every decoder layer, computed once from the encoder output (HF's layers read
    `.layers[i].keys` / `.values` once `is_updated` says so)."""

    def __init__(self, keys: list, values: list):
        self.layers = [SimpleNamespace(keys=k, values=v) for k, v in zip(keys, values)]

    def select(self, keep):
        for layer in self.layers:
            layer.keys, layer.values = layer.keys[_on(keep, layer.keys)], layer.values[_on(keep, layer.values)]


class EncDecCache(EncoderDecoderCache):
    """What HF's encoder-decoder layers expect: self-attention in a RaggedCache, cross-attention precomputed."""

    def __init__(self, self_kv: RaggedCache, cross: CrossKV):  # not the parent's: it checks for HF Cache classes
        self.self_attention_cache, self.cross_attention_cache = self_kv, cross
        self.is_updated = {i: True for i in range(len(cross.layers))}

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.self_attention_cache.get_seq_length(layer_idx)


@dataclass
class Session:
    """Decoding state of a batch: the decoder caches and, per architecture, encoder output or prompts."""

    kv: RaggedCache
    cache: object  # what the HF layers are given: kv itself, or an EncDecCache around it
    enc: torch.Tensor | None = None
    cross_mask: torch.Tensor | None = None  # additive mask of the encoder's padding
    cross: CrossKV | None = None
    prompts: list | None = None  # decoder-only: each row's prompt tokens
    first_hidden: torch.Tensor | None = None  # decoder-only: (rows, 1, d) last layer state of each prompt's end
    order: list | None = None  # which rows of the caller's batch the session holds, in order (set by the engine)

    def cache_len(self, layer: int, row: int = 0) -> int:
        return int(self.kv.lens[layer, row])

    def begin(self, span: Span) -> None:
        """Tell the self-attention cache where the next layer call writes."""
        self.kv.span = span

    def select(self, keep: list) -> None:
        """Keep only these rows (finished rows stop costing compute and memory)."""
        if self.prompts is not None:
            self.prompts = [self.prompts[i] for i in keep]
        keep = torch.as_tensor(keep, dtype=torch.long)
        self.kv.select(keep)
        if self.cross is not None:
            self.cross.select(keep)
        for name in ("enc", "cross_mask", "first_hidden"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t[_on(keep, t)])


class Adapter(Protocol):
    """The contract between a model family and the engine (models/engine.py): how one decoder layer computes over a
    span of positions with the batch's ragged cache. deploying_t5.py, deploying_bart.py and deploying_llama.py
    implement it with the family's own HF modules; a new family is one more implementation and one registry entry
    in models/__init__.py.

    Optional: `use_direct_layers()` (CPU product layouts under fast_kernels), `block_layer` and `exit_block(sess,
    h, span)` (an exit that attends, with its own cache slot), `bias` (a final-logit bias the shortlist must add).
    """

    num_layers: int  # decoder layers
    lm_head: torch.nn.Linear

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, depth: int | None = None,
              enc: torch.Tensor | None = None) -> Session:
        """A batch's session: encoder-decoder -- encode (or take `enc`), empty decoder caches; decoder-only -- prefill
        every prompt through `depth` layers and keep the prompts and their last states (`first_hidden`)."""

    def span(self, starts, n=1, causal: bool = True) -> Span:
        """The positions a call computes: n[b] tokens of row b from position starts[b] (0: the row rides along)."""

    def embed(self, ids: torch.Tensor, span: Span) -> torch.Tensor:
        """(rows, nmax, d) input states of the tokens `ids` at the span's positions."""

    def layer(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> torch.Tensor:
        """Decoder layer i over the span: writes its K/V into the session's cache, returns its output states."""

    def fill_kv(self, sess: Session, i: int, h: torch.Tensor, span: Span) -> None:
        """Only layer i's K/V from the states h (state propagation and copying: the layer's output is not needed)."""

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        """The final norm of states h (what the meta head and the LM head read)."""

    def logits(self, h: torch.Tensor, head=None) -> torch.Tensor:
        """LM logits of states h through the final norm: the full head, or `head` (a Shortlist)."""


def heads(proj, x, head_dim: int) -> torch.Tensor:
    """proj(x) split into attention heads: (rows, heads, tokens, head_dim)."""
    return proj(x).view(*x.shape[:-1], -1, head_dim).transpose(1, 2)


def encoder_decoder_session(enc, attention_mask, cross_attns) -> Session:
    """A batch's session after its encoder: the cross-attention K/V of every decoder layer, computed once from
    each layer's (k_proj, v_proj, head_dim), and an empty decoder self-attention cache."""
    cross = CrossKV([heads(k, enc, d) for k, _, d in cross_attns], [heads(v, enc, d) for _, v, d in cross_attns])
    kv = RaggedCache(enc.shape[0], len(cross_attns))
    return Session(kv=kv, cache=EncDecCache(kv, cross), enc=enc, cross=cross,
                   cross_mask=encoder_cross_mask(attention_mask, enc.dtype))


def _on(index, t):
    """An index tensor on t's device (a no-op when it is there already)."""
    return index if index is None or index.device == t.device else index.to(t.device)


def encoder_cross_mask(attention_mask, dtype):
    """Additive (rows, 1, 1, source) mask of the encoder's padding; None without padding."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


# ---- what a call costs: product layouts and the shortlist draft head --------------------------------------------
# On a CPU a decoding step multiplies a few rows by each weight matrix, and the layout of that product moves its
# cost 2-4x: F.linear(x, W), x @ W_t with W pre-transposed, or W @ x.T. Which one wins depends on the matrix's
# shape, the number of rows, the BLAS and the machine (on one 2-core AVX2 machine `W @ x.T` beat F.linear 4x for
# 4 rows of the 49,152 x 576 LM head; on another F.linear beat it 2x for the 1,536 x 576 up-projection), so the
# layout is not assumed: the first time a shape is seen, every layout is timed for 1..MAX_TUNED_ROWS rows on copies
# of the matrix large enough to stream from memory, as the weights do in decoding, and the fastest is kept for the
# process. The layouts round differently from F.linear, so a path that uses them is exact up to float rounding,
# not bit-identical to HF's modules.

_DERIVED = {}  # id(weight) -> (weak reference to it, {key: (version, tensor)}); tensors hash by identity only


def derived(weight: torch.Tensor, key, make):
    """A tensor computed from `weight` (its transpose, a row subset), cached while the weight is unchanged."""
    entry = _DERIVED.get(id(weight))
    if entry is None or entry[0]() is not weight:
        wid, cache = id(weight), _DERIVED
        # The callback holds the cache itself, not the module's global: a derived tensor can have an entry of its
        # own (the transpose of a fused q/k/v matrix), and at interpreter exit Python sets the module's globals to
        # None, which frees the cache, which frees that tensor while its entry's callback is still live.
        entry = _DERIVED[wid] = (weakref.ref(weight, lambda _: cache.pop(wid, None)), {})
    per = entry[1]
    hit = per.get(key)
    if hit is None or hit[0] != weight._version:
        with torch.no_grad():
            hit = per[key] = (weight._version, make(weight.detach()))
    return hit[1]


LAYOUTS = {  # x: (n, in) rows; W: (out, in); Wt: W transposed, contiguous
    "linear": lambda x, W, Wt: F.linear(x, W),
    "x@Wt": lambda x, W, Wt: x @ Wt,
    "W@xT": lambda x, W, Wt: (W @ x.T).T,
    # one row more, dropped: one row goes through a matrix-vector kernel, which MKL runs on one thread; two rows
    # through the threaded matrix-matrix one, on 2 cores about 1.5x faster for SmolLM2's shapes
    "linear+1": lambda x, W, Wt: F.linear(torch.cat([x, x[:1]]), W)[:-1],
}
MAX_TUNED_ROWS = 8  # more rows than this: F.linear (batched prefill and deep passes, where layouts matter little)
_LAYOUT = {}  # (out, in, rows, threads) -> the fastest layout's name
LAYOUT_MS = {}  # (out, in, threads) -> {rows: {layout: ms}}, what the choice was made on (scripts/cost_curve.py)


@torch.no_grad()
def tune_layouts(W: torch.Tensor, reps: int = 3, stream_bytes: int = 64 << 20) -> dict:
    """Time every layout for 1..MAX_TUNED_ROWS rows of W's shape and keep the fastest (median of `reps`); returns
    {rows: {layout: ms}}. Copies of W (up to 64) are cycled so that each product reads its weights from memory."""
    copies = max(1, min(64, stream_bytes // max(1, W.numel() * W.element_size())))
    Wt = W.t().contiguous()
    mats = [(W, Wt)] + [(W.clone(), Wt.clone()) for _ in range(copies - 1)]
    times = {}
    for n in range(1, MAX_TUNED_ROWS + 1):
        x = torch.randn(n, W.shape[1], dtype=W.dtype)
        times[n] = {}
        for name, f in LAYOUTS.items():
            f(x, W, Wt)
            ts = []
            for _ in range(reps):
                t = time.perf_counter()
                for w, wt in mats:
                    f(x, w, wt)
                ts.append((time.perf_counter() - t) / len(mats))
            times[n][name] = statistics.median(ts) * 1e3
        _LAYOUT[(*W.shape, n, torch.get_num_threads())] = min(times[n], key=times[n].get)
    LAYOUT_MS[(*W.shape, torch.get_num_threads())] = times
    return times


def fast_product(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """x @ W.T in the layout measured fastest for W's shape and x's number of rows. W's transpose is made (and kept
    while W is unchanged) only where that layout reads it."""
    n = x.numel() // x.shape[-1]
    if n > MAX_TUNED_ROWS or W.device.type != "cpu":
        return F.linear(x, W)
    key = (*W.shape, n, torch.get_num_threads())
    if key not in _LAYOUT:
        tune_layouts(W)
    layout = _LAYOUT[key]
    Wt = derived(W, "t", lambda w: w.t().contiguous()) if layout == "x@Wt" else None
    return LAYOUTS[layout](x.reshape(n, -1), W, Wt).reshape(*x.shape[:-1], W.shape[0])


_FAST = threading.local()  # .on: this thread is inside a fast_kernels block
_FAST_LOCK = threading.Lock()
_FAST_USERS = {}  # id(model) -> (blocks open on it, its patched Linears)


def _fast_forward(lin: torch.nn.Linear):
    plain = type(lin).forward.__get__(lin)

    def forward(x):
        if not getattr(_FAST, "on", False):  # another thread's block patched the module; this one decodes with HF's
            return plain(x)
        y = fast_product(x, lin.weight)
        return y if lin.bias is None else y + lin.bias
    return forward


@contextmanager
def fast_kernels(model: torch.nn.Module, on: bool = True):
    """Within the block, every nn.Linear of `model` computes with fast_product in this thread (CPU, float32 only;
    elsewhere, or with `on` False, nothing changes). Threads decoding one model each keep their own choice: the
    patched forward asks whether its caller's thread is in a block, and the last block to close on a model restores
    the HF modules, whatever happens inside."""
    before = getattr(_FAST, "on", False)
    if not on:
        _FAST.on = False
        try:
            yield
        finally:
            _FAST.on = before
        return
    with _FAST_LOCK:
        count, lins = _FAST_USERS.get(id(model), (0, None))
        if lins is None:
            lins = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"
                    and m.weight.dtype == torch.float32 and "forward" not in vars(m)]
            for m in lins:
                m.forward = _fast_forward(m)
        _FAST_USERS[id(model)] = (count + 1, lins)
    _FAST.on = True
    try:
        yield
    finally:
        _FAST.on = before
        with _FAST_LOCK:
            count, lins = _FAST_USERS.pop(id(model))
            if count > 1:
                _FAST_USERS[id(model)] = (count - 1, lins)
            else:
                for m in lins:
                    del m.forward


class Shortlist:
    """A draft head over K token ids only (the tokens the model emits most often, FR-Spec / EAGLE-3 style): the
    exit's logits for those rows of the LM head, -inf elsewhere, so the drafted token is always one of them and
    a token outside the list never exits. (rows, K) products instead of (rows, V)."""

    def __init__(self, ids, lm_head: torch.nn.Linear, bias: torch.Tensor | None = None):
        W = lm_head.weight
        self.key = tuple(int(i) for i in ids)
        if not self.key or min(self.key) < 0 or max(self.key) >= W.shape[0] or len(set(self.key)) != len(self.key):
            raise ValueError(f"exit_shortlist must hold distinct token ids in 0..{W.shape[0] - 1} "
                             f"(got {len(self.key)} ids)")
        self.vocab = W.shape[0]
        self.ids = torch.tensor(self.key, device=W.device)
        self.W = derived(W, ("rows", self.key), lambda w: w[self.ids].contiguous())
        self.bias = None if bias is None else bias.reshape(-1)[self.ids]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Full-vocabulary logits of the normed (scaled) states z: the shortlist's, -inf for the other tokens."""
        small = fast_product(z, self.W)
        if self.bias is not None:
            small = small + self.bias
        out = small.new_full((*small.shape[:-1], self.vocab), float("-inf"))
        return out.index_copy_(-1, self.ids, small)
