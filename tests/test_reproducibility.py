"""The same command on the same machine gives the same model (issue 19, item 4).

Runs of the demo diverged because the Unigram tokenizer trainer ordered equal-score pieces, and scored the characters
it adds, in hash-map order (seeded per process): two builds permuted ~50 token ids, so the same weights met different
tokens. Training itself, with a fixed tokenizer and thread count, is bitwise repeatable (checked below).
"""

import json
import os
import random
import sys

from safetensors.torch import load_file
from tokenizers import Tokenizer

import run_summarization
from util.data_gen import corpus_text, gen_dialogsum, write_jsonl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
from build_model import SPECIALS, canonical_unigram, train_tokenizer  # noqa: E402


def test_tokenizer_ids_do_not_depend_on_the_trainers_hash_order():
    trained = train_tokenizer(corpus_text(0, 300), 300).backend_tokenizer
    spec = json.loads(trained.to_str())
    vocab = spec["model"]["vocab"]
    specials, rest = vocab[:len(SPECIALS)], vocab[len(SPECIALS):]
    rng = random.Random(0)
    # another process's trainer: pieces in another order, scores off in the last bits, and the added characters'
    # penalty scores handed out in another order
    floor = min(s for _, s in rest)
    band = [i for i, (p, s) in enumerate(rest) if len(p) == 1 and s < floor + 0.01]
    assert len(band) > 1
    scores = [rest[i][1] for i in band]
    rng.shuffle(scores)
    other = [[p, s + rng.uniform(-1e-14, 1e-14)] for p, s in rest]
    for i, s in zip(band, scores):
        other[i][1] = s
    rng.shuffle(other)
    spec["model"]["vocab"] = specials + other
    shuffled = Tokenizer.from_str(json.dumps(spec))
    assert shuffled.to_str() != trained.to_str()
    a, b = canonical_unigram(shuffled), canonical_unigram(trained)
    assert a.to_str() == b.to_str()
    text = "Anna: Flight LX198 leaves at 10:30, ok? Bob: Ja, 5 $!"
    assert a.encode(text).ids == b.encode(text).ids
    assert [a.id_to_token(i) for i in range(len(SPECIALS))] == SPECIALS  # pad 0, eos 1, unk 2 stay T5's


def test_short_training_twice_gives_the_same_weights(tiny_t5, tmp_path):
    train = write_jsonl(gen_dialogsum(24, 1), str(tmp_path / "train.jsonl"))
    weights = []
    for run in ("a", "b"):
        out = tmp_path / run
        run_summarization.main(["--model_name_or_path", tiny_t5, "--train_file", train, "--output_dir", str(out),
                                "--do_train", "--max_steps", "6", "--per_device_train_batch_size", "4",
                                "--learning_rate", "3e-3", "--max_source_length", "48", "--max_target_length", "12",
                                "--seed", "0", "--use_cpu", "--report_to", "none", "--save_strategy", "no",
                                "--output_hidden_states_decoder", "True", "--intermediate_loss_fn",
                                "shallowdeep_kd_dyna", "--shallow_exit_layer", "2", "--distill_layer_alpha", "0.5"])
        weights.append(load_file(str(out / "model.safetensors")))
    a, b = weights
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)  # bitwise: dropout, data order and kernels repeat exactly
    initial = load_file(os.path.join(tiny_t5, "model.safetensors"))
    assert not (a["shared.weight"] == initial["shared.weight"]).all()  # and training did change them
