"""The launch scripts, end to end in smoke mode: each recipe's own flags on a tiny local model and generated data
(CPU, two steps)."""

import json
import os
import shlex
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["sum_samsum", "sum_cnndm", "sum_multinews", "sum_bigpatent", "qa_squad", "tr_iwslt", "sum_dialogsum_smollm2"]
METRIC = {"qa_squad": "eval_f1", "tr_iwslt": "eval_bleu"}


def run(name, **env):
    e = dict(os.environ, SMOKE="1", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
             OMP_NUM_THREADS="1", **env)
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", f"run_{name}.sh")], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def traced_flags(r):
    """The flags of the command the script ran (its set -x trace), the last value of each."""
    line = next(x for x in r.stderr.splitlines() if x.startswith(("+ python", "+ torchrun")))
    argv, flags = shlex.split(line[2:]), {}
    for i, a in enumerate(argv):
        if a.startswith("--"):
            flags[a[2:]] = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
    return flags


def recipe_flags(name):
    """The recipe's own TRAIN_ARGS and data flags, read from the script (what SMOKE keeps)."""
    text = open(os.path.join(ROOT, "scripts", f"run_{name}.sh")).read()
    own = text[text.index("DATA_ARGS=("):text.index("SMOKE_DATA_ARGS=(")] + text[text.index("TRAIN_ARGS=("):]
    return {w[2:] for w in own.split() if w.startswith("--")} - {"dataset_name", "dataset_config_name"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_trains_then_evaluates_with_free(name):
    r = run(name, STAGE="train", METHOD="free")
    flags = traced_flags(r)
    assert flags["intermediate_loss_fn"] == "shallowdeep_kd_dyna"  # the method flags reached the command
    assert recipe_flags(name) <= set(flags)  # and the recipe's own data and training flags
    out = os.path.join(ROOT, "outputs", "smoke", f"{name}_free")
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["intermediate_loss_fn"] == "shallowdeep_kd_dyna"
    # every training flag of the command is what the Trainer ran with (the recipe's values, two-step caps aside)
    args = torch.load(os.path.join(out, "training_args.bin"), weights_only=False)
    for k, v in flags.items():
        got = getattr(getattr(args, k, None), "value", getattr(args, k, None))
        if isinstance(got, bool):
            assert got == (v in (None, "True")), k
        elif isinstance(got, (int, float)):
            assert got == float(v), (k, got, v)
        elif isinstance(got, str) and k != "output_dir":
            assert got == v, (k, got, v)
    state = json.load(open(os.path.join(out, "trainer_state.json")))
    evals = [h["step"] for h in state["log_history"] if any(k.startswith("eval_") for k in h)]
    if args.eval_strategy == "steps":  # the recipe's schedule ran: an evaluation per step, the best kept
        assert sorted(set(evals))[:2] == [1, 2]
        assert (state["best_metric"] is not None) == bool(args.metric_for_best_model)
    run(name, STAGE="eval", METHOD="free", THRESHOLD="0.5")
    ev = json.load(open(os.path.join(out + "_eval", "eval_results.json")))
    assert METRIC.get(name, "eval_rougeL") in ev
    assert ev["eval_generate_calls"] > 0 and "eval_avg_layers_per_token" in ev


def test_script_rejects_unknown_method():
    e = dict(os.environ, SMOKE="1", METHOD="bogus",
             PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "run_sum_samsum.sh")], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "METHOD must be" in r.stderr


def bench_setup(tmp_path, n, seed):
    """scripts/benchmark.py as a module, a validation file of n generated dialogues, and an output folder."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import benchmark
    from util.data_gen import gen_dialogsum, write_jsonl

    val = str(tmp_path / "validation.jsonl")
    write_jsonl(gen_dialogsum(n, seed), val)
    return benchmark, val, tmp_path / "bench"


def test_benchmark_writes_every_method_at_every_batch_size(tiny_t5, tmp_path):
    """scripts/benchmark.py on a tiny model: the JSON it writes, and the exactness it reports (no timing bars)."""
    benchmark, val, out = bench_setup(tmp_path, 5, 3)
    own = {r: vars(torch.Tensor).get(r) for r in benchmark._HOST_READS}
    benchmark.main(["--model_name_or_path", tiny_t5, "--validation_file", val, "--max_samples", "5",
                    "--max_source_length", "64", "--max_new_tokens", "12", "--shallow_exit_layer", "2",
                    "--free_thresholds", "0.5", "--calm_thresholds", "0.5", "--methods", "hf_generate", "full",
                    "calm", "free", "free_verify", "--repeats", "1", "--warmup", "1", "--batch_size", "1", "2",
                    "--profile", "1", "--output_dir", str(out)])
    sweep = json.load(open(out / "batch_sweep.json"))
    assert set(sweep) == {"hf_generate", "full", "calm_0.5", "free_0.5", "free_verify_0.5"}
    for b in ("1", "2"):
        res = json.load(open(out / f"batch_{b}" / "results.json"))
        assert res["batch_size"] == int(b) and res["samples"] == 5
        m = res["methods"]
        assert m["full"]["agreement_with_full"] == m["hf_generate"]["agreement_with_full"] == 1.0
        assert m["free_verify_0.5"]["agreement_with_full"] == 1.0
        assert all(r["tokens_per_s"] > 0 and len(r["times_s"]) == 1 for r in m.values())
        # time to first token and per later token, beside end to end: the first-token call decoded the same token
        # as the whole call did (greedy), and the two parts are positive times
        assert all(r["first_token_agreement"] == 1.0 and r["first_token_ms"] > 0 and r["later_token_ms"] > 0
                   and r["first_token_speedup_vs_hf"] > 0 for r in m.values())
        assert m["hf_generate"]["first_token_speedup_vs_hf"] == 1.0
        # --profile: every method, counted on the first batch (torch.profiler's event parsing took most of this
        # test's time at 2 batches)
        prof = res["profile"]
        assert set(prof) == set(m) and (out / f"batch_{b}" / "profile.md").is_file()
        assert all(p["tokens"] > 0 and p["aten_calls_per_token"] > 10 and p["host_reads_per_token"] > 0
                   and p["top_ops"] for p in prof.values())
    assert {r: vars(torch.Tensor).get(r) for r in own} == own  # the read counters are taken off again
    for name, by in sweep.items():  # a row's output does not depend on the batch it is in
        assert by["1"]["quality"] == by["2"]["quality"], name
    assert (out / "batch_sweep.md").read_text().count("\n") >= 7


def test_benchmark_samples_every_method_with_the_same_seeds(tiny_t5, tmp_path):
    """--do_sample: each pass draws with its own seed, the same for every method, so our full path's samples are
    HF generate()'s; verified FREE reports its acceptance rate."""
    benchmark, val, out = bench_setup(tmp_path, 4, 4)
    benchmark.main(["--model_name_or_path", tiny_t5, "--validation_file", val, "--max_samples", "4",
                          "--max_source_length", "64", "--max_new_tokens", "10", "--shallow_exit_layer", "2",
                          "--verify_thresholds", "0.0", "--methods", "hf_generate", "full", "free_verify",
                          "--do_sample", "--temperature", "0.9", "--top_p", "0.95", "--repeats", "2", "--warmup", "1",
                          "--output_dir", str(out)])
    m = json.load(open(out / "results.json"))["methods"]
    assert m["full"]["quality"] == m["hf_generate"]["quality"] and m["hf_generate"]["agreement_with_full"] == 1.0
    assert 0.0 <= m["free_verify_0.0"]["acceptance_rate"] <= 1.0


def test_benchmark_runs_beam_configurations_against_hf_beam_search(tiny_t5, tmp_path):
    """--num_beams: every method with beams, HF's beam search timed in the same run; our full path's beams are
    HF's; verification (refused with beams) is left out of the table."""
    benchmark, val, out = bench_setup(tmp_path, 4, 5)
    benchmark.main(["--model_name_or_path", tiny_t5, "--validation_file", val, "--max_samples", "4",
                    "--max_source_length", "64", "--max_new_tokens", "10", "--shallow_exit_layer", "2",
                    "--free_thresholds", "0.5", "--calm_thresholds", "0.5", "--num_beams", "3",
                    "--length_penalty", "0.8", "--repeats", "1", "--warmup", "1", "--output_dir", str(out)])
    res = json.load(open(out / "results.json"))
    m = res["methods"]
    assert res["num_beams"] == 3 and not any(r["family"] == "free_verify" for r in m.values())
    assert m["full"]["agreement_with_full"] == m["hf_generate"]["agreement_with_full"] == 1.0
    assert {"static_2", "calm_0.5", "free_0.5", "free_adaptive"} <= set(m)
