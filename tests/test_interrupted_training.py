"""A training run killed with SIGKILL resumes, when the same command is run again, from its last complete checkpoint
and ends where an uninterrupted run ends (issue 19, item 3).

"2-process" is read as: the training runs in a process of its own, which the test kills; a 2-rank torchrun would
triple the time of three launches, and torchrun itself is covered by test_torchrun_two_processes_train_with_exit_losses.
"""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from util.data_gen import gen_dialogsum, write_jsonl
from task_flow import checkpoint_problem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, SAVE_EVERY = 30, 5


def command(model, train, out):
    return [sys.executable, os.path.join(ROOT, "run_summarization.py"), "--model_name_or_path", model,
            "--train_file", train, "--output_dir", str(out), "--do_train", "--max_steps", str(STEPS),
            "--save_strategy", "steps", "--save_steps", str(SAVE_EVERY), "--per_device_train_batch_size", "4",
            "--learning_rate", "1e-3", "--max_source_length", "48", "--max_target_length", "12", "--seed", "0",
            "--use_cpu", "--report_to", "none", "--disable_tqdm", "True", "--log_level", "info",
            "--output_hidden_states_decoder", "True", "--intermediate_loss_fn", "shallowdeep_kd_dyna",
            "--shallow_exit_layer", "2", "--distill_layer_alpha", "0.5"]


ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def complete_checkpoints(out):
    if not out.is_dir():
        return []
    return sorted((int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if checkpoint_problem(str(p)) is None))


def test_sigkill_after_first_checkpoint_then_the_same_command_resumes(tiny_t5, tmp_path):
    train = write_jsonl(gen_dialogsum(48, 1), str(tmp_path / "train.jsonl"))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    r = subprocess.run(command(tiny_t5, train, whole), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]

    p = subprocess.Popen(command(tiny_t5, train, cut), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not complete_checkpoints(cut) and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGSTOP)  # freeze it at once, then kill: it cannot finish in between
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    done = complete_checkpoints(cut)
    assert done and done[-1] < STEPS and not (cut / "train_results.json").exists()
    # What a kill while saving leaves: a newer checkpoint folder without weights or trainer_state.json.
    half = cut / f"checkpoint-{done[-1] + 1}"
    half.mkdir()
    (half / "config.json").write_text("{}")

    r = subprocess.run(command(tiny_t5, train, cut), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert f"{half} is incomplete (no weights; a run stopped while saving it?): skipped" in log
    assert f"resuming training at {cut / f'checkpoint-{done[-1]}'}" in log
    state = json.loads((cut / "trainer_state.json").read_text())
    assert state["global_step"] == json.loads((whole / "trainer_state.json").read_text())["global_step"] == STEPS
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert not torch.equal(a["shared.weight"], load_file(os.path.join(tiny_t5, "model.safetensors"))["shared.weight"])
