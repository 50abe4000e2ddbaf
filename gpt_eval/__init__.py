"""LLM-judge ("human-like") evaluation of two systems' summaries against an OpenAI-compatible endpoint.

Likert 1-5 scores for relevance, informativeness, fluency and coherence per summary, and a pairwise
comparison asked in both orders. Entry points: ``python -m gpt_eval`` and ``scripts/gpt_eval.py``.
"""

from .client import AuthError, ChatClient, EndpointError, GptEvalError, InputError, RateLimiter, RequestError
from .prompts import CRITERIA

__all__ = ["AuthError", "ChatClient", "CRITERIA", "EndpointError", "GptEvalError", "InputError", "RateLimiter",
           "RequestError", "main"]


def main(argv=None) -> int:
    from .cli import main as _main
    return _main(argv)
