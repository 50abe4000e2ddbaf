"""Fine-tuning a real checkpoint with exit losses through run_summarization.py (issue 26), on a slice of
SmolLM2-135M-Instruct: its first 4 decoder layers with the real embeddings, tied head, tokenizer and chat template
(the import of tests/conftest.py `smollm2_dir`); and LayerSkip's early-exit loss (util/losses.py) by hand."""

import json
import math
import os

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer

import run_summarization
from additional_args import AdditionalArguments, ModelArguments
from models import EffLlamaForCausalLM, load_model_and_tokenizer
from util import losses
from util.checks import InputError
from util.data_gen import gen_dialogsum, write_jsonl
from util.chat import chat_prompt_ids

LAYERS = 4


# ---- LayerSkip's loss, by hand ----------------------------------------------------------------------

def test_layerskip_layers_rotate_and_always_include_the_last():
    assert losses.layerskip_layers(6, 1, 0) == [1, 2, 3, 4, 5, 6]
    assert losses.layerskip_layers(6, 3, 0) == [1, 4, 6]
    assert losses.layerskip_layers(6, 3, 1) == [2, 5, 6]
    assert losses.layerskip_layers(6, 3, 2) == [3, 6]
    assert losses.layerskip_layers(6, 3, 3) == [1, 4, 6]  # period = rotation
    with pytest.raises(ValueError, match="rotation"):
        losses.layerskip_layers(6, 0, 0)


def test_layerskip_loss_equals_a_hand_computed_value():
    """Two-token vocabulary, identity head: CE of logits (a, b) for label 0 is log(1 + e^(b - a)). Layers 1..3,
    rotation 2 at step 0: layers 1 and 3; scales cumsum(1, 3) = (1, 4), the early one times e_scale 0.5 ->
    (0.5, 4) / 4.5."""
    def state(a, b):
        return torch.tensor([[[a, b]]])

    hidden = [state(0.0, 1.0), state(5.0, 5.0), state(2.0, 0.0)]
    labels = torch.tensor([[0]])
    ce = lambda a, b: math.log(1 + math.exp(b - a))  # noqa: E731
    want = (0.5 * ce(0.0, 1.0) + 4 * ce(2.0, 0.0)) / 4.5
    got = losses.layerskip_loss(hidden, lambda h: h, labels, step=0, rotation=2, e_scale=0.5)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # step 1: layers 2 and 3, scales (2, 5) -> (1, 5) / 6
    want1 = (1 * ce(5.0, 5.0) + 5 * ce(2.0, 0.0)) / 6
    assert losses.layerskip_loss(hidden, lambda h: h, labels, step=1, rotation=2, e_scale=0.5).item() == \
        pytest.approx(want1, rel=1e-6)
    # positions labelled -100 do not count
    masked = [torch.cat([h, state(9.0, -9.0)], 1) for h in hidden]
    assert losses.layerskip_loss(masked, lambda h: h, torch.tensor([[0, -100]]), step=0, rotation=2,
                                 e_scale=0.5).item() == pytest.approx(want, rel=1e-6)


# ---- a SmolLM2 slice ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slice_dir(smollm2_dir, tmp_path_factory):
    """SmolLM2-135M-Instruct cut to its first LAYERS decoder layers (real weights, tokenizer, chat template)."""
    d = str(tmp_path_factory.mktemp("smollm2_slice"))
    m = EffLlamaForCausalLM.from_pretrained(smollm2_dir, num_hidden_layers=LAYERS)
    m.save_pretrained(d)
    AutoTokenizer.from_pretrained(smollm2_dir).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("dialogues")
    return write_jsonl(gen_dialogsum(8, seed=5), str(d / "train.jsonl"))


def argv(model, data, out, *extra):
    return ["--model_name_or_path", model, "--train_file", data, "--validation_file", data, "--output_dir", str(out),
            "--do_train", "--use_chat_template", "True", "--max_source_length", "48", "--max_target_length", "24",
            "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2", "--learning_rate", "1e-3",
            "--save_steps", "1", "--logging_steps", "1", "--report_to", "none", "--use_cpu", "--seed", "0",
            "--disable_tqdm", "True", "--output_hidden_states_decoder", "True", *extra]


def hf_and_engine(model, tok, rows):
    """Greedy continuations of chat prompts: HF generate and our engine at full depth (never exits)."""
    outs = []
    for r in rows:
        p = torch.tensor([chat_prompt_ids(tok, "Summarize the following dialogue in one sentence.", r["dialogue"])])
        kw = dict(attention_mask=torch.ones_like(p), max_new_tokens=12, do_sample=False)
        with torch.no_grad():
            outs.append((model.generate(p, **kw)[0].tolist(), model.generate(p, use_engine=True, **kw)[0].tolist()))
    return outs


def test_lora_with_exit_loss_trains_saves_reloads_and_resumes(slice_dir, data, tmp_path):
    """LoRA + FREE's KD loss with the layer transformation (an exit module, trainable under LoRA), gradient
    accumulation, a checkpoint per step: the adapter file holds the LoRA weights and the exit module, both changed by
    training; the reloaded model carries them (merged LoRA, the trained transformation), its never-exit decoding
    equals HF generate; a second run with more steps resumes from the last checkpoint."""
    out = tmp_path / "lora"
    flags = ["--intermediate_loss_fn", "shallowdeep_kd_dyna", "--shallow_exit_layer", "2", "--distill_layer_alpha",
             "0.5", "--do_layer_transformation", "True", "--use_lora", "True", "--lora_rank", "4"]
    res = run_summarization.main(argv(slice_dir, data, out, "--max_steps", "2", *flags))
    assert res["train_samples"] == 8 and math.isfinite(res["train_loss"])
    saved = load_file(str(out / "adapter_model.safetensors"))
    lora = {k: v for k, v in saved.items() if "lora_B" in k}
    assert lora and any(v.abs().sum() > 0 for v in lora.values())  # lora_B starts at zero: training moved it
    lt = [k for k in saved if "layer_transformation" in k and k.endswith("weight")]
    assert len(lt) == 1 and not torch.equal(saved[lt[0]], torch.eye(saved[lt[0]].shape[0]))
    cfg = json.load(open(out / "config.json"))
    assert cfg["intermediate_loss_fn"] == "shallowdeep_kd_dyna" and cfg["do_layer_transformation"]

    model, tok, _ = load_model_and_tokenizer(ModelArguments(model_name_or_path=str(out)), AdditionalArguments())
    model.eval()
    assert torch.equal(model.layer_transformation.weight, saved[lt[0]])
    base = EffLlamaForCausalLM.from_pretrained(slice_dir)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(model.state_dict()[q], base.state_dict()[q])  # the LoRA update is merged in
    for hf, ours in hf_and_engine(model, tok, gen_dialogsum(2, seed=99)):
        assert hf == ours

    again = run_summarization.main(argv(slice_dir, data, out, "--max_steps", "3", *flags))
    state = json.load(open(out / "trainer_state.json"))
    assert state["global_step"] == 3 and math.isfinite(again["train_loss"])
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]


def test_full_finetune_with_layerskip_loss_and_layer_dropout(slice_dir, data, tmp_path):
    """Full fine-tuning with the LayerSkip loss (rotation 2, layer dropout): weights change, the settings are saved,
    and the saved model decodes at full depth exactly as HF generate."""
    out = tmp_path / "layerskip"
    res = run_summarization.main(argv(slice_dir, data, out, "--max_steps", "2", "--intermediate_loss_fn", "layerskip",
                                      "--early_exit_rotation", "2", "--early_exit_scale", "0.5",
                                      "--layer_dropout_max", "0.2", "--save_strategy", "no"))
    assert math.isfinite(res["train_loss"])
    cfg = json.load(open(out / "config.json"))
    assert (cfg["intermediate_loss_fn"], cfg["early_exit_rotation"], cfg["early_exit_scale"],
            cfg["layer_dropout_max"]) == ("layerskip", 2, 0.5, 0.2)
    model = EffLlamaForCausalLM.from_pretrained(str(out)).eval()
    base = EffLlamaForCausalLM.from_pretrained(slice_dir)
    k = "model.layers.1.mlp.down_proj.weight"
    assert not torch.equal(model.state_dict()[k], base.state_dict()[k])
    tok = AutoTokenizer.from_pretrained(str(out))
    for hf, ours in hf_and_engine(model, tok, gen_dialogsum(2, seed=98)):
        assert hf == ours


def with_settings(path, **settings):
    cfg = AutoConfig.from_pretrained(path)
    cfg.update(settings)
    return EffLlamaForCausalLM.from_pretrained(path, config=cfg)


def test_layer_dropout_passes_the_input_on_in_training_only(slice_dir):
    m = with_settings(slice_dir, intermediate_loss_fn="layerskip", layer_dropout_max=0.999,
                      output_hidden_states_decoder=True)
    ids = torch.randint(5, 1000, (4, 6))
    with torch.no_grad():
        ref = m.eval()(input_ids=ids, output_hidden_states=True).hidden_states
        m._install_layer_dropout()
        torch.manual_seed(0)
        assert all(torch.equal(a, b) for a, b in zip(ref, m(input_ids=ids, output_hidden_states=True).hidden_states))
        m.train()
        torch.manual_seed(0)
        hs = m(input_ids=ids, output_hidden_states=True).hidden_states
    # layer 1 is never dropped (p = 0); layer L almost always (p = 0.999): its output is its input
    assert torch.equal(hs[1], ref[1])
    assert torch.equal(m.model.norm(hs[LAYERS - 1]), hs[LAYERS])


@pytest.mark.parametrize("flag", [["--early_exit_rotation", "2"], ["--layer_dropout_max", "0.1"],
                                  ["--early_exit_scale", "0.5"]])
def test_layerskip_settings_refused_with_another_loss(slice_dir, data, tmp_path, flag):
    with pytest.raises(InputError, match=flag[0].lstrip("-")):
        run_summarization.main(argv(slice_dir, data, tmp_path / "x", "--max_steps", "1", "--intermediate_loss_fn",
                                    "weighted_ce", *flag))


def test_exit_losses_see_only_answer_positions(slice_dir):
    """Exit training keeps only the labelled positions before the exit heads run: the loss still equals util.losses
    on every position's hidden states (prompt tokens and padding labelled -100), and HF's own full logits are
    skipped."""
    m = with_settings(slice_dir, intermediate_loss_fn="weighted_ce", output_hidden_states_decoder=True).train()
    ids = torch.randint(5, 1000, (2, 7))
    labels = ids.clone()
    labels[:, :4] = -100
    labels[1, 6] = -100
    out = m(input_ids=ids, labels=labels)
    with torch.no_grad():
        m.config.intermediate_loss_fn = None
        plain = m(input_ids=ids, output_hidden_states=True)
        m.config.intermediate_loss_fn = "weighted_ce"
        H = [h[:, :-1] for h in m.exit_hidden_states(plain.hidden_states)]
        want = losses.intermediate_loss("weighted_ce", H, m.exit_logits, labels[:, 1:])
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert out.logits.shape[1] == 1  # HF's own logits over every position are not computed in exit training


def test_run_summarization_layerskip_rotation_validation(slice_dir, data, tmp_path):
    with pytest.raises(InputError, match="early_exit_rotation"):
        run_summarization.main(argv(slice_dir, data, tmp_path / "y", "--max_steps", "1", "--intermediate_loss_fn",
                                    "layerskip", "--early_exit_rotation", "0"))
    assert not os.path.exists(tmp_path / "y" / "config.json")


@pytest.mark.parametrize("loss_fn,extra", [
    ("weighted_ce", []),
    ("shallowdeep_ce", ["--use_lora", "True", "--shallow_exit_layer", "2"]),
    ("shallowdeep_kd_last", ["--shallow_exit_layer", "2", "--distill_layer_alpha", "0.5", "--gradient_checkpointing"]),
    ("shallowdeep_kd_unif", ["--use_lora", "True", "--shallow_exit_layer", "2", "--distill_layer_alpha", "0.5",
                             "--gradient_checkpointing"]),
])
def test_every_exit_loss_trains_the_slice(slice_dir, data, tmp_path, loss_fn, extra):
    """Every exit loss, with and without LoRA and with activation checkpointing, takes optimizer steps on the real
    weights and leaves a loadable model that decodes at full depth as HF generate does."""
    out = tmp_path / loss_fn
    res = run_summarization.main(argv(slice_dir, data, out, "--max_steps", "1", "--save_strategy", "no",
                                      "--intermediate_loss_fn", loss_fn, *extra))
    assert math.isfinite(res["train_loss"]) and res["train_loss"] > 0
    model, tok, _ = load_model_and_tokenizer(ModelArguments(model_name_or_path=str(out)), AdditionalArguments())
    for hf, ours in hf_and_engine(model.eval(), tok, gen_dialogsum(1, seed=97)):
        assert hf == ours
