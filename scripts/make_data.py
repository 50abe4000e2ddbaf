#!/usr/bin/env python
"""Write the synthetic datasets (dialogue summarisation, news, SQuAD v1.1/v2.0, IWSLT de-en).

Usage (from the repository root):
    python scripts/make_data.py --out_dir data --n_train 2000 --n_val 200 --n_test 200 --seed 0
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from util import checks  # noqa: E402
from util.data_gen import make_all  # noqa: E402
from util.data_gen.squad import MIN_MAX_WORDS  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out_dir", default="data")
    ap.add_argument("--n_train", type=int, default=2000)
    ap.add_argument("--n_val", type=int, default=200)
    ap.add_argument("--n_test", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mt_lexicon", type=int, default=None,
                    help="translation pairs use only the grammar's N most frequent German words (demo: 150)")
    ap.add_argument("--qa_max_words", type=int, default=None,
                    help="SQuAD contexts of at most N words, so one model window holds each (demo: 40)")
    ap.add_argument("--qa_n_train", type=int, default=None,
                    help="SQuAD (v1 and v2) training questions, if not --n_train (demo: 30000)")
    args = ap.parse_args(argv)
    for name in ("n_train", "n_val", "n_test", "mt_lexicon", "qa_max_words", "qa_n_train"):
        value = getattr(args, name)
        if value is not None and value < 1:  # an empty split would only fail later, in the entry point that reads it
            ap.error(f"--{name} must be at least 1, got {value}")
    if args.qa_max_words is not None and args.qa_max_words < MIN_MAX_WORDS:
        ap.error(f"--qa_max_words must be at least {MIN_MAX_WORDS} (a context keeps its first sentence, which names "
                 f"its entity), got {args.qa_max_words}")
    checks.writable_dir(args.out_dir, "--out_dir")
    t0 = time.time()
    try:
        paths = make_all(args.out_dir, args.n_train, args.n_val, args.n_test, args.seed, args.mt_lexicon,
                         args.qa_max_words, args.qa_n_train)
    except ValueError as e:  # a lexicon or context bound the grammar cannot meet
        ap.error(str(e))
    for key, path in sorted(paths.items()):
        print(f"{key:24s} {path}")
    print(f"done in {time.time() - t0:.1f}s")
    return paths


if __name__ == "__main__":
    checks.run_cli(main, "make_data.py")
