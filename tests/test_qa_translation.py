"""run_question_answering.py and run_translation.py end to end on generated data with a tiny local model."""

import json

import pytest
from transformers import AutoTokenizer

import run_question_answering as qa
import run_translation as tr
from util import metrics as M
from util.data_gen import gen_squad, gen_translation, write_json, write_jsonl

COMMON = ["--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--report_to", "none",
          "--use_cpu", "--seed", "0", "--save_strategy", "no", "--max_steps", "2", "--learning_rate", "1e-3"]
FREE = ["--output_hidden_states_decoder", "True", "--intermediate_loss_fn", "shallowdeep_kd_dyna",
        "--shallow_exit_layer", "2", "--distill_layer_alpha", "0.5"]


@pytest.fixture(scope="module")
def squad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("squad")
    out = {}
    for v2 in (False, True):
        for split, n, seed in (("train", 12, 1), ("validation", 4, 2)):
            out[(v2, split)] = write_json(gen_squad(n, seed, version_2=v2), str(d / f"{int(v2)}_{split}.json"))
    return out


@pytest.mark.parametrize("v2", [False, True])
def test_qa_trains_windows_and_reports_em_f1(tiny_t5, squad_files, tmp_path, v2):
    out = tmp_path / "qa"
    args = ["--model_name_or_path", tiny_t5, "--train_file", squad_files[(v2, "train")],
            "--validation_file", squad_files[(v2, "validation")], "--do_train", "--do_eval",
            "--output_dir", str(out), "--max_seq_length", "96", "--doc_stride", "32", "--max_answer_length", "8",
            *COMMON, *FREE, "--use_shallow_deep", "True", "--shallow2deep_conf_type", "softmax",
            "--shallow2deep_conf_threshold", "0.5"]
    if v2:
        args += ["--version_2_with_negative", "True"]
    res = qa.main(args)
    ev = json.loads((out / "eval_results.json").read_text())
    # the reported scores are the official metric of the written answers against the file's gold answers
    preds = json.loads((out / "eval_predictions.json").read_text())
    gold = {qa_["id"]: [a["text"] for a in qa_["answers"]]
            for art in json.load(open(squad_files[(v2, "validation")]))["data"]
            for par in art["paragraphs"] for qa_ in par["qas"]}
    assert set(preds) == set(gold) and len(gold) == 4
    want = M.squad(preds, gold, "v2" if v2 else "v1")
    assert ev["eval_exact_match"] == pytest.approx(want["exact_match"]) and ev["eval_f1"] == pytest.approx(want["f1"])
    if v2:
        assert ev["eval_total"] == 4 and ev.get("eval_HasAns_total", 0) + ev.get("eval_NoAns_total", 0) == 4
    assert ev["eval_windows"] > ev["eval_samples"] == 4  # long contexts were split into several windows
    assert ev["eval_generate_calls"] > 0 and "eval_avg_layers_per_token" in ev
    preds = json.loads((out / "eval_predictions.json").read_text())
    assert len(preds) == 4
    if v2:
        assert "eval_NoAns_f1" in ev or "eval_HasAns_f1" in ev
    assert res["train_samples"] > 0


def test_qa_windows_keep_the_answer_and_choose_across_windows(tiny_t5):
    from transformers import AutoTokenizer

    from additional_args import QADataArguments

    tok = AutoTokenizer.from_pretrained(tiny_t5)
    d = QADataArguments(train_file="x.json", max_seq_length=48, doc_stride=16, max_answer_length=16)
    context = " ".join(["filler words here."] * 30) + " The capital of Freedonia is Zorbtown."
    ex = {"id": ["q1"], "question": ["What is the capital of Freedonia?"], "context": [context],
          "answers": [{"text": ["Zorbtown"], "answer_start": [context.index("Zorbtown")]}]}
    feats = qa.windows(tok, ex, d, with_targets=True)
    assert len(feats["input_ids"]) >= 1  # only windows holding the answer are training targets
    assert all(tok.decode(lab, skip_special_tokens=True) == "Zorbtown" for lab in feats["labels"])
    all_windows = qa.windows(tok, ex, d, with_targets=False)
    assert len(all_windows["input_ids"]) > len(feats["input_ids"])
    n = len(all_windows["input_ids"])
    texts = ["filler"] * (n - 1) + ["Zorbtown"]
    scores = [-3.0] * (n - 1) + [-0.5]  # the last window is the most confident: it wins, not the last by position
    assert qa.choose_answers(ex, all_windows, texts, scores, [-9.0] * n, d) == {"q1": "Zorbtown"}
    scores[-1], scores[0] = -5.0, -0.1
    assert qa.choose_answers(ex, all_windows, texts, scores, [-9.0] * n, d) == {"q1": "filler"}
    d.version_2_with_negative = True  # the null option wins when every window prefers the empty answer
    assert qa.choose_answers(ex, all_windows, texts, scores, [0.0] * n, d) == {"q1": ""}


def test_translation_trains_and_reports_bleu_chrf(tiny_t5, tmp_path):
    files = {}
    for split, n, seed in (("train", 16, 1), ("validation", 6, 2)):
        files[split] = write_jsonl(gen_translation(n, seed), str(tmp_path / f"{split}.jsonl"))
    out = tmp_path / "mt"
    base = ["--model_name_or_path", tiny_t5, "--train_file", files["train"], "--validation_file",
            files["validation"], "--output_dir", str(out), "--do_train", "--do_eval", "--predict_with_generate",
            "--source_prefix", "translate German to English: ", "--max_source_length", "48",
            "--max_target_length", "16", *COMMON, *FREE]
    tr.main(base + ["--source_lang", "de", "--target_lang", "en", "--do_predict", "--test_file", files["validation"],
                    "--overwrite_output_dir", "True"])
    ev = json.loads((out / "eval_results.json").read_text())
    pr = json.loads((out / "predict_results.json").read_text())
    # evaluation and prediction decode the same file the same way: the scores of the written predictions
    texts = (out / "generated_predictions.txt").read_text().split("\n")[:6]
    # the references as evaluation sees them: the labels, cut at --max_target_length tokens and decoded
    tok = AutoTokenizer.from_pretrained(tiny_t5)
    refs = [tok.decode(tok(text_target=r["translation"]["en"], max_length=16, truncation=True)["input_ids"],
                       skip_special_tokens=True).strip() for r in gen_translation(6, 2)]
    assert len(texts) == 6
    assert ev["eval_bleu"] == pytest.approx(M.bleu(texts, refs)["bleu"], abs=1e-6) == pytest.approx(pr["predict_bleu"])
    assert ev["eval_chrf"] == pytest.approx(M.bleu(texts, refs)["chrf"], abs=1e-6)
    with pytest.raises(ValueError, match="--source_lang and --target_lang"):
        tr.main(base)
    with pytest.raises(ValueError, match=r"Language\(s\) \['fr'\]"):
        tr.main(base + ["--source_lang", "fr", "--target_lang", "en", "--overwrite_output_dir"])


def test_build_model_dropout(tiny_t5):
    """build_model.py --dropout reaches the config (the task demo trains with 0); the default stays 0.1."""
    import os
    import sys

    from transformers import AutoTokenizer

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
    from build_model import make_config

    tok = AutoTokenizer.from_pretrained(tiny_t5)
    dims = dict(d_model=32, d_ff=64, num_heads=2, d_kv=16, num_layers=2, num_decoder_layers=2)
    assert make_config("t5", tok, **dims).dropout_rate == 0.1
    assert make_config("t5", tok, **dims, dropout=0.0).dropout_rate == 0.0
