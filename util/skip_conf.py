"""Early-exit confidence measures (CALM: Schuster et al. 2022; FREE: Bae et al. 2023) and CALM's decaying threshold.

Every measure is batched: the first dimension is the batch row and the result
has shape (B,). Inputs of shape (B, 1, D) (one decoding position) are accepted
too. Computation is in float32 so half-precision logits do not quantise the
top-1/top-2 gap.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch

__all__ = [
    "CONF_TYPES",
    "needs_logits",
    "softmax_diff",
    "softmax_max",
    "state_saturation",
    "meta",
    "confidence",
    "decayed_threshold",
]

CONF_TYPES = ("softmax", "softmax_max", "state", "meta")
_NEEDS_LOGITS = {"softmax": True, "softmax_max": True, "state": False, "meta": False}


def _rows(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"{name} must be (B, D) or (B, 1, D), got shape {tuple(x.shape)}")
    return x


def _check_type(conf_type: str) -> None:
    if conf_type not in _NEEDS_LOGITS:
        raise ValueError(f"unknown confidence type {conf_type!r}; expected one of {CONF_TYPES}")


def needs_logits(conf_type: str) -> bool:
    """Whether the measure needs the vocabulary projection (the expensive part)."""
    _check_type(conf_type)
    return _NEEDS_LOGITS[conf_type]


def softmax_diff(logits: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 probability over the full vocabulary (published 'softmax')."""
    logits = _rows(logits, "logits")
    if logits.shape[-1] < 2:
        raise ValueError("softmax_diff needs a vocabulary of at least 2")
    top2 = torch.softmax(logits.float(), dim=-1).topk(2, dim=-1).values
    return top2[:, 0] - top2[:, 1]


def softmax_max(logits: torch.Tensor) -> torch.Tensor:
    """Top-1 probability."""
    return torch.softmax(_rows(logits, "logits").float(), dim=-1).max(dim=-1).values


def state_saturation(h_prev: torch.Tensor, h_curr: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of consecutive layers' hidden states (CALM saturation)."""
    return torch.nn.functional.cosine_similarity(
        _rows(h_prev, "h_prev").float(), _rows(h_curr, "h_curr").float(), dim=-1)


def meta(cm_head: Callable[[torch.Tensor], torch.Tensor], h_normed: torch.Tensor) -> torch.Tensor:
    """P(exit is safe) from a trained 2-way meta head: softmax(cm_head(h))[..., 1]."""
    logits = cm_head(_rows(h_normed, "h_normed"))  # head runs in the model's dtype
    return torch.softmax(logits.float(), dim=-1)[:, 1]


def confidence(
    conf_type: str,
    *,
    logits: Optional[torch.Tensor] = None,
    h_prev: Optional[torch.Tensor] = None,
    h_curr: Optional[torch.Tensor] = None,
    cm_head=None,
    h_normed: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Dispatch to the measure named by ``conf_type``; returns (B,)."""
    _check_type(conf_type)
    if conf_type in ("softmax", "softmax_max"):
        if logits is None:
            raise ValueError(f"confidence type {conf_type!r} needs logits")
        return softmax_diff(logits) if conf_type == "softmax" else softmax_max(logits)
    if conf_type == "state":
        if h_prev is None or h_curr is None:
            raise ValueError("confidence type 'state' needs h_prev and h_curr "
                             "(hidden states of two consecutive layers)")
        return state_saturation(h_prev, h_curr)
    if cm_head is None:
        raise ValueError("confidence type 'meta' needs a meta confidence head, but the "
                         "checkpoint has no trained meta head; train it with "
                         "--train_meta_cm_head")
    if h_normed is None:
        raise ValueError("confidence type 'meta' needs h_normed (final-layer-normed hidden state)")
    return meta(cm_head, h_normed)


Number = Union[int, float]


def decayed_threshold(
    lam: Number,
    t: Union[Number, torch.Tensor],
    N: int,
    tau: Optional[float],
    variant: str = "calm",
) -> Union[float, torch.Tensor]:
    """CALM decaying exit threshold at 1-based decoding position ``t``.

    variant="calm" (default), CALM's paper schedule clipped to [0, 1]:
        lambda(t) = clip(0.9 * lam + 0.1 * exp(-tau * t / N), 0, 1)
    variant="published", what the FREE code computes:
        lambda(t) = 0.9 * lam + 0.1 * lam * exp(-tau * t / N)
    N is the maximum target length. ``tau=None`` means no decay (returns lam).
    Both start near or above lam and decay toward 0.9 * lam, so with decay
    lam = 1.0 no longer means "never exit"; the engine must handle that itself.
    Returns a float, or a tensor when ``t`` is a tensor.
    """
    if variant not in ("calm", "published"):
        raise ValueError(f"unknown decay variant {variant!r}; expected 'calm' or 'published'")
    if N <= 0:
        raise ValueError(f"N (max target length) must be positive, got {N}")
    is_tensor = isinstance(t, torch.Tensor)
    if tau is None:
        return torch.full_like(t, lam, dtype=torch.float32) if is_tensor else float(lam)
    decay = torch.exp(-tau * t.float() / N) if is_tensor else math.exp(-tau * t / N)
    if variant == "published":
        return 0.9 * lam + 0.1 * lam * decay
    out = 0.9 * lam + 0.1 * decay
    return out.clamp(0.0, 1.0) if is_tensor else min(max(out, 0.0), 1.0)
