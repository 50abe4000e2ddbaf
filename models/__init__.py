"""Model classes and loading: local folders, hub ids, published-code checkpoints and LoRA adapters."""

import json
import logging
import os

from transformers import AutoConfig, AutoTokenizer

from additional_args import DECODING_FIELDS, update_config
from util.checks import InputError, looks_local, require_model_path
from models.modeling_bart import (EffBartForConditionalGeneration, EffMarianMTModel, EffMBartForConditionalGeneration,
                                  EffPegasusForConditionalGeneration)
from models.generation import call_over, exit_fields_set
from models.modeling_common import EXIT_MODULES, EarlyExitModelMixin, MetaHead, freeze_all_but_meta_head
from models.modeling_llama import (EffGemma2ForCausalLM, EffGemma3ForCausalLM, EffLlamaForCausalLM,
                                   EffMistralForCausalLM, EffPhi3ForCausalLM, EffQwen2ForCausalLM, EffQwen3ForCausalLM)
from models.modeling_t5 import (EffLongT5ForConditionalGeneration, EffMT5ForConditionalGeneration,
                                EffT5ForConditionalGeneration, EffUMT5ForConditionalGeneration)

logger = logging.getLogger(__name__)

MODEL_CLASSES = {
    "t5": EffT5ForConditionalGeneration,
    "longt5": EffLongT5ForConditionalGeneration,
    "mt5": EffMT5ForConditionalGeneration,
    "umt5": EffUMT5ForConditionalGeneration,
    "bart": EffBartForConditionalGeneration,
    "mbart": EffMBartForConditionalGeneration,
    "marian": EffMarianMTModel,
    "pegasus": EffPegasusForConditionalGeneration,
    "llama": EffLlamaForCausalLM,
    "qwen2": EffQwen2ForCausalLM,
    "mistral": EffMistralForCausalLM,
    "qwen3": EffQwen3ForCausalLM,
    "phi3": EffPhi3ForCausalLM,
    "gemma2": EffGemma2ForCausalLM,
    "gemma3_text": EffGemma3ForCausalLM,  # Gemma 3 1B; the larger, multimodal "gemma3" checkpoints are not supported
}
# peft has no default LoRA targets for these model types
DEFAULT_LORA_TARGETS = {"longt5": ["q", "v"], "umt5": ["q", "v"], "phi3": ["qkv_proj"],
                        **dict.fromkeys(("mbart", "marian", "pegasus"), ["q_proj", "v_proj"])}


def lora_base(path: str) -> str | None:
    """Base model of a LoRA checkpoint folder (adapter_config.json), else None."""
    f = os.path.join(path, "adapter_config.json")
    if not os.path.isfile(f):
        return None
    with open(f) as fh:
        base = json.load(fh).get("base_model_name_or_path")
    if not base:
        raise InputError(f"{f} names no base_model_name_or_path; cannot rebuild the model under the adapter")
    if looks_local(base) and not os.path.exists(os.path.expanduser(base)):
        raise InputError(f"{path} is a LoRA adapter on {base} (base_model_name_or_path in adapter_config.json), "
                         "which does not exist: restore that folder or edit the path")
    return base


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model", "tokenizer.model", "vocab.json")


def load_tokenizer(model_args, *fallbacks):
    kw = dict(cache_dir=model_args.cache_dir, use_fast=model_args.use_fast_tokenizer,
              revision=model_args.model_revision, token=model_args.token)
    names = [model_args.tokenizer_name] if model_args.tokenizer_name else [model_args.model_name_or_path, *fallbacks]
    errors = []
    for name in names:
        # the GGUF file carries the tokenizer of --model_name_or_path (not of --tokenizer_name or a LoRA base)
        gguf = _gguf(model_args) if name == model_args.model_name_or_path else {}
        # transformers 5 silently builds an empty, untrained tokenizer for a folder without tokenizer files.
        if not gguf and os.path.isdir(name) and not any(os.path.isfile(os.path.join(name, f)) for f in TOKENIZER_FILES):
            errors.append(f"{name}: no tokenizer files")
            continue
        try:
            return AutoTokenizer.from_pretrained(name, **kw, **gguf)
        except (OSError, ValueError, TypeError) as e:
            errors.append(f"{name}: {e}")
    raise InputError(
        f"No tokenizer could be loaded from {names} ({'; '.join(e.replace(chr(10), ' ') for e in errors)}). "
        f"Checkpoints saved by the published code carry no tokenizer: pass --tokenizer_name (e.g. t5-large, or a "
        f"local tokenizer folder)."
    )


def _gguf(model_args, model=False) -> dict:
    """from_pretrained's gguf_file argument when --gguf_file is given (it names a file of --model_name_or_path);
    a model's weights are unpacked to dense tensors (the exit modules and training need plain nn.Linear)."""
    f = getattr(model_args, "gguf_file", None)
    if not f:
        return {}
    if not model:
        return {"gguf_file": f}
    from transformers import GgufConfig

    return {"gguf_file": f, "quantization_config": GgufConfig(dequantize=True)}


def drop_dequantized_gguf(model) -> None:
    """A model loaded from GGUF with every weight unpacked (GgufConfig(dequantize=True)) is a plain dense model,
    but transformers keeps its GGUF quantizer, which refuses training and save_pretrained; drop it."""
    q = getattr(model, "hf_quantizer", None)
    if q is None or getattr(q.quantization_config, "quant_method", None) != "gguf":
        return
    if not q.quantization_config.dequantize or getattr(q, "packed_modules", None):
        raise ValueError("The GGUF weights were left packed; load with GgufConfig(dequantize=True)")
    q.remove_quantization_config(model)


def load_config(model_args, path):
    name = model_args.config_name or path
    gguf = _gguf(model_args) if name == model_args.model_name_or_path else {}
    try:
        return AutoConfig.from_pretrained(name, cache_dir=model_args.cache_dir,
                                          revision=model_args.model_revision, token=model_args.token, **gguf)
    except OSError as e:
        raise InputError(f"Cannot load a model config from {name!r}: {str(e).splitlines()[0] if str(e) else e}") from e


def load_model_and_tokenizer(model_args, add_args, max_answer_length=None, training=False):
    """Config (exit settings resolved and validated), model and tokenizer; returns (model, tokenizer, settings)."""
    path = require_model_path(model_args.model_name_or_path)
    base = lora_base(path) if os.path.isdir(path) else None
    # A LoRA folder keeps its exit settings in its own config.json when it has one.
    has_own_config = os.path.isfile(os.path.join(path, "config.json"))
    config = load_config(model_args, path if (base is None or has_own_config) else base)
    if config.model_type not in MODEL_CLASSES:
        raise InputError(f"model_type {config.model_type!r} is not supported yet; supported: {sorted(MODEL_CLASSES)}")
    if config.model_type in ("t5", "mt5", "umt5", "longt5") and getattr(config, "decoder_start_token_id", None) is None:
        config.decoder_start_token_id = config.pad_token_id
    settings = update_config(config, add_args, max_answer_length=max_answer_length, training=training)
    model = MODEL_CLASSES[config.model_type].from_pretrained(
        base or path, config=config, cache_dir=model_args.cache_dir, revision=model_args.model_revision,
        token=model_args.token, **({} if base else _gguf(model_args, model=True)))
    drop_dequantized_gguf(model)
    if base is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    tokenizer = load_tokenizer(model_args, *([base] if base else []))
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    if not config.is_encoder_decoder:
        # decoder-only: prompts are left-padded (new tokens follow the last prompt token); LLaMA ships no pad
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    # Decoding flags given on the command line beat the checkpoint's generation_config.json too (a calibrated
    # threshold, say); what decodes is reported back in `settings` and checked here, before any data is read.
    flags = {k: v for k, v in add_args.given().items() if k in DECODING_FIELDS}
    for k, v in call_over(exit_fields_set(model.generation_config), flags).items():
        setattr(model.generation_config, k, v)
    settings.update(model.exit_settings())
    if not training:
        try:
            model.exit_policy()
        except ValueError as e:
            raise InputError(str(e)) from None
    if training and settings["use_lora"]:
        model = add_lora(model, settings)
    if settings["train_meta_cm_head"]:
        freeze_all_but_meta_head(model)  # after any LoRA wrap, which would make its own modules trainable
        model.config.meta_head_trained = True  # lets decoding use the 'meta' confidence
    return model, tokenizer, settings


def add_lora(model, s):
    from peft import LoraConfig, TaskType, get_peft_model

    extra = [m for m in EXIT_MODULES if hasattr(model, m)]
    task = TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM
    targets = s["lora_target_modules"] or DEFAULT_LORA_TARGETS.get(model.config.model_type)
    cfg = LoraConfig(task_type=task, r=s["lora_rank"], lora_alpha=s["lora_alpha"], lora_dropout=s["lora_dropout"],
                     target_modules=targets, modules_to_save=extra or None)
    return get_peft_model(model, cfg)


__all__ = ["EffT5ForConditionalGeneration", "EffLongT5ForConditionalGeneration", "EffMT5ForConditionalGeneration",
           "EffUMT5ForConditionalGeneration",
           "EffBartForConditionalGeneration", "EffMBartForConditionalGeneration", "EffMarianMTModel",
           "EffPegasusForConditionalGeneration",
           "EffLlamaForCausalLM", "EffQwen2ForCausalLM", "EffQwen3ForCausalLM", "EffMistralForCausalLM",
           "EffPhi3ForCausalLM", "EffGemma2ForCausalLM", "EffGemma3ForCausalLM", "EarlyExitModelMixin", "MetaHead",
           "MODEL_CLASSES", "add_lora",
           "freeze_all_but_meta_head", "load_model_and_tokenizer"]
