"""Bad input to the entry points, the benchmark, build_model and gpt_eval: every case fails (or warns) with a message
that names the file, line or example and the problem (issue 19). The list of cases is in the closing note."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys

import pytest

import run_question_answering as qa
import run_summarization as rs
import run_translation as tr
from util.checks import InputError
from util.data_gen import gen_dialogsum, gen_translation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import benchmark  # noqa: E402
import build_model  # noqa: E402

from gpt_eval.cli import main as gpt_eval_main  # noqa: E402

GOOD = [json.dumps(r) for r in gen_dialogsum(8, 1)]


@pytest.fixture
def files(tmp_path):
    def write(name, content):
        p = tmp_path / name
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
        return str(p)
    return write


def summarize(model, train, *extra, out):
    return ["--model_name_or_path", model, "--train_file", train, "--output_dir", str(out), "--do_train",
            "--max_steps", "1", "--report_to", "none", "--use_cpu", "--save_strategy", "no", "--max_source_length",
            "32", "--max_target_length", "8", "--per_device_train_batch_size", "4", *extra]


def lines(*rows):
    return "\n".join(rows) + "\n"


# --- run_summarization.py: data files -------------------------------------------------------------------------

SUM_FILE_CASES = {
    "empty test file": ("t.jsonl", lines(*GOOD), ["--test_file", "{empty}", "--do_predict"],
                        r"--test_file .*empty\.jsonl is empty"),
    "blank lines only": ("blank.jsonl", "\n  \n\n", [], r"--train_file .*blank\.jsonl is empty"),
    "malformed JSONL line": ("bad.jsonl", lines(*GOOD[:2], '{"dialogue": "x", "summary": ', *GOOD[2:]), [],
                             r"bad\.jsonl: line 3 is not valid JSON"),
    "malformed JSON document": ("bad.json", '[{"dialogue": "a", "summary": "b"},\n {"dialogue": "a" "summary": "b"}]',
                                [], r"bad\.json: line 2 is not valid JSON \(Expecting ',' delimiter"),
    "malformed CSV line": ("bad.csv", 'dialogue,summary\n"a: hi",b\nx,y,z,w\nc,d\n', [],
                           r"bad\.csv: line 3 has 4 fields where the header has 2"),
    "non-UTF-8 JSONL": ("latin.jsonl", lines(*GOOD[:3]).encode() + b'{"dialogue": "caf\xe9", "summary": "s"}\n', [],
                        r"latin\.jsonl: line 4 is not UTF-8"),
    "non-UTF-8 CSV": ("latin.csv", b'dialogue,summary\n"a: hi",b\n"caf\xe9",y\n', [], r"latin\.csv: line 3 is not UTF-8"),
    "misspelled --text_column": ("t.jsonl", lines(*GOOD), ["--text_column", "dialog"],
                                 r"Column\(s\) \['dialog'\] not found in the data; it has \['id', 'dialogue', 'summary'\]"),
    "misspelled --summary_column": ("t.jsonl", lines(*GOOD), ["--summary_column", "sumary"],
                                    r"Column\(s\) \['sumary'\] not found"),
    "number where text belongs": ("num.jsonl", lines(*GOOD, '{"id": "n", "dialogue": 5, "summary": "s"}'), [],
                                  r"train: example 9: source 'dialogue' is int \(5\), not text"),
    "list where text belongs": ("list.jsonl", lines('{"id": "n", "dialogue": ["a: hi"], "summary": "s"}'), [],
                                r"train: example 1: source 'dialogue' is list"),
    "every target empty": ("et.jsonl", lines('{"dialogue": "a: hi", "summary": " "}', '{"dialogue": "b", "summary": ""}'),
                           [], r"train: every example has an empty source or target: 2 with an empty target 'summary'"),
}


@pytest.mark.parametrize("case", SUM_FILE_CASES)
def test_summarization_data_file_errors(tiny_t5, files, tmp_path, case):
    name, content, extra, match = SUM_FILE_CASES[case]
    empty = files("empty.jsonl", "")
    extra = [e.replace("{empty}", empty) for e in extra]
    with pytest.raises(InputError if "Column" not in match else ValueError, match=match):
        rs.main(summarize(tiny_t5, files(name, content), *extra, out=tmp_path / "out"))


SUM_WARN_CASES = {  # file, content, warning, examples trained on
    "None source": ("none.jsonl", lines(*GOOD, '{"id": "n", "dialogue": null, "summary": "s"}'),
                    r"train: dropped 1 of 9 examples: 1 with a missing \(None/NaN\) source 'dialogue' \(first: example 9\)",
                    8),
    "NaN in CSV": ("nan.csv", 'dialogue,summary\n"a: hi",b\n,y\n"c: ok",NaN\n"d: yes",e\n',
                   r"train: dropped 2 of 4 examples: 1 with a missing \(None/NaN\) source 'dialogue' \(first: example 2\), "
                   r"1 with a missing \(None/NaN\) target 'summary' \(first: example 3\)", 2),
    "row without a column": ("mk.jsonl", lines(*GOOD, '{"id": "n", "dialogue": "a: hi"}'),
                             r"dropped 1 of 9 examples: 1 with a missing \(None/NaN\) target 'summary'", 8),
    "empty target": ("et.jsonl", lines(*GOOD, '{"id": "n", "dialogue": "a: b", "summary": "  "}'),
                     r"dropped 1 of 9 examples: 1 with an empty target 'summary' \(first: example 9\)", 8),
    "sources longer than --max_source_length": ("t.jsonl", lines(*GOOD),
                                                r"train: truncated 8 of 8 sources to --max_source_length 32 tokens", 8),
}


@pytest.mark.parametrize("case", SUM_WARN_CASES)
def test_summarization_unusable_rows_are_dropped_and_counted(tiny_t5, files, tmp_path, caplog, case):
    name, content, match, kept = SUM_WARN_CASES[case]
    with caplog.at_level(logging.WARNING):
        res = rs.main(summarize(tiny_t5, files(name, content), out=tmp_path / "out"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(re.search(match, w) for w in warnings), warnings
    assert res["train_samples"] == kept


# --- run_summarization.py: model, output folder, flags -------------------------------------------------------------

def bad_depth(tiny_t5, tmp_path):
    d = tmp_path / "baddepth"
    shutil.copytree(tiny_t5, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(use_shallow_deep=True, shallow_exit_layer=9, shallow2deep_conf_type="softmax")
    (d / "config.json").write_text(json.dumps(cfg))
    return str(d)


def lora_without_base(tiny_t5, tmp_path):
    d = tmp_path / "lora"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path":
                                                       str(tmp_path / "deleted_base")}))
    return str(d)


MODEL_CASES = {
    "checkpoint exit settings beyond its depth": (bad_depth, [], ValueError,
                                                  r"--shallow_exit_layer 9 is outside 1\.\.3 \(the decoder has 4 layers\) "
                                                  r"\[shallow_exit_layer from the config\.json of .*baddepth"),
    "LoRA folder whose base is missing": (lora_without_base, [], InputError,
                                          r"is a LoRA adapter on .*deleted_base .* which does not exist"),
    "model folder missing": (lambda m, t: str(t / "nowhere"), [], InputError, r"nowhere: no such folder"),
    "folder without config.json": (lambda m, t: str(t), [], InputError, r"holds no config\.json"),
    "threshold out of range": (lambda m, t: m, ["--exit_conf_threshold", "2"], ValueError,
                               r"--exit_conf_threshold 2\.0 is outside \[0, 1\]"),
    "conflicting methods": (lambda m, t: m, ["--do_train", "False", "--do_eval", "--static_exit_layer", "2",
                                             "--use_early_exit", "True", "--exit_conf_type", "softmax"],
                            ValueError, r"Choose one decoding method, got --static_exit_layer and --use_early_exit"),
    "misspelled flag": (lambda m, t: m, ["--exit_threshold", "0.5"], ValueError,
                        r"not used by the HfArgumentParser: \['--exit_threshold', '0\.5'\]"),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_and_flag_errors(tiny_t5, files, tmp_path, case):
    model, extra, exc, match = MODEL_CASES[case]
    train = files("t.jsonl", lines(*GOOD))
    with pytest.raises(exc, match=match):
        rs.main(summarize(model(tiny_t5, tmp_path), train, "--validation_file", train, *extra, out=tmp_path / "o"))


def test_unknown_confidence_type_names_the_choices(tiny_t5, files, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        rs.main(summarize(tiny_t5, files("t.jsonl", lines(*GOOD)), "--exit_conf_type", "entropy", out=tmp_path / "o"))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--exit_conf_type" in err and "invalid choice: 'entropy'" in err


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_output_folder_that_cannot_be_written(tiny_t5, files, tmp_path, where):
    out = files("afile", "x") + "/sub" if where == "under a file" else "/proc/not_here"
    with pytest.raises(InputError, match=r"--output_dir .* cannot be written"):
        rs.main(summarize(tiny_t5, files("t.jsonl", lines(*GOOD)), out=out))


# --- run_question_answering.py ----------------------------------------------------------------------------------

def qa_args(model, train, out):
    return ["--model_name_or_path", model, "--train_file", train, "--output_dir", str(out), "--do_train",
            "--max_steps", "1", "--report_to", "none", "--use_cpu", "--max_seq_length", "64", "--doc_stride", "16",
            "--per_device_train_batch_size", "4"]


def squad_row(i, start_shift=0):
    context = f"Anna{i} went home after the long day at work."
    return json.dumps({"id": str(i), "question": "Who went home?", "context": context,
                       "answers": {"text": [f"Anna{i}"], "answer_start": [start_shift]}})


QA_CASES = {
    "answer_start off the answer in every row": ("s.jsonl", lines(squad_row(0, 5), squad_row(1, 3)),
                                                 r"train: no usable example: 2 with an answer_start that does not point "
                                                 r"at its answer text in the context \(first: example 1\)"),
    "malformed SQuAD JSON": ("sq.json", '{"version": "1.1",\n "data": [{"title": "x", "paragraphs": [}]}', r"sq\.json: "
                             r"line 2 is not valid JSON"),
    "empty SQuAD file": ("e.json", "", r"--train_file .*e\.json is empty"),
    "answers of the wrong shape": ("w.jsonl", lines(json.dumps({"id": "1", "question": "Who?", "context": "Anna went.",
                                                               "answers": "Anna"})),
                                   r"train: example 1: 'answers' must be \{'text': \[\.\.\.\], 'answer_start'"),
    "SQuAD document without qas": ("nq.json", json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "c"}]}]}),
                                   r"not the official SQuAD layout .*KeyError 'qas'"),
    "misspelled --question_column": ("s.jsonl", lines(squad_row(0)), r"Column\(s\) \['query'\] not found"),
}


@pytest.mark.parametrize("case", QA_CASES)
def test_question_answering_errors(tiny_t5, files, tmp_path, case):
    name, content, match = QA_CASES[case]
    extra = ["--question_column", "query"] if "question_column" in case else []
    with pytest.raises(ValueError, match=match):
        qa.main(qa_args(tiny_t5, files(name, content), tmp_path / "o") + extra)


def test_squad_answer_start_mismatch_drops_those_examples(tiny_t5, files, tmp_path, caplog):
    train = files("s.jsonl", lines(squad_row(0), squad_row(1), squad_row(2, 7)))
    with caplog.at_level(logging.WARNING):
        res = qa.main(qa_args(tiny_t5, train, tmp_path / "o"))
    assert any("dropped 1 of 3 examples: 1 with an answer_start that does not point at its answer text in the "
               "context (first: example 3)" in r.getMessage() for r in caplog.records)
    assert res["train_samples"] > 0


# --- run_translation.py -------------------------------------------------------------------------------------------

def tr_args(model, train, out, src="de", tgt="en"):
    return ["--model_name_or_path", model, "--train_file", train, "--output_dir", str(out), "--do_train",
            "--max_steps", "1", "--report_to", "none", "--use_cpu", "--source_lang", src, "--target_lang", tgt,
            "--max_source_length", "32", "--max_target_length", "16", "--per_device_train_batch_size", "4"]


def test_translation_row_missing_a_language_is_dropped_and_counted(tiny_t5, files, tmp_path, caplog):
    rows = [json.dumps(r) for r in gen_translation(6, 1)] + [json.dumps({"id": "z", "translation": {"de": "Hallo"}})]
    with caplog.at_level(logging.WARNING):
        res = tr.main(tr_args(tiny_t5, files("t.jsonl", lines(*rows)), tmp_path / "o"))
    assert any("dropped 1 of 7 examples: 1 with a missing (None/NaN) target language 'en' of 'translation' "
               "(first: example 7)" in r.getMessage() for r in caplog.records)
    assert res["train_samples"] == 6


@pytest.mark.parametrize("case, rows, langs, match", [
    ("language no row has", [{"translation": {"de": "Hallo", "en": "Hello"}}], ("de", "fr"),
     r"Language\(s\) \['fr'\] not in the data's translation pairs, which have \['de', 'en'\]"),
    ("flat language columns", [{"de": "Hallo", "en": "Hello"}], ("de", "en"),
     r"Column\(s\) \['translation'\] not found in the data; it has \['de', 'en'\]"),
    ("translation as a string", [{"translation": "Hallo = Hello"}], ("de", "en"),
     r"example 1: 'translation' is str, not an object \{language: text\}"),
])
def test_translation_errors(tiny_t5, files, tmp_path, case, rows, langs, match):
    with pytest.raises(ValueError, match=match):
        tr.main(tr_args(tiny_t5, files("t.jsonl", lines(*map(json.dumps, rows))), tmp_path / "o", *langs))


# --- scripts/benchmark.py -----------------------------------------------------------------------------------------

def bench(model, val, *extra):
    return ["--model_name_or_path", model, "--validation_file", val, "--max_samples", "2", "--shallow_exit_layer", "2",
            "--methods", "full", "--repeats", "1", "--warmup", "0", "--max_new_tokens", "4", *extra]


BENCH_CASES = {
    "missing file": ("", None, [], FileNotFoundError, r"--validation_file .*nofile\.jsonl does not exist"),
    "malformed line": ("bad.jsonl", lines(*GOOD[:2], "{oops", *GOOD[2:]), [], InputError,
                       r"bad\.jsonl: line 3 is not valid JSON"),
    "empty file": ("e.jsonl", "", [], InputError, r"e\.jsonl is empty"),
    "misspelled column": ("t.jsonl", lines(*GOOD), ["--text_column", "dialog"], InputError,
                          r"row 1 has a missing \(None/NaN\) source 'dialog'; set --text_column \(the row has "
                          r"\['dialogue', 'id', 'summary'\]\)"),
    "translation language missing": ("tr.jsonl", lines(*(json.dumps(r) for r in gen_translation(3, 1))),
                                     ["--task", "translation", "--target_lang", "fr"], InputError,
                                     r"row 1 has a missing \(None/NaN\) target 'fr'; set --target_lang"),
    "shallow exit beyond the depth": ("t.jsonl", lines(*GOOD), ["--shallow_exit_layer", "9", "--methods", "free"],
                                      ValueError, r"--shallow_exit_layer 9 is outside 1\.\.3"),
    "output folder that cannot be written": ("t.jsonl", lines(*GOOD), ["--output_dir", "/proc/bench"], InputError,
                                             r"--output_dir /proc/bench cannot be written"),
    "model folder missing": ("t.jsonl", lines(*GOOD), ["--model_name_or_path", "/nonexistent/model"], InputError,
                             r"/nonexistent/model: no such folder"),
}


@pytest.mark.parametrize("case", BENCH_CASES)
def test_benchmark_errors(tiny_t5, files, tmp_path, case):
    name, content, extra, exc, match = BENCH_CASES[case]
    val = files(name, content) if content is not None else str(tmp_path / "nofile.jsonl")
    with pytest.raises(exc, match=match):
        benchmark.main(bench(tiny_t5, val, *extra))


@pytest.mark.parametrize("extra, match", [
    (["--free_thresholds", "1.5"], r"thresholds are confidences in \[0, 1\]"),
    (["--repeats", "0"], r"--repeats must be >= 1"),
])
def test_benchmark_flag_errors(tiny_t5, files, capsys, extra, match):
    with pytest.raises(SystemExit) as e:
        benchmark.main(bench(tiny_t5, files("t.jsonl", lines(*GOOD)), *extra))
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)


# --- scripts/build_model.py ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, match", [
    (["--num_decoder_layers", "0"], r"--num_decoder_layers must be >= 1, got 0"),
    (["--model_type", "llama", "--num_heads", "3"], r"--d_model 128 must be a multiple of --num_heads 3 for llama"),
])
def test_build_model_flag_errors(tmp_path, capsys, extra, match):
    with pytest.raises(SystemExit) as e:
        build_model.main(["--out_dir", str(tmp_path / "m"), "--corpus_lines", "200", "--vocab_size", "300", *extra])
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize("out, extra, match", [
    ("m", ["--vocab_size", "3"], r"--vocab_size 3 is too small for the characters of the corpus"),
    ("/proc/m", [], r"--out_dir /proc/m cannot be written"),
])
def test_build_model_errors(tmp_path, out, extra, match):
    with pytest.raises(InputError, match=match):
        build_model.main(["--out_dir", out if out.startswith("/") else str(tmp_path / out), "--corpus_lines", "200",
                          "--vocab_size", "300", *extra])


# --- gpt_eval -------------------------------------------------------------------------------------------------------

def judge_args(d, **over):
    paths = {"sources": d / "src.jsonl", "references": d / "src.jsonl", "pred_a": d / "a.txt", "pred_b": d / "b.txt"}
    paths.update(over)
    argv = []
    for k, v in paths.items():
        argv += [f"--{k}", str(v)]
    return argv + ["--base_url", "http://127.0.0.1:9/v1", "--model", "m", "--output_dir",
                   str(over.get("output_dir", d / "out"))]


@pytest.fixture
def judge_inputs(tmp_path):
    (tmp_path / "src.jsonl").write_text(lines(*(json.dumps({"dialogue": f"d {i}", "summary": f"s {i}"})
                                                for i in range(2))))
    (tmp_path / "a.txt").write_text("one\ntwo")
    (tmp_path / "b.txt").write_text("uno\ndos")
    return tmp_path


@pytest.mark.parametrize("case", ["non-UTF-8 predictions", "malformed sources line", "empty inputs",
                                  "output folder that cannot be written"])
def test_gpt_eval_input_errors(judge_inputs, capsys, case):
    d = judge_inputs
    over = {}
    if case == "non-UTF-8 predictions":
        (d / "b.txt").write_bytes(b"uno\ndos caf\xe9")
        match = r"b\.txt: line 2 is not UTF-8"
    elif case == "malformed sources line":
        (d / "bad.jsonl").write_text('{"dialogue": "d 0"}\n{"dialogue": \n')
        over = {"sources": d / "bad.jsonl"}
        match = r"bad\.jsonl:2 is not valid JSON"
    elif case == "empty inputs":
        for f in ("e.jsonl", "e.txt"):
            (d / f).write_text("")
        over = {"sources": d / "e.jsonl", "references": d / "e.jsonl", "pred_a": d / "e.txt", "pred_b": d / "e.txt"}
        match = r"no samples to evaluate \(empty inputs\)"
    else:
        over = {"output_dir": "/proc/judge"}
        match = r"--output_dir /proc/judge cannot be written"
    assert gpt_eval_main(judge_args(d, **over)) == 2
    assert re.search(r"gpt_eval: error: .*" + match, capsys.readouterr().err)


# --- as a user runs them: exit status 2 and one line, no traceback -----------------------------------------------

@pytest.mark.parametrize("script, args, message", [
    ("run_summarization.py", ["--model_name_or_path", "{model}", "--train_file", "{empty}", "--output_dir", "{out}",
                              "--do_train"], "run_summarization.py: error: --train_file {empty} is empty"),
    ("scripts/build_model.py", ["--out_dir", "{out}", "--vocab_size", "3", "--corpus_lines", "100"],
     "build_model.py: error: --vocab_size 3 is too small"),
])
def test_cli_exit_status_and_one_line(tiny_t5, tmp_path, script, args, message):
    (tmp_path / "empty.jsonl").write_text("")
    fill = {"{model}": tiny_t5, "{empty}": str(tmp_path / "empty.jsonl"), "{out}": str(tmp_path / "out")}
    args = [fill.get(a, a) for a in args]
    for k, v in fill.items():
        message = message.replace(k, v)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT, HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert message in r.stderr and "Traceback" not in r.stderr
