"""EffT5: exit losses in the real model, hidden-state indexing, generate() workaround, save/load."""

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from models import EffT5ForConditionalGeneration
from util import losses


def tiny_config(**kw):
    base = dict(vocab_size=64, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_layers=2, num_decoder_layers=4,
                dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    base.update(kw)
    return T5Config(**base)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(2, 64, (2, 7), generator=g)
    y = torch.randint(2, 64, (2, 5), generator=g)
    y[1, 3:] = -100
    return x, y


def test_exit_hidden_states_match_manual_layers():
    torch.manual_seed(0)
    m = EffT5ForConditionalGeneration(tiny_config()).eval()
    x, y = batch()
    out = m(input_ids=x, labels=y, output_hidden_states=True, use_cache=False)
    H = m.exit_hidden_states(out.decoder_hidden_states)
    assert len(H) == 4
    # last exit is the model's own logits
    assert torch.allclose(m.exit_logits(H[-1]), out.logits, atol=1e-5)
    # exit 2 equals a model truncated to 2 decoder layers
    trunc = EffT5ForConditionalGeneration(tiny_config(num_decoder_layers=2)).eval()
    trunc.load_state_dict(m.state_dict(), strict=False)
    t_out = trunc(input_ids=x, labels=y, use_cache=False)
    assert torch.allclose(m.exit_logits(H[1]), t_out.logits, atol=1e-5)


@pytest.mark.parametrize("loss_fn", ["ce", "weighted_ce", "shallowdeep_ce", "shallowdeep_kd_last",
                                     "shallowdeep_kd_unif", "shallowdeep_kd_dyna"])
def test_training_loss_in_model_matches_function(loss_fn):
    torch.manual_seed(0)
    cfg = tiny_config(intermediate_loss_fn=loss_fn, shallow_exit_layer=1, distill_layer_alpha=0.5,
                      output_hidden_states_decoder=True)
    m = EffT5ForConditionalGeneration(cfg).train()
    x, y = batch()
    out = m(input_ids=x, labels=y)
    ref = m(input_ids=x, labels=y, output_hidden_states=True)  # dropout is 0: deterministic
    H = m.exit_hidden_states(ref.decoder_hidden_states)
    want = losses.intermediate_loss(loss_fn, H, m.exit_logits, y, 1, 0.5)
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-5)
    out.loss.backward()
    assert m.decoder.block[0].layer[0].SelfAttention.q.weight.grad.abs().sum() > 0


def test_losses_work_with_gradient_checkpointing_and_no_cache():
    torch.manual_seed(0)
    cfg = tiny_config(intermediate_loss_fn="shallowdeep_kd_dyna", shallow_exit_layer=2, distill_layer_alpha=0.5,
                      do_layer_transformation=True, use_cache=False)
    m = EffT5ForConditionalGeneration(cfg).train()
    m.gradient_checkpointing_enable()
    x, y = batch()
    out = m(input_ids=x, labels=y, use_cache=False)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert m.layer_transformation.weight.grad is not None


def test_meta_head_training_only_touches_head():
    torch.manual_seed(0)
    cfg = tiny_config(train_meta_cm_head=True, output_hidden_states_decoder=True, exit_conf_type="meta")
    m = EffT5ForConditionalGeneration(cfg).train()
    x, y = batch()
    out = m(input_ids=x, labels=y)
    out.loss.backward()
    assert m.cm_head[0].weight.grad is not None and m.cm_head[0].bias is not None
    assert m.lm_head.weight.grad is None
    # with a shallow exit layer only layer S is trained (the published code raised IndexError here)
    m2 = EffT5ForConditionalGeneration(tiny_config(train_meta_cm_head=True, shallow_exit_layer=2,
                                                   output_hidden_states_decoder=True)).train()
    assert torch.isfinite(m2(input_ids=x, labels=y).loss)


def test_eval_forward_is_plain_t5():
    torch.manual_seed(0)
    cfg = tiny_config(intermediate_loss_fn="weighted_ce")
    m = EffT5ForConditionalGeneration(cfg).eval()
    hf = T5ForConditionalGeneration(tiny_config()).eval()
    hf.load_state_dict(m.state_dict())
    x, y = batch()
    assert torch.allclose(m(input_ids=x, labels=y).loss, hf(input_ids=x, labels=y).loss)


def test_generate_works_with_unequal_encoder_decoder_depth():
    # transformers 5.24 T5 generate() raises IndexError here without our cache workaround.
    torch.manual_seed(0)
    m = EffT5ForConditionalGeneration(tiny_config(num_layers=2, num_decoder_layers=4)).eval()
    x, _ = batch()
    hf = T5ForConditionalGeneration(tiny_config(num_layers=2, num_decoder_layers=4)).eval()
    hf.load_state_dict(m.state_dict())
    with pytest.raises(IndexError):
        hf.generate(input_ids=x, max_new_tokens=5, do_sample=False)
    ours = m.generate(input_ids=x, max_new_tokens=5, do_sample=False)
    # reference: HF greedy without a cache
    ref = hf.generate(input_ids=x, max_new_tokens=5, do_sample=False, use_cache=False)
    assert torch.equal(ours, ref)


def test_exit_settings_and_heads_survive_save_load(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config(use_shallow_deep=True, shallow_exit_layer=2, shallow2deep_conf_type="meta",
                      shallow2deep_conf_threshold=0.8, do_layer_transformation=True)
    m = EffT5ForConditionalGeneration(cfg)
    with torch.no_grad():
        m.cm_head[2].bias.fill_(0.3)
        m.layer_transformation.weight.mul_(2)
    m.save_pretrained(tmp_path)
    m2 = EffT5ForConditionalGeneration.from_pretrained(tmp_path)
    assert m2.config.shallow_exit_layer == 2 and m2.config.shallow2deep_conf_threshold == 0.8
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


def test_every_registered_family_keeps_the_adapter_contract():
    """Each family's adapter has every method of deploying_common.Adapter, taking at least the contract's
    parameters in the contract's order (extra ones must have defaults), so the engine can drive any of them."""
    import inspect

    from models import MODEL_CLASSES
    from models.deploying_common import Adapter

    methods = [n for n, f in vars(Adapter).items() if inspect.isfunction(f) and not n.startswith("_")]
    assert {"start", "span", "embed", "layer", "fill_kv", "normed", "logits"} <= set(methods)
    for family, cls in MODEL_CLASSES.items():
        adapter = cls.adapter_cls
        for name in methods:
            want = list(inspect.signature(getattr(Adapter, name)).parameters)
            got = inspect.signature(getattr(adapter, name)).parameters
            assert list(got)[:len(want)] == want, (family, name, list(got))
            assert all(p.default is not inspect.Parameter.empty for p in list(got.values())[len(want):]), (family, name)
