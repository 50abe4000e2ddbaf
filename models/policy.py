"""What a checkpoint's exit settings ask the decoder to do: the Policy (resolved once from the config, with the same
checker as the command line) and FREE's threshold across calls (fixed, or the adaptive Beta-mixture estimate of
Bae et al. 2023, Sec. 3.3)."""

from dataclasses import dataclass

from additional_args import DECODING_FIELDS, EXIT_DEFAULTS, validate_exit_settings
from util.bmm import BetaMixtureThreshold

@dataclass
class Policy:
    method: str = "full"
    static_layer: int | None = None
    conf_type: str | None = None
    threshold: float = 1.0
    min_layer: int = 1
    position_temp: float | None = None
    decay_variant: str = "calm"
    max_answer_length: int | None = None
    shallow_layer: int | None = None
    copy_skipped: bool = False
    causal: bool = True
    rollback: float | None = None
    verify: bool = False
    adapt: bool = False
    wait: float = 0.0  # FREE in a batch: share of unfinished rows with trial tokens that triggers a deep pass
    max_draft: int | None = None  # FREE: at most this many exits in a row; the next token goes deep
    shortlist: tuple | None = None  # token ids a confidence-gated exit scores (None: the whole vocabulary)
    fast_kernels: bool = False  # CPU: product layouts by shape (deploying_common.fast_product)
    adapt_params: tuple = ()  # the adaptive estimator's settings, as (name, value) pairs


def config_settings(cfg) -> dict:
    """The exit decoding settings a model config carries (checkpoints that predate generation settings keep them
    in config.json), over the project defaults."""
    return {k: EXIT_DEFAULTS[k] if getattr(cfg, k, None) is None else getattr(cfg, k) for k in DECODING_FIELDS}


def policy_from_settings(s: dict, cfg, num_layers: int, has_meta_head: bool) -> Policy:
    """The decoding policy of the exit settings `s` (every key of DECODING_FIELDS); ValueError for settings that
    cannot decode (the command line's checker, so a value is accepted or refused alike from flags, generate()
    keywords, generation_config.json or config.json). `cfg` gives what the structure owns: the token ranking and
    the CALM answer length."""
    # Decoding reads no training settings: a checkpoint trained with FREE's losses decodes with any method, or none.
    validate_exit_settings({**EXIT_DEFAULTS, **s, "intermediate_loss_fn": None, "train_meta_cm_head": False},
                           num_layers)
    static, calm, free = s["static_exit_layer"], s["use_early_exit"], s["use_shallow_deep"]
    method = "static" if static is not None else "calm" if calm else "free" if free else "full"
    if method == "static" and static == num_layers:
        method, static = "full", None  # every layer: the full model
    p = Policy(method=method, static_layer=static, fast_kernels=bool(s["fast_kernels"]),
               adapt_params=tuple((k, s[k]) for k in DECODING_FIELDS if k.startswith("adapt_")))
    K = s["exit_shortlist_size"]
    if K is not None and method in ("calm", "free"):
        ranking = getattr(cfg, "exit_token_ranking", None)
        if not ranking:
            raise ValueError("--exit_shortlist_size needs the checkpoint's exit_token_ranking (the tokens the model "
                             "emits, most frequent first; scripts/train_exit_adapter.py writes it)")
        if K > len(ranking):
            raise ValueError(f"--exit_shortlist_size {K} is larger than the checkpoint's exit_token_ranking "
                             f"({len(ranking)} tokens)")
        p.shortlist = tuple(ranking[:K])
    if method == "calm":
        p.conf_type, p.threshold = s["exit_conf_type"], s["exit_conf_threshold"]
        p.min_layer = max(1, s["exit_min_layer"] or 1)
        p.position_temp, p.decay_variant = s["exit_position_temp"], s["exit_decay_variant"]
        p.max_answer_length = getattr(cfg, "max_answer_length", None)
    elif method == "free":
        p.shallow_layer, p.conf_type = s["shallow_exit_layer"], s["shallow2deep_conf_type"]
        p.threshold = s["shallow2deep_conf_threshold"]
        p.copy_skipped, p.causal = s["copy_skipped_hidden_states"], s["parallel_causal_mask"]
        p.rollback, p.verify = s["rollback_conf_threshold"], s["exact_verification"]
        p.adapt, p.wait = s["use_adapt_threshold"], s["deep_pass_wait"]
        p.max_draft = s["max_draft_tokens"]
    if p.conf_type == "meta" and not has_meta_head:
        raise ValueError("confidence 'meta' needs a trained meta head: this checkpoint has none; train it with "
                         "--train_meta_cm_head True")
    return p


class ThresholdState:
    """FREE's threshold across calls: fixed, or the adaptive Beta-mixture estimate (refit before each sequence)."""

    def __init__(self, policy: Policy):
        self.fixed = policy.threshold
        self.bmm = None
        if policy.adapt:
            self.bmm = BetaMixtureThreshold(init_threshold=policy.threshold,
                                            **{k.removeprefix("adapt_"): v for k, v in policy.adapt_params})

    @property
    def value(self) -> float:
        return self.bmm.threshold if self.bmm is not None else self.fixed

    def new_sequence(self) -> float:
        if self.bmm is not None and len(self.bmm) > 0:
            self.bmm.update()
        return self.value

    def explore(self, step: int) -> bool:
        """Whether a sequence's `step`-th confident step takes the deep pass anyway (per sequence, so a row's
        decisions do not depend on the other rows of its batch)."""
        return self.bmm is not None and self.bmm.should_explore(step)

