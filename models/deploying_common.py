"""Small pieces every adapter needs: the additive mask of a span, and per-layer cache length / crop."""

import torch


def span_mask(start: int, n: int, causal: bool, dtype, device) -> torch.Tensor | None:
    """Additive mask of n queries at positions start.. over start + n keys; None for a single query.

    Explicit for n > 1 because HF's sdpa path, given no mask and q_len > 1, assumes the span starts at key 0
    (is_causal=True crops the keys), which is wrong for a deep layer's span after a run of exits.
    """
    if n == 1:
        return None
    mask = torch.zeros(1, 1, n, start + n, dtype=dtype, device=device)
    if causal:
        q = torch.arange(n, device=device)[:, None] + start
        k = torch.arange(start + n, device=device)[None, :]
        mask = mask.masked_fill(k > q, torch.finfo(dtype).min)
    return mask


def layer_len(cache, layer: int) -> int:
    """Tokens in one layer of a DynamicCache (0 for a layer not reached yet)."""
    return cache.layers[layer].get_seq_length() if layer < len(cache.layers) else 0


def crop_layers(cache, length: int) -> None:
    """Cut every layer of a DynamicCache back to `length` tokens (shorter layers stay as they are)."""
    for layer in cache.layers:
        extra = layer.get_seq_length() - length
        if extra > 0:
            layer.crop(-extra)
