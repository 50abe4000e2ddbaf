"""Every decoding method side by side on one checkpoint, against HF generate() measured in the same run.

    python scripts/benchmark.py --model_name_or_path outputs/demo/model \
        --validation_file outputs/demo/data/dialogsum/validation.jsonl --max_samples 60 \
        --shallow_exit_layer 2 --free_thresholds 0.6 0.8 0.9 --calm_thresholds 0.6 0.8 0.9 \
        --static_layers 1 2 3 --output_dir outputs/demo/benchmark

What is measured, per method:
- time: the sum over samples of whole generate() calls (tokenization and scoring outside), the
  median over --repeats passes (after a warm-up of every method; within a pass each batch is decoded by
  every method in turn, in an order that rotates from batch to batch); tokens/s over the same calls;
- speedup: HF generate()'s time / the method's time, both measured in this run on the same weights;
- time to first token (prefill + first token, as serving benchmarks report it): a max_new_tokens=1 call on the same
  batch, timed right after the whole call in the same interleaved pass (ms per call, median over the passes); time
  per later token: (whole calls - first-token calls) / (generated tokens - rows), in ms; each with its speedup over
  HF generate()'s;
- layers/token: sequential depth (layers on each token's critical path); layer-FLOPs/token: every
  (layer, token) block computation, FREE's parallel fill included; ideal = L / layers-per-token, the
  speedup the layer counts allow; efficiency = speedup / ideal;
- quality: ROUGE-L (summarization) or BLEU (translation) against the references, and agreement: the
  share of outputs identical to the full model's.
Outputs: results.json, results.md, quality_vs_speed.png (per-method curves over the threshold sweep,
with the area under each), confidence_hist.png (FREE's shallow confidences with the fitted Beta mixture
and the chosen threshold). Plots need matplotlib; everything else does not.
"""

import argparse
import json
import os
import statistics
import sys
import time
from types import SimpleNamespace

import torch

from additional_args import (CONF_TYPES, DECODING_FIELDS, DEFAULT_SUMMARY_INSTRUCTION, EXIT_DEFAULTS,
                             AdditionalArguments, ModelArguments, default_instruction)
from models import load_model_and_tokenizer
from util import checks
from util import metrics as M
from util.chat import causal_lm_features, require_chat_template

from bench_report import auc_by_family, batch_sweep, markdown, plot, profile_markdown, sweep_markdown


def method_table(a, L) -> dict:
    """name -> (family, exit settings). HF generate and our full path run with no exit method."""
    S = a.shallow_exit_layer
    draft = {k: getattr(a, k) for k in ("exit_shortlist_size", "max_draft_tokens") if getattr(a, k) is not None}
    free = lambda t: dict(use_shallow_deep=True, shallow_exit_layer=S, shallow2deep_conf_type="softmax",  # noqa: E731
                          shallow2deep_conf_threshold=t, **draft, **({} if a.deep_pass_wait is None
                                                                     else {"deep_pass_wait": a.deep_pass_wait}))
    table = {"hf_generate": ("hf", {}), "full": ("full", {})}
    if a.assistant_early_exit:
        table["hf_assistant_early_exit"] = ("hf_assistant", {})
    for k in a.static_layers or [S]:
        table[f"static_{k}"] = ("static", dict(static_exit_layer=k))
    for conf in a.calm_conf_types:
        for t in a.calm_thresholds:  # the softmax measure keeps its published name
            name = f"calm_{t}" if conf == "softmax" else f"calm_{conf}_{t}"
            table[name] = ("calm", dict(use_early_exit=True, exit_conf_type=conf, exit_conf_threshold=t,
                                        exit_min_layer=a.calm_min_layer or S,
                                        exit_shortlist_size=a.exit_shortlist_size))
    for t in a.free_thresholds:
        table[f"free_{t}"] = ("free", free(t))
    table["free_adaptive"] = ("free_adaptive", dict(free(a.adapt_init), use_adapt_threshold=True))
    if a.num_beams == 1:  # verification rewrites exited tokens, which beam search refuses (see README)
        for t in a.verify_thresholds or a.free_thresholds:
            table[f"free_verify_{t}"] = ("free_verify", dict(free(t), exact_verification=True))
    if a.fast_kernels:  # every method of ours; HF's rows stay HF's
        table = {k: (f, dict(v, fast_kernels=True) if not f.startswith("hf") else v) for k, (f, v) in table.items()}
    unknown = [m for m in a.methods or [] if m not in table and m not in {f for f, _ in table.values()}]
    if unknown:
        families = ", ".join(dict.fromkeys(f for f, _ in table.values()))
        raise checks.InputError(f"--methods {' '.join(unknown)}: no such method or family here; the names are "
                                f"{', '.join(table)} and the families {families}")
    return {k: v for k, v in table.items() if not a.methods or k in a.methods or v[0] in a.methods}


def call_settings(settings: dict) -> dict:
    """generate()'s keywords for a method: every decoding setting, the method's own over the project's defaults, so
    that nothing of the checkpoint's saved settings decides which method a row runs."""
    return {**{k: EXIT_DEFAULTS[k] for k in DECODING_FIELDS}, **settings}


def configure(model, settings: dict, state=None) -> None:
    """A fresh exit state or the method's own `state` (its model.exit_state after an earlier batch); the settings
    themselves go with each generate() call (timed_generate)."""
    if state is None:
        model.reset_exit_state()
    else:
        model.exit_state = state


def load_rows(a):
    """(sources with the prefix, references) of the first --max_samples rows; a row without usable text is an error
    naming it (the benchmark compares methods on the same rows, so none is dropped silently)."""
    rows = checks.read_jsonl(a.validation_file, "--validation_file")[: a.max_samples]
    if a.task == "translation":
        get = lambda r, k: (r.get("translation") or {}).get(k)  # noqa: E731
        keys = {"source": ("--source_lang", a.source_lang), "target": ("--target_lang", a.target_lang)}
    else:
        get = lambda r, k: r.get(k)  # noqa: E731
        keys = {"source": ("--text_column", a.text_column), "target": ("--summary_column", a.summary_column)}
    for n, r in enumerate(rows, 1):
        for role, (flag, key) in keys.items():
            problem = checks.text_problem({f"{role} {key!r}": get(r, key)})
            if problem:
                has = sorted((r.get("translation") or {}) if a.task == "translation" else r)
                raise checks.InputError(f"--validation_file {a.validation_file}: row {n} has {problem}; set {flag} "
                                        f"(the row has {has})")
    return ([a.source_prefix + get(r, keys["source"][1]) for r in rows], [get(r, keys["target"][1]) for r in rows])


def score(a, texts, refs) -> float:
    return M.bleu(texts, refs)["bleu"] if a.task == "translation" else M.rouge(texts, refs)["rougeL"]


def timed_generate(model, batches, family, a, seed=0, max_new_tokens=None, settings=None):
    kw = dict(max_new_tokens=max_new_tokens or a.max_new_tokens, do_sample=a.do_sample, num_beams=a.num_beams,
              **call_settings(settings or {}))
    if a.length_penalty is not None:
        kw["length_penalty"] = a.length_penalty
    if a.do_sample:  # HF's warpers, the same for every method; each pass draws with its own seed
        kw.update(temperature=a.temperature, top_p=a.top_p, top_k=a.top_k)
        torch.manual_seed(seed)
    if family == "hf_assistant":
        kw["assistant_early_exit"] = a.shallow_exit_layer
    elif family != "hf":
        kw["use_engine"] = True
    outs, total = [], 0.0
    for enc in batches:
        t0 = time.perf_counter()
        out = model.generate(**enc, **kw)
        if out.device.type == "cuda":
            torch.cuda.synchronize()
        total += time.perf_counter() - t0
        outs.append(out)
    return outs, total


def first_token_agreement(firsts, outs, batches, decoder_only) -> float:
    """Share of rows whose max_new_tokens=1 output is the first generated token of the whole call."""
    same = rows = 0
    for first, out, enc in zip(firsts, outs, batches):
        start = enc["input_ids"].shape[1] if decoder_only else 1  # after the prompt / the decoder's start token
        same += int((first[:, start] == out[:, start]).sum())
        rows += first.shape[0]
    return round(same / rows, 4)


def decode_new(tok, outs, batches, decoder_only):
    texts = []
    for out, enc in zip(outs, batches):
        new = out[:, enc["input_ids"].shape[1]:] if decoder_only else out
        texts += [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]
    return texts


def count_tokens(tok, texts) -> int:
    """Generated tokens of decoded outputs, each with its end token."""
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)


def load(a) -> SimpleNamespace:
    """What every batch size shares: tokenizer, model, sources, references (decoder-only: the prompts' ids)."""
    if a.threads:
        torch.set_num_threads(a.threads)
    M.ensure_punkt()
    # the entry points' loader: LoRA folders, GGUF files and the checkpoint's exit settings are read as they read them
    model, tok, _ = load_model_and_tokenizer(ModelArguments(model_name_or_path=a.model_name_or_path),
                                             AdditionalArguments())
    model, cfg = model.eval().to(a.device), model.config
    sources, refs = load_rows(a)
    ids = None
    if a.use_chat_template:
        require_chat_template(tok, decoder_only=not cfg.is_encoder_decoder)
    if not cfg.is_encoder_decoder:  # the prompt layout the model was trained with (util/chat.causal_lm_features)
        tok.padding_side = "left"
        ns = SimpleNamespace(max_source_length=a.max_source_length, decoder_only_separator=a.separator,
                             use_chat_template=a.use_chat_template, instruction=a.instruction)
        ids = causal_lm_features(tok, sources, refs, ns, a.max_new_tokens, with_target=False)["input_ids"]
    return SimpleNamespace(tok=tok, model=model, decoder_only=not cfg.is_encoder_decoder,
                           L=model.adapter_cls(model).num_layers, sources=sources, refs=refs, ids=ids)


def run(a, d: SimpleNamespace, batch_size: int) -> dict:
    torch.manual_seed(0)
    tok, model, decoder_only, L, sources, refs, ids = d.tok, d.model, d.decoder_only, d.L, d.sources, d.refs, d.ids
    if decoder_only:
        batches = [tok.pad({"input_ids": ids[i:i + batch_size]}, return_tensors="pt")
                   for i in range(0, len(ids), batch_size)]
    else:
        batches = [tok(sources[i:i + batch_size], max_length=a.max_source_length, truncation=True, padding=True,
                       return_tensors="pt") for i in range(0, len(sources), batch_size)]
    batches = [b.to(a.device) for b in batches]
    results, texts_of, bmm = {}, {}, None
    table = method_table(a, L)
    if (batch_size > 1 or a.num_beams > 1) and table.pop("hf_assistant_early_exit", None):
        print("HF's assisted generation (assistant_early_exit) decodes one greedy or sampled row only: left out here")
    for family, settings in table.values():
        configure(model, settings)
        timed_generate(model, batches[: a.warmup], family, a, settings=settings)
    # Interleaved: every batch is decoded by each method in turn, the order rotating from batch to batch, so the
    # slow phases of a noisy machine (its speed drifts by tens of percent within seconds) hit all methods alike.
    # Each method keeps its own adaptive threshold and counts across the batches of a pass.
    names = list(table)
    times, last, qualities = {name: [] for name in table}, {}, {name: [] for name in table}
    first_times, firsts = {name: [] for name in table}, {}
    for rep in range(a.repeats):
        state, outs, spent = {}, {name: [] for name in names}, dict.fromkeys(names, 0.0)
        first_spent, firsts = dict.fromkeys(names, 0.0), {name: [] for name in names}
        for name in names:
            configure(model, table[name][1])  # a fresh adaptive threshold: each pass is one evaluation
            state[name] = model.exit_state
        for b, enc in enumerate(batches):
            k = (b + rep) % len(names)
            for name in names[k:] + names[:k]:
                family, settings = table[name]
                configure(model, settings, state[name])
                (out,), t = timed_generate(model, [enc], family, a, seed=rep * 100003 + b, settings=settings)
                state[name] = model.exit_state
                outs[name].append(out)
                spent[name] += t
                # time to first token: the same call stopped after one token, with a throw-away exit state (the
                # method's threshold and counts stay those of its whole calls)
                configure(model, settings)
                (first,), t = timed_generate(model, [enc], family, a, seed=rep * 100003 + b, max_new_tokens=1,
                                             settings=settings)
                firsts[name].append(first)
                first_spent[name] += t
        for name in names:
            times[name].append(spent[name])
            first_times[name].append(first_spent[name])
            if a.do_sample:  # quality as the mean over the passes' seeds
                qualities[name].append(score(a, decode_new(tok, outs[name], batches, decoder_only), refs))
            st = state[name]
            fitted = next((t.bmm for t in st.thresholds.values()), None)  # the method's one threshold state
            last[name] = (outs[name], st.stats, fitted if table[name][0] == "free_adaptive" else None)
    for n, (name, (family, settings)) in enumerate(table.items(), 1):
        outs, stats, fitted = last[name]
        bmm = fitted or bmm
        texts = decode_new(tok, outs, batches, decoder_only)
        texts_of[name] = texts
        n_tokens = count_tokens(tok, texts)
        med, first = statistics.median(times[name]), statistics.median(first_times[name])
        later = n_tokens - len(refs)  # every row's first token is in the first-token call
        r = {"family": family, "settings": settings, "time_s": round(med, 4),
             "times_s": [round(t, 4) for t in times[name]], "tokens": n_tokens,
             "tokens_per_s": round(n_tokens / med, 2),
             "first_token_ms": round(1e3 * first / len(batches), 3),
             "later_token_ms": round(1e3 * (med - first) / later, 3) if later > 0 else None,
             "quality": statistics.mean(qualities[name]) if a.do_sample else score(a, texts, refs)}
        if a.num_beams == 1:  # the first-token call decoded what the whole call began with (beams may re-rank)
            r["first_token_agreement"] = first_token_agreement(firsts[name], outs, batches, decoder_only)
        if family in ("hf", "hf_assistant"):
            r.update(avg_layers_per_token=float(L), layer_flops_per_token=float(L))
        else:
            r.update(stats.summary())
            if stats.checked:  # verified exits the deep layers kept
                r["acceptance_rate"] = round(1 - stats.rollbacks / stats.checked, 4)
            if stats.thresholds:
                r["threshold_final"] = stats.thresholds[-1]
        results[name] = r
        print(f"[{n}/{len(table)}] {name:>22}: {med:6.2f}s  quality {r['quality']:6.2f}  layers/token "
              f"{r['avg_layers_per_token']:.2f}", flush=True)
    base = results.get("hf_generate", {}).get("time_s")
    hf = results.get("hf_generate", {})
    for name, r in results.items():
        if hf:
            r["first_token_speedup_vs_hf"] = round(hf["first_token_ms"] / r["first_token_ms"], 3)
            if hf["later_token_ms"] and r["later_token_ms"]:
                r["later_token_speedup_vs_hf"] = round(hf["later_token_ms"] / r["later_token_ms"], 3)
        if "hf_generate" in texts_of:  # with --fast_kernels our rows round differently from HF's modules
            r["agreement_with_hf"] = round(sum(x == y for x, y in zip(texts_of[name], texts_of["hf_generate"]))
                                           / len(refs), 4)
        if "full" in texts_of:
            same = sum(x == y for x, y in zip(texts_of[name], texts_of["full"]))
            r["agreement_with_full"] = round(same / len(refs), 4)
            r["quality_vs_full"] = round(r["quality"] / max(results["full"]["quality"], 1e-9), 4)
            r["quality_of_full_outputs"] = round(score(a, texts_of[name], texts_of["full"]), 2)  # full's own as refs
        if base:
            r["speedup_vs_hf"] = round(base / r["time_s"], 3)
            r["ideal_speedup"] = round(L / r["avg_layers_per_token"], 3)
            r["efficiency"] = round(r["speedup_vs_hf"] / r["ideal_speedup"], 3)
    profiles = profile_methods(model, batches[: a.profile], table, a, tok, decoder_only) if a.profile else None
    res = {"model": a.model_name_or_path, "task": a.task, "samples": len(refs), "batch_size": batch_size,
           "sampling": dict(temperature=a.temperature, top_p=a.top_p, top_k=a.top_k) if a.do_sample else None,
           "num_beams": a.num_beams, "length_penalty": a.length_penalty,
           "repeats": a.repeats, "threads": torch.get_num_threads(), "num_layers": L,
           "device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu", "methods": results,
           "auc": auc_by_family(results)}
    if profiles:
        res["profile"] = profiles
    if bmm is not None and len(bmm):
        conf, agree = bmm.data
        as_list = lambda v: [float(x) for x in v] if v is not None else []  # noqa: E731
        res["bmm"] = {"confidences": conf.tolist(), "agree": agree.tolist(), "alphas": as_list(bmm.alphas),
                      "betas": as_list(bmm.betas), "pi": as_list(bmm.pi), "threshold": bmm.threshold}
    return res


_HOST_READS = ("tolist", "item", "__bool__", "__int__", "__float__", "__index__")


def profile_methods(model, batches, table, a, tok, decoder_only, top=8) -> dict:
    """Per method, one untimed pass over `batches` under torch.profiler: operator calls and CPU time per generated
    token, the operators that take the most self time, and host reads (a tensor turned into Python values: tolist,
    item, bool, int, float, index). On a GPU only reads of tensors on the model's device count: each waits for the
    device. On the CPU every read counts, bookkeeping tensors included."""
    from torch.profiler import ProfilerActivity, profile

    reads, device = [0], torch.device(a.device).type

    def counted(fn):
        def read(t, *args):
            reads[0] += t.device.type == device
            return fn(t, *args)
        return read

    own = {m: vars(torch.Tensor).get(m) for m in _HOST_READS}  # None: inherited from torch._C.TensorBase
    wrapped = {m: counted(getattr(torch.Tensor, m)) for m in _HOST_READS}

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if a.device.startswith("cuda") else [])
    out = {}
    for name, (family, settings) in table.items():
        configure(model, settings)
        reads[0] = 0
        try:
            for m, fn in wrapped.items():
                setattr(torch.Tensor, m, fn)
            with profile(activities=acts) as prof:
                outs, wall = timed_generate(model, batches, family, a, settings=settings)
        finally:
            for m, fn in own.items():
                setattr(torch.Tensor, m, fn) if fn is not None else delattr(torch.Tensor, m)
        n = count_tokens(tok, decode_new(tok, outs, batches, decoder_only))
        ops = [e for e in prof.key_averages() if e.key.startswith("aten::")]
        self_us = sum(e.self_cpu_time_total for e in ops)
        out[name] = {"tokens": n, "wall_ms_per_token": round(1e3 * wall / n, 3),
                     "aten_calls_per_token": round(sum(e.count for e in ops) / n, 1),
                     "aten_self_cpu_ms_per_token": round(self_us / 1e3 / n, 3),
                     "host_reads_per_token": round(reads[0] / n, 2),
                     "top_ops": [{"op": e.key, "calls_per_token": round(e.count / n, 2),
                                  "self_cpu_share": round(e.self_cpu_time_total / max(self_us, 1), 3)}
                                 for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:top]]}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", required=True)
    p.add_argument("--validation_file", required=True, help="jsonl (summarization columns or translation pairs)")
    p.add_argument("--task", choices=("summarization", "translation"), default="summarization")
    p.add_argument("--text_column", default="dialogue")
    p.add_argument("--summary_column", default="summary")
    p.add_argument("--source_lang", default="de")
    p.add_argument("--target_lang", default="en")
    p.add_argument("--source_prefix", default=None,
                   help="prepended to every source (default 'summarize: ', none with --use_chat_template)")
    p.add_argument("--max_source_length", type=int, default=512)
    p.add_argument("--separator", default="\nSummary: ", help="decoder-only: text between source and target")
    p.add_argument("--use_chat_template", action="store_true",
                   help="decoder-only instruct models: the prompt is the tokenizer's chat template around one user "
                        "turn, --instruction + blank line + source (as run_summarization.py --use_chat_template)")
    p.add_argument("--instruction", default=None,
                   help=f"with --use_chat_template (default: {DEFAULT_SUMMARY_INSTRUCTION!r}; translation: "
                        "'Translate the following <source_lang> text to <target_lang>.')")
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.add_argument("--max_samples", type=int, default=50)
    p.add_argument("--batch_size", type=int, nargs="+", default=[1],
                   help="several values: every method at every batch size, plus batch_sweep.json/.md")
    p.add_argument("--shallow_exit_layer", type=int, required=True)
    p.add_argument("--static_layers", type=int, nargs="*", default=None)
    p.add_argument("--free_thresholds", type=float, nargs="*", default=[0.8])
    p.add_argument("--verify_thresholds", type=float, nargs="*", default=None)
    p.add_argument("--calm_thresholds", type=float, nargs="*", default=[0.8])
    p.add_argument("--calm_min_layer", type=int, default=None)
    p.add_argument("--calm_conf_types", nargs="*", default=["softmax"],
                   choices=CONF_TYPES,
                   help="CALM's confidence measures (meta needs a checkpoint with a trained meta head)")
    p.add_argument("--adapt_init", type=float, default=0.8)
    p.add_argument("--exit_shortlist_size", type=int, default=None,
                   help="FREE / CALM exits score the checkpoint's K most frequent tokens (exit_token_ranking)")
    p.add_argument("--max_draft_tokens", type=int, default=None, help="FREE: at most this many exits in a row")
    p.add_argument("--fast_kernels", action="store_true",
                   help="our methods use the CPU product layouts (agreement_with_hf then says how often the output "
                        "is still HF generate's)")
    p.add_argument("--deep_pass_wait", type=float, default=None, help="FREE in a batch (default: the config's)")
    p.add_argument("--assistant_early_exit", action="store_true", help="also HF generate(assistant_early_exit=S)")
    p.add_argument("--methods", nargs="*", default=None, help="names or families to run (default: all)")
    p.add_argument("--do_sample", action="store_true", help="sample (every method, HF's warpers below); quality "
                   "is the mean over the --repeats passes, each with its own seed")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top_p", type=float, default=1.0)
    p.add_argument("--top_k", type=int, default=50)
    p.add_argument("--num_beams", type=int, default=1, help="beam search for every method, HF's included")
    p.add_argument("--length_penalty", type=float, default=None, help="with beams (default: the model's config)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3, help="batches decoded once before timing")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also profile every method on the first N batches (torch.profiler): profile.md, results.json")
    p.add_argument("--output_dir", default=None)
    a = p.parse_args(argv)
    for flag in ("max_samples", "max_new_tokens", "repeats", "num_beams"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be >= 1")
    if min(a.batch_size) < 1 or a.warmup < 0 or a.profile < 0:
        p.error("--batch_size values must be >= 1, --warmup and --profile >= 0")
    for flag in ("free_thresholds", "calm_thresholds", "verify_thresholds"):
        bad = [t for t in getattr(a, flag) or [] if not 0.0 <= t <= 1.0]
        if bad or not 0.0 <= a.adapt_init <= 1.0:
            p.error(f"--{flag} {bad} / --adapt_init {a.adapt_init}: thresholds are confidences in [0, 1]")
    checks.require_model_path(a.model_name_or_path)
    if a.output_dir:
        checks.writable_dir(a.output_dir, "--output_dir")
    if a.source_prefix is None:
        a.source_prefix = "" if a.use_chat_template else "summarize: "
    if a.instruction is None:
        a.instruction = default_instruction(*((a.source_lang, a.target_lang) if a.task == "translation" else ()))
    command = f"python scripts/benchmark.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    runs, loaded = {}, load(a)
    for bs in a.batch_size:
        res = runs[bs] = run(a, loaded, bs)
        table = markdown(res)
        print(f"batch size {bs}\n{table}")
        if a.output_dir:
            out = a.output_dir if len(a.batch_size) == 1 else os.path.join(a.output_dir, f"batch_{bs}")
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "results.json"), "w") as f:
                json.dump(res, f, indent=1)
            with open(os.path.join(out, "results.md"), "w") as f:
                f.write(f"Command: {command}\n\nBatch size {bs}.\n\n{table}\n")
            for f in plot(res, out):
                print("wrote", f)
        if res.get("profile"):
            ptable = profile_markdown(res["profile"])
            print(f"profile, batch size {bs}\n{ptable}")
            if a.output_dir:
                with open(os.path.join(out, "profile.md"), "w") as f:
                    f.write(f"Command: {command}\n\nBatch size {bs}, first {a.profile} batches.\n\n{ptable}\n")
    if len(runs) > 1:
        sweep = batch_sweep(runs)
        table = sweep_markdown(sweep)
        print(table)
        if a.output_dir:
            with open(os.path.join(a.output_dir, "batch_sweep.json"), "w") as f:
                json.dump(sweep, f, indent=1)
            with open(os.path.join(a.output_dir, "batch_sweep.md"), "w") as f:
                f.write(f"Command: {command}\n\n{table}\n")
    return runs[a.batch_size[0]] if len(runs) == 1 else runs


if __name__ == "__main__":
    checks.run_cli(main, "benchmark.py")
