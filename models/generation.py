"""`generate()` as the front door of the engine: HF prepares, the engine decodes.

Exit settings are generation settings (the keys of additional_args.DECODING_FIELDS): a call passes them as
keywords or as fields of its `generation_config=`, a checkpoint keeps its defaults in `generation_config.json`,
and one checker validates them wherever they come from. Each call resolves its own settings, lowest first:
the project defaults < the model config (checkpoints that predate generation settings keep them in config.json)
< `model.generation_config` < the call's `generation_config` < the call's keywords. A call that turns a method on
(static_exit_layer, use_early_exit or use_shallow_deep) turns off the methods it does not name, so
`generate(x, use_early_exit=True, ...)` on a FREE checkpoint decodes with CALM. Nothing per call is written on the
model.

An early-exit model's `generate()` is HF's own, with the engine as its decoding loop (`custom_generate`): HF
merges the generation config with the call's keywords, validates them, runs the encoder, sets the special
tokens and lengths, and builds the logits processors and stopping criteria; the engine applies them (see
engine.Rules). What HF prepares and the engine cannot honour is refused here, by name, before anything runs:
every field of `GenerationConfig` is in exactly one of the sets below (a test walks them all).
"""

import threading
from dataclasses import dataclass, field

import torch
from transformers import GenerationConfig
from transformers.generation.stopping_criteria import (EosTokenCriteria, MaxLengthCriteria, StoppingCriteriaList,
                                                       StopStringCriteria)
from transformers.generation.utils import GenerateDecoderOnlyOutput, GenerateEncoderDecoderOutput

from models.beam import beam_search
from models.deploying_common import fast_kernels
from models.engine import Engine
from additional_args import DECODING_FIELDS
from models.policy import Policy, ThresholdState, config_settings, policy_from_settings
from models.stats import DecodeStats, exit_tensors
from util.errors import InputError

try:  # a server built on starlette (transformers serve) answers this error as 400 instead of 500
    from starlette.exceptions import HTTPException as _HTTPError
except ImportError:
    class _HTTPError(Exception):
        def __init__(self, status_code: int, detail: str):
            super().__init__(detail)
            self.status_code, self.detail = status_code, detail


class ExitSettingsError(_HTTPError, InputError):
    """Settings a call cannot decode with: a ValueError for code, an HTTP 400 with this message for a server."""

    def __init__(self, message: str):
        _HTTPError.__init__(self, 400, message)
        self.args = (message,)

    def __str__(self):
        return self.detail


# The settings that select a method when on (one method at a time).
METHOD_KEYS = ("static_exit_layer", "use_early_exit", "use_shallow_deep")
# Records a checkpoint's generation_config.json may carry beside the settings (calibration's guarantee).
RECORD_FIELDS = ("exit_calibration",)

# Applied: by HF's processors and stopping criteria (which the engine calls), or by the engine itself.
APPLIED = {
    "max_length", "max_new_tokens", "min_length", "min_new_tokens", "max_time", "stop_strings", "eos_token_id",
    "pad_token_id", "bos_token_id", "decoder_start_token_id", "repetition_penalty", "encoder_repetition_penalty",
    "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "sequence_bias", "forced_bos_token_id",
    "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens", "renormalize_logits", "return_dict_in_generate", "output_scores", "output_logits",
    "do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "top_h",
    "num_beams", "length_penalty", "early_stopping", "num_return_sequences",
}
# Inactive without an assistant, in HF's generate() as here.
INACTIVE = {
    "num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold",
    "assistant_lookbehind", "target_lookbehind", "assistant_ensemble_weight", "is_assistant",
}
# How HF computes, not what it returns: the engine keeps its own per-row cache and does not compile.
NO_EFFECT = {
    "use_cache", "cache_implementation", "cache_config", "compile_config", "disable_compile", "low_memory",
    "max_cache_len", "prefill_chunk_size", "continuous_batching_config", "transformers_version", "_from_model_config",
}
# Refused, with the reason, whenever they differ from HF's default.
REFUSED = {
    "num_beam_groups": "group beam search is not supported with an exit method",
    "diversity_penalty": "group beam search is not supported with an exit method",
    "constraints": "constrained beam search is not supported with an exit method",
    "force_words_ids": "constrained beam search is not supported with an exit method",
    "penalty_alpha": "contrastive search is another decoding loop",
    "dola_layers": "DoLa is another decoding loop",
    "guidance_scale": "classifier-free guidance runs a second, unconditional model",
    "watermarking_config": "watermarking is not supported with an exit method",
    "token_healing": "token healing rewrites the prompt; heal it before calling generate()",
    "prompt_lookup_num_tokens": "prompt-lookup decoding is another decoding loop",
    "max_matching_ngram_size": "prompt-lookup decoding is another decoding loop",
    "assistant_early_exit": "HF's self-speculative early exit is another decoding loop; use the exit settings",
    "speculation_type": "assisted decoding is another decoding loop",
    "use_mtp": "multi-token prediction is another decoding loop",
    "output_attentions": "the engine returns no attention weights",
    "output_hidden_states": "the engine returns no hidden states (see pop_exit_stats() for exit layers)",
}
_CALL_REFUSED = ("assistant_model", "negative_prompt_ids", "negative_prompt_attention_mask", "custom_generate",
                 "synced_gpus", "assistant_tokenizer")


def _defaults() -> GenerationConfig:
    g = GenerationConfig()
    g.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
    return g


def check_generation_config(gc: GenerationConfig, method: str) -> None:
    """ValueError naming every refused field of `gc` that differs from its default."""
    ref = _defaults()
    bad = [f"{k}={getattr(gc, k)!r} ({why})" for k, why in REFUSED.items()
           if getattr(gc, k, None) not in (getattr(ref, k, None), None, False)
           and not (k == "num_beam_groups" and getattr(gc, k) == 1)]
    if bad:
        raise ExitSettingsError(f"Early-exit decoding ({method}) cannot apply: {'; '.join(bad)}. Set them to their "
                                f"defaults (in the call or in model.generation_config), or decode without an exit "
                                f"method.")


@dataclass
class EarlyExitDecoderOnlyOutput(GenerateDecoderOnlyOutput):
    """HF's output plus, per row and new token, the layer it was chosen at (-1: padding) and its exit confidence
    (NaN where none was measured)."""

    exit_layers: torch.LongTensor | None = None
    exit_confidences: torch.FloatTensor | None = None


@dataclass
class EarlyExitEncoderDecoderOutput(GenerateEncoderDecoderOutput):
    exit_layers: torch.LongTensor | None = None
    exit_confidences: torch.FloatTensor | None = None


def _fast_stops(criteria: StoppingCriteriaList):
    """(max_length, eos ids, the other criteria): length and end tokens are checked by the engine directly."""
    max_length, eos, rest = None, [], StoppingCriteriaList()
    for c in criteria:
        if isinstance(c, MaxLengthCriteria):
            max_length = c.max_length if max_length is None else min(max_length, c.max_length)
        elif isinstance(c, EosTokenCriteria):
            eos += c.eos_token_id.tolist()
        else:
            rest.append(c)
    return max_length, eos, rest


def _outputs(model, rows, head, gc, pad):
    """sequences in HF's layout (head + new tokens, padded); with return_dict_in_generate, HF's output class."""
    width = head.shape[1] + max(len(r.tokens) - r.prompt_len for r in rows)
    seq = torch.full((len(rows), width), pad, dtype=torch.long, device=head.device)
    seq[:, :head.shape[1]] = head
    for b, r in enumerate(rows):
        new = r.tokens[r.prompt_len:]
        seq[b, head.shape[1]:head.shape[1] + len(new)] = torch.tensor(new, dtype=torch.long)
    if not gc.return_dict_in_generate:
        return seq
    steps = width - head.shape[1]

    def per_step(name):  # HF: a tuple over steps of (rows, vocab); -inf where a row had already finished
        got = [getattr(r, name) for r in rows]
        ref = next(g[0] for g in got if g)
        return tuple(torch.stack([g[s] if s < len(g) else torch.full_like(ref, -float("inf")) for g in got])
                     for s in range(steps))

    layers, conf = exit_tensors([r.records for r in rows], steps)
    kw = dict(sequences=seq, scores=per_step("scores") if gc.output_scores else None,
              logits=per_step("logits") if gc.output_logits else None, exit_layers=layers, exit_confidences=conf)
    if model.config.is_encoder_decoder:
        return EarlyExitEncoderDecoderOutput(**kw)
    return EarlyExitDecoderOnlyOutput(**kw)


def exit_fields_set(gc: GenerationConfig | None) -> dict:
    """The exit settings a GenerationConfig sets (its fields that are exit settings and not None)."""
    return {k: v for k, v in vars(gc).items() if k in DECODING_FIELDS and v is not None} if gc is not None else {}


def call_over(settings: dict, call: dict) -> dict:
    """`settings` with a call's (or the command line's) exit settings on top: a call that turns a method on turns off
    the methods it does not name."""
    if any(call.get(k) not in (None, False) for k in METHOD_KEYS):
        settings = {**settings, **dict.fromkeys(METHOD_KEYS)}
    return {**settings, **call}


_HF_FIELDS = frozenset(vars(GenerationConfig()))


def _check_fields(gc: GenerationConfig | None) -> None:
    """A field of the call's generation_config that neither HF nor the exit settings know would be kept by HF and
    read by nobody: refuse it (a misspelt exit setting must not decode with the default)."""
    if gc is None:
        return
    known = _HF_FIELDS | set(DECODING_FIELDS) | set(RECORD_FIELDS)
    unknown = sorted(k for k in vars(gc) if k not in known and not k.startswith("_"))
    if unknown:
        raise ExitSettingsError(f"generation_config has unknown fields {unknown}: neither generation settings nor "
                                f"exit settings (those are {list(DECODING_FIELDS)})")


@dataclass
class ExitState:
    """What a model carries from one generate call to the next, on purpose: the counts of every engine call since
    the last `pop_exit_stats()` (Seq2SeqTrainer only sees tokens), and FREE's thresholds, whose adaptive estimates
    learn across sequences (each belongs to the settings it was made for: `for_policy`). Calls from several
    threads share it; the lock keeps the counts whole."""

    stats: DecodeStats = field(default_factory=DecodeStats)
    thresholds: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def for_policy(self, policy: Policy) -> ThresholdState:
        key = (policy.threshold, policy.adapt, policy.shallow_layer, policy.conf_type, policy.adapt_params)
        with self.lock:
            if key not in self.thresholds:
                self.thresholds[key] = ThresholdState(policy)
            return self.thresholds[key]

    def add(self, st: DecodeStats) -> None:
        with self.lock:
            self.stats.add(st)


class EarlyExitGenerationMixin:
    """Routes `generate()` into the engine when the call's exit settings select an exit method (or
    `use_engine=True`).

    What the model keeps between calls is its public `exit_state` (an ExitState): `reset_exit_state()` starts a
    fresh one, and a caller comparing methods on one model may keep each method's state and put it back.
    """

    adapter_cls = None

    def exit_settings(self, generation_config: GenerationConfig | None = None, **overrides) -> dict:
        """The exit settings a call decodes with (see the module docstring for the order), unchecked."""
        unknown = sorted(set(overrides) - set(DECODING_FIELDS))
        if unknown:
            raise ExitSettingsError(f"{unknown} are not exit settings (those are {list(DECODING_FIELDS)})")
        s = config_settings(self.config)
        s.update(exit_fields_set(getattr(self, "generation_config", None)))
        return call_over(s, {**exit_fields_set(generation_config), **overrides})

    def exit_policy(self, settings: dict | None = None) -> Policy:
        """The decoding policy of `settings` (default: the model's own); ExitSettingsError if they cannot decode."""
        adapter = self.adapter_cls(self)
        try:
            return policy_from_settings(self.exit_settings() if settings is None else settings, self.config,
                                        adapter.num_layers, self._has_trained_meta_head())
        except ValueError as e:
            raise ExitSettingsError(f"Exit settings: {e}") from None

    def exit_adapter_map(self) -> dict:
        """{layer: trained exit adapter} (see modeling_common.ExitAdapter); empty without any."""
        mods = getattr(self, "exit_adapters", None) or {}
        return {int(k): m for k, m in mods.items()}

    def _has_trained_meta_head(self) -> bool:
        return hasattr(self, "cm_head") and bool(getattr(self.config, "meta_head_trained", False))

    @property
    def exit_state(self) -> ExitState:
        if "_exit_state" not in self.__dict__:
            self.__dict__["_exit_state"] = ExitState()
        return self.__dict__["_exit_state"]

    @exit_state.setter
    def exit_state(self, state: ExitState) -> None:
        self.__dict__["_exit_state"] = state

    def pop_exit_stats(self) -> DecodeStats:
        st, self.exit_state.stats = self.exit_state.stats, DecodeStats()
        return st

    def reset_exit_state(self) -> None:
        self.exit_state = ExitState()

    def init_continuous_batching(self, generation_config=None, *args, **kwargs):
        """HF's continuous batching (`transformers serve --continuous-batching`, `generate_batch`) runs its own paged
        decoding loop, which cannot apply an exit method: refused by name rather than decoding the full model."""
        policy = self.exit_policy(self.exit_settings(generation_config))
        if policy.method != "full" or policy.fast_kernels:
            raise ExitSettingsError(f"Continuous batching runs HF's own decoding loop and cannot apply the exit "
                                    f"settings ({policy.method}); decode with generate() (transformers serve without "
                                    f"--continuous-batching)")
        return super().init_continuous_batching(generation_config, *args, **kwargs)

    def generate(self, inputs=None, generation_config=None, use_engine: bool | None = None, **kwargs):
        _check_fields(generation_config)
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in DECODING_FIELDS}
        policy = self.exit_policy(self.exit_settings(generation_config, **overrides))
        if policy.method == "full" and not use_engine and not policy.fast_kernels:
            return super().generate(inputs, generation_config=generation_config, **kwargs)
        given = [k for k in _CALL_REFUSED if kwargs.get(k) not in (None, False)]
        if kwargs.get("cache_implementation") == "paged":
            given.append("cache_implementation='paged' (continuous batching)")
        if given:
            raise ExitSettingsError(f"Early-exit decoding ({policy.method}) does not support {given}")
        gc, _ = self._prepare_generation_config(generation_config, **kwargs)
        check_generation_config(gc, policy.method)
        if gc.num_beams > 1 and (policy.verify or policy.rollback is not None):
            raise ExitSettingsError(
                "Beam search (num_beams > 1) cannot be combined with exact_verification or rollback_conf_threshold: "
                "beams are ranked on the scores of the tokens they took, so a deep check that later changes an exited "
                "token would rewrite scores that already decided which beams survive; the only exact beam result is "
                "the full model's beam search. Use FREE without them, or the full model.")
        streamer = kwargs.pop("streamer", None)
        tokenizer = kwargs.pop("tokenizer", None)
        if gc.stop_strings is not None:  # HF keeps no tokenizer for a custom decoding loop: build the criterion here
            if tokenizer is None:
                raise ValueError("stop_strings need the model's tokenizer: pass tokenizer= to generate()")
            kwargs["stopping_criteria"] = StoppingCriteriaList(
                [*(kwargs.get("stopping_criteria") or []), StopStringCriteria(tokenizer, gc.stop_strings)])
            kwargs["stop_strings"] = None
        threshold = self.exit_state.for_policy(policy)
        engine = Engine(self.adapter_cls(self), policy, threshold, getattr(self, "cm_head", None),
                        self.exit_adapter_map())

        def decode(model, input_ids, logits_processor, stopping_criteria, generation_config, **model_kwargs):
            # HF hands over the decoder input ([start] per row) or the (padded) prompt, and its prepared lists.
            gc = generation_config
            if model.config.is_encoder_decoder and input_ids.shape[1] > 1:
                raise ValueError("Early-exit decoding starts every row from the decoder start token: "
                                 "decoder_input_ids (a forced decoder prefix) are not supported")
            if model_kwargs.get("inputs_embeds") is not None:
                raise ValueError("Early-exit decoding needs input_ids: inputs_embeds are not supported")
            if streamer is not None:
                if input_ids.shape[0] > 1:
                    raise ValueError("Streaming with an exit method needs batch size 1 (as HF's streamers do)")
                streamer.put(input_ids.cpu())
            enc = model_kwargs.get("encoder_outputs")
            enc = enc.last_hidden_state if enc is not None else None
            st = DecodeStats(num_layers=engine.num_layers)
            if gc.num_beams > 1:
                with fast_kernels(model, policy.fast_kernels):
                    out = beam_search(model, engine, input_ids, model_kwargs.get("attention_mask"), logits_processor,
                                      stopping_criteria, gc, st, encoder_out=enc)
                model.exit_state.add(st)
                return out
            max_length, eos, rest = _fast_stops(stopping_criteria)
            max_length = max_length if max_length is not None else gc.max_length
            start = int(input_ids[0, 0]) if model.config.is_encoder_decoder else None
            # an encoder-decoder's input_ids are its decoder inputs; the engine takes the encoder output HF computed
            with fast_kernels(model, policy.fast_kernels):
                rows, _ = engine.run(input_ids, model_kwargs.get("attention_mask"), start,
                                     max_length - input_ids.shape[1], eos, st, processors=logits_processor,
                                     criteria=rest or None, streamer=streamer, sample=bool(gc.do_sample),
                                     encoder_out=enc)
            model.exit_state.add(st)
            pad = int(gc._pad_token_tensor) if gc._pad_token_tensor is not None else 0
            return _outputs(model, rows, input_ids, gc, pad)

        return super().generate(inputs, generation_config=generation_config, custom_generate=decode, **kwargs)
