"""Early-exit training losses (FREE: Bae et al. 2023; CALM: Schuster et al. 2022), each a small
function of hidden states and labels.

Conventions: `hidden` is the list H[1..L] of the decoder's normalised per-layer outputs, 0-based in
Python (hidden[j - 1] is layer j), `logits_fn` maps a hidden state to exit logits through the shared
LM head, `labels` uses -100 for ignored positions. Hidden-state MSE terms average over real target
positions only (the published code also averaged over padding, which rewards matching junk).
"""

import math

import torch
import torch.nn.functional as F

IGNORE = -100

# Published teacher layers (1-based) for decoder depth L and shallow layer S; other pairs use
# `teacher_layers`' even spacing, which reproduces every entry here except (24, 10).
_PUBLISHED_TEACHERS = {
    (24, 12): [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24],
    (24, 10): [3, 6, 8, 11, 13, 16, 18, 20, 22, 24],
    (24, 8): [3, 6, 9, 12, 15, 18, 21, 24],
    (24, 6): [4, 8, 12, 16, 20, 24],
    (24, 4): [6, 12, 18, 24],
    (12, 3): [4, 8, 12],
}


def teacher_layers(L: int, S: int) -> list[int]:
    """1-based deep layers distilled into shallow layers 1..S: the published table, else evenly spaced."""
    if not 1 <= S < L:
        raise ValueError(f"shallow exit layer {S} must be in 1..{L - 1}")
    if (L, S) in _PUBLISHED_TEACHERS:
        return list(_PUBLISHED_TEACHERS[(L, S)])
    return [math.floor(k * L / S + 0.5) for k in range(1, S + 1)]


def token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=IGNORE)


def ce(layer_ces: list[torch.Tensor]) -> torch.Tensor:
    """Uniform mean over all exits."""
    return torch.stack(layer_ces).mean()


def weighted_ce(layer_ces: list[torch.Tensor]) -> torch.Tensor:
    """CALM's depth-weighted mean: sum_j j * CE_j / sum_j j."""
    w = torch.arange(1, len(layer_ces) + 1, dtype=torch.float32, device=layer_ces[0].device)
    return (w * torch.stack(layer_ces)).sum() / w.sum()


def shallowdeep_ce(ce_shallow: torch.Tensor, ce_deep: torch.Tensor, S: int, L: int) -> torch.Tensor:
    """(S * CE_S + L * CE_L) / (S + L)."""
    return (S * ce_shallow + L * ce_deep) / (S + L)


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over positions where mask (batch, length) is true, and over features."""
    m = mask.unsqueeze(-1).to(a.dtype)
    return ((a - b).pow(2) * m).sum() / (m.sum() * a.size(-1)).clamp_min(1)


def kd_last(teachers, students, mask, transform=None):
    """MSE between the last teacher layer and the last student layer."""
    f = transform or (lambda x: x)
    return masked_mse(teachers[-1], f(students[-1]), mask)


def kd_unif(teachers, students, mask, transform=None):
    """Teacher k distils into student k, k = 1..S."""
    f = transform or (lambda x: x)
    return torch.stack([masked_mse(t, f(s), mask) for t, s in zip(teachers, students)]).mean()


def dyna_alignment(cost: torch.Tensor) -> list[int]:
    """Greedy monotone alignment of FREE's kd_dyna.

    cost[k][s] is the distance of teacher k to student s. From the top teacher down, each teacher takes
    its closest student strictly below the one chosen for the teacher above; once student 0 is taken,
    the remaining teachers reuse it.
    """
    S = cost.size(0)
    prev, picks = S, [0] * S
    for k in range(S - 1, -1, -1):
        if prev == 0:
            picks[k] = 0
            continue
        picks[k] = int(torch.argmin(cost[k, :prev]))
        prev = picks[k]
    return picks


def kd_dyna(teachers, students, mask, transform=None):
    f = transform or (lambda x: x)
    mapped = [f(s) for s in students]
    cost = torch.stack([torch.stack([masked_mse(t, s, mask) for s in mapped]) for t in teachers])
    picks = dyna_alignment(cost.detach())
    return torch.stack([cost[k, s] for k, s in enumerate(picks)]).mean()


KD = {"shallowdeep_kd_last": kd_last, "shallowdeep_kd_unif": kd_unif, "shallowdeep_kd_dyna": kd_dyna}


def intermediate_loss(name, hidden, logits_fn, labels, shallow_exit_layer=None, alpha=None, transform=None):
    """The training loss selected by --intermediate_loss_fn."""
    L = len(hidden)
    if name in ("ce", "weighted_ce"):
        ces = [token_ce(logits_fn(h), labels) for h in hidden]
        return ce(ces) if name == "ce" else weighted_ce(ces)
    if not name.startswith("shallowdeep"):
        raise ValueError(f"unknown intermediate_loss_fn {name!r}")
    S = shallow_exit_layer
    if S is None or not 1 <= S < L:
        raise ValueError(f"{name} needs a shallow exit layer in 1..{L - 1}, got {S}")
    loss = shallowdeep_ce(token_ce(logits_fn(hidden[S - 1]), labels), token_ce(logits_fn(hidden[-1]), labels), S, L)
    if name == "shallowdeep_ce":
        return loss
    if name not in KD:
        raise ValueError(f"unknown intermediate_loss_fn {name!r}")
    if alpha is None:
        raise ValueError(f"{name} needs distill_layer_alpha")
    teachers = [hidden[t - 1].detach() for t in teacher_layers(L, S)]
    mask = labels != IGNORE
    return loss + alpha * KD[name](teachers, hidden[:S], mask, transform)


def layerskip_layers(L: int, rotation: int, step: int) -> list[int]:
    """1-based layers with an exit loss at training step `step`: LayerSkip's rotational curriculum (Elhoushi et al.,
    2024, section 4.2) -- every `rotation`-th layer, the pattern moved one layer deeper at each step (layer l is on
    when (l - 1 - step) mod rotation == 0) -- and the last layer always. rotation 1: every layer at every step."""
    if rotation < 1:
        raise ValueError(f"early-exit rotation must be >= 1, got {rotation}")
    return [j for j in range(1, L) if (j - 1 - step) % rotation == 0] + [L]


def layerskip_scales(layers: list[int], L: int, e_scale: float) -> torch.Tensor:
    """Per-layer weights of the early-exit loss, summing to 1: the cumulative sum of the active layers' (1-based)
    indices, so deeper exits weigh more (LayerSkip's sum-of-l scale, torchtune's sum_l), the early exits (all
    but layer L) multiplied by e_scale before normalising."""
    ids = torch.tensor(layers, dtype=torch.float32)
    scales = torch.cumsum(ids, 0) * torch.where(ids < L, torch.tensor(float(e_scale)), torch.tensor(1.0))
    return scales / scales.sum()


def layerskip_loss(hidden, logits_fn, labels, step: int, rotation: int = 1, e_scale: float = 1.0) -> torch.Tensor:
    """LayerSkip's early-exit loss: sum over the curriculum's active layers of scale_l * CE_l, every exit through
    the shared norm and LM head (the last one is the model's own output)."""
    L = len(hidden)
    layers = layerskip_layers(L, rotation, step)
    ces = torch.stack([token_ce(logits_fn(hidden[j - 1]), labels) for j in layers])
    return (layerskip_scales(layers, L, e_scale).to(ces.device) * ces).sum()


def meta_head_loss(hidden, logits_fn, cm_head, labels, layers):
    """Class-balanced CE of the meta confidence head.

    For each exit layer j in `layers` (1-based, < L) the head sees hidden[j-1] and the label says whether
    layer j's argmax equals the final layer's argmax. The logit adjustment adds log class priors (the
    batch's share of positives) so a rare class is not ignored.
    """
    mask = labels != IGNORE
    final = logits_fn(hidden[-1]).argmax(-1)[mask]
    losses = []
    for j in layers:
        y = (logits_fn(hidden[j - 1]).argmax(-1)[mask] == final).long()
        pred = cm_head(hidden[j - 1][mask])
        p_pos = y.float().mean().clamp(1e-4, 1 - 1e-4)
        prior = torch.stack([1 - p_pos, p_pos]).log()
        losses.append(F.cross_entropy(pred.float() + prior, y))
    return torch.stack(losses).mean()
