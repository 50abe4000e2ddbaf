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

from additional_args import TranslationDataArguments
from util import metrics as M
from util import runner


def make_task() -> runner.TextTask:
    state = {}

    def columns(data_args, names):
        state["d"] = data_args
        return ["translation"]

    def pairs(examples):
        d = state["d"]
        prefix = d.source_prefix or ""
        missing = [lang for lang in (d.source_lang, d.target_lang) if examples["translation"] and
                   lang not in examples["translation"][0]]
        if missing:
            have = sorted(examples["translation"][0])
            raise ValueError(f"Language(s) {missing} not in the data's translation pairs, which have {have}")
        return ([prefix + (ex[d.source_lang] or "") for ex in examples["translation"]],
                [ex[d.target_lang] or "" for ex in examples["translation"]])

    return runner.TextTask(TranslationDataArguments, columns, pairs, M.bleu)


def main(argv=None):
    return runner.run_text_task(make_task(), argv)


if __name__ == "__main__":
    main()
