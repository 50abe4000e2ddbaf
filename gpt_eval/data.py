"""Reading sources, references and predictions, and checking that they line up."""

import json
import os

from util import checks

from .client import InputError

# Same guesses as run_summarization.py makes for local files.
SOURCE_COLUMNS = ("dialogue", "article", "document", "text")
SUMMARY_COLUMNS = ("summary", "highlights", "abstract")


def read_lines(path: str) -> list[str]:
    """One item per line. run_summarization.py joins predictions with "\\n" and no final newline, so empty
    lines are kept (an empty prediction is still a prediction); one trailing newline is dropped, as files made
    by hand usually end with one (so a final empty prediction shows up as a length mismatch, not silently)."""
    if not os.path.isfile(path):
        raise InputError(f"file not found: {path}")
    with open(path, "rb") as f:
        try:
            text = checks.decode_utf8(f.read(), str(path), "input file")
        except checks.InputError as e:
            raise InputError(str(e)) from None
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n") if text else []


def _looks_like_jsonl(path, lines: list[str]) -> bool:
    if str(path).endswith((".jsonl", ".json")):
        return True
    first = next((ln for ln in lines if ln.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def read_texts(path: str, column: str | None, candidates: tuple[str, ...], flag: str) -> list[str]:
    """jsonl (one object per line, text taken from `column` or the first known column) or plain text, one item
    per line."""
    lines = read_lines(path)
    if not _looks_like_jsonl(path, lines):
        return lines
    rows = []
    for n, ln in enumerate(lines, 1):
        if not ln.strip():
            continue
        try:
            rows.append(json.loads(ln))
        except ValueError as e:
            raise InputError(f"{path}:{n} is not valid JSON ({e})") from None
    if not rows:
        return []
    keys = list(rows[0])
    col = column or next((c for c in candidates if c in rows[0]), None)
    if col is None or col not in rows[0]:
        raise InputError(f"{path}: no column {column or '/'.join(candidates)!s}; pass {flag} (columns: {keys})")
    missing = [i for i, r in enumerate(rows) if col not in r]
    if missing:
        raise InputError(f"{path}: row {missing[0]} has no column {col!r}")
    return [str(r[col]) for r in rows]


def load_inputs(sources, references, pred_a, pred_b, text_column=None, summary_column=None, max_samples=None):
    """-> (sources, references, preds_a, preds_b), aligned by position and cut to max_samples.

    Without --max_samples all four must have the same length. With it, each needs at least max_samples rows
    (predictions written with --max_predict_samples cover the first rows of the dataset)."""
    data = {
        "sources": read_texts(sources, text_column, SOURCE_COLUMNS, "--text_column"),
        "references": read_texts(references, summary_column, SUMMARY_COLUMNS, "--summary_column"),
        "pred_a": read_lines(pred_a),
        "pred_b": read_lines(pred_b),
    }
    paths = {"sources": sources, "references": references, "pred_a": pred_a, "pred_b": pred_b}
    sizes = ", ".join(f"{k}={len(v)} ({paths[k]})" for k, v in data.items())
    if max_samples is None:
        if len({len(v) for v in data.values()}) != 1:
            raise InputError(f"input lengths differ: {sizes}. They must match line by line "
                             f"(or pass --max_samples to use the first rows of each)")
    else:
        short = [k for k, v in data.items() if len(v) < max_samples]
        if short:
            raise InputError(f"--max_samples {max_samples} but {', '.join(short)} has fewer rows: {sizes}")
        data = {k: v[:max_samples] for k, v in data.items()}
    if not data["sources"]:
        raise InputError("no samples to evaluate (empty inputs)")
    return data["sources"], data["references"], data["pred_a"], data["pred_b"]
