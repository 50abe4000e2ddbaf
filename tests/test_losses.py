"""Each exit loss against a hand computation."""

import math

import pytest
import torch
import torch.nn.functional as F

from util import losses as L


def test_ce_weighted_shallowdeep_by_hand():
    ces = [torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)]
    assert L.ce(ces).item() == pytest.approx(7 / 3)
    assert L.weighted_ce(ces).item() == pytest.approx((1 * 1 + 2 * 2 + 3 * 4) / 6)
    # S=6, L=24 is the published 0.2 / 0.8 mix.
    assert L.shallowdeep_ce(torch.tensor(1.0), torch.tensor(2.0), 6, 24).item() == pytest.approx(0.2 * 1 + 0.8 * 2)


def test_token_ce_ignores_padding():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    labels = torch.tensor([[0, -100]])
    assert L.token_ce(logits, labels).item() == pytest.approx(math.log(1 + math.exp(-2)))


def test_teacher_layers_published_and_general():
    assert L.teacher_layers(24, 6) == [4, 8, 12, 16, 20, 24]
    assert L.teacher_layers(24, 10) == [3, 6, 8, 11, 13, 16, 18, 20, 22, 24]
    assert L.teacher_layers(12, 3) == [4, 8, 12]
    # Any depth works (the published table raised KeyError for L=12, S=6).
    assert L.teacher_layers(12, 6) == [2, 4, 6, 8, 10, 12]
    assert L.teacher_layers(6, 2) == [3, 6]
    t = L.teacher_layers(7, 3)
    assert t[-1] == 7 and t == sorted(set(t))
    with pytest.raises(ValueError):
        L.teacher_layers(6, 6)


def test_masked_mse_skips_padding():
    a = torch.zeros(1, 2, 2)
    b = torch.tensor([[[1.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, False]])
    assert L.masked_mse(a, b, mask).item() == pytest.approx((1 + 9) / 2)


def test_dyna_alignment_by_hand():
    # teacher 2 (top) picks student 2, teacher 1 must pick below 2 -> argmin over {0,1} = 0, teacher 0 reuses 0.
    cost = torch.tensor([[5.0, 1.0, 0.0], [1.0, 2.0, 0.0], [9.0, 9.0, 0.5]])
    assert L.dyna_alignment(cost) == [0, 0, 2]
    # monotone when each teacher's best student is below the one above it
    cost = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert L.dyna_alignment(cost) == [0, 1, 2]


def _fake_hidden(Ldepth=4, B=2, T=3, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, T, d, generator=g, requires_grad=True) for _ in range(Ldepth)]


def test_kd_losses_by_hand():
    hidden = _fake_hidden()
    labels = torch.tensor([[1, 2, -100], [3, -100, -100]])
    mask = labels != -100
    head = torch.nn.Linear(4, 5, bias=False)
    S, Ld = 2, 4
    base = (S * L.token_ce(head(hidden[S - 1]), labels) + Ld * L.token_ce(head(hidden[-1]), labels)) / (S + Ld)
    T = [hidden[t - 1].detach() for t in L.teacher_layers(Ld, S)]  # layers 2 and 4

    def mse(a, b):
        return ((a - b)[mask] ** 2).mean()

    got = L.intermediate_loss("shallowdeep_kd_last", hidden, head, labels, S, alpha=0.5)
    assert got.item() == pytest.approx((base + 0.5 * mse(T[-1], hidden[1])).item(), rel=1e-5)
    got = L.intermediate_loss("shallowdeep_kd_unif", hidden, head, labels, S, alpha=0.5)
    want = base + 0.5 * (mse(T[0], hidden[0]) + mse(T[1], hidden[1])) / 2
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    got = L.intermediate_loss("shallowdeep_kd_dyna", hidden, head, labels, S, alpha=0.5)
    M = [[mse(T[k], hidden[s]).item() for s in range(S)] for k in range(S)]
    top = min(range(S), key=lambda s: M[1][s])
    low = 0 if top == 0 else min(range(top), key=lambda s: M[0][s])
    want = base + 0.5 * (M[1][top] + M[0][low]) / 2
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    got.backward()
    assert hidden[0].grad is not None and hidden[0].grad.abs().sum() > 0


def test_layer_transformation_is_applied():
    hidden = _fake_hidden()
    labels = torch.ones(2, 3, dtype=torch.long)
    head = torch.nn.Linear(4, 5, bias=False)
    f = torch.nn.Linear(4, 4)
    a = L.intermediate_loss("shallowdeep_kd_last", hidden, head, labels, 2, alpha=1.0)
    b = L.intermediate_loss("shallowdeep_kd_last", hidden, head, labels, 2, alpha=1.0, transform=f)
    assert a.item() != pytest.approx(b.item())
    b.backward()
    assert f.weight.grad is not None


def test_ce_and_weighted_ce_over_all_exits():
    hidden = _fake_hidden()
    labels = torch.tensor([[1, 2, 0], [3, 4, -100]])
    head = torch.nn.Linear(4, 5, bias=False)
    ces = [F.cross_entropy(head(h).reshape(-1, 5), labels.reshape(-1), ignore_index=-100) for h in hidden]
    assert L.intermediate_loss("ce", hidden, head, labels).item() == pytest.approx(sum(ces).item() / 4, rel=1e-6)
    w = sum((i + 1) * c for i, c in enumerate(ces)) / 10
    assert L.intermediate_loss("weighted_ce", hidden, head, labels).item() == pytest.approx(w.item(), rel=1e-6)


def test_loss_errors_are_clear():
    hidden = _fake_hidden()
    head = torch.nn.Linear(4, 5, bias=False)
    labels = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="distill_layer_alpha"):
        L.intermediate_loss("shallowdeep_kd_dyna", hidden, head, labels, 2)
    with pytest.raises(ValueError, match="shallow exit layer"):
        L.intermediate_loss("shallowdeep_ce", hidden, head, labels, 4)
    with pytest.raises(ValueError, match="unknown"):
        L.intermediate_loss("kl", hidden, head, labels)


def test_meta_head_loss_labels_and_balance():
    # Layer 1 agrees with the final layer on 1 of 2 real positions: labels [1, 0] (padding ignored).
    head = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    final = torch.tensor([[[5.0, 0.0], [5.0, 0.0], [0.0, 5.0]]])
    layer1 = torch.tensor([[[3.0, 0.0], [0.0, 3.0], [0.0, 0.0]]])
    labels = torch.tensor([[0, 0, -100]])
    cm = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        cm.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    got = L.meta_head_loss([layer1, final], head, cm, labels, [1])
    pred = torch.tensor([[0.0, 3.0], [3.0, 0.0]]) + torch.tensor([0.5, 0.5]).log()
    want = F.cross_entropy(pred, torch.tensor([1, 0]))
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
