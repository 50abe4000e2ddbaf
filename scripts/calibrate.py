"""Exit thresholds with a guarantee: CALM's calibration (Schuster et al. 2022, Sec. 4) by Learn then Test
(Angelopoulos et al. 2021), for CALM's per-layer exits or FREE's shallow exit.

    python scripts/calibrate.py --model_name_or_path outputs/demo/model \
        --calibration_file outputs/demo/data/dialogsum/validation.jsonl --method calm --conf_type softmax \
        --measure rougeL --epsilon 0.05 --delta 0.1 --test_file outputs/demo/data/dialogsum/test.jsonl

The full model decodes the calibration rows once, then every threshold of --thresholds (from the most
conservative, i.e. the highest) decodes them with the method. The loss of an example is in [0, 1]:
  rougeL  1 - ROUGE-L F1 of the early-exit output against the full model's (CALM's textual consistency),
  exact   0 if the two outputs are the same text, else 1,
  risk    max(0, ROUGE-L(full, reference) - ROUGE-L(early, reference)) / 100 (CALM's risk consistency: the
          task metric's drop).
Each threshold's Hoeffding-Bentkus p-value for "risk > epsilon" goes through fixed-sequence testing
(util/ltt.py); the least conservative threshold rejected before the first failure is chosen, and then with
probability >= 1 - delta over the calibration draw its expected loss is <= epsilon, for rows drawn like the
calibration rows. It is written into the checkpoint's generation_config.json (the method's exit settings, plus
`exit_calibration`: the guarantee and what it was measured on), unless --no_write. No threshold certified: it
says so and writes the full model's settings (the method off).

--test_file decodes held-out rows with the full model and the chosen threshold, interleaved batch by batch, and
reports the achieved consistency (1 - mean loss) against 1 - epsilon and the speedup in wall time of whole
generate() calls. Outputs in --output_dir: calibration.json and calibration.png (empirical risk and its upper
confidence bound per threshold, epsilon, the chosen threshold).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from additional_args import DECODING_FIELDS, AdditionalArguments, ModelArguments  # noqa: E402
from models import load_model_and_tokenizer  # noqa: E402
from models.stats import DecodeStats  # noqa: E402
from util import checks  # noqa: E402
from util import ltt  # noqa: E402
from util import metrics as M  # noqa: E402

MEASURES = ("rougeL", "exact", "risk")
DEFAULT_GRID = [round(1 - 0.05 * i, 2) for i in range(20)]  # 1.0, 0.95, ..., 0.05


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 2 through run_cli, like the entry points
        raise checks.InputError(message)


def parse(argv=None):
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_name_or_path", required=True)
    p.add_argument("--calibration_file", help="json lines: one row per example (required unless --evaluate_only)")
    p.add_argument("--test_file", help="held-out rows: consistency and speedup at the chosen threshold")
    p.add_argument("--text_column", default="dialogue")
    p.add_argument("--summary_column", default="summary", help="references (needed by --measure risk)")
    p.add_argument("--source_prefix", default="summarize: ")
    p.add_argument("--max_source_length", type=int, default=256)
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.add_argument("--max_samples", type=int, help="the first N rows of each file")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--test_batch_size", type=int,
                   help="rows per generate() call on --test_file (default: --batch_size); each row decodes as it "
                        "would alone (README: outputs equal each row decoded alone), so the guarantee carries over")
    p.add_argument("--method", help="calm or free (the methods with a confidence threshold)")
    p.add_argument("--conf_type", default="softmax", help="confidence measure: softmax, softmax_max, state, meta")
    p.add_argument("--shallow_exit_layer", type=int, help="FREE's exit layer (default: the checkpoint's)")
    p.add_argument("--min_layer", type=int, help="CALM: the first layer that may exit")
    p.add_argument("--measure", default="rougeL", help=f"the loss: one of {', '.join(MEASURES)}")
    p.add_argument("--epsilon", type=float, help="tolerated expected loss, in (0, 1)")
    p.add_argument("--delta", type=float, help="allowed probability of failing it, in (0, 1)")
    p.add_argument("--thresholds", type=float, nargs="+", default=DEFAULT_GRID,
                   help="candidate thresholds (tested from the highest down)")
    p.add_argument("--full_curve", action="store_true",
                   help="decode every threshold for the plot (by default decoding stops at the first p-value > delta, "
                        "after which fixed-sequence testing certifies nothing)")
    p.add_argument("--output_dir", help="calibration.json and calibration.png (default: <model>/calibration)")
    p.add_argument("--no_write", action="store_true", help="leave the checkpoint's generation_config.json as is")
    p.add_argument("--evaluate_only", action="store_true",
                   help="no calibration: the held-out report (--test_file) of the settings and guarantee an earlier "
                        "calibration wrote into the checkpoint's generation_config.json")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    a = p.parse_args(argv)
    a.output_dir = a.output_dir or os.path.join(a.model_name_or_path, "calibration")
    if a.evaluate_only:
        if not a.test_file:
            raise checks.InputError("--evaluate_only needs --test_file")
        return a
    missing = [f"--{k}" for k in ("calibration_file", "method", "epsilon", "delta") if getattr(a, k) is None]
    if missing:
        raise checks.InputError(f"the following arguments are required: {', '.join(missing)}")
    if a.method not in ("calm", "free"):
        raise checks.InputError(f"--method {a.method}: calibration needs a method with a confidence threshold "
                                "(calm or free); static and full have none")
    if a.measure not in MEASURES:
        raise checks.InputError(f"--measure {a.measure}: one of {', '.join(MEASURES)}")
    for flag in ("epsilon", "delta"):
        v = getattr(a, flag)
        if not 0 < v < 1:
            raise checks.InputError(f"--{flag} {v}: must be in (0, 1), exclusive")
    for flag in ("batch_size", "test_batch_size", "max_new_tokens", "max_source_length", "max_samples"):
        v = getattr(a, flag)
        if v is not None and v < 1:
            raise checks.InputError(f"--{flag} {v}: must be at least 1")
    a.thresholds = sorted(set(a.thresholds), reverse=True)
    return a


def load_rows(path, flag, a):
    rows = checks.read_jsonl(path, flag)[: a.max_samples]
    if not rows:
        raise checks.InputError(f"{flag} {path}: no rows (calibration needs examples)")
    keys = [a.text_column] + ([a.summary_column] if a.measure == "risk" else [])
    for n, r in enumerate(rows, 1):
        for key in keys:
            problem = checks.text_problem({repr(key): r.get(key)})
            if problem:
                raise checks.InputError(f"{flag} {path}: row {n} has {problem} (the row has {sorted(r)}); set "
                                        f"--text_column / --summary_column")
    return [a.source_prefix + r[a.text_column] for r in rows], [r.get(a.summary_column) for r in rows]


def method_settings(a, threshold) -> dict:
    """The exit settings of the method at one threshold (None: the full model)."""
    if threshold is None:  # every method named off: the checkpoint's config may select one
        return {"use_early_exit": False, "use_shallow_deep": False}
    if a.method == "calm":
        s = dict(use_early_exit=True, use_shallow_deep=False, exit_conf_type=a.conf_type, exit_conf_threshold=threshold)
        return {**s, "exit_min_layer": a.min_layer} if a.min_layer else s
    # a fixed threshold: FREE's adaptive estimate would move it away from the one calibrated
    return dict(use_shallow_deep=True, use_early_exit=False, shallow_exit_layer=a.shallow_exit_layer,
                shallow2deep_conf_type=a.conf_type, shallow2deep_conf_threshold=threshold, use_adapt_threshold=False)


def forget_saved_settings(model) -> None:
    """Drop the exit settings the checkpoint's generation_config.json carries (an earlier calibration's), in
    memory: each call here passes its method's settings, resolved over the model config alone, as they will be
    when only the settings written at the end are in generation_config.json."""
    for k in [k for k in vars(model.generation_config) if k in DECODING_FIELDS or k == "exit_calibration"]:
        delattr(model.generation_config, k)


def batches(tok, sources, a, size=None):
    size = size or a.batch_size
    return [tok(sources[i:i + size], max_length=a.max_source_length, truncation=True, padding=True,
                return_tensors="pt") for i in range(0, len(sources), size)]


def generate(model, tok, enc, a, **kw) -> tuple:
    """(texts, seconds) of one whole greedy generate() call."""
    t0 = time.perf_counter()
    out = model.generate(**enc, max_new_tokens=a.max_new_tokens, num_beams=1, do_sample=False, **kw)
    dt = time.perf_counter() - t0
    return [t.strip() for t in tok.batch_decode(out, skip_special_tokens=True)], dt


def decode(model, tok, encs, a, settings) -> list:
    model.reset_exit_state()
    return [t for enc in encs for t in generate(model, tok, enc, a, **settings)[0]]


def losses(measure, early, full, refs) -> list:
    if measure == "exact":
        return [float(e != f) for e, f in zip(early, full)]
    if measure == "rougeL":  # identical texts agree fully (ROUGE of two empty texts is 0, not 1)
        return [0.0 if e == f else 1 - M.rouge([e], [f])["rougeL"] / 100 for e, f in zip(early, full)]
    return [max(0.0, M.rouge([f], [r])["rougeL"] - M.rouge([e], [r])["rougeL"]) / 100
            for e, f, r in zip(early, full, refs)]


def upper_bound(risk, n, delta) -> float:
    """The (1 - delta) upper confidence bound on the risk that the HB p-value gives: the smallest eps with
    p_HB(risk, n, eps) <= delta (bisection; p falls as eps grows)."""
    lo, hi = risk, 1.0
    if ltt.hb_pvalue(risk, n, 1 - 1e-12) > delta:
        return 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ltt.hb_pvalue(risk, n, mid) > delta else (lo, mid)
    return hi


def plot(path, a, result) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(a.thresholds, result["risks"], "o-", label="empirical risk (calibration)")
    ax.plot(a.thresholds, result["ucb"], "s--", label=f"{1 - a.delta:.0%} upper bound (Hoeffding-Bentkus)")
    ax.axhline(a.epsilon, color="k", lw=1, label=f"epsilon = {a.epsilon}")
    if result["chosen"] is not None:
        ax.axvline(a.thresholds[result["chosen"]], color="g", ls=":", label="chosen (fixed-sequence test)")
    ax.set_xlabel(f"{a.method} threshold ({a.conf_type}); tested from the left, most conservative first")
    ax.set_ylabel(f"loss ({a.measure})")
    ax.invert_xaxis()
    ax.set_title(f"n = {result['n']}, delta = {a.delta}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def held_out(model, tok, a, settings) -> dict:
    """The chosen settings on --test_file against the full model, timed against HF generate() and against the
    engine's own full-depth path (the same decoding loop as the method's, so their ratio is what the exits save),
    interleaved batch by batch in a rotating order after an untimed warm-up of each."""
    sources, refs = load_rows(a.test_file, "--test_file", a)
    encs = batches(tok, sources, a, a.test_batch_size)
    runs = {"hf": {}, "full": {"use_engine": True}, "method": settings}
    full_settings = method_settings(a, None)
    texts, secs, stats = {k: [] for k in runs}, dict.fromkeys(runs, 0.0), DecodeStats()
    model.reset_exit_state()
    for name, kw in runs.items():
        generate(model, tok, encs[0], a, **{**full_settings, **kw})
    for i, enc in enumerate(encs):
        for name in list(runs)[i % 3:] + list(runs)[:i % 3]:
            model.pop_exit_stats()
            out, dt = generate(model, tok, enc, a, **{**full_settings, **runs[name]})
            texts[name] += out
            secs[name] += dt
            if name == "method":
                stats.add(model.pop_exit_stats())
    full, early = texts["hf"], texts["method"]
    loss = losses(a.measure, early, full, refs)
    risk = sum(loss) / len(loss)
    summary = stats.summary()
    return {"n": len(loss), "batch_size": a.test_batch_size or a.batch_size, "risk": round(risk, 4),
            "consistency": round(1 - risk, 4),
            "target": round(1 - a.epsilon, 4), "met": risk <= a.epsilon,
            "identical": round(sum(e == f for e, f in zip(early, full)) / len(loss), 4),
            "engine_full_matches_hf": texts["full"] == full,
            "time_hf_s": round(secs["hf"], 3), "time_full_s": round(secs["full"], 3),
            "time_method_s": round(secs["method"], 3), "speedup": round(secs["full"] / secs["method"], 3),
            "speedup_vs_hf": round(secs["hf"] / secs["method"], 3), "exit_ratio": summary["exit_ratio"],
            "avg_layers_per_token": summary["avg_layers_per_token"], "num_layers": summary["num_layers"],
            "rougeL_full": M.rouge(full, refs)["rougeL"] if refs[0] is not None else None,
            "rougeL_method": M.rouge(early, refs)["rougeL"] if refs[0] is not None else None}


def write_generation_config(path, settings, record) -> None:
    from transformers import GenerationConfig

    try:
        gc = GenerationConfig.from_pretrained(path)
    except OSError:  # a checkpoint saved without one
        gc = GenerationConfig()
    for k in [k for k in vars(gc) if k in DECODING_FIELDS]:  # an earlier calibration's settings: replaced whole
        delattr(gc, k)
    for k, v in {**settings, "exit_calibration": record}.items():
        setattr(gc, k, v)
    gc._from_model_config = False  # edited by hand now: HF must not rebuild it from config.json
    gc.save_pretrained(path)


def evaluate_only(a) -> dict:
    """The held-out report of the settings an earlier calibration wrote (item 3: consistency against its epsilon)."""
    from transformers import GenerationConfig

    gc = GenerationConfig.from_pretrained(a.model_name_or_path)
    rec = getattr(gc, "exit_calibration", None)
    if not rec:
        raise checks.InputError(f"{a.model_name_or_path}/generation_config.json has no exit_calibration: calibrate "
                                "the checkpoint first")
    for k in ("method", "conf_type", "measure", "epsilon", "delta", "shallow_exit_layer"):
        if k in rec:
            setattr(a, k, rec[k])
    M.ensure_punkt()
    model, tok, _ = load_model_and_tokenizer(ModelArguments(model_name_or_path=a.model_name_or_path),
                                             AdditionalArguments())
    forget_saved_settings(model)  # the calibrated settings are passed per call, as calibration decoded them
    with torch.no_grad():
        h = held_out(model.eval(), tok, a, method_settings(a, rec["threshold"]))
    report = {"record": rec, "held_out": h}
    print(f"{a.method} {rec['threshold']} (calibrated: epsilon {a.epsilon}, delta {a.delta}, n {rec['n']}) held out "
          f"({h['n']} rows): consistency {h['consistency']} (target >= {h['target']}: "
          f"{'met' if h['met'] else 'NOT met'}), speedup {h['speedup']}x over the full model in the same loop and "
          f"{h['speedup_vs_hf']}x over HF generate, exit ratio {h['exit_ratio']}")
    with open(os.path.join(a.output_dir, "held_out.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def main(argv=None) -> dict:
    a = parse(argv)
    checks.require_model_path(a.model_name_or_path)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.evaluate_only:
        load_rows(a.test_file, "--test_file", a)
        checks.writable_dir(a.output_dir, "--output_dir")
        return evaluate_only(a)
    sources, refs = load_rows(a.calibration_file, "--calibration_file", a)
    if a.test_file:
        load_rows(a.test_file, "--test_file", a)  # its problems before the decoding, not after
    checks.writable_dir(a.output_dir, "--output_dir")
    M.ensure_punkt()
    model, tok, loaded = load_model_and_tokenizer(ModelArguments(model_name_or_path=a.model_name_or_path),
                                                  AdditionalArguments())
    model.eval()
    if a.method == "free":
        a.shallow_exit_layer = a.shallow_exit_layer or loaded.get("shallow_exit_layer")
        if a.shallow_exit_layer is None:
            raise checks.InputError("--method free needs --shallow_exit_layer (the checkpoint names none)")
    forget_saved_settings(model)
    try:  # the settings' own checks (layer range, a meta head for conf_type meta, ...) before any decoding
        model.exit_policy(model.exit_settings(**method_settings(a, a.thresholds[0])))
    except ValueError as e:
        raise checks.InputError(str(e)) from None
    encs = batches(tok, sources, a)
    with torch.no_grad():
        full = decode(model, tok, encs, a, method_settings(a, None))
        by_threshold = []
        for t in a.thresholds:
            by_threshold.append(losses(a.measure, decode(model, tok, encs, a, method_settings(a, t)), full, refs))
            risk = sum(by_threshold[-1]) / len(full)
            p = ltt.hb_pvalue(risk, len(full), a.epsilon)
            print(f"threshold {t}: risk {risk:.4f}, p-value {p:.3g}", flush=True)
            if p > a.delta and not a.full_curve:  # fixed-sequence testing ends here: no later threshold can count
                break
    a.thresholds = a.thresholds[:len(by_threshold)]
    result = ltt.learn_then_test(by_threshold, a.epsilon, a.delta)
    result["ucb"] = [upper_bound(r, result["n"], a.delta) for r in result["risks"]]
    k = result["chosen"]
    threshold = a.thresholds[k] if k is not None else None
    settings = method_settings(a, threshold)
    record = {"method": a.method, "conf_type": a.conf_type, "measure": a.measure, "epsilon": a.epsilon,
              "delta": a.delta, "n": result["n"], "threshold": threshold,
              "empirical_risk": round(result["risks"][k], 6) if k is not None else None,
              "p_value": result["pvalues"][k] if k is not None else None,
              "test": "Hoeffding-Bentkus p-values, fixed-sequence testing (Learn then Test)",
              "calibration_file": os.path.abspath(a.calibration_file)}
    if a.method == "free":
        record["shallow_exit_layer"] = a.shallow_exit_layer
    report = {"record": record, "settings": settings, "thresholds": a.thresholds,  # those decoded
              "risks": [round(r, 6) for r in result["risks"]], "pvalues": result["pvalues"],
              "upper_bounds": [round(u, 6) for u in result["ucb"]], "valid_thresholds": a.thresholds[:result["valid"]]}
    if threshold is None:
        print(f"No threshold is certified: the most conservative one ({a.thresholds[0]}) has p-value "
              f"{result['pvalues'][0]:.4g} > delta {a.delta} (empirical risk {result['risks'][0]:.4f}, n "
              f"{result['n']}). The full model stays: {a.method} is written off.")
    else:
        print(f"Chosen {a.method} threshold {threshold}: empirical risk {result['risks'][k]:.4f} on n = "
              f"{result['n']}, p-value {result['pvalues'][k]:.3g} <= delta {a.delta}; with probability >= "
              f"{1 - a.delta:.2f} its expected {a.measure} loss is <= {a.epsilon}.")
    if a.test_file:
        with torch.no_grad():
            report["held_out"] = held_out(model, tok, a, settings)
        h = report["held_out"]
        print(f"held out ({h['n']} rows): consistency {h['consistency']} (target >= {h['target']}: "
              f"{'met' if h['met'] else 'NOT met'}), speedup {h['speedup']}x over the full model in the same "
              f"loop and {h['speedup_vs_hf']}x over HF generate ({h['time_full_s']} s, {h['time_hf_s']} s vs "
              f"{h['time_method_s']} s), exit ratio {h['exit_ratio']}")
    if not a.no_write:
        write_generation_config(a.model_name_or_path, settings, record)
    with open(os.path.join(a.output_dir, "calibration.json"), "w") as f:
        json.dump(report, f, indent=1)
    plot(os.path.join(a.output_dir, "calibration.png"), a, result)
    print(f"wrote {a.output_dir}/calibration.json and calibration.png"
          + ("" if a.no_write else f"; {a.model_name_or_path}/generation_config.json"))
    return report


if __name__ == "__main__":
    checks.run_cli(main, "calibrate.py")
