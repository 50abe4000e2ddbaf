#!/usr/bin/env python
"""Fine-tune and evaluate early-exit seq2seq models for translation (HF example conventions).

    python run_translation.py --model_name_or_path t5-large --dataset_name iwslt2017 \
        --dataset_config_name iwslt2017-de-en --source_lang de --target_lang en \
        --source_prefix "translate German to English: " --do_train --do_eval --predict_with_generate \
        --output_dir out --output_hidden_states_decoder True --intermediate_loss_fn shallowdeep_kd_dyna \
        --shallow_exit_layer 6 --distill_layer_alpha 0.5

Data files hold {"translation": {"de": ..., "en": ...}} per line (json/jsonl). Scored with sacreBLEU
and chrF, offline.
"""

import task_flow
from additional_args import TranslationDataArguments
from util import checks
from util import metrics as M


def fields(d, ds):
    """Source and target of one example; a language that no example has is refused here, by name."""
    feature = ds.features["translation"]
    langs = sorted(feature) if isinstance(feature, dict) else sorted(getattr(feature, "languages", []) or [])
    missing = [lang for lang in (d.source_lang, d.target_lang) if langs and lang not in langs]
    if missing:
        raise checks.InputError(f"Language(s) {missing} not in the data's translation pairs, which have {langs}")
    def text(ex, lang):
        pair = ex["translation"]
        if pair is not None and not isinstance(pair, dict):
            raise checks.InputError(f"'translation' is {type(pair).__name__}, not an object {{language: text}}")
        return (pair or {}).get(lang)

    return lambda ex: {f"{role} language {lang!r} of 'translation'": text(ex, lang)
                       for role, lang in (("source", d.source_lang), ("target", d.target_lang))}


def pairs(examples, d):
    pairs_ = examples["translation"]
    missing = [lang for lang in (d.source_lang, d.target_lang) if pairs_ and lang not in pairs_[0]]
    if missing:
        raise checks.InputError(f"Language(s) {missing} not in the data's translation pairs, which have "
                                f"{sorted(pairs_[0])}")
    return [ex[d.source_lang] or "" for ex in pairs_], [ex[d.target_lang] or "" for ex in pairs_]


TASK = task_flow.TextTask(TranslationDataArguments, lambda data_args, names: ["translation"], fields, pairs, M.bleu)


def main(argv=None):
    return task_flow.run_text_task(TASK, argv)


if __name__ == "__main__":
    checks.run_cli(main, "run_translation.py")
