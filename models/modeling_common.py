"""What every early-exit training model shares, whatever the architecture.

An `Eff*` model is the HF model class with `EarlyExitModelMixin` in front of it. The mixin adds the exit
modules (layer transformation for KD, meta confidence head), turns the decoder's hidden-state tuple into
the per-exit list H[1..L] that util/losses.py expects, and dispatches the training loss. An architecture
supplies only what it really changes:

- `exit_norm(h)`: the shared final norm every exit goes through (T5: final_layer_norm + dropout,
  LLaMA: RMSNorm, BART: none, its layers end in their own LayerNorm);
- `exit_logits(h)`: the shared LM head on a normalised state (T5: d_model**-0.5 scale when
  config.scale_decoder_outputs, BART: + final_logits_bias, LLaMA: plain untied lm_head);
- a `forward` with the HF class's argument names spelled out (HF Trainer drops dataset columns the
  signature does not name) that calls `self.exit_forward(labels, **kwargs)`; T5 and BART share the one
  in `EncoderDecoderExitMixin`.

The decoder hidden-state tuple has the same layout for T5, LongT5, BART and LLaMA in transformers 5
(checked by experiment, see tests/test_architectures.py): entry 0 is the embedding output, entry j
(1 <= j < L) is layer j's raw output, and entry L is layer L's output already through the model's own
final norm. Decoder-only models predict token t+1 at position t, so their labels are shifted here.
"""

import contextlib

import torch
from torch import nn
from transformers import initialization as init

from models.export import auto_map, save_code
from models.generation import EarlyExitGenerationMixin, exit_fields_set
from util.losses import IGNORE, intermediate_loss, layerskip_loss, meta_head_loss

EXIT_MODULES = ("cm_head", "layer_transformation", "exit_adapters", "exit_block")


class MetaHead(nn.Sequential):
    """Meta confidence head: P(this exit's argmax equals the final layer's). One class for training and decoding."""

    def __init__(self, d_model: int):
        super().__init__(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, 2))


class ExitAdapter(nn.Module):
    """A trained exit for someone else's checkpoint: h + r up(silu(down(h / r))), r = RMS(h), in front of the
    shared final norm and LM head (rank None: a full linear map instead of the bottleneck). The residual branch
    starts at zero, so an untrained adapter is the shared exit itself; the backbone is never changed, so every
    lossless mode stays identical to it."""

    def __init__(self, d_model: int, rank: int | None = None):
        super().__init__()
        if rank is None:
            self.down, self.up = None, nn.Linear(d_model, d_model)
        else:
            self.down, self.up = nn.Linear(d_model, rank), nn.Linear(rank, d_model)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # Scale-equivariant: the branch reads the state at unit RMS and writes at the state's RMS, so it sees
        # intermediate residual streams (whose norms grow with depth) on the scale the final norm gives them.
        rms = h.float().pow(2).mean(-1, keepdim=True).add(1e-6).sqrt().to(h.dtype)
        x = h / rms
        return h + rms * self.up(x if self.down is None else nn.functional.silu(self.down(x)))


def exit_adapter_layers(config) -> list[int]:
    return [int(x) for x in (getattr(config, "exit_adapter_layers", None) or [])]


def wants_meta_head(config) -> bool:
    return bool(getattr(config, "train_meta_cm_head", False)) or "meta" in (
        getattr(config, "exit_conf_type", None),
        getattr(config, "shallow2deep_conf_type", None),
    )


def freeze_all_but_meta_head(model) -> None:
    """Meta-head training: only cm_head learns (works on a plain or a peft-wrapped model)."""
    for name, p in model.named_parameters():
        p.requires_grad = "cm_head" in name


class EarlyExitModelMixin(EarlyExitGenerationMixin):
    """Exit modules, per-exit hidden states and the exit losses; put it before the HF model class."""

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        d = self.exit_hidden_size
        if getattr(config, "do_layer_transformation", False):
            self.layer_transformation = nn.Linear(d, d)
        if wants_meta_head(config):
            self.cm_head = MetaHead(d)
        if exit_adapter_layers(config):
            rank = getattr(config, "exit_adapter_rank", None)
            self.exit_adapters = nn.ModuleDict({str(i): ExitAdapter(d, rank) for i in exit_adapter_layers(config)})
        if getattr(config, "exit_block_layer", None) is not None:
            self.exit_block = self.make_exit_block()
        self._init_exit_modules()

    def make_exit_block(self) -> nn.Module:
        """An exit that attends (Kangaroo, Liu et al. 2024, section 3.1: a shallow sub-network plus one attention
        block as the draft model): a decoder layer of the model's own last layer's kind, run on layer S's state
        with a KV cache of its own (the slot after the last layer), then the shared final norm and head."""
        if self.config.is_encoder_decoder:
            raise ValueError("exit_block_layer (an exit that attends) is implemented for decoder-only models")
        layers = self.model.layers
        block = type(layers[-1])(self.config, layer_idx=len(layers) - 1)  # the last layer's attention type
        block.self_attn.layer_idx = len(layers)  # its own cache slot
        return block

    def save_pretrained(self, save_directory, *args, **kwargs):
        """HF's save, plus what makes the folder load anywhere: `auto_map` in config.json and the runtime's code
        beside the weights (models/export.py), so `AutoModelFor*.from_pretrained(dir, trust_remote_code=True)` gives
        this model, its exits and its generate() without this repository. Exit settings set on the generation config
        go to generation_config.json (HF drops the extra fields of a config it marked as derived from the model's)."""
        self.config.auto_map = auto_map(type(self), self.config.is_encoder_decoder)
        if exit_fields_set(self.generation_config):
            self.generation_config._from_model_config = False
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            save_code(type(self), str(save_directory))

    @property
    def exit_hidden_size(self) -> int:
        cfg = self.config
        return cfg.d_model if getattr(cfg, "d_model", None) is not None else cfg.hidden_size

    def _init_exit_modules(self):
        # Identity start: the KD term begins as plain hidden-state matching.
        if hasattr(self, "layer_transformation"):
            with torch.no_grad():
                self.layer_transformation.weight.copy_(torch.eye(self.exit_hidden_size))
                self.layer_transformation.bias.zero_()

    def _init_weights(self, module):
        # from_pretrained initialises weights a checkpoint lacks through here, after __init__: without this
        # a plain checkpoint loaded with do_layer_transformation would get a random transformation.
        super()._init_weights(module)
        if module is getattr(self, "layer_transformation", None):
            init.eye_(module.weight)
            init.zeros_(module.bias)
        for a in (getattr(self, "exit_adapters", None) or {}).values():
            if module is a.up:  # the residual branch starts at zero: an untrained adapter is the shared exit
                init.zeros_(module.weight)
                init.zeros_(module.bias)

    @property
    def num_decoder_layers(self) -> int:
        return self.adapter_cls(self).num_layers

    # ---- per architecture --------------------------------------------------------------------------
    def exit_norm(self, h: torch.Tensor) -> torch.Tensor:
        """The shared final norm applied to an intermediate layer's output (as the last layer gets it)."""
        raise NotImplementedError

    def exit_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of a normalised decoder hidden state through the shared LM head."""
        raise NotImplementedError

    # ---- shared ------------------------------------------------------------------------------------
    def exit_hidden_states(self, decoder_hidden_states) -> list[torch.Tensor]:
        """H[1..L]: every layer's output through its exit adapter, if it has one (the engine's exit: adapter, then
        the shared norm and head), and the shared final norm; the last entry is already normed."""
        adapters = getattr(self, "exit_adapters", None) or {}
        raw = decoder_hidden_states[1:-1]
        return [self.exit_norm(adapters[str(j)](h) if str(j) in adapters else h)
                for j, h in enumerate(raw, start=1)] + [decoder_hidden_states[-1]]

    def exit_targets(self, hidden: list[torch.Tensor], labels: torch.Tensor):
        """(hidden, labels) aligned position by position; a causal LM's state at t predicts label t+1."""
        if self.config.is_encoder_decoder:
            return hidden, labels
        return [h[:, :-1] for h in hidden], labels[:, 1:]

    def exit_forward(self, labels=None, **kwargs):
        """The HF forward, with the configured exit loss replacing the final-layer loss in training."""
        cfg = self.config
        loss_fn = getattr(cfg, "intermediate_loss_fn", None)
        meta = getattr(cfg, "train_meta_cm_head", False)
        if not self.training or labels is None or not (loss_fn or meta):
            return super().forward(labels=labels, **kwargs)
        if getattr(self, "exit_block", None) is not None:
            raise ValueError("the exit losses do not train an exit block (exit_block_layer in the config); train it "
                             "with scripts/train_exit_adapter.py, or fine-tune a checkpoint without one")
        kwargs["output_hidden_states"] = True
        if loss_fn == "layerskip":
            self._install_layer_dropout()
        hf_labels = labels
        if not cfg.is_encoder_decoder:
            # The exit losses compute their logits at answer positions only (below); HF's own logits over every
            # position, and its loss on them, would cost a full LM head per position (49k x 576 on SmolLM2, about
            # eight decoder layers) for a value the exit loss replaces.
            kwargs["logits_to_keep"], hf_labels = 1, None
        # Meta-head training: the model (final norm included) only provides features; the head is applied
        # outside no_grad, so it is the only module that gets gradients.
        with torch.no_grad() if meta else contextlib.nullcontext():
            out = super().forward(labels=hf_labels, **kwargs)
            states = out.decoder_hidden_states if cfg.is_encoder_decoder else out.hidden_states
            hidden, targets = self.exit_targets(self.exit_hidden_states(states), labels)
            # Every loss averages over labelled positions only, so keeping just those (one flat row) gives the same
            # value and gradients, and the exits' LM heads run on the answer tokens instead of every prompt token.
            keep = targets != IGNORE
            hidden, targets = [h[keep].unsqueeze(0) for h in hidden], targets[keep].unsqueeze(0)
        S = getattr(cfg, "shallow_exit_layer", None)
        if meta:
            layers = [S] if S else range(1, len(hidden))
            out.loss = meta_head_loss(hidden, self.exit_logits, self.cm_head, targets, layers)
        elif loss_fn == "layerskip":
            out.loss = layerskip_loss(hidden, self.exit_logits, targets, step=self.exit_train_step,
                                             rotation=getattr(cfg, "early_exit_rotation", 1),
                                             e_scale=getattr(cfg, "early_exit_scale", 1.0))
        else:
            out.loss = intermediate_loss(
                loss_fn, hidden, self.exit_logits, targets, shallow_exit_layer=S,
                alpha=getattr(cfg, "distill_layer_alpha", None),
                transform=getattr(self, "layer_transformation", None),
            )
        return out

    # The optimizer step the trainer is at (EarlyExitSeq2SeqTrainer sets it before every step, also on resume):
    # LayerSkip's rotating curriculum picks its exits from it.
    exit_train_step = 0

    def _install_layer_dropout(self) -> None:
        """LayerSkip's layer dropout (Elhoushi et al., 2024, section 4.1): in training, each row skips decoder layer l
        (1-based, of L) with probability p_max * (2^((l - 1) / (L - 1)) - 1), none for layer 1 and p_max for layer L;
        a skipped layer passes its input on unchanged. The layer is still computed (the row is replaced by its input
        afterwards), so it makes training robust to skipped layers but not faster. Installed once, as a hook run
        before transformers' own hidden-state capture, so the exits see what the next layer sees."""
        p_max = float(getattr(self.config, "layer_dropout_max", 0.0) or 0.0)
        if p_max <= 0 or getattr(self, "_layer_dropout_hooks", None):
            return
        if self.config.is_encoder_decoder:
            raise ValueError("--layer_dropout_max is implemented for decoder-only models")
        layers = self.model.layers
        L = len(layers)
        probs = [p_max * (2 ** ((i) / max(L - 1, 1)) - 1) for i in range(L)]

        def hook_for(p):
            def hook(module, args, kwargs, output):
                if not module.training or p <= 0:
                    return None
                h_in = args[0] if args else kwargs["hidden_states"]
                h_out = output[0] if isinstance(output, tuple) else output
                keep = torch.rand(h_in.shape[0], device=h_in.device) >= p
                mixed = torch.where(keep.view(-1, *[1] * (h_in.dim() - 1)), h_out, h_in)
                return (mixed, *output[1:]) if isinstance(output, tuple) else mixed
            return hook

        self._layer_dropout_hooks = [layer.register_forward_hook(hook_for(p), with_kwargs=True, prepend=True)
                                     for layer, p in zip(layers, probs)]


class EncoderDecoderExitMixin(EarlyExitModelMixin):
    """The exit mixin with the forward of T5 and BART (the same argument names)."""

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, cache=None, inputs_embeds=None, decoder_inputs_embeds=None, labels=None,
                use_cache=None, **kwargs):
        # Named, not **kwargs: the Trainer keeps only dataset columns that the signature names.
        return self.exit_forward(
            labels=labels, input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs, cache=cache,
            inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds, use_cache=use_cache, **kwargs)
