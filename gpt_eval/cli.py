"""python -m gpt_eval --sources S --references R --pred_a A --pred_b B --base_url URL --model M --output_dir D"""

import argparse
import json
import logging
import os
import sys

from util import checks

from .client import ChatClient, GptEvalError, InputError, RateLimiter, redact
from .data import load_inputs
from .report import aggregate, bar_chart, markdown
from .runner import ResultsFile, build_tasks, run

log = logging.getLogger("gpt_eval")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="gpt_eval", description=(
        "LLM-judge evaluation of two systems' summaries (Likert 1-5 for relevance, informativeness, fluency, "
        "coherence; pairwise in both orders) against any OpenAI-compatible chat-completions endpoint."))
    io = p.add_argument_group("inputs")
    io.add_argument("--sources", required=True, help="jsonl (text column) or plain text, one source per line")
    io.add_argument("--references", required=True, help="jsonl (summary column) or plain text, one per line")
    io.add_argument("--pred_a", required=True, help="generated_predictions.txt of system A (one per line)")
    io.add_argument("--pred_b", required=True, help="generated_predictions.txt of system B")
    io.add_argument("--name_a", default="A")
    io.add_argument("--name_b", default="B")
    io.add_argument("--text_column", default=None, help="source column in a jsonl (default: dialogue/article/"
                    "document/text)")
    io.add_argument("--summary_column", default=None, help="reference column in a jsonl (default: summary/"
                    "highlights/abstract)")
    io.add_argument("--max_samples", type=int, default=None, help="evaluate the first N samples")
    io.add_argument("--output_dir", required=True, help="results.jsonl (resumable), aggregate.json, chart")
    ep = p.add_argument_group("endpoint")
    ep.add_argument("--base_url", required=True, help="e.g. http://localhost:8000/v1 (/chat/completions is appended)")
    ep.add_argument("--model", required=True)
    ep.add_argument("--api_key_env", default="OPENAI_API_KEY",
                    help="name of the environment variable holding the API key (the key itself is never shown)")
    ep.add_argument("--max_tokens", type=int, default=256, help="answer budget per request")
    ep.add_argument("--temperature", type=float, default=0.0)
    lim = p.add_argument_group("throughput and retries")
    lim.add_argument("--concurrency", type=int, default=4, help="parallel requests")
    lim.add_argument("--max_requests_per_minute", type=int, default=60, help="0 = unbounded")
    lim.add_argument("--max_tokens_per_minute", type=int, default=100_000,
                     help="estimated as len(text)/4 + max_tokens per request; 0 = unbounded")
    lim.add_argument("--timeout", type=float, default=120.0,
                     help="seconds to connect / wait for data, per HTTP request")
    lim.add_argument("--max_retries", type=int, default=5, help="on 429, 5xx, timeouts and connection errors")
    lim.add_argument("--backoff_base", type=float, default=1.0, help="first retry delay in seconds (doubles)")
    lim.add_argument("--backoff_max", type=float, default=60.0)
    lim.add_argument("--max_requests", type=int, default=None,
                     help="send at most N pending requests this run (a later run resumes with the rest)")
    args = p.parse_args(argv)
    if args.name_a == args.name_b:
        p.error("--name_a and --name_b must differ")
    for flag in ("max_samples", "max_requests"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag} must be >= 1")
    if args.concurrency < 1 or args.max_retries < 0:
        p.error("--concurrency must be >= 1 and --max_retries >= 0")
    return args


def evaluate(args) -> dict:
    sources, references, preds_a, preds_b = load_inputs(args.sources, args.references, args.pred_a, args.pred_b,
                                                        args.text_column, args.summary_column, args.max_samples)
    api_key = os.environ.get(args.api_key_env)
    if not api_key:
        log.warning("environment variable %s is not set; sending requests without an API key", args.api_key_env)
    try:
        checks.writable_dir(args.output_dir, "--output_dir")
    except checks.InputError as e:
        raise InputError(str(e)) from None
    names = {"a": args.name_a, "b": args.name_b}
    client = ChatClient(args.base_url, args.model, api_key=api_key, api_key_env=args.api_key_env,
                        timeout=args.timeout, max_retries=args.max_retries, backoff_base=args.backoff_base,
                        backoff_max=args.backoff_max, max_tokens=args.max_tokens, temperature=args.temperature,
                        limiter=RateLimiter(args.max_requests_per_minute, args.max_tokens_per_minute))
    results = ResultsFile(os.path.join(args.output_dir, "results.jsonl"), secret=api_key)
    tasks = build_tasks(sources, references, preds_a, preds_b, args.model)
    log.info("%d samples, model %s at %s", len(sources), args.model, client.base_url)
    run(tasks, client, results, names, concurrency=args.concurrency, max_requests=args.max_requests)

    agg = aggregate(tasks, results.load(), names)
    agg.update(model=args.model, base_url=client.base_url)
    with open(os.path.join(args.output_dir, "aggregate.json"), "w", encoding="utf-8") as f:
        f.write(redact(json.dumps(agg, indent=2, ensure_ascii=False), api_key) + "\n")
    agg["chart"] = bar_chart(agg, args.output_dir)
    print(markdown(agg))
    if agg["missing"]:
        log.warning("%d requests not answered yet; run the same command again to resume", agg["missing"])
    return agg


def main(argv=None) -> int:
    args = parse_args(argv)
    # A handler of our own for this call (not basicConfig), so repeated in-process calls write to the current
    # stderr and nothing is configured globally for library users.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gpt_eval: %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        evaluate(args)
        return 0
    except InputError as e:
        print(f"gpt_eval: error: {e}", file=sys.stderr)
        return 2
    except GptEvalError as e:
        # Our messages never contain the key; redact anyway in case a URL or server text carried it.
        print(f"gpt_eval: error: {redact(str(e), os.environ.get(args.api_key_env))}\n"
              f"Answers received so far are kept in {args.output_dir}/results.jsonl; the same command resumes.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gpt_eval: interrupted; the same command resumes from {args.output_dir}/results.jsonl",
              file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)
