#!/usr/bin/env python
"""What a decoding step costs on this machine, measured through the engine's own adapter and cache, and the
speedup of self-speculative FREE that those costs predict.

Per product layout (HF's modules, or deploying_common.fast_product): one decoder layer over k = 1..8 new tokens at
a realistic context length; the deep part (layers S..L-1 and the full LM head) over k tokens in one pass; the LM
head in full and over shortlists of K rows, for 1 and 4 rows. Then, for each exit layer S, draft form and
acceptance a, the expected speedup over a full step (Leviathan et al. 2023, section 3.3, with FREE's cycle): a cycle
drafts g tokens and computes one more, each through S layers and the exit (c_draft), then one deep pass over the
g + 1 positions (c_deep(g + 1)) keeps the accepted prefix and one token of its own:

    E[tokens per cycle] = (1 - a^(g + 1)) / (1 - a)        cost per cycle = (g + 1) c_draft + c_deep(g + 1)
    speedup = E[tokens per cycle] * c_full / cost per cycle

    python scripts/cost_curve.py --model_name_or_path .cache/smollm2-import --layers 6 8 15 --out outputs/cost
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models import EffLlamaForCausalLM  # noqa: E402
from models.deploying_common import LAYOUT_MS, Shortlist, fast_kernels  # noqa: E402


def timed(fn, reps: int) -> float:
    """Median milliseconds of fn() over `reps` calls, after two untimed ones."""
    fn(), fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return round(statistics.median(ts) * 1e3, 3)


@torch.no_grad()
def measure(model, context: int, layers: list, shortlists: list, reps: int, fast: bool) -> dict:
    ad = model.adapter_cls(model)
    if fast and hasattr(ad, "use_direct_layers"):  # as the engine does under fast_kernels
        ad.use_direct_layers()
    L, d = ad.num_layers, model.config.hidden_size
    sess = ad.start(torch.randint(3, min(1000, model.config.vocab_size), (1, context)))
    out = {"layer": {}, "deep": {}, "head": {}, "shortlist": {}}
    with fast_kernels(model, fast):
        def span_run(first: int, k: int, head: bool):
            def f():
                span = ad.span(torch.tensor([context]), k)
                h = torch.randn(1, k, d)
                for i in range(first, L):
                    h = ad.layer(sess, i, h, span)
                if head:
                    ad.logits(h)
                sess.kv.crop(0, context)
            return f
        for k in range(1, 9):
            out["layer"][k] = round(timed(span_run(L - 1, k, False), reps), 3)
            for S in layers:
                out["deep"].setdefault(S, {})[k] = timed(span_run(S, k, True), max(3, reps // 4))
        out["full_step"] = timed(span_run(0, 1, True), max(3, reps // 4))
        for k in (1, 4):
            h = torch.randn(1, k, d)
            out["head"][k] = timed(lambda: ad.logits(h), reps)
            for K in shortlists:
                sl = Shortlist(range(K), ad.lm_head)
                out["shortlist"].setdefault(K, {})[k] = timed(lambda: ad.logits(h, sl), reps)
    return out


def predict(c: dict, S: int, g: int, a: float, head_ms: float, block: bool = False) -> float:
    """Expected speedup over a full step (the formula in the module's docstring); `head_ms`: the draft exit's head,
    `block`: the exit is an exit block at S (one decoder layer more per drafted token)."""
    c_draft = (S + block) * c["layer"][1] + head_ms
    tokens = (1 - a ** (g + 1)) / (1 - a) if a < 1 else g + 1
    return round(tokens * c["full_step"] / ((g + 1) * c_draft + c["deep"][S][g + 1]), 3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", required=True)
    p.add_argument("--layers", type=int, nargs="+", default=[6, 8, 15], help="exit layers S for the deep part")
    p.add_argument("--shortlists", type=int, nargs="+", default=[2048, 4096, 8192, 16384])
    p.add_argument("--context", type=int, default=300, help="tokens already in the cache")
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--acceptance", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    p.add_argument("--out", default=None, help="folder for cost_curve.json")
    a = p.parse_args(argv)
    model = EffLlamaForCausalLM.from_pretrained(a.model_name_or_path).eval()
    res = {"model": a.model_name_or_path, "threads": torch.get_num_threads(), "context": a.context}
    for name, fast in (("hf_kernels", False), ("fast_kernels", True)):
        res[name] = c = measure(model, a.context, a.layers, a.shortlists, a.reps, fast)
        print(f"{name}: full step {c['full_step']} ms; one layer, k = 1..8: {list(c['layer'].values())} ms; "
              f"LM head k=1/4: {c['head'][1]}/{c['head'][4]} ms; shortlists k=1: "
              f"{ {K: v[1] for K, v in c['shortlist'].items()} } ms", flush=True)
        for S in a.layers:
            print(f"  deep part from S={S}, k = 1..8: {list(c['deep'][S].values())} ms")
    res["layouts_ms"] = {f"{o} x {i}": {n: {k: round(v, 4) for k, v in t.items()} for n, t in rows.items()}
                         for (o, i, _), rows in LAYOUT_MS.items()}
    for shape, rows in res["layouts_ms"].items():
        print(f"  {shape}: fastest layout by rows {[min(t, key=t.get) for t in rows.values()]}")
    c = res["fast_kernels"]
    res["predicted_speedup_vs_full_step"] = pred = {}
    for S in a.layers:
        for K in [None] + a.shortlists:
            head = c["head"][1] if K is None else c["shortlist"][K][1]
            for g in range(1, 8):
                for acc in a.acceptance:
                    pred[f"S={S} K={K or 'all'} g={g} a={acc}"] = predict(
                        c, S, g, acc, head, getattr(model.config, "exit_block_layer", None) == S)
    best = sorted(pred.items(), key=lambda kv: -kv[1])[:10]
    print("best predicted (fast kernels, vs our own full step):", best)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "cost_curve.json"), "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
