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
from util.chat import chat_prompt_ids  # noqa: E402

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
        if not name.startswith(("exit_adapters.", "exit_block.")):
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


def token_ranking(seqs, teacher_top, size: int, vocab: int) -> list[int]:
    """Token ids, most useful to a shortlist first: by how often the full model emits them in its own answers, then
    how often it predicts them at the other training positions, then by id (a BPE vocabulary's ids roughly follow
    merge order, i.e. frequency); `size` of them (the shortlist sizes a decode may pick are its prefixes)."""
    emitted = torch.bincount(torch.tensor([y for s, a in seqs for y in s[a:]]), minlength=vocab)[:vocab]
    predicted = torch.bincount(teacher_top, minlength=vocab)[:vocab]
    ids = torch.arange(vocab)
    key = emitted.double() * (vocab + 1) ** 2 + predicted.double() * (vocab + 1) + (vocab - ids).double()
    return key.argsort(descending=True)[:size].tolist()


def shortlist_report(ranking, seqs, sizes) -> dict:
    """Per shortlist size K: the share of the full model's answer tokens (held-out prompts) among its first K."""
    tokens = torch.tensor([y for s, a in seqs for y in s[a:]])
    pos = {t: i for i, t in enumerate(ranking)}
    rank = torch.tensor([pos.get(int(t), len(ranking)) for t in tokens])
    return {str(k): round(float((rank < k).float().mean()), 4) for k in sizes}


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


@torch.no_grad()
def collect_sequences(model, seqs, layer: int, pad: int, batch: int):
    """Per sequence, layer `layer`'s raw states and the full model's final normalised states at every position
    (an exit block attends over the whole prefix, so it trains on sequences, not on positions)."""
    hs, final = [], []
    for i in range(0, len(seqs), batch):
        chunk = seqs[i:i + batch]
        T = max(len(s) for s, _ in chunk)
        ids = torch.tensor([s + [pad] * (T - len(s)) for s, _ in chunk])
        mask = torch.tensor([[1] * len(s) + [0] * (T - len(s)) for s, _ in chunk])
        out = model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        for b, (s, _) in enumerate(chunk):
            hs.append(out.hidden_states[layer][b, :len(s)].clone())
            final.append(out.hidden_states[-1][b, :len(s)].clone())
    return hs, final


def block_logits(model, block, short, hs):
    """(rows, T, K) shortlist logits of the exit block over right-padded sequences of layer-S states, and the
    (rows, T) mask of real positions."""
    n = torch.tensor([len(h) for h in hs])
    T = int(n.max())
    X = torch.zeros(len(hs), T, hs[0].shape[-1])
    for b, h in enumerate(hs):
        X[b, :len(h)] = h
    real = torch.arange(T)[None, :] < n[:, None]
    visible = torch.tril(torch.ones(T, T, dtype=torch.bool))[None] & real[:, None, :]
    mask = torch.zeros(visible.shape).masked_fill(~visible, torch.finfo(X.dtype).min)[:, None]
    pos = torch.arange(T)[None].expand(len(hs), -1)
    z = block(X, attention_mask=mask, position_ids=pos, position_embeddings=model.model.rotary_emb(X, pos))
    return short(model.exit_norm(z)), real


def teacher_logits(model, short, final):
    n = torch.tensor([len(h) for h in final])
    X = torch.zeros(len(final), int(n.max()), final[0].shape[-1])
    for b, h in enumerate(final):
        X[b, :len(h)] = h
    return short(X)


def train_block(model, block, short, hs, final, answer_starts, steps: int, lr: float, batch: int, seed: int,
                prompts: bool):
    """KL(full || block) over the shortlist (the teacher's distribution renormalised over it), at the answers'
    positions (with `prompts`, at every position)."""
    g = torch.Generator().manual_seed(seed)
    params = [p for p in block.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.0, 1 - s / steps))
    losses = []
    for step in range(steps):
        idx = torch.randint(0, len(hs), (batch,), generator=g).tolist()
        with torch.no_grad():
            t = F.log_softmax(teacher_logits(model, short, [final[i] for i in idx]), -1)
        z, real = block_logits(model, block, short, [hs[i] for i in idx])
        if not prompts:
            first = torch.tensor([answer_starts[i] - 1 for i in idx])
            real = real & (torch.arange(real.shape[1])[None] >= first[:, None])
        kl = F.kl_div(F.log_softmax(z, -1), t, log_target=True, reduction="none").sum(-1)
        loss = kl[real].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            print(f"  block step {step + 1}/{steps}: KL {loss.item():.3f}", flush=True)
    for p in params:
        p.requires_grad_(False)
    return losses


@torch.no_grad()
def measure_block(model, block, short, hs, final, answer_starts, thresholds, chunk=8):
    """measure() for an exit block: agreement of its shortlist top-1 with the full model's top-1 (over the whole
    vocabulary) at the answers' positions, and per threshold the exit share and agreement among exits."""
    agree, conf = [], []
    for i in range(0, len(hs), chunk):
        z, _ = block_logits(model, block, short, hs[i:i + chunk])
        for b, j in enumerate(range(i, min(i + chunk, len(hs)))):
            a, T = answer_starts[j] - 1, len(hs[j]) - 1
            top = model.exit_logits(final[j][a:T]).argmax(-1)
            zb = z[b, a:T]
            agree.append(short.ids[zb.argmax(-1)] == top)
            conf.append(F.softmax(zb, -1).max(-1).values)
    agree, conf = torch.cat(agree), torch.cat(conf)
    rows = {}
    for thr in thresholds:
        out = conf > thr
        rows[str(thr)] = {"exit_share": round(float(out.float().mean()), 4),
                          "agree_when_exiting": round(float(agree[out].float().mean()), 4) if out.any() else None}
    return {"agreement": round(float(agree.float().mean()), 4), "by_threshold": rows}


class _SmallHead:
    """The LM head's rows for a shortlist, as a differentiable function (the shortlist's own logits, K wide)."""

    def __init__(self, model, ids):
        self.ids = torch.tensor(ids)
        self.W = model.get_output_embeddings().weight.detach()[self.ids].contiguous()

    def __call__(self, z):
        return z @ self.W.T


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
    ap.add_argument("--exit_form", choices=("adapter", "block"), default="adapter",
                    help="adapter: a per-position MLP in front of the shared head (one per --layers); block: one "
                         "decoder layer (initialised from the model's last) that attends over its own cache, run on "
                         "layer S's state and trained over the shortlist (one S)")
    ap.add_argument("--block_shortlist", type=int, default=8192, help="block: the shortlist it is trained over")
    ap.add_argument("--block_batch", type=int, default=4, help="block: sequences per step")
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
    ap.add_argument("--ranking_size", type=int, default=16384,
                    help="tokens saved in exit_token_ranking (the largest --exit_shortlist_size a decode can use)")
    ap.add_argument("--shortlist_sizes", type=int, nargs="*", default=[2048, 4096, 8192, 16384])
    ap.add_argument("--answers_file", default=None,
                    help="keep the model's self-generated answers here and reuse them (the slow part) in later runs")
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
    key = {"model": backbone_hash(model), "args": [args.num_prompts, args.num_eval_prompts, args.max_new_tokens,
                                                   args.seed, sorted(args.tasks)]}
    if args.answers_file and os.path.isfile(args.answers_file):
        with open(args.answers_file) as f:
            saved = json.load(f)
        if saved["key"] != key:
            raise SystemExit(f"--answers_file {args.answers_file} holds answers of another model or prompt set")
        train_s, eval_s = [tuple(x) for x in saved["train"]], [tuple(x) for x in saved["eval"]]
    else:
        train_s = self_generate(model, train_p, pad, args.max_new_tokens, args.gen_batch)
        eval_s = self_generate(model, eval_p, pad, args.max_new_tokens, args.gen_batch)
        if args.answers_file:
            with open(args.answers_file, "w") as f:
                json.dump({"key": key, "train": train_s, "eval": eval_s}, f)
    report["generate_seconds"] = round(time.time() - t, 1)
    t = time.time()
    H, teacher = collect(model, train_s, args.layers, pad, args.gen_batch, args.train_on_prompts)
    He, teacher_e = collect(model, eval_s, args.layers, pad, args.gen_batch)
    top_e = torch.cat([model.exit_logits(teacher_e[i:i + 512]).argmax(-1) for i in range(0, len(teacher_e), 512)])
    report.update(collect_seconds=round(time.time() - t, 1), train_positions=len(teacher), eval_positions=len(top_e))
    print(f"{len(teacher)} training / {len(top_e)} held-out positions ({time.time() - t0:.0f}s)", flush=True)
    V = model.config.vocab_size
    top = torch.cat([model.exit_logits(teacher[i:i + 512]).argmax(-1) for i in range(0, len(teacher), 512)])
    ranking = token_ranking(train_s, top, min(args.ranking_size, V), V)
    report["shortlist_coverage"] = shortlist_report(ranking, eval_s, args.shortlist_sizes)
    print(f"held-out answer tokens inside the shortlist: {report['shortlist_coverage']}", flush=True)

    if args.exit_form == "block":
        if len(args.layers) != 1:
            raise SystemExit("--exit_form block trains one exit block: give one --layers value")
        S = args.layers[0]
        short = _SmallHead(model, ranking[:args.block_shortlist])
        t = time.time()
        hs, fin = collect_sequences(model, train_s, S, pad, args.gen_batch)
        hs_e, fin_e = collect_sequences(model, eval_s, S, pad, args.gen_batch)
        starts, starts_e = [a for _, a in train_s], [a for _, a in eval_s]
        block = model.make_exit_block()
        block.load_state_dict(model.model.layers[-1].state_dict())
        with torch.no_grad():  # residual branches start at zero: the untrained block is the shared exit
            block.self_attn.o_proj.weight.zero_()
            block.mlp.down_proj.weight.zero_()
        block.eval()
        before_b = measure_block(model, block, short, hs_e, fin_e, starts_e, args.thresholds)
        block.train()
        losses = train_block(model, block, short, hs, fin, starts, args.steps, args.lr, args.block_batch,
                             args.seed, args.train_on_prompts)
        block.eval()
        after_b = measure_block(model, block, short, hs_e, fin_e, starts_e, args.thresholds)
        report[f"layer_{S}"] = {"block_from_last_layer": before_b, "block": after_b,
                                "train_seconds": round(time.time() - t, 1), "loss_first": round(losses[0], 4),
                                "loss_last": round(sum(losses[-20:]) / len(losses[-20:]), 4),
                                "parameters": sum(p.numel() for p in block.parameters())}
        print(f"layer {S} block: agreement {before_b['agreement']} -> {after_b['agreement']}  "
              f"({time.time() - t:.0f}s) {json.dumps(after_b['by_threshold'])}", flush=True)
    adapters = {}
    for S in args.layers if args.exit_form == "adapter" else []:
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
        model.config.exit_token_ranking = ranking
        if args.exit_form == "block":
            model.config.exit_block_layer = args.layers[0]
            model.exit_block = block
        else:
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
