"""Seeded generators of realistic synthetic task data.

Real corpora (SAMSum, CNN/DailyMail, SQuAD, IWSLT) cannot be downloaded in this
environment, so this module produces synthetic data *in the same formats*:

* :func:`gen_dialogsum`   -- SAMSum-like ``{"id", "dialogue", "summary"}``
* :func:`gen_news`        -- CNN/DM-like ``{"id", "article", "highlights"}``
* :func:`gen_squad`       -- SQuAD v1.1 / v2.0 JSON structure
* :func:`gen_translation` -- IWSLT-like ``{"id", "translation": {"de", "en"}}``

Every generator is a pure function of ``(n, seed)`` (it uses its own
``random.Random(seed)``, never the global random state), is prefix stable
(``gen(n, s) == gen(n + k, s)[:n]`` for the list generators) and relies on the
standard library only.

The data is designed to be *learnable*: targets (summaries, highlights,
answers, translations) are consistent functions of the source, with facts
(names, numbers, places, times) copied from it, while the surface of the source
varies (paraphrases, distractor turns/sentences, varying lengths).

The package holds one module per task (``dialogsum``, ``news``, ``squad``, ``translation``) and their shared
vocabulary (``vocab``); everything is importable from ``util.data_gen`` as before.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence


from .dialogsum import gen_dialogsum  # noqa: F401
from .news import gen_news  # noqa: F401
from .squad import gen_squad, squad_to_records  # noqa: F401
from .translation import core_lexicon, gen_translation  # noqa: F401
from .vocab import _ALL_NAMES  # noqa: F401  (tests and callers read the name pool)

__all__ = [
    "gen_dialogsum",
    "gen_news",
    "gen_squad",
    "squad_to_records",
    "gen_translation",
    "write_jsonl",
    "write_json",
    "make_all",
    "corpus_text",
]

# ===========================================================================
# I/O and dataset building
# ===========================================================================

def write_jsonl(records: Sequence[dict], path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def write_json(obj, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path


_SPLIT_OFFSET = {"train": 1, "validation": 2, "test": 3}
_TASK_OFFSET = {"dialogsum": 0, "news": 10, "squad": 20, "squad_v2": 30, "iwslt_de_en": 40}


def _split_seed(seed: int, task: str, split: str) -> int:
    return seed * 1000 + _TASK_OFFSET[task] + _SPLIT_OFFSET[split]


def _unique(gen: Callable[[int, int], List[dict]], n: int, seed: int, key: Callable[[dict], str], seen: set) -> List[dict]:
    """First ``n`` records of ``gen(., seed)`` whose key is not in ``seen`` (nor duplicated); updates ``seen``."""
    extra = max(10, n // 10)
    while True:
        recs = gen(n + extra, seed)
        out, local = [], set()
        for r in recs:
            k = key(r)
            if k in seen or k in local:
                continue
            local.add(k)
            out.append(r)
            if len(out) == n:
                break
        if len(out) == n or extra > 20 * n + 1000:
            seen |= local
            return out
        extra *= 4


def _unique_squad(n: int, seed: int, version_2: bool, seen: set, max_words: Optional[int] = None) -> dict:
    extra = max(20, n // 5)
    while True:
        sq = gen_squad(n + extra, seed, version_2, max_words)
        data, total, local = [], 0, set()
        for art in sq["data"]:
            pars = []
            for par in art["paragraphs"]:
                if total >= n or par["context"] in seen or par["context"] in local:
                    continue
                qas = par["qas"][: n - total]
                if not qas:
                    continue
                local.add(par["context"])
                total += len(qas)
                pars.append({"context": par["context"], "qas": qas})
            if pars:
                data.append({"title": art["title"], "paragraphs": pars})
        if total >= n or extra > 20 * n + 1000:
            seen |= local
            return {"version": sq["version"], "data": data}
        extra *= 4


def make_all(out_dir: str, n_train: int = 2000, n_val: int = 200, n_test: int = 200, seed: int = 0,
             mt_lexicon: Optional[int] = None, qa_max_words: Optional[int] = None,
             qa_n_train: Optional[int] = None) -> Dict[str, str]:
    """Write all synthetic datasets under ``out_dir``; returns ``{"<task>/<split>": path}``.

    ``mt_lexicon=k`` draws the translation pairs from the grammar's ``k`` most frequent German words
    (:func:`gen_translation`). ``qa_max_words=w`` keeps every SQuAD context within ``w`` words
    (:func:`gen_squad`'s ``max_words``), so that it fits one model window. ``qa_n_train`` sets the SQuAD
    training size apart from the other tasks' (QA needs more examples than the others to generalise).

    Splits use different seeds and are de-duplicated against each other (train first).
    """
    paths: Dict[str, str] = {}
    sizes = {"train": n_train, "validation": n_val, "test": n_test}
    list_tasks = (
        ("dialogsum", gen_dialogsum, lambda r: r["dialogue"]),
        ("news", gen_news, lambda r: r["article"]),
        ("iwslt_de_en", lambda n, s: gen_translation(n, s, lexicon=mt_lexicon), lambda r: r["translation"]["de"]),
    )
    for task, gen, key in list_tasks:
        seen: set = set()
        for split in ("train", "validation", "test"):
            recs = _unique(gen, sizes[split], _split_seed(seed, task, split), key, seen)
            paths[f"{task}/{split}"] = write_jsonl(recs, os.path.join(out_dir, task, f"{split}.jsonl"))
    for task, v2 in (("squad", False), ("squad_v2", True)):
        seen = set()
        for split in ("train", "validation"):
            n = qa_n_train if split == "train" and qa_n_train is not None else sizes[split]
            sq = _unique_squad(n, _split_seed(seed, task, split), v2, seen, qa_max_words)
            paths[f"{task}/{split}"] = write_json(sq, os.path.join(out_dir, task, f"{split}.json"))
    return paths


def corpus_text(seed: int = 0, n: int = 2000) -> Iterator[str]:
    """Yield text lines from all generators (for tokenizer training); ``n`` examples per task."""
    for r in gen_dialogsum(n, seed):
        yield from r["dialogue"].split("\n")
        yield r["summary"]
    for r in gen_news(max(1, n // 2), seed + 1):
        yield r["article"]
        yield from r["highlights"].split("\n")
    for version_2 in (False, True):
        sq = gen_squad(n, seed + 2 + int(version_2), version_2)
        for art in sq["data"]:
            for par in art["paragraphs"]:
                yield par["context"]
                for qa in par["qas"]:
                    yield qa["question"]
    for r in gen_translation(n, seed + 4):
        yield r["translation"]["de"]
        yield r["translation"]["en"]
