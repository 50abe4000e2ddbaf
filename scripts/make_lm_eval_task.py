#!/usr/bin/env python
"""Write an offline lm-evaluation-harness `generate_until` task: generated dialogues to summarise (the project's
seeded generator), as a jsonl file and the task YAML that reads it. Any early-exit checkpoint then runs under
lm-evaluation-harness's own HF backend, decoding with the checkpoint's exit settings or the run's --gen_kwargs:

    python scripts/make_lm_eval_task.py --out_dir lm_eval_tasks
    lm_eval --model hf --model_args pretrained=<checkpoint>,trust_remote_code=True --include_path lm_eval_tasks \\
        --tasks ee_dialogsum --gen_kwargs use_shallow_deep=True,shallow_exit_layer=4,...

Metrics: exact match and BLEU (computed by lm-evaluation-harness, offline).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from util import checks  # noqa: E402
from util.data_gen import gen_dialogsum, write_jsonl  # noqa: E402

YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: {prompt}
doc_to_target: "{{{{summary}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: {max_tokens}
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
  - metric: bleu
    aggregation: bleu
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_task(out_dir: str, n: int = 40, seed: int = 7, prefix: str = "summarize: ", suffix: str = "",
               max_tokens: int = 48, task: str = "ee_dialogsum") -> str:
    """Write <task>.jsonl and <task>.yaml into out_dir; returns the YAML's path."""
    os.makedirs(out_dir, exist_ok=True)
    data = os.path.abspath(os.path.join(out_dir, f"{task}.jsonl"))
    write_jsonl(gen_dialogsum(n, seed), data)
    prompt = json.dumps(f"{prefix}{{{{dialogue}}}}{suffix}")  # a YAML double-quoted string is JSON's
    path = os.path.join(out_dir, f"{task}.yaml")
    with open(path, "w") as f:
        f.write(YAML.format(task=task, data=json.dumps(data), prompt=prompt, max_tokens=max_tokens))
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out_dir", default="lm_eval_tasks")
    ap.add_argument("--n", type=int, default=40, help="dialogues")
    ap.add_argument("--seed", type=int, default=7, help="generator seed (the demo's data uses 0)")
    ap.add_argument("--prefix", default="summarize: ", help="text before the dialogue (T5's task prefix)")
    ap.add_argument("--suffix", default="", help="text after the dialogue (e.g. '\\nSummary: ' for a causal LM)")
    ap.add_argument("--max_tokens", type=int, default=48, help="max_gen_toks of the task")
    ap.add_argument("--task", default="ee_dialogsum", help="task name")
    a = ap.parse_args(argv)
    for name in ("n", "max_tokens"):
        if getattr(a, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(a, name)}")
    checks.writable_dir(a.out_dir, "--out_dir")
    path = write_task(a.out_dir, a.n, a.seed, a.prefix, a.suffix, a.max_tokens, a.task)
    print(f"wrote {path} ({a.n} rows): lm_eval --include_path {a.out_dir} --tasks {a.task} ...")


if __name__ == "__main__":
    checks.run_cli(main, "make_lm_eval_task.py")
