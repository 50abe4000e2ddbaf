"""What scripts/benchmark.py derives from its measurements and how it reports them: the quality-speed areas, the
method tables (markdown), the batch-size sweep and the plots. Pure functions of the results dicts."""

import os


def profile_markdown(prof: dict) -> str:
    lines = ["| method | wall ms/token (profiled) | aten calls/token | aten self CPU ms/token | host reads/token | "
             "top operators (calls/token, share of aten self time) |", "|" + "---|" * 6]
    for name, p in prof.items():
        tops = ", ".join(f"{o['op'][6:]} {o['calls_per_token']:g} ({100 * o['self_cpu_share']:.0f} %)"
                         for o in p["top_ops"][:5])
        lines.append(f"| {name} | {p['wall_ms_per_token']} | {p['aten_calls_per_token']} | "
                     f"{p['aten_self_cpu_ms_per_token']} | {p['host_reads_per_token']} | {tops} |")
    return "\n".join(lines)


def auc_by_family(results) -> dict:
    """Area under quality (relative to full) vs speedup (vs HF generate), per method family.

    Each family's curve is its upper envelope q(s) = best relative quality among its points with speedup
    >= s, anchored at the full model's point (an exit method can always fall back to full depth), and 0
    beyond its fastest point. `common`: the mean of q over the speedup range every family reaches, [full's
    speedup, the smallest of the families' top speedups], the only range where all curves are defined;
    `full_range`: the area up to the fastest point of any family, which also credits speed bought with
    unusable quality (static exiting at layer 1, say).
    """
    full = results.get("full")
    if not full or "speedup_vs_hf" not in full:
        return {}
    pts = {}
    for r in results.values():
        if r["family"] in ("static", "calm", "free", "free_verify", "free_adaptive"):
            pts.setdefault(r["family"], []).append((r["speedup_vs_hf"], r["quality_vs_full"]))
    if not pts:
        return {}
    lo = full["speedup_vs_hf"]

    def area(p, hi, steps=400):
        if hi <= lo:
            return 0.0
        grid = [lo + (hi - lo) * i / steps for i in range(steps + 1)]
        env = [max([q for s, q in p + [(lo, 1.0)] if s >= g] + [0.0]) for g in grid]
        return sum((env[i] + env[i + 1]) / 2 * (grid[i + 1] - grid[i]) for i in range(steps))

    common_hi = min(max(s for s, _ in p) for p in pts.values())
    all_hi = max(s for p in pts.values() for s, _ in p)
    return {"common_range": [lo, round(common_hi, 3)], "full_range": [lo, round(all_hi, 3)],
            # empty when some family never gets faster than the full path: there is no common range
            "common": {f: round(area(p, common_hi) / (common_hi - lo), 4) for f, p in pts.items()}
            if common_hi > lo else {},
            "full": {f: round(area(p, all_hi), 4) for f, p in pts.items()}}


def split_cells(r) -> tuple:
    """'first token ms (speedup vs HF)' and 'ms per later token (speedup vs HF)' of one method's results."""
    def cell(ms, speedup):
        return "-" if ms is None else f"{ms:.1f}" + (f" ({speedup}x)" if speedup is not None else "")
    return (cell(r.get("first_token_ms"), r.get("first_token_speedup_vs_hf")),
            cell(r.get("later_token_ms"), r.get("later_token_speedup_vs_hf")))


def markdown(res) -> str:
    q = "BLEU" if res["task"] == "translation" else "ROUGE-L"
    lines = [f"| method | {q} | vs full | layers/token | layer-FLOPs/token | time (s) | tokens/s | speedup vs HF | "
             "first token ms (vs HF) | ms/later token (vs HF) | "
             "ideal | efficiency | same as full | same as HF | vs full's outputs | acceptance |", "|" + "---|" * 16]
    for name, r in res["methods"].items():
        first, later = split_cells(r)
        lines.append(f"| {name} | {r['quality']:.2f} | {r.get('quality_vs_full', '-')} | "
                     f"{r['avg_layers_per_token']:.2f} | "
                     f"{r['layer_flops_per_token']:.2f} | {r['time_s']:.2f} | {r['tokens_per_s']:.0f} | "
                     f"{r.get('speedup_vs_hf', '-')} | {first} | {later} | "
                     f"{r.get('ideal_speedup', '-')} | {r.get('efficiency', '-')} | "
                     f"{r.get('agreement_with_full', '-')} | {r.get('agreement_with_hf', '-')} | "
                     f"{r.get('quality_of_full_outputs', '-')} | "
                     f"{r.get('acceptance_rate', '-')} |")
    if res.get("auc"):
        auc = res["auc"]
        lines += ["", f"Quality-speed area, common range {auc['common_range']} (mean relative quality): "
                  + ", ".join(f"{k} {v}" for k, v in auc["common"].items()),
                  f"Quality-speed area, full range {auc['full_range']}: "
                  + ", ".join(f"{k} {v}" for k, v in auc["full"].items())]
    return "\n".join(lines)


def plot(res, out_dir) -> list:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        print("matplotlib is not installed: skipping plots")
        return []
    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    fams = {}
    for r in res["methods"].values():
        fams.setdefault(r["family"], []).append((r.get("speedup_vs_hf", 0), r.get("quality_vs_full", 0)))
    for fam, p in fams.items():
        p.sort()
        common = res.get("auc", {}).get("common", {})
        label = f"{fam} (area {common[fam]})" if fam in common else fam
        ax.plot([x for x, _ in p], [y for _, y in p], "o-", label=label)
    if res.get("auc"):
        ax.axvspan(*res["auc"]["common_range"], color="grey", alpha=0.1, label="common range")
    ax.set_xlabel("speedup vs HF generate()")
    ax.set_ylabel("quality / full model's")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    files.append(os.path.join(out_dir, "quality_vs_speed.png"))
    fig.tight_layout()
    fig.savefig(files[-1], dpi=120)
    if "bmm" in res:
        from util.bmm import beta_logpdf

        b = res["bmm"]
        fig, ax = plt.subplots(figsize=(6, 4))
        conf, agree = np.array(b["confidences"]), np.array(b["agree"], dtype=bool)
        bins = np.linspace(0, 1, 31)
        ax.hist(conf[agree], bins=bins, alpha=0.5, density=True, label="shallow == deep")
        ax.hist(conf[~agree], bins=bins, alpha=0.5, density=True, label="shallow != deep")
        if b["alphas"]:
            x = np.linspace(0.01, 0.99, 200)
            for c, name in ((1, "agree fit"), (0, "disagree fit")):
                ax.plot(x, np.exp(beta_logpdf(x, b["alphas"][c], b["betas"][c])), label=f"Beta {name}")
        ax.axvline(b["threshold"], color="k", ls="--", label=f"threshold {b['threshold']:.2f}")
        ax.set_xlabel("shallow-exit confidence")
        ax.legend(fontsize=7)
        files.append(os.path.join(out_dir, "confidence_hist.png"))
        fig.tight_layout()
        fig.savefig(files[-1], dpi=120)
    return files


def batch_sweep(runs: dict) -> dict:
    """Per method and batch size: tokens/s, speedup over our full path and HF at the same batch size, quality."""
    out = {}
    for bs, res in runs.items():
        full = res["methods"].get("full")
        for name, r in res["methods"].items():
            row = {"tokens_per_s": r["tokens_per_s"], "time_s": r["time_s"], "quality": r["quality"],
                   "quality_vs_full": r.get("quality_vs_full"), "speedup_vs_hf": r.get("speedup_vs_hf"),
                   "avg_layers_per_token": r["avg_layers_per_token"]}
            for k in ("first_token_ms", "later_token_ms", "first_token_speedup_vs_hf", "later_token_speedup_vs_hf"):
                if k in r:
                    row[k] = r[k]
            if full:
                row["speedup_vs_full"] = round(full["time_s"] / r["time_s"], 3)
            out.setdefault(name, {})[str(bs)] = row
    return out


def sweep_markdown(sweep: dict) -> str:
    sizes = list(dict.fromkeys(b for by in sweep.values() for b in by))
    lines = ["| method | " + " | ".join(f"tokens/s @{b} (vs full, quality vs full); first token ms, ms/later token"
                                        for b in sizes) + " |",
             "|" + "---|" * (len(sizes) + 1)]
    for name, by in sweep.items():  # a method that did not run at a batch size (HF's assisted decoding) is blank
        cells = [f"{by[b]['tokens_per_s']:.0f} ({by[b].get('speedup_vs_full', '-')}x, {by[b]['quality_vs_full']}); "
                 + "; ".join(split_cells(by[b])) if b in by else "" for b in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
