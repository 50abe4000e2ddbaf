"""Chat-template prompts for decoder-only models: the features a task trains and evaluates on, the prompt a script
builds for one source, and the token an assistant turn ends with."""

import logging

from util import checks

logger = logging.getLogger(__name__)


def causal_lm_features(tokenizer, sources, targets, data_args, max_target, with_target):
    """Decoder-only features: prompt = prefix + source + separator (source cut to max_source_length tokens).

    With `use_chat_template` the prompt is instead the tokenizer's chat template around one user turn,
    instruction + blank line + source, with the assistant header after it (add_generation_prompt), and the
    target ends with the template's end-of-turn token instead of EOS.
    Training rows are prompt + target + end token (EOS, or the end-of-turn token) with labels on the target
    only; evaluation rows are the prompt alone, with the target as labels for scoring.
    """
    chat = getattr(data_args, "use_chat_template", False)
    src = tokenizer(sources, max_length=data_args.max_source_length, truncation=True, add_special_tokens=False)
    tgt = tokenizer(targets, max_length=max_target - 1, truncation=True, add_special_tokens=False)["input_ids"]
    if chat:
        instruction = getattr(data_args, "instruction", None)
        full = tokenizer(sources, add_special_tokens=False)["input_ids"]
        # a source that had to be cut goes into the template as the text of its first max_source_length tokens
        prompts = [chat_prompt_ids(tokenizer, instruction, x if len(f) == len(s) else tokenizer.decode(s))
                   for x, s, f in zip(sources, src["input_ids"], full)]
        end = chat_end_token_id(tokenizer)
    else:
        sep = getattr(data_args, "decoder_only_separator", "\nSummary: ")
        sep_ids = tokenizer(sep, add_special_tokens=False)["input_ids"]
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        prompts = [bos + s + sep_ids for s in src["input_ids"]]
        end = tokenizer.eos_token_id
    out = {"input_ids": [], "attention_mask": [], "labels": []}
    for prompt, t in zip(prompts, tgt):
        t = t + [end]
        ids = prompt + t if with_target else prompt
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append([-100] * len(prompt) + t if with_target else t)
    return out


def require_chat_template(tokenizer, decoder_only: bool) -> None:
    """--use_chat_template needs a decoder-only model whose tokenizer has a chat template."""
    if not decoder_only:
        raise checks.InputError("--use_chat_template applies to decoder-only (causal LM) models; this model is "
                                "encoder-decoder: drop the flag (use --source_prefix for a task prefix)")
    if not getattr(tokenizer, "chat_template", None):
        raise checks.InputError("--use_chat_template: the tokenizer has no chat template (not an instruct/chat "
                                "checkpoint); drop the flag to use --source_prefix + source + --decoder_only_separator")


def stop_at_end_of_turn(model, tokenizer) -> None:
    """Generation stops at the chat template's end-of-turn token: add it to the generation config's EOS list when
    it is missing (HF generate() and the engine stop at any id of the list)."""
    end = chat_end_token_id(tokenizer)
    gc = model.generation_config
    eos = gc.eos_token_id if isinstance(gc.eos_token_id, (list, tuple)) else \
        ([] if gc.eos_token_id is None else [gc.eos_token_id])
    if end is not None and end not in eos:
        logger.info(f"--use_chat_template: generation also stops at {tokenizer.convert_ids_to_tokens(end)!r} ({end})")
        gc.eos_token_id = [end, *eos]


def chat_prompt_ids(tokenizer, instruction: str | None, source: str) -> list[int]:
    """One user turn (instruction, blank line, source) and the assistant header, as token ids."""
    content = f"{instruction}\n\n{source}" if instruction else source
    text = tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]  # the template writes any BOS itself


def chat_end_token_id(tokenizer) -> int | None:
    """The special token the chat template closes an assistant turn with (<|im_end|>, <|eot_id|>, ...);
    the tokenizer's EOS when the template closes it with plain text or nothing."""
    mark = "ANSWER_MARK_7f3a"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": mark}],
                                         tokenize=False)
    after = text.split(mark, 1)[1] if mark in text else ""
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    return ids[0] if ids and ids[0] in tokenizer.all_special_ids else tokenizer.eos_token_id
