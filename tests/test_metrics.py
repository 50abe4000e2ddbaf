"""Tests for util/metrics.py (all offline and fast)."""

import json
import os
import subprocess
import sys

import nltk
import pytest

from util import metrics
from util.metrics import (
    bleu,
    ensure_punkt,
    exact_match_score,
    f1_score,
    gen_len,
    normalize_answer,
    postprocess_text,
    rouge,
    squad,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "Dr. Smith went home. He was tired. It was 5 p.m. on Friday."
EXPECTED = ["Dr. Smith went home.", "He was tired.", "It was 5 p.m. on Friday."]
FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")


@pytest.fixture(autouse=True, scope="module")
def _private_nltk_data(tmp_path_factory):
    """Keep ensure_punkt()'s default target (``$NLTK_DATA``) out of the user's home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NLTK_DATA", str(tmp_path_factory.mktemp("nltk_data")))
        yield


def _reset_punkt_state():
    metrics._punkt_ready = False
    metrics._use_fallback = False
    metrics._clear_nltk_punkt_cache()


@pytest.fixture
def isolated_nltk(monkeypatch):
    """nltk with an empty data path (no punkt_tab findable) and fresh module state."""
    monkeypatch.setattr(nltk.data, "path", [])
    _reset_punkt_state()
    yield
    _reset_punkt_state()


def _lang_dir(root):
    return os.path.join(str(root), "tokenizers", "punkt_tab", "english")


# ---------------------------------------------------------------------------
# punkt
# ---------------------------------------------------------------------------


def test_ensure_punkt_writes_nltk_punkt_tab(isolated_nltk, tmp_path):
    with pytest.raises(LookupError):
        nltk.sent_tokenize(TEXT)  # really not installed in the isolated path
    root = ensure_punkt(str(tmp_path))
    assert root == str(tmp_path)
    for name in FILES:
        assert os.path.isfile(os.path.join(_lang_dir(tmp_path), name))
    assert str(tmp_path) in nltk.data.path
    assert not metrics._use_fallback  # the NLTK route works, not the fallback
    assert nltk.sent_tokenize(TEXT) == EXPECTED
    assert metrics.sent_tokenize(TEXT) == EXPECTED


def test_generated_files_roundtrip_through_nltk_loader(isolated_nltk, tmp_path):
    import punkt
    from nltk.data import FileSystemPathPointer
    from nltk.tokenize.punkt import load_punkt_params

    ensure_punkt(str(tmp_path))
    params = load_punkt_params(FileSystemPathPointer(_lang_dir(tmp_path)))
    model = punkt.load_model("english")
    assert params.abbrev_types == set(model.abbrev_types)
    assert {"dr", "p.m"} <= params.abbrev_types
    assert params.collocations == set(model.collocations)
    assert params.sent_starters == set(model.sent_starters)
    assert dict(params.ortho_context) == dict(model.ortho_context)


def test_ensure_punkt_idempotent(isolated_nltk, tmp_path):
    ensure_punkt(str(tmp_path))
    mtimes = {n: os.stat(os.path.join(_lang_dir(tmp_path), n)).st_mtime_ns for n in FILES}
    # Already working: nothing to do.
    assert ensure_punkt(str(tmp_path)) == str(tmp_path)
    # Forced rewrite of identical content leaves the files alone.
    ensure_punkt(str(tmp_path), force=True)
    after = {n: os.stat(os.path.join(_lang_dir(tmp_path), n)).st_mtime_ns for n in FILES}
    assert after == mtimes
    assert nltk.data.path.count(str(tmp_path)) == 1
    # No temp files left behind.
    leftovers = [n for n in os.listdir(os.path.dirname(_lang_dir(tmp_path))) if n != "english"]
    assert leftovers == []
    assert sorted(os.listdir(_lang_dir(tmp_path))) == sorted(FILES)


def test_ensure_punkt_repairs_partial_install(isolated_nltk, tmp_path):
    lang_dir = _lang_dir(tmp_path)
    os.makedirs(lang_dir)
    with open(os.path.join(lang_dir, "abbrev_types.txt"), "w") as f:
        f.write("garbage")
    ensure_punkt(str(tmp_path))
    assert sorted(os.listdir(lang_dir)) == sorted(FILES)
    assert nltk.sent_tokenize(TEXT) == EXPECTED


def test_ensure_punkt_does_nothing_when_already_working(isolated_nltk, tmp_path):
    first = tmp_path / "first"
    second = tmp_path / "second"
    ensure_punkt(str(first))
    _reset_punkt_state()  # forget the in-process flag; nltk itself now works
    assert ensure_punkt(str(second)) == str(first)
    assert not second.exists()


def test_ensure_punkt_default_dir_from_env(isolated_nltk, tmp_path, monkeypatch):
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "envdir"))
    assert ensure_punkt() == str(tmp_path / "envdir")
    assert os.path.isdir(_lang_dir(tmp_path / "envdir"))


def test_fallback_to_punkt_package(isolated_nltk, tmp_path, monkeypatch):
    def broken(data_dir):
        raise OSError("read-only file system")

    monkeypatch.setattr(metrics, "_write_punkt_tab", broken)
    with pytest.warns(RuntimeWarning, match="falling back"):
        assert ensure_punkt(str(tmp_path)) == ""
    assert metrics._use_fallback
    assert metrics.sent_tokenize(TEXT) == EXPECTED


def _sent_tokenize_in_subprocess(data_dir):
    env = dict(os.environ, NLTK_DATA=str(data_dir))
    code = f"import json, nltk; print(json.dumps(nltk.sent_tokenize({TEXT!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=str(data_dir), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_fresh_process_uses_written_dir(isolated_nltk, tmp_path):
    ensure_punkt(str(tmp_path), force=True)
    # Plain nltk, no util import, only NLTK_DATA pointing at the written dir.
    assert _sent_tokenize_in_subprocess(tmp_path) == EXPECTED


def test_concurrent_ensure_punkt(tmp_path):
    data_dir = tmp_path / "shared"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from util.metrics import ensure_punkt; import nltk; "
        "ensure_punkt(sys.argv[2], force=True); "
        f"assert nltk.sent_tokenize({TEXT!r}) == {EXPECTED!r}"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, REPO_ROOT, str(data_dir)], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert sorted(os.listdir(_lang_dir(data_dir))) == sorted(FILES)
    assert os.listdir(os.path.dirname(_lang_dir(data_dir))) == ["english"]


def test_postprocess_text():
    preds, labels = postprocess_text(["  " + TEXT + "  "], ["One. Two."])
    assert preds == ["\n".join(EXPECTED)]
    assert labels == ["One.\nTwo."]


# ---------------------------------------------------------------------------
# rouge
# ---------------------------------------------------------------------------


def test_rouge_identical_and_disjoint():
    assert rouge(["the cat sat on the mat"], ["the cat sat on the mat"]) == {
        "rouge1": 100.0,
        "rouge2": 100.0,
        "rougeL": 100.0,
        "rougeLsum": 100.0,
    }
    assert rouge(["alpha beta gamma"], ["delta epsilon zeta"]) == {
        "rouge1": 0.0,
        "rouge2": 0.0,
        "rougeL": 0.0,
        "rougeLsum": 0.0,
    }


def test_rouge_hand_computed():
    # pred "the cat sat" vs ref "the cat sat on the mat":
    # rouge1: overlap 3 unigrams; P = 3/3, R = 3/6 -> F = 2*1*0.5/1.5 = 2/3 = 66.6667
    # rouge2: pred bigrams {the cat, cat sat} both in ref (5 bigrams);
    #         P = 2/2, R = 2/5 -> F = 2*1*0.4/1.4 = 4/7 = 57.1429
    # rougeL: LCS = 3 -> same as rouge1.
    scores = rouge(["the cat sat"], ["the cat sat on the mat"])
    assert scores["rouge1"] == pytest.approx(66.6667)
    assert scores["rouge2"] == pytest.approx(57.1429)
    assert scores["rougeL"] == pytest.approx(66.6667)
    # Mean over examples: (100 + 0) / 2.
    assert rouge(["a b c", "x y"], ["a b c", "p q"])["rouge1"] == 50.0


def test_rouge_stemming():
    # Porter stemmer: running -> run, runs -> run
    assert rouge(["running"], ["runs"])["rouge1"] == 100.0


def test_rouge_lsum_differs_from_rougeL():
    # Flat LCS of "the dog ran the cat sat" vs "the cat sat the dog ran" is 3 of 6
    # tokens -> rougeL = 50; summary-level union LCS per reference sentence
    # recovers every token -> rougeLsum = 100.
    scores = rouge(["The dog ran. The cat sat."], ["The cat sat. The dog ran."])
    assert scores["rougeL"] == 50.0
    assert scores["rougeLsum"] == 100.0


def test_rouge_empty_prediction_and_length_mismatch():
    scores = rouge(["", "same text"], ["some reference", "same text"])
    assert scores == {"rouge1": 50.0, "rouge2": 50.0, "rougeL": 50.0, "rougeLsum": 50.0}
    with pytest.raises(ValueError, match="same length"):
        rouge(["a", "b"], ["a"])


# ---------------------------------------------------------------------------
# bleu / chrF
# ---------------------------------------------------------------------------


def test_bleu_identical_and_chrf():
    sent = "the quick brown fox jumps over the lazy dog"
    assert bleu([sent], [sent]) == {"bleu": 100.0, "chrf": 100.0}
    assert bleu([sent], [[sent]]) == {"bleu": 100.0, "chrf": 100.0}
    partial = bleu(["the quick brown fox jumped over a lazy dog"], [[sent]])
    assert 0.0 < partial["bleu"] < 100.0
    assert 50.0 < partial["chrf"] < 100.0
    disjoint = bleu(["zzz qqq xxx"], [sent])
    assert disjoint["bleu"] == 0.0 and disjoint["chrf"] < 10.0
    with pytest.raises(ValueError, match="same length"):
        bleu(["a"], ["a", "b"])


# ---------------------------------------------------------------------------
# squad
# ---------------------------------------------------------------------------


def test_squad_normalisation():
    assert normalize_answer("The Cat!") == "cat"
    assert normalize_answer("  An   apple, a DAY. ") == "apple day"
    assert normalize_answer("theater") == "theater"  # articles only as whole words
    assert exact_match_score("The Cat!", "cat") == 1
    assert exact_match_score("cats", "cat") == 0


def test_squad_token_f1_hand_computed():
    # normalised: "big black cat" vs "black cat sat": common = {black, cat} = 2
    # P = 2/3, R = 2/3 -> F1 = 2/3
    assert f1_score("the big black cat", "a black cat sat") == pytest.approx(2 / 3)
    # P = 1/1, R = 1/4 -> F1 = 2*0.25/1.25 = 0.4
    assert f1_score("paris", "the city of Paris, France") == pytest.approx(0.4)
    res = squad(
        {"q1": "The Cat!", "q2": "the big black cat"},
        {"q1": ["cat", "dog"], "q2": ["a black cat sat", "a big black cat"]},
    )
    assert res == {"exact_match": 100.0, "f1": 100.0}
    res = squad({"q1": "The Cat!", "q2": "the big black cat"}, {"q1": ["dog"], "q2": ["a black cat sat"]})
    assert res["exact_match"] == 0.0
    assert res["f1"] == pytest.approx(100 * (0 + 2 / 3) / 2)


def test_squad_v2_no_answer():
    # Either side empty -> F1 = EM = 1 iff both empty.
    assert f1_score("", "", version="v2") == 1.0
    assert f1_score("cat", "", version="v2") == 0.0
    assert f1_score("", "cat", version="v2") == 0.0
    assert f1_score("the", "", version="v2") == 1.0  # normalises to empty
    # v1 semantics differ: no token overlap -> 0.
    assert f1_score("", "", version="v1") == 0.0

    res = squad(
        {"has1": "cat", "has2": "", "no1": "", "no2": "dog"},
        {"has1": ["The cat"], "has2": ["cat"], "no1": [], "no2": []},
        version="v2",
    )
    assert res["total"] == 4
    assert res["exact_match"] == 50.0 and res["f1"] == 50.0
    assert res["HasAns_exact"] == 50.0 and res["HasAns_f1"] == 50.0 and res["HasAns_total"] == 1 + 1
    assert res["NoAns_exact"] == 50.0 and res["NoAns_f1"] == 50.0 and res["NoAns_total"] == 2

    only_has = squad({"a": "cat"}, {"a": ["cat"]}, version="v2")
    assert "NoAns_exact" not in only_has and only_has["HasAns_exact"] == 100.0
    with pytest.raises(ValueError, match="v2"):
        squad({"a": ""}, {"a": []})


def test_squad_missing_prediction_scores_zero():
    res = squad({"a": "cat"}, {"a": ["cat"], "b": ["dog"]})
    assert res == {"exact_match": 50.0, "f1": 50.0}


# ---------------------------------------------------------------------------
# gen_len
# ---------------------------------------------------------------------------


def test_gen_len():
    import numpy as np
    import torch

    assert gen_len([[5, 6, 7, 0], [5, 0, 0, 0], [1, 2, 0, 0]], pad_token_id=0) == 2.0
    assert gen_len(np.array([[1, 1, 9], [1, 9, 9], [9, 9, 9]]), pad_token_id=9) == 1.0
    assert gen_len(torch.tensor([[3, 4, 1], [3, 1, 1], [3, 4, 5]]), pad_token_id=1) == pytest.approx(2.0)
    assert gen_len([[1, 2], [1, 2, 3]], pad_token_id=0) == 2.5
    assert gen_len([[1], [1], [1, 1]], pad_token_id=0) == 1.3333
