"""Bad input to the entry points, the benchmark, build_model, make_data and gpt_eval: every case fails (or warns) with
a message that names the file, line or example and the problem (issue 19). Each error case runs twice: in-process,
where it is an InputError (a ValueError) or a FileNotFoundError, and as a user runs it (the closing section), where
it ends with exit status 2 and one line `<script>: error: <message>`, without a traceback (issue 28)."""

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
from util.checks import InputError, load_data_files, run_cli
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


def test_reader_failure_the_files_explain_is_an_input_error_with_its_cause(files):
    with pytest.raises(InputError, match=r"--train_file .*bad\.jsonl: line 3 is not valid JSON") as e:
        load_data_files({"train": files("bad.jsonl", lines(*GOOD[:2], "{oops", *GOOD[2:]))})
    assert e.value.__cause__ is not None  # the reader's own exception


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("a bug in the reader")])
def test_reader_failure_the_files_do_not_explain_is_raised_unchanged(files, monkeypatch, error):
    """A disk, cache or library failure is not the user's: it keeps its type and traceback (issue 28)."""
    import datasets

    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(type(error)) as e:
        load_data_files({"train": files("t.jsonl", lines(*GOOD)), "validation": files("v.jsonl", lines(*GOOD))})
    assert e.value is error and not isinstance(e.value, InputError)


def test_run_cli_ends_input_errors_with_one_line_and_leaves_bugs_alone(capsys):
    def bad_input():
        raise InputError("--train_file x.jsonl is empty")

    def bug():
        raise ValueError("not the user's")
    with pytest.raises(SystemExit) as e:
        run_cli(bad_input, "x.py")
    assert e.value.code == 2 and capsys.readouterr().err == "x.py: error: --train_file x.jsonl is empty\n"
    with pytest.raises(ValueError, match="not the user's"):
        run_cli(bug, "x.py")


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
    "misspelled flag": (lambda m, t: m, ["--exit_threshold", "0.5"], InputError,
                        r"unrecognized arguments: --exit_threshold 0\.5 \(did you mean --exit_conf_threshold\?\)"),
    "value of the wrong type": (lambda m, t: m, ["--max_steps", "abc"], InputError,
                                r"argument --max_steps/--max-steps: invalid int value: 'abc'"),
    "unknown confidence type": (lambda m, t: m, ["--exit_conf_type", "entropy"], InputError,
                                r"argument --exit_conf_type/--exit-conf-type: invalid choice: 'entropy' \(choose "
                                r"from 'softmax', 'softmax_max', 'state', 'meta'\)"),
    "data file of another format": (lambda m, t: m, ["--test_file", "x.parquet"], InputError,
                                    r"x\.parquet: data files must be \.json, \.jsonl or \.csv"),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_and_flag_errors(tiny_t5, files, tmp_path, case):
    model, extra, exc, match = MODEL_CASES[case]
    train = files("t.jsonl", lines(*GOOD))
    with pytest.raises(exc, match=match):
        rs.main(summarize(model(tiny_t5, tmp_path), train, "--validation_file", train, *extra, out=tmp_path / "o"))


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


TR_CASES = {
    "language no row has": ([{"translation": {"de": "Hallo", "en": "Hello"}}], ("de", "fr"),
                            r"Language\(s\) \['fr'\] not in the data's translation pairs, which have \['de', 'en'\]"),
    "flat language columns": ([{"de": "Hallo", "en": "Hello"}], ("de", "en"),
                              r"Column\(s\) \['translation'\] not found in the data; it has \['de', 'en'\]"),
    "translation as a string": ([{"translation": "Hallo = Hello"}], ("de", "en"),
                                r"example 1: 'translation' is str, not an object \{language: text\}"),
    "no --target_lang": ([{"translation": {"de": "Hallo", "en": "Hello"}}], ("de", ""),
                         r"Translation needs --source_lang and --target_lang"),
}


@pytest.mark.parametrize("case", TR_CASES)
def test_translation_errors(tiny_t5, files, tmp_path, case):
    rows, langs, match = TR_CASES[case]
    with pytest.raises(InputError, match=match):
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


BENCH_FLAG_CASES = {
    "threshold out of range": (["--free_thresholds", "1.5"], r"thresholds are confidences in \[0, 1\]"),
    "no repeats": (["--repeats", "0"], r"--repeats must be >= 1"),
}


@pytest.mark.parametrize("case", BENCH_FLAG_CASES)
def test_benchmark_flag_errors(tiny_t5, files, capsys, case):
    extra, match = BENCH_FLAG_CASES[case]
    with pytest.raises(SystemExit) as e:
        benchmark.main(bench(tiny_t5, files("t.jsonl", lines(*GOOD)), *extra))
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)


# --- scripts/build_model.py ---------------------------------------------------------------------------------------

BUILD_FLAG_CASES = {
    "no decoder layers": (["--num_decoder_layers", "0"], r"--num_decoder_layers must be >= 1, got 0"),
    "heads that do not divide d_model": (["--model_type", "llama", "--num_heads", "3"],
                                         r"--d_model 128 must be a multiple of --num_heads 3 for llama"),
}


@pytest.mark.parametrize("case", BUILD_FLAG_CASES)
def test_build_model_flag_errors(tmp_path, capsys, case):
    extra, match = BUILD_FLAG_CASES[case]
    with pytest.raises(SystemExit) as e:
        build_model.main(["--out_dir", str(tmp_path / "m"), "--corpus_lines", "200", "--vocab_size", "300", *extra])
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)


BUILD_CASES = {
    "vocabulary too small": ("m", ["--vocab_size", "3"], r"--vocab_size 3 is too small for the characters of the "
                                                         r"corpus"),
    "output folder that cannot be written": ("/proc/m", [], r"--out_dir /proc/m cannot be written"),
}


@pytest.mark.parametrize("case", BUILD_CASES)
def test_build_model_errors(tmp_path, case):
    out, extra, match = BUILD_CASES[case]
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
#
# Every error case above, and a few that only a command line can make, run as `python <script> <flags>`. A fresh
# interpreter per case would spend ~7 s each importing torch and transformers, so one helper process imports them
# once and forks a child per case: the child runs the script's file as __main__ (its own `run_cli` boundary), with
# its own stdout and stderr (file descriptors 1 and 2), and exits with what the interpreter would (SystemExit's code,
# or the traceback and 1); the helper reports the exit statuses. A few cases also run in a fresh interpreter
# (test_cli_in_a_fresh_interpreter), the reference the fork harness must agree with.

CLI_HARNESS = r"""
import json, os, runpy, sys, traceback
root, todo = sys.argv[1], json.load(open(sys.argv[2]))
sys.path[:0] = [root, os.path.join(root, "scripts")]
import run_question_answering, run_summarization, run_translation, benchmark, build_model, gpt_eval.cli  # warm up
status = {}
for name, (script, argv, out) in todo.items():
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(out + ".out", os.O_WRONLY | os.O_CREAT), 1)
        os.dup2(os.open(out + ".err", os.O_WRONLY | os.O_CREAT), 2)
        path = os.path.join(root, script)
        sys.argv, sys.path[0] = [path, *argv], os.path.dirname(path)
        try:
            runpy.run_path(path, run_name="__main__")
            code = 0
        except SystemExit as e:  # as the interpreter ends
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else print(e.code, file=sys.stderr) or 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)
    status[name] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(status))
"""


def _write(d, name, content):
    p = d / name
    p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
    return str(p)


def gpt_eval_case(d, case):
    """argv of gpt_eval for one of test_gpt_eval_input_errors' cases, with its files in d."""
    _write(d, "src.jsonl", lines(*(json.dumps({"dialogue": f"d {i}", "summary": f"s {i}"}) for i in range(2))))
    _write(d, "a.txt", "one\ntwo")
    _write(d, "b.txt", "uno\ndos")
    if case == "malformed sources line":
        return judge_args(d, sources=_write(d, "bad.jsonl", '{"dialogue": "d 0"}\n{"dialogue": \n'))
    return judge_args(d, output_dir="/proc/judge")


def cli_cases():
    """{case: (script, argv_of(model, folder) -> its flags, with its files written in folder, regex of the message,
    the program name its error line starts with)}."""
    cases = {}

    def add(name, script, argv_of, match, prog=None):
        cases[name] = (script, argv_of, match, prog or os.path.basename(script))

    def good(d):
        return _write(d, "t.jsonl", lines(*GOOD))

    for name, (fname, content, extra, match) in SUM_FILE_CASES.items():
        add(f"run_summarization {name}", "run_summarization.py", lambda m, d, f=fname, c=content, x=extra: summarize(
            m, _write(d, f, c), *[e.replace("{empty}", _write(d, "empty.jsonl", "")) for e in x], out=d / "out"), match)
    for name, (model_of, extra, _, match) in MODEL_CASES.items():
        add(f"run_summarization {name}", "run_summarization.py", lambda m, d, model_of=model_of, x=extra: summarize(
            model_of(m, d), good(d), "--validation_file", good(d), *x, out=d / "out"), match)
    add("run_summarization missing train file", "run_summarization.py",
        lambda m, d: summarize(m, str(d / "nofile.jsonl"), out=d / "out"),
        r"--train_file .*nofile\.jsonl does not exist")
    add("run_summarization splits with different columns", "run_summarization.py", lambda m, d: summarize(
        m, good(d), "--validation_file", _write(d, "v.jsonl", lines('{"dialogue": "a: hi", "headline": "x"}')),
        out=d / "out"), r"--validation_file .*v\.jsonl has the columns \['dialogue', 'headline'\] and --train_file .*"
                        r"t\.jsonl has \['dialogue', 'id', 'summary'\]: all splits must have the same columns")
    add("run_summarization output folder that cannot be written", "run_summarization.py",
        lambda m, d: summarize(m, good(d), out="/proc/not_here"), r"--output_dir /proc/not_here cannot be written")
    add("run_summarization output folder not empty", "run_summarization.py",
        lambda m, d: summarize(m, good(d), out=d), r"Output directory \(.*\) already exists and is not empty")
    add("run_summarization arguments file that is not JSON", "run_summarization.py",
        lambda m, d: [_write(d, "args.json", '{"model_name_or_path": "m",\n "output_dir": }')],
        r"the arguments file .*args\.json: line 2 is not valid JSON \(Expecting value, column 16\)")
    add("run_summarization arguments file with an unknown key", "run_summarization.py",
        lambda m, d: [_write(d, "args.json", json.dumps({"model_name_or_path": m, "output_dir": str(d / "o"),
                                                         "train_file": good(d), "exit_threshold": 0.5}))],
        r"the arguments file .*args\.json: unknown key\(s\) \['exit_threshold'\]")
    for name, (fname, content, match) in QA_CASES.items():
        extra = ["--question_column", "query"] if "question_column" in name else []
        add(f"run_question_answering {name}", "run_question_answering.py",
            lambda m, d, f=fname, c=content, x=extra: qa_args(m, _write(d, f, c), d / "out") + x, match)
    add("run_question_answering doc_stride as long as the window", "run_question_answering.py",
        lambda m, d: qa_args(m, _write(d, "s.jsonl", lines(squad_row(0))), d / "out") + ["--doc_stride", "64"],
        r"--doc_stride 64 must be smaller than --max_seq_length 64")
    for name, (rows, langs, match) in TR_CASES.items():
        add(f"run_translation {name}", "run_translation.py", lambda m, d, rows=rows, langs=langs: tr_args(
            m, _write(d, "t.jsonl", lines(*map(json.dumps, rows))), d / "out", *langs), match)
    for name, (fname, content, extra, _, match) in BENCH_CASES.items():
        add(f"benchmark {name}", "scripts/benchmark.py", lambda m, d, f=fname, c=content, x=extra: bench(
            m, _write(d, f, c) if c is not None else str(d / "nofile.jsonl"), *x), match)
    for name, (extra, match) in BENCH_FLAG_CASES.items():
        add(f"benchmark {name}", "scripts/benchmark.py", lambda m, d, x=extra: bench(m, good(d), *x), match)
    for name, (extra, match) in BUILD_FLAG_CASES.items():
        add(f"build_model {name}", "scripts/build_model.py", lambda m, d, x=extra: ["--out_dir", str(d / "m"), *x],
            match)
    for name, (out, extra, match) in BUILD_CASES.items():
        add(f"build_model {name}", "scripts/build_model.py", lambda m, d, o=out, x=extra: [
            "--out_dir", o if o.startswith("/") else str(d / o), "--corpus_lines", "200", *x], match)
    add("make_data empty split", "scripts/make_data.py", lambda m, d: ["--out_dir", str(d), "--n_train", "0"],
        r"--n_train must be at least 1, got 0")
    add("make_data output folder that cannot be written", "scripts/make_data.py",
        lambda m, d: ["--out_dir", "/proc/data", "--n_train", "2"], r"--out_dir /proc/data cannot be written")
    for name, match in (("malformed sources line", r"bad\.jsonl:2 is not valid JSON"),
                        ("output folder that cannot be written", r"--output_dir /proc/judge cannot be written")):
        add(f"gpt_eval {name}", "scripts/gpt_eval.py", lambda m, d, n=name: gpt_eval_case(d, n), match, prog="gpt_eval")
    return cases


CLI_CASES = cli_cases()


def cli_env(root):
    return dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                HF_DATASETS_CACHE=str(root / "datasets_cache"), PYTHONPATH=ROOT)


def assert_one_error_line(status, stderr, prog, match):
    assert status == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: "), stderr[-3000:]
    assert re.search(match, last), last


@pytest.fixture(scope="module")
def cli_runs(tiny_t5, tmp_path_factory):
    """{case: (exit status, stderr)} of every case of CLI_CASES, each in its own process forked by one helper."""
    root = tmp_path_factory.mktemp("cli")
    todo = {}
    for i, (name, (script, argv_of, _, _)) in enumerate(CLI_CASES.items()):
        d = root / f"case{i}"
        d.mkdir()
        todo[name] = (script, argv_of(tiny_t5, d), str(d / "std"))
    (root / "todo.json").write_text(json.dumps(todo))
    r = subprocess.run([sys.executable, "-c", CLI_HARNESS, ROOT, str(root / "todo.json")], cwd=ROOT,
                       env=cli_env(root), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    status = json.loads(r.stdout.strip().splitlines()[-1])
    return {name: (status[name], open(out + ".err").read()) for name, (_, _, out) in todo.items()}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_bad_input(cli_runs, case):
    _, _, match, prog = CLI_CASES[case]
    assert_one_error_line(*cli_runs[case], prog, match)


FRESH = ["run_summarization empty test file", "run_summarization misspelled flag",
         "run_question_answering answers of the wrong shape", "run_translation language no row has",
         "build_model vocabulary too small", "make_data empty split"]


@pytest.mark.parametrize("case", FRESH)
def test_cli_in_a_fresh_interpreter(tiny_t5, tmp_path, case):
    """`python <script> ...` itself, without the fork harness."""
    script, argv_of, match, prog = CLI_CASES[case]
    r = subprocess.run([sys.executable, os.path.join(ROOT, script), *argv_of(tiny_t5, tmp_path)], cwd=ROOT,
                       env=cli_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert_one_error_line(r.returncode, r.stderr, prog, match)
