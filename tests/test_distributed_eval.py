"""Evaluation under several processes (torchrun, accelerate launch; 2 CPU processes over gloo) counts as one
process does: the same exit statistics, decoding record, predictions and metrics (issue 35 item 1).

5 rows at 2 per batch give accelerate's padding both ways: rank 1 decodes batch [2, 3] and then gets a batch of
padding only ([1, 2] again), rank 0 decodes [0, 1] and [4] plus one padding row (0). The checkpoint is a tiny T5
with large random weights, so that each row decodes a different text and the exits are mixed."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from util.data_gen import gen_dialogsum, write_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# time- and HF-loss-dependent keys; eval_loss is HF's own average, which repeats the last, partial batch's loss
# eval_batch_size times in one process but counts each row once under several (gather_for_metrics drops padding)
VARIABLE = ("_generate_time", "_runtime", "_per_second", "_model_preparation_time", "_loss", "_generate_time_sum",
            "_processes")


@pytest.fixture(scope="module")
def setup(varied_t5, tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    shutil.copytree(varied_t5, d / "model")
    for split, seed in (("validation", 2), ("test", 3)):
        write_jsonl(gen_dialogsum(5, seed), str(d / f"{split}.jsonl"))
    return d


def argv(d, out, *method):
    return ["--model_name_or_path", str(d / "model"), "--validation_file", str(d / "validation.jsonl"),
            "--test_file", str(d / "test.jsonl"), "--do_eval", "--do_predict", "--predict_with_generate",
            "--per_device_eval_batch_size", "2", "--max_source_length", "64", "--val_max_target_length", "16",
            "--report_to", "none", "--use_cpu", "--text_column", "dialogue", "--summary_column", "summary",
            "--output_dir", str(out), *method]


def launch(launcher, args):
    """run_summarization.py under `python -m <launcher>` (none: one plain process). MKL's matrix products round
    by memory alignment unless told otherwise, which moved confidences by ~1e-8 between the processes (the exits
    and texts were the same): MKL_CBWR=COMPATIBLE makes every process compute bit for bit alike."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT, MKL_CBWR="COMPATIBLE")
    r = subprocess.run([sys.executable, *(["-m", *launcher] if launcher else []),
                        os.path.join(ROOT, "run_summarization.py"), *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def same_as_one_process(one, two):
    for split in ("eval", "predict"):
        a = json.loads((one / f"{split}_results.json").read_text())
        b = json.loads((two / f"{split}_results.json").read_text())
        assert b[f"{split}_processes"] == 2
        assert b[f"{split}_generate_time_sum"] >= b[f"{split}_generate_time"] > 0
        assert b[f"{split}_generate_calls"] == a[f"{split}_generate_calls"] == 3  # [0, 1] [2, 3] [4]: no padding
        fixed = lambda m: {k: v for k, v in m.items() if not k.endswith(VARIABLE)}  # noqa: E731
        assert fixed(a) == fixed(b)
        assert 0 < a[f"{split}_exit_ratio"] < 1 and a[f"{split}_generated_tokens"] > 0
        rec_a = json.loads((one / f"{split}_decoding_record.json").read_text())
        assert rec_a == json.loads((two / f"{split}_decoding_record.json").read_text())
        assert len({t["exit_layer"] for t in rec_a["tokens"]}) > 1
    preds = (one / "generated_predictions.txt").read_text().split("\n")
    assert len(preds) == 5 and len(set(preds)) == 5  # each row its own text, so an order mix-up would show
    assert (two / "generated_predictions.txt").read_text().split("\n") == preds


def test_torchrun_two_processes_evaluate_free_as_one(setup, tmp_path):
    """FREE in batches of 2 (rows wait for each other's deep passes, so the batches must be the same ones)."""
    method = ["--use_shallow_deep", "True", "--shallow_exit_layer", "2", "--shallow2deep_conf_type", "softmax",
              "--shallow2deep_conf_threshold", "0.002"]
    launch(None, argv(setup, tmp_path / "one", *method))
    launch(["torch.distributed.run", "--standalone", "--nproc_per_node=2"], argv(setup, tmp_path / "two", *method))
    same_as_one_process(tmp_path / "one", tmp_path / "two")
    assert json.loads((tmp_path / "one" / "eval_results.json").read_text())["eval_discarded_tokens"] > 0


def test_accelerate_launch_two_processes_evaluate_calm_as_one(setup, tmp_path):
    """accelerate launch without GPUs: --multi_gpu starts the processes, --use_cpu makes them gloo CPU ranks."""
    method = ["--use_early_exit", "True", "--exit_conf_type", "softmax", "--exit_conf_threshold", "0.002"]
    launch(None, argv(setup, tmp_path / "one", *method))
    launch(["accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no"], argv(setup, tmp_path / "two", *method))
    same_as_one_process(tmp_path / "one", tmp_path / "two")
