"""Beam search with early exit: HF's beam search, in which every running beam is a row of the engine's batch.

The bookkeeping is HF's own (GenerationMixin's beam-search helpers: the top-k continuations over all beams of an
input, the running and finished beams, the early-stop heuristic), called on tensors laid out as HF lays them out,
so beam scores, length penalty, early stopping, several end tokens and the order of ties are HF's. The engine
gives every beam its next-token logits from the layer that beam exits at (its own decision: CALM per layer,
FREE after the shallow layers, with the deep pass at once) and, as HF reorders its cache, reorders its rows with
everything a row owns. HF's processors see the log-softmax of those logits, as in HF's beam search.

An input whose finished hypotheses can no longer change (all `num_beams` finished, and early stopping or HF's
heuristic says no running beam can beat them) leaves the engine's batch: HF keeps computing it, with no effect on
its output. Its `scores` / `logits` rows are -inf from then on.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.generation.utils import GenerateBeamDecoderOnlyOutput, GenerateBeamEncoderDecoderOutput

from models.stats import exit_tensors


@dataclass
class EarlyExitBeamDecoderOnlyOutput(GenerateBeamDecoderOnlyOutput):
    """HF's beam output plus, per returned sequence and new token, the layer its beam exited at (-1: padding) and
    the exit confidence (NaN where none was measured)."""

    exit_layers: torch.LongTensor | None = None
    exit_confidences: torch.FloatTensor | None = None


@dataclass
class EarlyExitBeamEncoderDecoderOutput(GenerateBeamEncoderDecoderOutput):
    exit_layers: torch.LongTensor | None = None
    exit_confidences: torch.FloatTensor | None = None


@torch.no_grad()
def beam_search(model, engine, input_ids, attention_mask, logits_processor, stopping_criteria, gc, st,
                encoder_out=None):
    """HF's `_beam_search` (transformers 5) with the engine in place of the model's forward and cache.

    `input_ids` are HF's, already repeated `num_beams` times per input. Returns what HF's beam search returns,
    plus the exit layers of the returned sequences; `model` is only asked for HF's helpers.
    """
    pad, eos = gc._pad_token_tensor, gc._eos_token_tensor
    nb, lp, es, max_length = gc.num_beams, gc.length_penalty, gc.early_stopping, gc.max_length
    n, cur_len = input_ids.shape
    B = n // nb
    prompt_len = cur_len
    dev = input_ids.device
    keep_k = max(2, 1 + (eos.shape[0] if eos is not None else 0)) * nb  # HF: enough that num_beams stay open
    top_nb = torch.cat((torch.ones(nb, dtype=torch.bool), torch.zeros(keep_k - nb, dtype=torch.bool))).to(dev)

    fill = pad or eos[0] if eos is not None else -1  # HF's expression, precedence included
    running = torch.full((B, nb, max_length), fill, dtype=torch.int64, device=dev)
    running[:, :, :cur_len] = input_ids.view(B, nb, -1)
    sequences = running.clone()
    running_scores = torch.zeros((B, nb), dtype=torch.float, device=dev)
    running_scores[:, 1:] = -1e9
    beam_scores = torch.full((B, nb), -1e9, dtype=torch.float, device=dev)
    finished = torch.zeros((B, nb), dtype=torch.bool, device=dev)
    improvable = torch.ones((B, 1), dtype=torch.bool, device=dev)
    hits = torch.zeros((B, nb), dtype=torch.bool, device=dev)
    running_idx = torch.full((B, nb, max_length - cur_len), -1, dtype=torch.int32, device=dev)
    beam_idx = running_idx.clone()
    want_scores = gc.return_dict_in_generate and gc.output_scores
    want_logits = gc.return_dict_in_generate and gc.output_logits
    all_scores = () if want_scores else None
    raw_logits = () if want_logits else None

    start = int(input_ids[0, 0]) if model.config.is_encoder_decoder else None
    call, rows = engine.open(input_ids, attention_mask, start, st, encoder_out, copies=nb)
    alive = torch.ones(B, dtype=torch.bool)  # inputs whose finished hypotheses can still change
    live = list(range(n))  # flat beams the engine computes, in its row order
    step_records = []  # per step: the record of each flat beam's logits (None for an input that left)
    while True:
        got, records = engine.next_logits(call, rows)
        logits = torch.zeros((n, got.shape[-1]), dtype=torch.float32, device=dev)
        logits[live] = got.to(device=dev, dtype=torch.float32)
        step_records.append(dict(zip(live, records)))
        log_probs = logits_processor(running[:, :, :cur_len].reshape(n, -1), F.log_softmax(logits, dim=-1))
        if want_scores or want_logits:
            gone = ~alive.repeat_interleave(nb).to(dev)
            if want_logits:
                raw_logits += (logits.masked_fill(gone[:, None], -float("inf")),)
            if want_scores:
                all_scores += (log_probs.masked_fill(gone[:, None], -float("inf")),)
        acc = (log_probs.view(B, nb, -1) + running_scores[:, :, None]).reshape(B, -1)
        topk_scores, topk_seqs, topk_idx = model._get_top_k_continuations(
            accumulated_log_probs=acc, running_sequences=running, running_beam_indices=running_idx,
            cur_len=cur_len, decoder_prompt_len=prompt_len, do_sample=gc.do_sample, beams_to_keep=keep_k,
            num_beams=nb, batch_size=B)
        hits = stopping_criteria(topk_seqs[:, :, :cur_len + 1].reshape(B * keep_k, -1), all_scores).view(B, keep_k)
        running, running_scores, running_idx = model._get_running_beams_for_next_iteration(
            topk_log_probs=topk_scores, topk_running_sequences=topk_seqs, topk_running_beam_indices=topk_idx,
            next_token_hits_stopping_criteria=hits, num_beams=nb)
        sequences, beam_scores, beam_idx, finished = model._update_finished_beams(
            sequences=sequences, topk_running_sequences=topk_seqs, beam_scores=beam_scores,
            topk_log_probs=topk_scores, beam_indices=beam_idx, topk_running_beam_indices=topk_idx,
            is_early_stop_heuristic_unsatisfied=improvable, is_sent_finished=finished,
            next_token_hits_stopping_criteria=hits, top_num_beam_mask=top_nb, num_beams=nb, cur_len=cur_len,
            decoder_prompt_len=prompt_len, length_penalty=lp, early_stopping=es)
        src = running_idx[..., cur_len - prompt_len].reshape(-1).tolist()  # the flat beam each new beam continues
        tokens = running[:, :, cur_len].reshape(-1).tolist()
        cur_len += 1
        improvable = model._check_early_stop_heuristic(
            is_early_stop_heuristic_unsatisfied=improvable, running_beam_scores=running_scores,
            beam_scores=beam_scores, is_sent_finished=finished, cur_len=cur_len, max_length=max_length,
            decoder_prompt_len=prompt_len, early_stopping=es, length_penalty=lp)
        # All num_beams finished, with nothing able to replace them: HF's later steps cannot change this input.
        alive &= ~(finished.all(-1) & ((es is True) | ~improvable[:, 0])).cpu()
        hits = hits | ~alive.to(dev)[:, None]
        if not bool(alive.any()) or not model._beam_search_has_unfinished_sequences(improvable, finished, hits, es):
            break
        pos = {f: q for q, f in enumerate(live)}
        live = [b * nb + k for b in alive.nonzero()[:, 0].tolist() for k in range(nb)]
        rows = engine.reorder(call, rows, [pos[src[f]] for f in live], [tokens[f] for f in live],
                              records)

    sequences = sequences[:, :gc.num_return_sequences].reshape(B * gc.num_return_sequences, -1)
    beam_scores = beam_scores[:, :gc.num_return_sequences].reshape(-1)
    beam_idx = beam_idx[:, :gc.num_return_sequences].reshape(B * gc.num_return_sequences, -1)
    new = int((beam_idx + 1).bool().sum(dim=1).max())
    sequences, beam_idx = sequences[:, :prompt_len + new], beam_idx[:, :new]
    st.sequences += B
    st.tokens += sum(len(r) for r in step_records)  # every token a beam took
    for r in step_records:
        st.records.extend(r.values())
    if not gc.return_dict_in_generate:
        return sequences
    # each returned sequence's token s came from flat beam beam_idx[q, s] at step s (-1: padding)
    layers, conf = exit_tensors([[step_records[s][f] if f >= 0 else None for s, f in enumerate(row)]
                                 for row in beam_idx.tolist()], beam_idx.shape[1])
    cls = EarlyExitBeamEncoderDecoderOutput if model.config.is_encoder_decoder else EarlyExitBeamDecoderOnlyOutput
    return cls(sequences=sequences, sequences_scores=beam_scores if gc.output_scores else None, scores=all_scores,
               logits=raw_logits, beam_indices=beam_idx, exit_layers=layers, exit_confidences=conf)
