"""Loading runs no code from a model folder (issue 19, item 5): weights come from safetensors, a pickle is never
unpickled into code, and a config asking for remote code is refused. The judge's API key never reaching logs, outputs
or errors is tested in test_gpt_eval.py (test_key_never_leaks, test_bad_key_clear_error)."""

import ast
import builtins
import json
import os
import pickle
import re
import shutil

import pytest

from additional_args import AdditionalArguments, ModelArguments
from models import load_model_and_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Payload:
    """Unpickling it creates a file: the proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def write_payload(folder, marker):
    with open(os.path.join(folder, "pytorch_model.bin"), "wb") as f:
        pickle.dump(Payload(str(marker)), f)


def load(path):
    return load_model_and_tokenizer(ModelArguments(model_name_or_path=str(path)), AdditionalArguments())


def test_safetensors_are_read_and_a_pickle_beside_them_is_not(tiny_t5, tmp_path):
    d = tmp_path / "both"
    shutil.copytree(tiny_t5, d)
    write_payload(d, tmp_path / "ran")
    model, _, _ = load(d)
    assert model.num_parameters() > 0 and not (tmp_path / "ran").exists()


def test_a_pickle_alone_is_refused_without_running(tiny_t5, tmp_path):
    d = tmp_path / "pickle_only"
    shutil.copytree(tiny_t5, d)
    os.remove(d / "model.safetensors")
    write_payload(d, tmp_path / "ran")
    with pytest.raises(Exception, match=re.compile("weights_only|Unsupported|unpickl", re.I)):
        load(d)
    assert not (tmp_path / "ran").exists()


def test_remote_code_is_refused_unless_asked_for(tiny_t5, tmp_path):
    d = tmp_path / "custom"
    shutil.copytree(tiny_t5, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "custom.CustomConfig", "AutoModelForSeq2SeqLM": "custom.CustomModel"}
    cfg["model_type"] = "custom_remote"
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "custom.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    with pytest.raises(ValueError, match="trust_remote_code"):
        load(d)
    assert not (tmp_path / "ran").exists()


def test_no_code_path_turns_trust_remote_code_on():
    """No call of ours passes trust_remote_code=True (the docs may tell a user to, for a checkpoint they trust)."""
    def turns_on(path):
        tree = ast.parse(open(path).read())
        return any(isinstance(n, ast.keyword) and n.arg == "trust_remote_code" and
                   not (isinstance(n.value, ast.Constant) and n.value.value is False) for n in ast.walk(tree))

    found = []
    for top in ("additional_args", "models", "trainers", "util", "scripts", "gpt_eval"):
        for base, _, names in os.walk(os.path.join(ROOT, top)):
            found += [os.path.join(base, n) for n in names if n.endswith(".py") and turns_on(os.path.join(base, n))]
    found += [f for f in os.listdir(ROOT) if f.endswith(".py") and turns_on(os.path.join(ROOT, f))]
    assert found == []
