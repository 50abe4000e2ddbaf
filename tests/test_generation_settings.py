"""Exit settings are generation settings (issue 34 item 1): per call, in a GenerationConfig, in
generation_config.json; one checker; nothing written on the model; threads with their own settings."""

import json
import threading

import pytest
from transformers import GenerationConfig

from models.generation import ExitSettingsError
from tests.test_engine import CALM, FREE, L, NEW, hf_greedy, inputs, make_model

VERIFY = dict(FREE, shallow2deep_conf_threshold=0.05, exact_verification=True)


def snapshot(m):
    return json.dumps(m.config.to_dict(), sort_keys=True, default=str), m.generation_config.to_json_string()


def test_per_call_settings_decode_like_the_same_settings_in_the_config_and_write_nothing():
    plain, configured = make_model(), make_model(**FREE, shallow2deep_conf_threshold=0.3)
    before = snapshot(plain)
    for x in inputs(3, seed=2):
        got = plain.generate(input_ids=x, max_new_tokens=NEW, **FREE, shallow2deep_conf_threshold=0.3)
        assert got.tolist() == configured.generate(input_ids=x, max_new_tokens=NEW).tolist()
        gc = GenerationConfig(max_new_tokens=NEW, **FREE, shallow2deep_conf_threshold=0.3)
        assert plain.generate(input_ids=x, generation_config=gc).tolist() == got.tolist()
    assert plain.pop_exit_stats().exits > 0 and configured.pop_exit_stats().exits > 0
    assert snapshot(plain) == before and plain.exit_policy().method == "full"


def test_per_call_oracles_never_exit_and_verification_equal_hf_generate():
    m = make_model()
    exits = rejected = 0
    for x in inputs(5, seed=2):
        ref = hf_greedy(m, x).tolist()
        assert m.generate(input_ids=x, max_new_tokens=NEW, **FREE, shallow2deep_conf_threshold=1.0).tolist() == ref
        assert m.pop_exit_stats().exits == 0
        assert m.generate(input_ids=x, max_new_tokens=NEW, **VERIFY).tolist() == ref
        st = m.pop_exit_stats()
        exits, rejected = exits + st.exits, rejected + st.rollbacks
    assert exits > 0 and rejected > 0


def test_order_of_precedence_and_the_call_choosing_the_method():
    m = make_model(**FREE, shallow2deep_conf_threshold=0.9)  # config.json of an older checkpoint
    assert m.exit_settings()["shallow2deep_conf_threshold"] == 0.9
    m.generation_config.shallow2deep_conf_threshold = 0.7  # generation_config.json beats config.json
    assert m.exit_policy().threshold == 0.7
    gc = GenerationConfig(shallow2deep_conf_threshold=0.5)  # the call's generation_config beats the model's
    assert m.exit_settings(gc)["shallow2deep_conf_threshold"] == 0.5
    assert m.exit_settings(gc, shallow2deep_conf_threshold=0.2)["shallow2deep_conf_threshold"] == 0.2  # keywords
    # a call naming a method decodes with it: the checkpoint's FREE gives way to CALM or static
    assert m.exit_policy(m.exit_settings(**CALM, exit_conf_threshold=0.5)).method == "calm"
    assert m.exit_policy(m.exit_settings(static_exit_layer=2)).method == "static"
    assert m.exit_policy(m.exit_settings(use_shallow_deep=False)).method == "full"
    x = inputs(1, seed=3)[0]
    truncated = m.generate(input_ids=x, max_new_tokens=NEW, static_exit_layer=2)
    assert m.pop_exit_stats().summary()["avg_layers_per_token"] == 2
    assert truncated.shape[0] == 1


def test_generation_config_json_carries_the_settings(tmp_path):
    m = make_model()
    for k, v in VERIFY.items():  # GenerationConfig.update() sets only HF's own fields
        setattr(m.generation_config, k, v)
    x = inputs(1, seed=2)[0]
    before = m.generate(input_ids=x, max_new_tokens=NEW)
    assert m.pop_exit_stats().exits > 0
    m.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert {k: saved[k] for k in VERIFY} == VERIFY
    m2 = type(m).from_pretrained(tmp_path).eval()
    assert m2.exit_policy().verify and m2.exit_policy().threshold == 0.05
    assert m2.generate(input_ids=x, max_new_tokens=NEW).tolist() == before.tolist()


@pytest.mark.parametrize("kw, match", [
    (dict(FREE, shallow_exit_layer=L), f"1..{L - 1}"),
    (dict(FREE, shallow2deep_conf_threshold=1.5), r"outside \[0, 1\]"),
    (dict(FREE, shallow2deep_conf_threshold="0.3"), "must be float"),
    (dict(use_shallow_deep=True, shallow_exit_layer=2), "shallow2deep_conf_type"),
    (dict(CALM, exit_conf_type="entropy"), "not one of"),
    (dict(FREE, max_draft_tokens=0), "must be >= 1"),
])
def test_bad_settings_are_refused_by_the_one_checker_from_keywords_and_generation_config(kw, match):
    m = make_model()
    x = inputs(1)[0]
    with pytest.raises(ExitSettingsError, match=match) as e:
        m.generate(input_ids=x, max_new_tokens=2, **kw)
    assert isinstance(e.value, ValueError) and e.value.status_code == 400  # a server answers 400
    with pytest.raises(ExitSettingsError, match=match):
        m.generate(input_ids=x, generation_config=GenerationConfig(max_new_tokens=2, **kw))


def test_misspelt_settings_are_refused_not_ignored():
    m = make_model()
    x = inputs(1)[0]
    with pytest.raises(ExitSettingsError, match="shallow2deep_threshold"):
        m.generate(input_ids=x, generation_config=GenerationConfig(max_new_tokens=2, shallow2deep_threshold=0.3))
    with pytest.raises(ValueError, match="shallow2deep_threshold"):  # HF refuses an unused keyword
        m.generate(input_ids=x, max_new_tokens=2, shallow2deep_threshold=0.3)
    with pytest.raises(ExitSettingsError, match="not exit settings"):
        m.exit_settings(shallow2deep_threshold=0.3)


def test_two_threads_decoding_one_model_with_their_own_settings():
    m = make_model()
    xs = inputs(4, seed=2)
    # fast kernels patch the model's modules while a call runs: the other threads must keep HF's own
    settings = [dict(), dict(static_exit_layer=1), dict(FREE, shallow2deep_conf_threshold=0.0, fast_kernels=True),
                dict(VERIFY), dict(fast_kernels=True)]
    alone = [[m.generate(input_ids=x, max_new_tokens=NEW, **s).tolist() for x in xs] for s in settings]
    assert len({json.dumps(a) for a in alone}) >= 3  # the settings decode differently
    got = [None] * len(settings)

    def work(i):
        got[i] = [m.generate(input_ids=x, max_new_tokens=NEW, **settings[i]).tolist() for x in xs * 3]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(settings))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, s in enumerate(settings):
        assert got[i] == alone[i] * 3, s
    assert m.exit_policy().method == "full" and not any("forward" in vars(mod) for mod in m.modules())


def test_continuous_batching_is_refused_with_an_exit_method():
    m = make_model(**FREE, shallow2deep_conf_threshold=0.3)
    with pytest.raises(ExitSettingsError, match="Continuous batching"):
        m.init_continuous_batching()
    with pytest.raises(ExitSettingsError, match="Continuous batching"):
        make_model().init_continuous_batching(GenerationConfig(**VERIFY))
