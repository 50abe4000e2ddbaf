"""Judge prompts and parsing of the judge's answers."""

import json
import re

CRITERIA = ("relevance", "informativeness", "fluency", "coherence")

_DEFINITIONS = """\
- relevance: the summary keeps the important content of the source and leaves out unimportant or off-topic content.
- informativeness: the summary conveys the key information of the source (who, what, outcome) without omissions.
- fluency: the sentences are grammatical, well formed and easy to read.
- coherence: the summary is well structured and organised; it reads as one consistent body of information."""

LIKERT_TEMPLATE = """\
You will be given a source document, a reference summary written by a person, and a candidate summary.
Rate the candidate summary on a Likert scale from 1 (very poor) to 5 (excellent) for each criterion:
{definitions}
The reference summary is one good summary, shown for context; the candidate does not need to copy it.

Source document:
<<<
{source}
>>>

Reference summary:
<<<
{reference}
>>>

Candidate summary:
<<<
{summary}
>>>

Answer with only a JSON object holding one integer from 1 to 5 per criterion, for example:
{{"relevance": 4, "informativeness": 3, "fluency": 5, "coherence": 4}}"""

PAIRWISE_TEMPLATE = """\
You will be given a source document, a reference summary written by a person, and two candidate summaries.
Decide which candidate summary is better overall, considering:
{definitions}
The reference summary is one good summary, shown for context. The order of the candidates is arbitrary.

Source document:
<<<
{source}
>>>

Reference summary:
<<<
{reference}
>>>

Summary 1:
<<<
{first}
>>>

Summary 2:
<<<
{second}
>>>

Answer with only a JSON object: {{"winner": 1}} if Summary 1 is better, {{"winner": 2}} if Summary 2 is better,
or {{"winner": "tie"}} if they are equally good."""

# Sent (as a follow-up turn after the bad answer) when an answer cannot be parsed: a different request,
# since repeating the same prompt at temperature 0 would most likely get the same answer.
RETRY_LIKERT = ('Your answer could not be parsed. Reply with only the JSON object, e.g. '
                '{"relevance": 4, "informativeness": 3, "fluency": 5, "coherence": 4}.')
RETRY_PAIRWISE = 'Your answer could not be parsed. Reply with only {"winner": 1}, {"winner": 2} or {"winner": "tie"}.'


def likert_prompt(source: str, reference: str, summary: str) -> str:
    return LIKERT_TEMPLATE.format(definitions=_DEFINITIONS, source=source, reference=reference, summary=summary)


def pairwise_prompt(source: str, reference: str, first: str, second: str) -> str:
    return PAIRWISE_TEMPLATE.format(definitions=_DEFINITIONS, source=source, reference=reference,
                                    first=first, second=second)


def _json_object(text: str):
    """The first JSON object in an answer, also inside ```json fences or after some prose; None if none."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text or ""):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _score(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, int) and 1 <= v <= 5 else None


def parse_likert(text: str) -> dict | None:
    """{"relevance": 4, ...} with all four criteria as integers 1-5, else None (unparseable)."""
    obj = _json_object(text)
    if obj is None:
        return None
    obj = {str(k).strip().lower(): v for k, v in obj.items()}
    scores = {c: _score(obj.get(c)) for c in CRITERIA}
    return None if any(v is None for v in scores.values()) else scores


def parse_pairwise(text: str) -> str | None:
    """"1", "2" or "tie" (which shown position won), else None. A bare 1/2/tie answer is accepted too."""
    obj = _json_object(text)
    v = obj.get("winner") if obj is not None else (text or "").strip().strip('."\'')
    v = str(v).strip().lower()
    v = {"summary 1": "1", "summary 2": "2", "1.0": "1", "2.0": "2"}.get(v, v)
    return v if v in ("1", "2", "tie") else None
