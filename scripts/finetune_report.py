#!/usr/bin/env python
"""What scripts/demo_finetune_real.sh measures around a fine-tuning run of a decoder-only chat model.

    python scripts/finetune_report.py ranking   --model DIR --train_file F            # exit_token_ranking -> config
    python scripts/finetune_report.py agreement --model DIR --data F --out J          # per-layer top-1 agreement
    python scripts/finetune_report.py summary   --base_eval J --run DIR --out J [...] # summary.json

`ranking` writes the checkpoint's `exit_token_ranking` (what `--exit_shortlist_size` reads): token ids by how often
they occur in the training answers (what the fine-tuned model was taught to emit, end-of-turn included), then in the
training prompts, then by id. `agreement`: on held-out rows, teacher-forced on the reference answers, the share of
answer positions where layer j's exit (shared norm and head) has the final layer's top-1 token, for every j.
`summary`: base and fine-tuned ROUGE-L, training time, steps, batch, sequence length and tokens per second, the
learning curve (the Trainer's logged loss) and the agreement files.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from additional_args import DEFAULT_SUMMARY_INSTRUCTION  # noqa: E402
from util import checks  # noqa: E402
from util.chat import causal_lm_features  # noqa: E402


def read_rows(path, n=None):
    rows = [json.loads(line) for line in checks.read_text(path, "the data file").splitlines() if line.strip()]
    return rows[:n] if n else rows


def features(tok, rows, max_source_length, max_target_length, with_target=True):
    args = argparse.Namespace(max_source_length=max_source_length, use_chat_template=True,
                              instruction=DEFAULT_SUMMARY_INSTRUCTION)
    return causal_lm_features(tok, [r["dialogue"] for r in rows], [r["summary"] for r in rows], args,
                              max_target_length, with_target=with_target)


def ranking(a):
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.model)
    cfg = AutoConfig.from_pretrained(a.model)
    f = features(tok, read_rows(a.train_file), a.max_source_length, a.max_target_length)
    V = cfg.vocab_size
    answers = torch.tensor([t for lab in f["labels"] for t in lab if t != -100])
    prompts = torch.tensor([t for ids, lab in zip(f["input_ids"], f["labels"]) for t, y in zip(ids, lab) if y == -100])
    ids = torch.arange(V)
    key = (torch.bincount(answers, minlength=V)[:V].double() * (V + 1) ** 2
           + torch.bincount(prompts, minlength=V)[:V].double() * (V + 1) + (V - ids).double())
    order = key.argsort(descending=True)[:a.size].tolist()
    with open(os.path.join(a.model, "config.json")) as fh:
        raw = json.load(fh)
    raw["exit_token_ranking"] = order
    with open(os.path.join(a.model, "config.json"), "w") as fh:
        json.dump(raw, fh, indent=2)
    distinct = int((torch.bincount(answers, minlength=V) > 0).sum())
    print(f"exit_token_ranking: {len(order)} tokens ({distinct} distinct answer tokens in the training set)")


@torch.no_grad()
def agreement(a):
    from additional_args import AdditionalArguments, ModelArguments
    from models import load_model_and_tokenizer

    torch.set_num_threads(a.threads)
    model, tok, _ = load_model_and_tokenizer(ModelArguments(model_name_or_path=a.model), AdditionalArguments())
    model.eval()
    f = features(tok, read_rows(a.data, a.max_samples), a.max_source_length, a.max_target_length)
    L = model.num_decoder_layers
    agree, total = torch.zeros(L), 0
    for ids, lab in zip(f["input_ids"], f["labels"]):
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True, logits_to_keep=1)
        # the state at t predicts token t + 1: answer positions are those whose next label is set
        pos = torch.tensor([t for t in range(len(ids) - 1) if lab[t + 1] != -100])
        H = model.exit_hidden_states(out.hidden_states)
        final = model.exit_logits(H[-1][0, pos]).argmax(-1)
        for j in range(L):
            agree[j] += (model.exit_logits(H[j][0, pos]).argmax(-1) == final).sum()
        total += len(pos)
    res = {"model": a.model, "rows": len(f["input_ids"]), "answer_positions": total,
           "agreement_with_final_layer": {str(j + 1): round(float(agree[j] / total), 4) for j in range(L)}}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print("agreement with the final layer:", " ".join(f"{k}:{v:.2f}" for k, v in
                                                      res["agreement_with_final_layer"].items()))


def summary(a):
    from transformers import AutoTokenizer

    load = lambda p: json.loads(checks.read_text(p, p))  # noqa: E731
    base, run = load(a.base_eval), a.run
    train = load(os.path.join(run, "train_results.json"))
    ev = load(os.path.join(run, "eval_results.json"))
    state = load(os.path.join(run, "trainer_state.json"))
    targs = torch.load(os.path.join(run, "training_args.bin"), weights_only=False)
    tok = AutoTokenizer.from_pretrained(run)
    rows = read_rows(a.train_file)
    lens = [len(x) for x in features(tok, rows, a.max_source_length, a.max_target_length)["input_ids"]]
    batch = targs.per_device_train_batch_size * targs.gradient_accumulation_steps
    steps = state["global_step"]
    seen = steps * batch  # rows are drawn without replacement within an epoch; the mean length stands for them
    tokens = seen * sum(lens) / len(lens)
    out = {
        "base_rougeL": round(base["eval_rougeL"], 2), "finetuned_rougeL": round(ev["eval_rougeL"], 2),
        "gain_rougeL": round(ev["eval_rougeL"] - base["eval_rougeL"], 2),
        "eval_rows": ev.get("eval_samples"),
        "train_seconds": round(train["train_runtime"], 1),
        "steps": steps, "batch": batch, "per_device_train_batch_size": targs.per_device_train_batch_size,
        "gradient_accumulation_steps": targs.gradient_accumulation_steps, "learning_rate": targs.learning_rate,
        "train_rows": len(rows), "rows_seen": seen,
        "sequence_length": {"mean": round(sum(lens) / len(lens), 1), "max": max(lens)},
        "train_tokens": round(tokens), "train_tokens_per_second": round(tokens / train["train_runtime"], 1),
        "learning_curve": [{"step": h["step"], "loss": h["loss"]} for h in state["log_history"] if "loss" in h],
    }
    for name, path in (("agreement_before", a.agreement_before), ("agreement_after", a.agreement_after)):
        if path:
            out[name] = load(path)["agreement_with_final_layer"]
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k not in ("learning_curve", "agreement_before",
                                                                 "agreement_after")}, indent=1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("ranking", "agreement", "summary"):
        s = sub.add_parser(name)
        s.add_argument("--max_source_length", type=int, default=384)
        s.add_argument("--max_target_length", type=int, default=64)
        if name == "ranking":
            s.add_argument("--model", required=True)
            s.add_argument("--train_file", required=True)
            s.add_argument("--size", type=int, default=4096)
        elif name == "agreement":
            s.add_argument("--model", required=True)
            s.add_argument("--data", required=True)
            s.add_argument("--out", required=True)
            s.add_argument("--max_samples", type=int, default=24)
            s.add_argument("--threads", type=int, default=2)
        else:
            s.add_argument("--base_eval", required=True, help="eval_results.json of the base model")
            s.add_argument("--run", required=True, help="output_dir of the fine-tuning run")
            s.add_argument("--train_file", required=True)
            s.add_argument("--agreement_before")
            s.add_argument("--agreement_after")
            s.add_argument("--out", required=True)
    a = p.parse_args(argv)
    {"ranking": ranking, "agreement": agreement, "summary": summary}[a.cmd](a)


if __name__ == "__main__":
    checks.run_cli(main, "finetune_report.py")
