"""Every decoding method side by side on one checkpoint, against HF generate() measured in the same run.

    python scripts/benchmark.py --model_name_or_path outputs/demo/model \
        --validation_file data/dialogsum/validation.jsonl --max_samples 50 --shallow_exit_layer 2 \
        --free_threshold 0.8 --calm_threshold 0.8 --output_json outputs/demo/benchmark.json

Wall time is the sum over samples of whole generate() calls at batch 1 (tokenization and scoring
outside), the median over --repeats after one warm-up pass. Ratios are against HF generate() on the
same weights. Quality is ROUGE-L against the references, and agreement is the share of outputs
identical to the full model's.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from additional_args import EXIT_DEFAULTS  # noqa: E402
from models import EffT5ForConditionalGeneration  # noqa: E402
from util import metrics as M  # noqa: E402

METHOD_KEYS = [k for k in EXIT_DEFAULTS if k not in ("intermediate_loss_fn", "distill_layer_alpha",
                                                      "output_hidden_states_decoder", "do_layer_transformation")]


def method_table(a) -> dict:
    """name -> exit settings. HF generate and our full path run with no exit method."""
    S = a.shallow_exit_layer
    free = dict(use_shallow_deep=True, shallow_exit_layer=S, shallow2deep_conf_type="softmax",
                shallow2deep_conf_threshold=a.free_threshold)
    return {
        "hf_generate": {},
        "full": {},
        f"static_{a.static_exit_layer or S}": dict(static_exit_layer=a.static_exit_layer or S),
        "calm": dict(use_early_exit=True, exit_conf_type="softmax", exit_conf_threshold=a.calm_threshold,
                     exit_min_layer=a.calm_min_layer or S),
        "free": free,
        "free_adaptive": dict(free, use_adapt_threshold=True),
        "free_verify": dict(free, exact_verification=True),
    }


def configure(model, settings: dict) -> None:
    for k in METHOD_KEYS:
        setattr(model.config, k, EXIT_DEFAULTS[k])
    model.config.update(settings)
    model.reset_exit_state()


def timed_generate(model, batches, use_engine, max_new_tokens):
    outs, total = [], 0.0
    for enc in batches:
        t0 = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             **({"use_engine": True} if use_engine else {}))
        if out.device.type == "cuda":
            torch.cuda.synchronize()
        total += time.perf_counter() - t0
        outs.append(out)
    return outs, total


def run(a) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(a.threads or torch.get_num_threads())
    M.ensure_punkt()
    tok = AutoTokenizer.from_pretrained(a.model_name_or_path)
    model = EffT5ForConditionalGeneration.from_pretrained(a.model_name_or_path).eval()
    rows = [json.loads(line) for line in open(a.validation_file)][: a.max_samples]
    refs = [r[a.summary_column] for r in rows]
    batches = [tok(a.source_prefix + r[a.text_column], max_length=a.max_source_length, truncation=True,
                   return_tensors="pt") for r in rows]
    results, texts_of = {}, {}
    for name, settings in method_table(a).items():
        if a.methods and name not in a.methods:
            continue
        configure(model, settings)
        use_engine = name != "hf_generate"
        timed_generate(model, batches[: a.warmup], use_engine, a.max_new_tokens)
        model.reset_exit_state()
        times = []
        for _ in range(a.repeats):
            model.reset_exit_state()  # each repeat is one evaluation pass; the adaptive threshold starts at lambda_0
            outs, t = timed_generate(model, batches, use_engine, a.max_new_tokens)
            times.append(t)
        stats = model.pop_exit_stats()
        texts = [tok.decode(o[0], skip_special_tokens=True).strip() for o in outs]
        texts_of[name] = texts
        n_tokens = sum(int((o[0] != tok.pad_token_id).sum()) for o in outs)
        r = {"settings": settings, "time_s": round(statistics.median(times), 4), "times_s": [round(t, 4) for t in times],
             "tokens": n_tokens, "tokens_per_s": round(n_tokens / statistics.median(times), 2),
             "rougeL": M.rouge(texts, refs)["rougeL"]}
        if use_engine:
            r.update(stats.summary())
            r["threshold_final"] = stats.thresholds[-1] if stats.thresholds else None
        results[name] = r
        print(f"{name:>14}: {r['time_s']:.2f}s  ROUGE-L {r['rougeL']:.2f}  layers/token "
              f"{r.get('avg_layers_per_token', model.config.num_decoder_layers)}", flush=True)
    base = results.get("hf_generate", {}).get("time_s")
    full = results.get("full", {})
    for name, r in results.items():
        if "full" in texts_of:
            same = sum(x == y for x, y in zip(texts_of[name], texts_of["full"]))
            r["agreement_with_full"] = round(same / len(rows), 4)
        if base:
            r["speedup_vs_hf"] = round(base / r["time_s"], 3)
        if full.get("time_s"):
            r["speedup_vs_full"] = round(full["time_s"] / r["time_s"], 3)
        if full.get("rougeL"):
            r["rougeL_vs_full"] = round(r["rougeL"] / full["rougeL"], 4)
    return {"model": a.model_name_or_path, "samples": len(rows), "repeats": a.repeats,
            "threads": torch.get_num_threads(), "device": "cpu", "methods": results}


def markdown(res) -> str:
    lines = ["| method | ROUGE-L | layers/token | layer-FLOPs/token | time (s) | speedup vs full | vs HF generate | same as full |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in res["methods"].items():
        lines.append(f"| {name} | {r['rougeL']:.2f} | {r.get('avg_layers_per_token', '-')} | "
                     f"{r.get('layer_flops_per_token', '-')} | {r['time_s']:.2f} | {r.get('speedup_vs_full', '-')} | "
                     f"{r.get('speedup_vs_hf', '-')} | {r.get('agreement_with_full', '-')} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", required=True)
    p.add_argument("--validation_file", required=True, help="jsonl with text and summary columns")
    p.add_argument("--text_column", default="dialogue")
    p.add_argument("--summary_column", default="summary")
    p.add_argument("--source_prefix", default="summarize: ")
    p.add_argument("--max_source_length", type=int, default=512)
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.add_argument("--max_samples", type=int, default=50)
    p.add_argument("--shallow_exit_layer", type=int, required=True)
    p.add_argument("--static_exit_layer", type=int, default=None)
    p.add_argument("--free_threshold", type=float, default=0.8)
    p.add_argument("--calm_threshold", type=float, default=0.8)
    p.add_argument("--calm_min_layer", type=int, default=None)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--output_json", default=None)
    a = p.parse_args(argv)
    res = run(a)
    table = markdown(res)
    print(table)
    if a.output_json:
        os.makedirs(os.path.dirname(os.path.abspath(a.output_json)), exist_ok=True)
        with open(a.output_json, "w") as f:
            json.dump(res, f, indent=2)
        with open(os.path.splitext(a.output_json)[0] + ".md", "w") as f:
            f.write(table + "\n")
    return res


if __name__ == "__main__":
    main()
