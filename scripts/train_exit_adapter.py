#!/usr/bin/env python
"""Train exit adapters on a frozen decoder-only checkpoint by self-distillation, and measure them.

No labels are needed: the full model answers chat prompts built from the generated tasks (greedy), and an
adapter at layer S learns to make the shared final norm + LM head at S predict the full model's own next-token
distribution there (KL(full || exit)) over the answers' positions. The backbone is frozen and unchanged (the
script checks its weights' hash), so FREE with exact verification stays identical to the model; only its speed
depends on the adapters. Writes a checkpoint (the model with `exit_adapters`, config fields
`exit_adapter_layers` / `exit_adapter_rank`, tokenizer) and `exit_adapter_report.json`: per layer, top-1
agreement with the full model and, per confidence threshold, the share of tokens that would exit and how often
they agree -- before and after training, on held-out prompts.

    python scripts/train_exit_adapter.py --model_name_or_path .cache/smollm2-... --layers 8 12 \
        --out_dir outputs/smollm2_exit --num_prompts 256
"""

import argparse
import hashlib
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from models import EffLlamaForCausalLM  # noqa: E402
from models.modeling_common import ExitAdapter  # noqa: E402
from util import data_gen, skip_conf  # noqa: E402
from util.runner import chat_prompt_ids  # noqa: E402

TASKS = {
    "summarize": ("Summarize the following dialogue in one sentence.", lambda n, seed: [
        r["dialogue"] for r in data_gen.gen_dialogsum(n, seed)]),
    "news": ("Summarize the following article in two sentences.", lambda n, seed: [
        r["article"] for r in data_gen.gen_news(n, seed)]),
    "translate": ("Translate the following German text to English.", lambda n, seed: [
        r["translation"]["de"] for r in data_gen.gen_translation(n, seed)]),
}


def backbone_hash(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        if not name.startswith("exit_adapters."):
            h.update(name.encode())
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def prompts(tokenizer, n: int, seed: int, tasks) -> list[list[int]]:
    per = -(-n // len(tasks))
    out = []
    for t in tasks:
        instruction, make = TASKS[t]
        out += [chat_prompt_ids(tokenizer, instruction, src) for src in make(per, seed)]
    return out[:n]


@torch.no_grad()
def self_generate(model, prompt_ids, pad: int, max_new: int, batch: int):
    """The full model's greedy answers (HF generate): list of (prompt + answer ids, answer start)."""
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    out = []
    for i in range(0, len(prompt_ids), batch):
        chunk = prompt_ids[i:i + batch]
        T = max(map(len, chunk))
        ids = torch.tensor([[pad] * (T - len(p)) + p for p in chunk])
        mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in chunk])
        gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False)
        for p, g in zip(chunk, gen[:, T:].tolist()):
            ans = []
            for y in g:
                ans.append(y)
                if y in eos:
                    break
            out.append((p + ans, len(p)))
    return out


@torch.no_grad()
def collect(model, seqs, layers, pad: int, batch: int, prompts: bool = False):
    """Per layer, the layer's raw output at every answer position (the state the exit sees; with `prompts`, at the
    prompt's positions too), and the full model's final normalised state there (its logits are the teacher)."""
    hs = {i: [] for i in layers}
    final = []
    for i in range(0, len(seqs), batch):
        chunk = seqs[i:i + batch]
        T = max(len(s) for s, _ in chunk)
        ids = torch.tensor([s + [pad] * (T - len(s)) for s, _ in chunk])
        mask = torch.tensor([[1] * len(s) + [0] * (T - len(s)) for s, _ in chunk])
        out = model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        # a state at position t predicts token t + 1: the answer's tokens are predicted from start - 1 .. len - 2
        sel = [(b, t) for b, (s, a) in enumerate(chunk) for t in range(0 if prompts else a - 1, len(s) - 1)]
        rows, cols = torch.tensor([b for b, _ in sel]), torch.tensor([t for _, t in sel])
        for j in layers:
            hs[j].append(out.hidden_states[j][rows, cols])
        final.append(out.hidden_states[-1][rows, cols])  # already through the final norm
    return {j: torch.cat(v) for j, v in hs.items()}, torch.cat(final)


def exit_logits(model, adapter, h):
    return model.exit_logits(model.exit_norm(adapter(h) if adapter is not None else h))


@torch.no_grad()
def measure(model, adapter, h, teacher_top, thresholds, conf_type="softmax", chunk=512):
    """Top-1 agreement with the full model, and per threshold: share of positions above it (would exit) and the
    agreement among them."""
    agree, conf = [], []
    for i in range(0, len(h), chunk):
        z = exit_logits(model, adapter, h[i:i + chunk])
        agree.append(z.argmax(-1) == teacher_top[i:i + chunk])
        conf.append(skip_conf.confidence(conf_type, logits=z[:, None]).reshape(-1))
    agree, conf = torch.cat(agree), torch.cat(conf)
    rows = {}
    for thr in thresholds:
        out = conf > thr
        rows[str(thr)] = {"exit_share": round(float(out.float().mean()), 4),
                          "agree_when_exiting": round(float(agree[out].float().mean()), 4) if out.any() else None}
    return {"agreement": round(float(agree.float().mean()), 4), "by_threshold": rows}


def train_adapter(model, adapter, h, teacher_h, steps: int, lr: float, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(adapter.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.0, 1 - s / steps))
    losses = []
    for step in range(steps):
        idx = torch.randint(0, len(h), (batch,), generator=g)
        with torch.no_grad():
            t = F.log_softmax(model.exit_logits(teacher_h[idx]), -1)
        s = F.log_softmax(exit_logits(model, adapter, h[idx]), -1)
        loss = F.kl_div(s, t, log_target=True, reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model_name_or_path", required=True)
    ap.add_argument("--out_dir", required=True)
    ap.add_argument("--layers", type=int, nargs="+", required=True, help="exit layers S to train adapters for")
    ap.add_argument("--rank", type=int, default=None, help="bottleneck width; none: a full linear map")
    ap.add_argument("--tasks", nargs="+", default=["summarize", "news", "translate"], choices=sorted(TASKS))
    ap.add_argument("--num_prompts", type=int, default=192)
    ap.add_argument("--num_eval_prompts", type=int, default=48)
    ap.add_argument("--max_new_tokens", type=int, default=48)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch_positions", type=int, default=256)
    ap.add_argument("--gen_batch", type=int, default=8)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.8, 0.9])
    ap.add_argument("--train_on_prompts", action="store_true",
                    help="also distil at the prompts' positions (more data; the exit is only used on answers)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no_save", action="store_true", help="measure only")
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    torch.manual_seed(args.seed)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(args.model_name_or_path)
    model = EffLlamaForCausalLM.from_pretrained(args.model_name_or_path, dtype=torch.float32).eval()
    L = model.config.num_hidden_layers
    if not all(1 <= s < L for s in args.layers):
        raise SystemExit(f"--layers must be in 1..{L - 1} (the model has {L} layers)")
    for p in model.parameters():
        p.requires_grad_(False)
    before = backbone_hash(model)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    report = {"model": args.model_name_or_path, "layers": args.layers, "rank": args.rank, "args": vars(args)}

    train_p = prompts(tok, args.num_prompts, args.seed, args.tasks)
    eval_p = prompts(tok, args.num_eval_prompts, args.seed + 1000, args.tasks)
    t = time.time()
    train_s = self_generate(model, train_p, pad, args.max_new_tokens, args.gen_batch)
    eval_s = self_generate(model, eval_p, pad, args.max_new_tokens, args.gen_batch)
    report["generate_seconds"] = round(time.time() - t, 1)
    t = time.time()
    H, teacher = collect(model, train_s, args.layers, pad, args.gen_batch, args.train_on_prompts)
    He, teacher_e = collect(model, eval_s, args.layers, pad, args.gen_batch)
    top_e = torch.cat([model.exit_logits(teacher_e[i:i + 512]).argmax(-1) for i in range(0, len(teacher_e), 512)])
    report.update(collect_seconds=round(time.time() - t, 1), train_positions=len(teacher), eval_positions=len(top_e))
    print(f"{len(teacher)} training / {len(top_e)} held-out positions ({time.time() - t0:.0f}s)", flush=True)

    adapters = {}
    for S in args.layers:
        ad = ExitAdapter(model.config.hidden_size, args.rank)
        base = measure(model, None, He[S], top_e, args.thresholds)
        t = time.time()
        losses = train_adapter(model, ad, H[S], teacher, args.steps, args.lr, args.batch_positions, args.seed)
        ad.eval()
        after = measure(model, ad, He[S], top_e, args.thresholds)
        report[f"layer_{S}"] = {"shared_head": base, "adapter": after, "train_seconds": round(time.time() - t, 1),
                                "loss_first": round(losses[0], 4), "loss_last": round(sum(losses[-20:]) / 20, 4),
                                "parameters": sum(p.numel() for p in ad.parameters())}
        print(f"layer {S}: agreement {base['agreement']} -> {after['agreement']}  "
              f"({time.time() - t:.0f}s) {json.dumps(after['by_threshold'])}", flush=True)
        adapters[S] = ad

    assert backbone_hash(model) == before, "the backbone changed"
    report["backbone_sha256"] = before
    os.makedirs(args.out_dir, exist_ok=True)
    if not args.no_save:
        model.config.exit_adapter_layers, model.config.exit_adapter_rank = list(args.layers), args.rank
        model.exit_adapters = torch.nn.ModuleDict({str(S): a for S, a in adapters.items()})
        model.save_pretrained(args.out_dir)
        tok.save_pretrained(args.out_dir)
        model.generation_config.save_pretrained(args.out_dir)
    report["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out_dir, "exit_adapter_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(os.path.join(args.out_dir, "exit_adapter_report.json"))
    return report


if __name__ == "__main__":
    main()
