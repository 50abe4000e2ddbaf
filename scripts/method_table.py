"""Evaluate one checkpoint with full, static, CALM and FREE decoding through a task's entry point.

    python scripts/method_table.py --entry run_translation.py --model_name_or_path outputs/tasks/mt \
        --shallow_exit_layer 2 --threshold 0.8 --output outputs/tasks/mt_methods.md -- \
        --validation_file data/iwslt_de_en/validation.jsonl --source_lang de --target_lang en \
        --source_prefix "translate German to English: " --max_eval_samples 100

Each method is one `--do_eval --deploy_scenario True` run (batch 1; wall time = whole generate() calls),
all in this process, one after the other. Everything after `--` goes to the entry point unchanged.
"""

import argparse
import importlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUALITY = {"run_question_answering.py": ("eval_exact_match", "eval_f1"),
           "run_translation.py": ("eval_bleu", "eval_chrf"),
           "run_summarization.py": ("eval_rougeL", "eval_rouge1")}


def methods(S, thr, calm_min):
    free = ["--use_shallow_deep", "True", "--shallow_exit_layer", str(S), "--shallow2deep_conf_type", "softmax",
            "--shallow2deep_conf_threshold", str(thr)]
    return {
        "full (HF generate)": [],
        f"static_{S}": ["--static_exit_layer", str(S)],
        "calm": ["--use_early_exit", "True", "--exit_conf_type", "softmax", "--exit_conf_threshold", str(thr),
                 "--exit_min_layer", str(calm_min or S)],
        "free": free,
        "free_verify": free + ["--exact_verification", "True"],
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ours, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entry", required=True, choices=sorted(QUALITY))
    p.add_argument("--model_name_or_path", required=True)
    p.add_argument("--shallow_exit_layer", type=int, required=True)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--calm_min_layer", type=int, default=None)
    p.add_argument("--output", default=None, help="markdown file for the table (a .json beside it)")
    a = p.parse_args(ours)
    entry = importlib.import_module(a.entry[:-3])
    rows = {}
    for name, flags in methods(a.shallow_exit_layer, a.threshold, a.calm_min_layer).items():
        with tempfile.TemporaryDirectory() as out:
            res = entry.main(["--model_name_or_path", a.model_name_or_path, "--do_eval", "--predict_with_generate",
                              "--deploy_scenario", "True", "--output_dir", out, "--report_to", "none", *rest, *flags])
        rows[name] = res
    from transformers import AutoConfig

    from additional_args import num_decoder_layers

    L = num_decoder_layers(AutoConfig.from_pretrained(a.model_name_or_path))
    q1, q2 = QUALITY[a.entry]
    full_t = rows["full (HF generate)"]["eval_generate_time"]
    lines = [f"| method | {q1[5:]} | {q2[5:]} | layers/token | generate time (s) | speedup vs HF generate |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r[q1]:.2f} | {r[q2]:.2f} | {r.get('eval_avg_layers_per_token', L):.2f} | "
                     f"{r['eval_generate_time']:.2f} | {full_t / r['eval_generate_time']:.2f} |")
    table = "\n".join(lines)
    print(table)
    if a.output:
        with open(a.output, "w") as f:
            f.write(table + "\n")
        with open(os.path.splitext(a.output)[0] + ".json", "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
