"""Aggregate table (markdown + aggregate.json) and the Likert bar chart."""

import os
from xml.sax.saxutils import escape

from .prompts import CRITERIA

PAIRWISE_RULE = ("Each sample is judged twice, A shown first and B shown first. It counts as a win for a "
                 "system only if both orders prefer that system; any disagreement, or a tie answer in either "
                 "order, counts as a tie. Samples with an unparseable answer in either order are not counted.")


def aggregate(tasks, records: dict, names: dict) -> dict:
    """Means over the final answer of each current task (records of other inputs/models in the file are
    ignored). names: {"a": name_a, "b": name_b}."""
    scores = {names[s]: {c: [] for c in CRITERIA} for s in ("a", "b")}
    unparseable = {"likert": 0, "pairwise": 0}
    retried = missing = 0
    orders = {}  # sample index -> {"ab": "1"/"2"/"tie"/None, "ba": ...}
    for t in tasks:
        recs = records.get(t.id)
        if not recs:
            missing += 1
            continue
        final = recs[-1]
        retried += any(r.get("attempt") == 1 and r.get("parsed") is None for r in recs)
        if final.get("parsed") is None:
            if final.get("attempt") != 2:  # retry not sent yet (interrupted): unfinished, not unparseable
                missing += 1
                continue
            unparseable[t.kind] += 1
        if t.kind == "likert":
            if final.get("parsed") is not None:
                for c in CRITERIA:
                    scores[names[t.tag]][c].append(final["parsed"][c])
        else:
            orders.setdefault(t.index, {})[t.tag] = final.get("parsed")

    likert = {}
    for name, per in scores.items():
        likert[name] = {c: {"mean": (sum(v) / len(v) if v else None), "n": len(v)} for c, v in per.items()}
        means = [likert[name][c]["mean"] for c in CRITERIA if likert[name][c]["mean"] is not None]
        likert[name]["average"] = {"mean": sum(means) / len(means) if means else None, "n": len(per[CRITERIA[0]])}

    win = tie = loss = 0
    for o in orders.values():
        if "ab" not in o or "ba" not in o or o["ab"] is None or o["ba"] is None:
            continue
        # Position -> system: in "ab" Summary 1 is A; in "ba" Summary 1 is B.
        first = {"1": "a", "2": "b"}.get(o["ab"], "tie")
        second = {"1": "b", "2": "a"}.get(o["ba"], "tie")
        if first == second == "a":
            win += 1
        elif first == second == "b":
            loss += 1
        else:
            tie += 1
    return {
        "systems": {"a": names["a"], "b": names["b"]},
        "n_samples": len({t.index for t in tasks}),
        "likert": likert,
        "pairwise": {"a": names["a"], "b": names["b"], "win": win, "tie": tie, "loss": loss,
                     "n": win + tie + loss, "rule": PAIRWISE_RULE},
        "unparseable": {**unparseable, "total": sum(unparseable.values()), "retried": retried},
        "missing": missing,
    }


def _fmt(m):
    return "-" if m["mean"] is None else f"{m['mean']:.2f} ({m['n']})"


def markdown(agg: dict) -> str:
    a, b = agg["systems"]["a"], agg["systems"]["b"]
    rows = [f"| criterion | {a} | {b} |", "|---|---|---|"]
    for c in (*CRITERIA, "average"):
        rows.append(f"| {c} | {_fmt(agg['likert'][a][c])} | {_fmt(agg['likert'][b][c])} |")
    p, u = agg["pairwise"], agg["unparseable"]
    rows += ["", f"| pairwise ({a} vs {b}) | win | tie | loss |", "|---|---|---|---|",
             f"| {p['n']} samples | {p['win']} | {p['tie']} | {p['loss']} |", "",
             f"Likert cells: mean (count), scale 1-5. Unparseable after one retry: {u['likert']} Likert, "
             f"{u['pairwise']} pairwise ({u['retried']} answers needed the retry). Not yet answered: "
             f"{agg['missing']}."]
    return "\n".join(rows)


def bar_chart(agg: dict, out_dir: str) -> str:
    """likert.png with matplotlib when it is installed, else a hand-written likert.svg."""
    names = [agg["systems"]["a"], agg["systems"]["b"]]
    means = {n: [agg["likert"][n][c]["mean"] or 0.0 for c in CRITERIA] for n in names}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _svg_chart(names, means, os.path.join(out_dir, "likert.svg"))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for k, n in enumerate(names):
        ax.bar([i + (k - 0.5) * width for i in range(len(CRITERIA))], means[n], width, label=n)
    ax.set_xticks(range(len(CRITERIA)), CRITERIA)
    ax.set_ylim(0, 5)
    ax.set_ylabel("mean Likert score (1-5)")
    ax.legend()
    path = os.path.join(out_dir, "likert.png")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _svg_chart(names, means, path) -> str:
    W, H, left, top, bottom = 560, 300, 50, 20, 40
    plot_h, group_w = H - top - bottom, (W - left - 10) / len(CRITERIA)
    bar_w, colors = group_w * 0.35, ("#4c72b0", "#dd8452")
    y = lambda v: top + plot_h * (1 - v / 5)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
           f'font-size="12">']
    for v in range(6):  # y axis grid 0..5
        out.append(f'<line x1="{left}" x2="{W - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    for i, c in enumerate(CRITERIA):
        x0 = left + i * group_w + (group_w - 2 * bar_w) / 2
        for k, n in enumerate(names):
            v = means[n][i]
            out.append(f'<rect x="{x0 + k * bar_w:.1f}" y="{y(v):.1f}" width="{bar_w:.1f}" '
                       f'height="{top + plot_h - y(v):.1f}" fill="{colors[k]}"><title>{escape(n)}: {v:.2f}'
                       f'</title></rect>')
        out.append(f'<text x="{left + (i + 0.5) * group_w:.1f}" y="{H - bottom + 16}" text-anchor="middle">'
                   f'{c}</text>')
    for k, n in enumerate(names):  # legend
        out.append(f'<rect x="{left + 10 + k * 140}" y="{H - 16}" width="10" height="10" fill="{colors[k]}"/>'
                   f'<text x="{left + 24 + k * 140}" y="{H - 7}">{escape(n)}</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return path
