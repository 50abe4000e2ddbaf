import math

import pytest
import torch

from util.skip_conf import (CONF_TYPES, confidence, decayed_threshold, meta, needs_logits,
                            softmax_diff, softmax_max, state_saturation)

# Row 0: probabilities (0.5, 0.25, 0.25); row 1: uniform over 3.
LOGITS = torch.log(torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]))


def test_softmax_measures_hand_values():
    torch.testing.assert_close(softmax_diff(LOGITS), torch.tensor([0.25, 0.0]))
    torch.testing.assert_close(softmax_max(LOGITS), torch.tensor([0.5, 1 / 3]))
    # (B, 1, V) decoding-step shape and half precision are accepted, result (B,)
    torch.testing.assert_close(softmax_diff(LOGITS[:, None].half()), torch.tensor([0.25, 0.0]),
                               atol=1e-3, rtol=0)
    assert softmax_max(LOGITS[:, None]).shape == (2,)


def test_softmax_diff_rows_independent():
    big = torch.randn(5, 11)
    out = softmax_diff(big)
    assert out.shape == (5,)
    for i in range(5):
        torch.testing.assert_close(out[i:i + 1], softmax_diff(big[i:i + 1]))


def test_state_saturation_hand_values():
    h_prev = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    h_curr = torch.tensor([[2.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    torch.testing.assert_close(state_saturation(h_prev, h_curr),
                               torch.tensor([1.0, 1 / math.sqrt(2), -1.0]))
    assert state_saturation(h_prev[:, None], h_curr[:, None]).shape == (3,)


def test_meta_hand_values():
    head = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))  # logits (0, h0)
    h = torch.tensor([[0.0, 5.0], [math.log(3.0), 0.0]])
    torch.testing.assert_close(meta(head, h), torch.tensor([0.5, 0.75]))
    torch.testing.assert_close(confidence("meta", cm_head=head, h_normed=h[:, None]),
                               torch.tensor([0.5, 0.75]))


def test_dispatcher_and_needs_logits():
    assert CONF_TYPES == ("softmax", "softmax_max", "state", "meta")
    assert [needs_logits(t) for t in CONF_TYPES] == [True, True, False, False]
    torch.testing.assert_close(confidence("softmax", logits=LOGITS), softmax_diff(LOGITS))
    torch.testing.assert_close(confidence("softmax_max", logits=LOGITS), softmax_max(LOGITS))
    h = torch.randn(3, 4)
    torch.testing.assert_close(confidence("state", h_prev=h, h_curr=h), torch.ones(3))


def test_dispatcher_errors():
    with pytest.raises(ValueError, match="unknown confidence type"):
        confidence("entropy", logits=LOGITS)
    with pytest.raises(ValueError, match="unknown confidence type"):
        needs_logits("entropy")
    with pytest.raises(ValueError, match="needs logits"):
        confidence("softmax")
    with pytest.raises(ValueError, match="h_prev and h_curr"):
        confidence("state", h_curr=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="no trained meta head.*--train_meta_cm_head"):
        confidence("meta", h_normed=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="h_normed"):
        confidence("meta", cm_head=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        softmax_diff(torch.zeros(2, 3, 4))


def test_decayed_threshold_calm():
    lam, N, tau = 0.6, 64, 4.0
    assert decayed_threshold(lam, 0, N, tau) == pytest.approx(0.9 * lam + 0.1)
    assert decayed_threshold(lam, 16, N, tau) == pytest.approx(0.9 * lam + 0.1 * math.exp(-1.0))
    assert decayed_threshold(lam, 10 ** 6, N, tau) == pytest.approx(0.9 * lam)
    assert decayed_threshold(1.0, 0, N, tau) == pytest.approx(1.0)  # clipped, not 1.0 + eps
    assert decayed_threshold(lam, 5, N, None) == lam
    assert isinstance(decayed_threshold(lam, 3, N, tau), float)


def test_decayed_threshold_published():
    lam, N, tau = 0.6, 64, 4.0
    assert decayed_threshold(lam, 0, N, tau, variant="published") == pytest.approx(lam)
    assert decayed_threshold(lam, 16, N, tau, variant="published") == pytest.approx(
        0.9 * lam + 0.1 * lam * math.exp(-1.0))
    assert decayed_threshold(lam, 10 ** 6, N, tau, variant="published") == pytest.approx(0.9 * lam)


def test_decayed_threshold_tensor_and_errors():
    t = torch.tensor([0, 16, 10 ** 6])
    out = decayed_threshold(0.6, t, 64, 4.0)
    assert isinstance(out, torch.Tensor) and out.shape == (3,)
    torch.testing.assert_close(out, torch.tensor([0.64, 0.54 + 0.1 * math.exp(-1.0), 0.54]))
    torch.testing.assert_close(decayed_threshold(0.6, t, 64, None), torch.full((3,), 0.6))
    with pytest.raises(ValueError):
        decayed_threshold(0.6, 1, 64, 4.0, variant="nope")
    with pytest.raises(ValueError):
        decayed_threshold(0.6, 1, 0, 4.0)
