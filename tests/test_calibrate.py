"""Calibrated exit thresholds (issue 35 items 2-4): Learn then Test's p-values and fixed-sequence testing against
worked numbers, a synthetic case whose valid thresholds are known, scripts/calibrate.py end to end on a tiny T5,
and bad inputs."""

import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from util import ltt
from util.checks import InputError
from util.data_gen import gen_dialogsum, write_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import calibrate  # noqa: E402


def test_pvalues_against_worked_numbers():
    """By hand (4-5 digits), epsilon 0.05:

    n = 100, mean loss 0.02:
      Hoeffding: h1(0.02, 0.05) = 0.02 ln(0.02/0.05) + 0.98 ln(0.98/0.95) = -0.0183258 + 0.0304692 = 0.0121434,
                 p = exp(-100 * 0.0121434) = exp(-1.21434) = 0.29692
      Bentkus:   ceil(100 * 0.02) = 2; P(Bin(100, 0.05) <= 2) = 0.95^100 + 100 (0.05) 0.95^99 + 4950 (0.05^2) 0.95^98
                 = 0.0059205 + 0.0311605 + 0.0811812 = 0.1182622, p = e * 0.1182622 = 0.32147
      HB = min = 0.29692 (Hoeffding's is the smaller)
    n = 200, mean loss 0.01:
      Hoeffding: h1(0.01, 0.05) = 0.01 ln(0.2) + 0.99 ln(0.99/0.95) = -0.0160944 + 0.0408291 = 0.0247347,
                 p = exp(-4.94694) = 0.0071031
      Bentkus:   P(Bin(200, 0.05) <= 2) = 0.95^200 + 10 (0.95^199) + 49.75 (0.95^198)
                 = 0.0000351 + 0.0003690 + 0.0019323 = 0.0023363, p = e * 0.0023363 = 0.0063507
      HB = 0.0063507 (Bentkus's is the smaller)
    mean loss 0: both give (1 - 0.05)^n (Bentkus e * 0.95^n is larger), so with delta 0.1 even a perfect threshold
      needs n >= ln(0.1) / ln(0.95) = 44.9: 0.95^44 = 0.10467 > 0.1, 0.95^45 = 0.09944 <= 0.1."""
    assert ltt.hoeffding_pvalue(0.02, 100, 0.05) == pytest.approx(0.29692, abs=2e-5)
    assert ltt.bentkus_pvalue(0.02, 100, 0.05) == pytest.approx(0.32147, abs=2e-5)
    assert ltt.hb_pvalue(0.02, 100, 0.05) == pytest.approx(0.29692, abs=2e-5)
    assert ltt.hoeffding_pvalue(0.01, 200, 0.05) == pytest.approx(0.0071031, abs=2e-6)
    assert ltt.bentkus_pvalue(0.01, 200, 0.05) == pytest.approx(0.0063507, abs=2e-6)
    assert ltt.hb_pvalue(0.01, 200, 0.05) == pytest.approx(0.0063507, abs=2e-6)
    assert ltt.hb_pvalue(0.0, 44, 0.05) == pytest.approx(0.10467, abs=2e-5)
    assert ltt.hb_pvalue(0.0, 45, 0.05) == pytest.approx(0.09944, abs=2e-5)
    assert ltt.hb_pvalue(0.06, 100, 0.05) == 1.0  # above epsilon: Hoeffding's min(R, eps) gives h1 = 0


def test_fixed_sequence_stops_at_the_first_failure():
    """Worked: p = [0.01, 0.05, 0.2, 0.01] at delta 0.1 rejects the first two only: the fourth is never tested
    (testing it too would spend more than delta of error over the family)."""
    assert ltt.fixed_sequence([0.01, 0.05, 0.2, 0.01], 0.1) == 2
    assert ltt.fixed_sequence([0.5, 0.01], 0.1) == 0
    assert ltt.fixed_sequence([0.1, 0.1], 0.1) == 2  # p <= delta rejects
    r = ltt.learn_then_test([[0.0] * 100, [0.0] * 98 + [1.0] * 2, [1.0] * 100, [0.0] * 100], 0.05, 0.1)
    assert r["risks"] == [0.0, 0.02, 1.0, 0.0]
    assert r["pvalues"][0] == pytest.approx(0.95 ** 100) and r["pvalues"][1] == pytest.approx(0.29692, abs=2e-5)
    assert r["valid"] == 1 and r["chosen"] == 0  # 0.297 > 0.1 stops the sequence at the second threshold


def test_synthetic_thresholds_with_known_risks_control_the_error():
    """Seven thresholds whose true risks are known (Bernoulli losses): 0, 0.01, 0.03, 0.05 are valid at epsilon
    0.05, 0.06, 0.07, 0.3 are not. Over 400 calibration draws of n = 200, LTT must pick an invalid threshold in at
    most delta = 10 % of them; the naive rule (the least conservative threshold whose empirical risk is <= epsilon)
    picks one far more often, which shows the check can fail. LTT must also have power: past the first threshold
    in most draws."""
    true = [0.0, 0.01, 0.03, 0.05, 0.06, 0.07, 0.3]
    rng, n, eps, delta = random.Random(0), 200, 0.05, 0.1
    ltt_bad = naive_bad = ltt_past_first = 0
    for _ in range(400):
        losses = [[float(rng.random() < r) for _ in range(n)] for r in true]
        got = ltt.learn_then_test(losses, eps, delta)
        ltt_bad += got["chosen"] is not None and true[got["chosen"]] > eps
        ltt_past_first += (got["chosen"] or 0) >= 1
        naive = max(j for j, ls in enumerate(losses) if sum(ls) / n <= eps)
        naive_bad += true[naive] > eps
    assert ltt_bad / 400 <= delta
    assert naive_bad / 400 > 2 * delta
    assert ltt_past_first / 400 > 0.5


def test_learn_then_test_refuses_what_breaks_its_assumptions():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        ltt.learn_then_test([[0.0]], 0.0, 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ltt.learn_then_test([[1.5]], 0.1, 0.1)
    with pytest.raises(ValueError, match="same n"):
        ltt.learn_then_test([[0.0], [0.0, 1.0]], 0.1, 0.1)


@pytest.fixture(scope="module")
def ckpt(varied_t5, tmp_path_factory):
    """The tiny T5 with large random weights (conftest): each row decodes its own text, and CALM's softmax
    confidences are spread over ~0 to 0.01, so the thresholds below range from no exit to exits that change the
    output. A copy: calibration writes into the checkpoint."""
    d = tmp_path_factory.mktemp("calib")
    shutil.copytree(varied_t5, d / "model")
    write_jsonl(gen_dialogsum(24, 5), str(d / "cal.jsonl"))
    write_jsonl(gen_dialogsum(8, 6), str(d / "test.jsonl"))
    return d


def args(d, model, *extra, method="calm"):
    return ["--model_name_or_path", str(model), "--calibration_file", str(d / "cal.jsonl"), "--method", method,
            "--max_new_tokens", "8", "--max_source_length", "64", "--output_dir", str(model / "calibration"),
            *extra]


def test_calibrate_end_to_end_writes_the_guarantee(ckpt, tmp_path):
    import shutil

    from transformers import GenerationConfig

    model = tmp_path / "model"
    shutil.copytree(ckpt / "model", model)
    rep = calibrate.main(args(ckpt, model, "--epsilon", "0.3", "--delta", "0.2", "--thresholds", "0.01", "0.004",
                              "0.002", "0.0", "--full_curve", "--test_file", str(ckpt / "test.jsonl")))
    res = json.loads((model / "calibration" / "calibration.json").read_text())
    assert (model / "calibration" / "calibration.png").stat().st_size > 0
    rec, p, risks = res["record"], res["pvalues"], res["risks"]
    assert res["thresholds"] == [0.01, 0.004, 0.002, 0.0] and rep["record"] == rec
    # the risks span the grid: no exit at 0.01 on this model's confidences, outputs changed at 0
    assert risks[0] < 0.3 < risks[-1]
    k = res["thresholds"].index(rec["threshold"])
    assert all(x <= 0.2 for x in p[:k + 1]) and (k + 1 == len(p) or p[k + 1] > 0.2)  # fixed sequence
    assert rec["p_value"] == pytest.approx(ltt.hb_pvalue(risks[k], 24, 0.3))
    assert rec["n"] == 24 and rec["empirical_risk"] == pytest.approx(risks[k], abs=1e-6)
    assert res["upper_bounds"][k] <= 0.3 < res["upper_bounds"][-1]
    gc = GenerationConfig.from_pretrained(model)
    assert gc.use_early_exit is True and gc.exit_conf_threshold == rec["threshold"] and gc.exit_conf_type == "softmax"
    assert gc.exit_calibration == rec and rec["epsilon"] == 0.3 and rec["delta"] == 0.2
    h = res["held_out"]
    assert h["n"] == 8 and h["consistency"] == pytest.approx(1 - h["risk"]) and h["engine_full_matches_hf"]
    assert h["time_full_s"] > 0 and h["time_method_s"] > 0
    # later, the checkpoint alone: its settings and guarantee come from generation_config.json; one row per call
    # decodes each row as the batches of 8 did (the same texts, so the same consistency)
    ev = calibrate.main(["--model_name_or_path", str(model), "--evaluate_only", "--test_file", str(ckpt / "test.jsonl"),
                         "--max_new_tokens", "8", "--max_source_length", "64", "--test_batch_size", "1"])
    assert ev["record"] == rec and (model / "calibration" / "held_out.json").exists()
    assert ev["held_out"]["batch_size"] == 1 and ev["held_out"]["consistency"] == h["consistency"]


def test_no_valid_threshold_keeps_the_full_model(ckpt, tmp_path, capsys):
    """24 rows cannot certify epsilon 0.05 at delta 0.1 even with no loss at all (0.95^24 = 0.29 > 0.1); the
    decoding stops there, since fixed-sequence testing can certify no later threshold."""
    import shutil

    from transformers import GenerationConfig

    model = tmp_path / "model"
    shutil.copytree(ckpt / "model", model)
    rep = calibrate.main(args(ckpt, model, "--epsilon", "0.05", "--delta", "0.1", "--thresholds", "0.01", "0.0"))
    assert "No threshold is certified" in capsys.readouterr().out
    assert rep["pvalues"] == [pytest.approx(0.95 ** 24)] and rep["thresholds"] == [0.01]
    assert rep["valid_thresholds"] == []
    gc = GenerationConfig.from_pretrained(model)
    assert gc.use_early_exit is False and gc.use_shallow_deep is False and gc.exit_calibration["threshold"] is None


@pytest.mark.parametrize("method, extra, message", [
    ("calm", ["--epsilon", "0", "--delta", "0.1"], "--epsilon 0.0: must be in (0, 1)"),
    ("calm", ["--epsilon", "1.5", "--delta", "0.1"], "--epsilon 1.5: must be in (0, 1)"),
    ("calm", ["--epsilon", "0.1", "--delta", "1"], "--delta 1.0: must be in (0, 1)"),
    ("static", ["--epsilon", "0.1", "--delta", "0.1"], "--method static: calibration needs a method"),
    ("calm", ["--epsilon", "0.1", "--delta", "0.1", "--measure", "bleu"], "--measure bleu: one of"),
    ("calm", ["--epsilon", "0.1"], "the following arguments are required: --delta"),
    ("free", ["--epsilon", "0.1", "--delta", "0.1"], "--method free needs --shallow_exit_layer"),
    ("calm", ["--epsilon", "0.1", "--delta", "0.1", "--conf_type", "nope"], "nope"),
    ("calm", ["--evaluate_only"], "--evaluate_only needs --test_file"),
])
def test_bad_inputs_are_one_line_errors(ckpt, method, extra, message):
    with pytest.raises(InputError) as e:
        calibrate.main(args(ckpt, ckpt / "model", *extra, "--no_write", method=method))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_empty_calibration_split_exits_with_status_2(ckpt, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "calibrate.py"),
                        *args(ckpt, ckpt / "model", "--epsilon", "0.1", "--delta", "0.1", "--no_write"),
                        "--calibration_file", str(empty)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"calibrate.py: error: --calibration_file {empty} is empty"]
