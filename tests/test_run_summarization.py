"""run_summarization.py end to end on generated data with a tiny local model."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from transformers import T5ForConditionalGeneration

import run_summarization
from additional_args import AdditionalArguments, ModelArguments
from models import load_model_and_tokenizer
import task_flow as runner
from util.data_gen import gen_dialogsum, write_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def ckpt(tiny_t5):
    return tiny_t5


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    paths = {}
    for split, n, seed in (("train", 24, 1), ("validation", 6, 2), ("test", 6, 3)):
        paths[split] = str(d / f"{split}.jsonl")
        write_jsonl(gen_dialogsum(n, seed), paths[split])
    return paths


def argv(ckpt, data, out, *extra, train=True):
    a = ["--model_name_or_path", ckpt, "--train_file", data["train"], "--validation_file", data["validation"],
         "--test_file", data["test"], "--output_dir", str(out), "--per_device_train_batch_size", "4",
         "--per_device_eval_batch_size", "4", "--max_source_length", "64", "--max_target_length", "16",
         "--predict_with_generate", "--report_to", "none", "--use_cpu", "--seed", "0", "--save_strategy", "no",
         "--text_column", "dialogue", "--summary_column", "summary"]
    if train:
        a += ["--do_train", "--max_steps", "2", "--learning_rate", "1e-3"]
    return a + list(extra)


FREE_FLAGS = ["--output_hidden_states_decoder", "True", "--intermediate_loss_fn", "shallowdeep_kd_dyna",
              "--shallow_exit_layer", "2", "--distill_layer_alpha", "0.5"]


def test_train_eval_predict_writes_hf_outputs(ckpt, data, tmp_path):
    out = tmp_path / "run"
    res = run_summarization.main(argv(ckpt, data, out, "--do_eval", "--do_predict", "--lead_baseline", "True",
                                      *FREE_FLAGS))
    for f in ("all_results.json", "train_results.json", "eval_results.json", "predict_results.json",
              "generated_predictions.txt", "trainer_state.json", "config.json", "model.safetensors",
              "tokenizer.json", "tokenizer_config.json"):
        assert (out / f).exists(), f
    ev = json.loads((out / "eval_results.json").read_text())
    for k in ("eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len", "eval_lead_rougeL"):
        assert k in ev, k
    assert 0 < ev["eval_lead_rougeL"] < 100
    assert len((out / "generated_predictions.txt").read_text().split("\n")) == 6
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["intermediate_loss_fn"] == "shallowdeep_kd_dyna" and cfg["shallow_exit_layer"] == 2
    assert res["train_loss"] > 0


def test_evaluations_during_training_decode_as_the_final_one(ckpt, data, tmp_path):
    """--eval_strategy steps (the published recipes choose their best checkpoint so): the Trainer's own evaluations
    generate with the task's length flags, so the last one scores the final weights exactly as --do_eval does."""
    out = tmp_path / "run"
    run_summarization.main(argv(ckpt, data, out, "--do_eval", "--eval_strategy", "steps", "--eval_steps", "1",
                                "--val_max_target_length", "5"))
    state = json.loads((out / "trainer_state.json").read_text())
    during = {h["step"]: h for h in state["log_history"] if "eval_rougeL" in h}
    final = json.loads((out / "eval_results.json").read_text())
    assert sorted(during) == [1, 2]
    assert during[2]["eval_gen_len"] == final["eval_gen_len"] <= 5
    assert during[2]["eval_rougeL"] == final["eval_rougeL"]


def json_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return {"True": True, "False": False}.get(v, v)


def test_deploy_scenario_eval_reports_decoding_counts(ckpt, data, tmp_path):
    out = tmp_path / "deploy"
    run_summarization.main(argv(ckpt, data, out, "--do_eval", "--deploy_scenario", "True", "--use_shallow_deep", "True",
                                "--shallow_exit_layer", "2", "--shallow2deep_conf_type", "softmax",
                                "--shallow2deep_conf_threshold", "0.0", train=False))
    ev = json.loads((out / "eval_results.json").read_text())
    assert ev["eval_generate_calls"] == 2  # 6 samples, --per_device_eval_batch_size 4 kept in the deploy scenario
    assert ev["eval_exit_ratio"] == 1.0 and ev["eval_avg_layers_per_token"] == 2.0
    assert ev["eval_generate_time"] > 0 and ev["eval_tokens_per_second"] > 0
    record = json.loads((out / "eval_decoding_record.json").read_text())
    assert len(record["tokens"]) == ev["eval_generated_tokens"]


@pytest.mark.parametrize("deploy,given,expected", [(True, None, 1), (False, None, 8), (True, 4, 4)])
def test_eval_batch_size_left_open_is_1_in_the_deploy_scenario(deploy, given, expected):
    args = SimpleNamespace(per_device_eval_batch_size=given)
    runner.apply_deploy_scenario({"deploy_scenario": deploy}, args)
    assert args.per_device_eval_batch_size == expected


def test_json_args_alias_and_resume(ckpt, data, tmp_path):
    out = tmp_path / "run"
    args = argv(ckpt, data, out, "--ouput_hidden_states_decoder", "True", "--intermediate_loss_fn", "weighted_ce")
    args[args.index("no")] = "steps"
    args += ["--save_steps", "2"]
    run_summarization.main(args)
    assert (out / "checkpoint-2").is_dir()
    # A second run into the same folder resumes from checkpoint-2 and continues to step 4.
    args[args.index("--max_steps") + 1] = "4"
    spec = {}
    i = 0
    while i < len(args):  # the same run, now as a single .json argument file
        key = args[i][2:]
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            spec[key], i = json_value(args[i + 1]), i + 2
        else:
            spec[key], i = True, i + 1
    spec["output_hidden_states_decoder"] = spec.pop("ouput_hidden_states_decoder")
    jf = tmp_path / "args.json"
    jf.write_text(json.dumps(spec))
    run_summarization.main([str(jf)])
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4


def test_non_empty_output_dir_needs_overwrite(ckpt, data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="overwrite_output_dir"):
        run_summarization.main(argv(ckpt, data, out))
    run_summarization.main(argv(ckpt, data, out, "--overwrite_output_dir"))
    assert (out / "model.safetensors").exists()


@pytest.mark.parametrize("extra, match", [
    (["--intermediate_loss_fn", "weighted_ce"], "output_hidden_states_decoder"),
    (["--output_hidden_states_decoder", "True", "--intermediate_loss_fn", "shallowdeep_ce",
      "--shallow_exit_layer", "4"], "outside 1..3"),
    (["--output_hidden_states_decoder", "True", "--intermediate_loss_fn", "shallowdeep_kd_dyna",
      "--shallow_exit_layer", "2"], "distill_layer_alpha"),
    (["--shallow2deep_conf_threshold", "1.5"], r"outside \[0, 1\]"),
    (["--deep_pass_wait", "-1"], r"--deep_pass_wait -1.0 is outside \[0, 1\]"),
])
def test_inconsistent_flags_fail_clearly(ckpt, data, tmp_path, extra, match):
    with pytest.raises(ValueError, match=match):
        run_summarization.main(argv(ckpt, data, tmp_path / "run", *extra))


def test_bad_data_fails_clearly(ckpt, data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"dialogue": "a: hi", "headline": "x"}) + "\n")
    a = argv(ckpt, data, tmp_path / "r1")
    for flag in ("--train_file", "--validation_file", "--test_file"):
        a[a.index(flag) + 1] = str(bad)
    with pytest.raises(ValueError, match=r"Column\(s\) \['summary'\] not found"):
        run_summarization.main(a)
    mixed = argv(ckpt, data, tmp_path / "r3")
    mixed[mixed.index("--train_file") + 1] = str(bad)
    with pytest.raises(ValueError, match="same columns"):
        run_summarization.main(mixed)
    empty = tmp_path / "empty.jsonl"
    # same columns as the other splits
    empty.write_text(json.dumps({"id": "e1", "dialogue": "  ", "summary": "x"}) + "\n")
    a = argv(ckpt, data, tmp_path / "r1")
    a[a.index("--train_file") + 1] = str(empty)
    with pytest.raises(ValueError, match="every example has an empty source or target"):
        run_summarization.main(a)
    a[a.index("--output_dir") + 1] = str(tmp_path / "r4")  # a prefix must not make an empty source count as text
    with pytest.raises(ValueError, match="every example has an empty source or target"):
        run_summarization.main(a + ["--source_prefix", "summarize: "])
    a[a.index("--train_file") + 1] = str(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        run_summarization.main(a)
    with pytest.raises(ValueError, match=r"\.json, \.jsonl or \.csv"):
        run_summarization.main(argv(ckpt, data, tmp_path / "r2") + ["--train_file", "x.parquet"])


def test_csv_input(ckpt, data, tmp_path):
    import csv

    f = tmp_path / "train.csv"
    rows = gen_dialogsum(8, 5)
    with open(f, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "dialogue", "summary"])
        w.writeheader()
        w.writerows(rows)
    a = ["--model_name_or_path", ckpt, "--train_file", str(f), "--output_dir", str(tmp_path / "o"),
         "--do_train", "--max_steps", "1", "--report_to", "none", "--use_cpu", "--save_strategy", "no",
         "--max_source_length", "32", "--max_target_length", "8"]
    assert run_summarization.main(a)["train_samples"] == 8


def test_meta_head_training_changes_only_the_head(ckpt, data, tmp_path):
    out = tmp_path / "meta"
    run_summarization.main(argv(ckpt, data, out, "--output_hidden_states_decoder", "True", "--train_meta_cm_head",
                                "True", "--exit_conf_type", "meta", "--use_early_exit", "True"))
    before = T5ForConditionalGeneration.from_pretrained(ckpt).state_dict()
    from models import EffT5ForConditionalGeneration

    after = EffT5ForConditionalGeneration.from_pretrained(out)
    sd = after.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in before.items())
    assert after.cm_head[0].bias is not None


def test_lora_checkpoint_trains_and_reloads_with_exit_modules(ckpt, data, tmp_path):
    out = tmp_path / "lora"
    run_summarization.main(argv(ckpt, data, out, *FREE_FLAGS, "--do_layer_transformation", "True", "--use_lora",
                                "True", "--lora_rank", "4", "--lora_alpha", "8", "--lora_target_modules", "q", "v",
                                "--learning_rate", "1e-2"))
    assert (out / "adapter_config.json").exists() and (out / "config.json").exists()
    model, tok, s = load_model_and_tokenizer(ModelArguments(model_name_or_path=str(out)), AdditionalArguments())
    assert s["intermediate_loss_fn"] == "shallowdeep_kd_dyna"
    base = T5ForConditionalGeneration.from_pretrained(ckpt).state_dict()
    sd = model.state_dict()
    assert not torch.equal(sd["decoder.block.0.layer.0.SelfAttention.q.weight"],
                           base["decoder.block.0.layer.0.SelfAttention.q.weight"])
    eye = torch.eye(model.config.d_model)
    assert not torch.equal(model.layer_transformation.weight, eye)  # trained and saved, not re-initialised


def test_published_checkpoint_layout_loads(ckpt, tmp_path):
    """Plain T5 weights, method flags as top-level config fields, no tokenizer (the layout of published checkpoints)."""
    d = tmp_path / "published"
    torch.manual_seed(0)
    plain = T5ForConditionalGeneration.from_pretrained(ckpt)
    plain.save_pretrained(d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update({"deploy_scenario": True, "use_synchronize": True, "output_hidden_states_decoder": True,
                "intermediate_loss_fn": "shallowdeep_kd_dyna", "distill_layer_alpha": 0.5,
                "do_layer_transformation": False, "static_exit_layer": None, "use_early_exit": False,
                "exit_conf_type": None, "exit_conf_threshold": 1.0, "exit_position_temp": None,
                "exit_min_layer": None, "train_meta_cm_head": False, "use_shallow_deep": True,
                "shallow_exit_layer": 2, "shallow2deep_conf_type": "softmax", "shallow2deep_conf_threshold": 0.9,
                "parallel_gen_token": True, "copy_skipped_hidden_states": False, "parallel_causal_mask": True,
                "rollback_conf_threshold": None, "use_adapt_threshold": True, "max_answer_length": 128})
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="--tokenizer_name"):
        load_model_and_tokenizer(ModelArguments(model_name_or_path=str(d)), AdditionalArguments())
    model, tok, s = load_model_and_tokenizer(ModelArguments(model_name_or_path=str(d), tokenizer_name=ckpt),
                                             AdditionalArguments(shallow2deep_conf_threshold=0.7))
    assert s["use_shallow_deep"] and s["shallow_exit_layer"] == 2 and s["use_adapt_threshold"]
    assert model.config.shallow2deep_conf_threshold == 0.7  # a given flag overrides the checkpoint
    sd = model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in plain.state_dict().items())
    assert tok.pad_token_id == 0


def test_torchrun_two_processes_train_with_exit_losses(ckpt, data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.join(ROOT, "run_summarization.py"), *argv(ckpt, data, out, *FREE_FLAGS)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert json.loads((out / "train_results.json").read_text())["train_samples"] == 24


@pytest.mark.parametrize("model_type", ["llama", "bart"])
def test_other_architectures_train_and_decode_with_free(tmp_path_factory, data, tmp_path, model_type):
    """Decoder-only (LLaMA: prompt + separator, labels on the target only, left padding) and BART."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from build_model import build

    d = str(tmp_path_factory.mktemp(model_type))
    build(d, model_type=model_type, vocab_size=400, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_layers=2,
          num_decoder_layers=4, corpus_lines=1500)
    out = tmp_path / model_type
    run_summarization.main(argv(d, data, out, "--do_eval", "--do_predict", *FREE_FLAGS))
    ev = json.loads((out / "eval_results.json").read_text())
    assert "eval_rougeL" in ev and ev["eval_gen_len"] > 0
    res = run_summarization.main(argv(str(out), data, tmp_path / "eval", "--do_eval", "--use_shallow_deep", "True",
                                      "--shallow2deep_conf_type", "softmax", "--shallow2deep_conf_threshold", "0.0",
                                      "--deploy_scenario", "True", train=False))
    assert res["eval_generate_calls"] == 2 and res["eval_exit_ratio"] > 0  # batches of 4
    preds = (out / "generated_predictions.txt").read_text().split("\n")
    assert len(preds) == 6


def test_generation_config_and_length_flags_reach_early_exit_generate(ckpt, data, tmp_path):
    """--generation_config (processors a released checkpoint ships) and --generation_max_length apply to the exit
    methods as to HF generate: FREE + exact verification writes the full model's predictions under them."""
    from transformers import GenerationConfig
    gc = tmp_path / "gc"
    GenerationConfig(no_repeat_ngram_size=2, repetition_penalty=1.3, decoder_start_token_id=0, eos_token_id=1,
                     pad_token_id=0).save_pretrained(gc)

    def predictions(name, *extra):
        out = tmp_path / name
        run_summarization.main(argv(ckpt, data, out, "--do_predict", "--generation_max_length", "10", *extra,
                                    train=False))
        return (out / "generated_predictions.txt").read_text().split("\n")

    full = predictions("full", "--generation_config", str(gc))
    verified = predictions("verify", "--generation_config", str(gc), "--use_shallow_deep", "True",
                           "--shallow_exit_layer", "2", "--shallow2deep_conf_type", "softmax",
                           "--shallow2deep_conf_threshold", "0.3", "--exact_verification", "True")
    plain = predictions("plain")
    assert verified == full
    assert plain != full  # the generation config changed the output
    assert max(len(p.split()) for p in full) <= 10


def test_beams_with_an_exit_method_record_every_beams_tokens(ckpt, data, tmp_path):
    out = tmp_path / "run"
    run_summarization.main(argv(ckpt, data, out, "--do_predict", "--num_beams", "3", "--deploy_scenario", "True",
                                "--use_shallow_deep", "True", "--shallow_exit_layer", "2", "--shallow2deep_conf_type",
                                "softmax", "--shallow2deep_conf_threshold", "0.5", train=False))
    rec = json.loads((out / "predict_decoding_record.json").read_text())
    n = len(open(out / "generated_predictions.txt").read().splitlines())
    assert n == 6
    # every step of every beam is one record; the returned sequences alone hold fewer tokens
    assert rec["summary"]["generated_tokens"] == len(rec["tokens"]) > 3 * n


def test_meta_head_trains_on_a_checkpoint_trained_with_exit_losses(ckpt, data, tmp_path):
    """CALM's recipe: train with an exit loss, then the meta head alone on that checkpoint (whose config keeps the
    loss it was trained with)."""
    run_summarization.main(argv(ckpt, data, tmp_path / "free", *FREE_FLAGS))
    out = tmp_path / "meta"
    run_summarization.main(argv(str(tmp_path / "free"), data, out, "--output_hidden_states_decoder", "True",
                                "--train_meta_cm_head", "True", "--exit_conf_type", "meta", "--use_early_exit", "True"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["meta_head_trained"] and cfg["intermediate_loss_fn"] is None


def test_published_flags_without_effect_warn_once_each(caplog, tmp_path):
    from additional_args import NO_EFFECT_FLAGS, TranslationDataArguments
    from task_flow import parse_args

    argv = ["--model_name_or_path", "x", "--output_dir", str(tmp_path), "--dataset_name", "wmt16",
            "--source_lang", "de", "--target_lang", "en", "--forced_bos_token", "en_XX", "--use_synchronize", "True"]
    with caplog.at_level("WARNING", logger="task_flow"):
        parse_args(TranslationDataArguments, argv)
    said = [r.getMessage() for r in caplog.records if "has no effect here" in r.getMessage()]
    assert sorted(said) == sorted(f"--{f} has no effect here: {NO_EFFECT_FLAGS[f]} (accepted so the published "
                                  f"scripts run)" for f in ("forced_bos_token", "use_synchronize"))
    caplog.clear()
    with caplog.at_level("WARNING", logger="task_flow"):
        parse_args(TranslationDataArguments, argv[:10])
    assert not [r for r in caplog.records if "has no effect here" in r.getMessage()]
