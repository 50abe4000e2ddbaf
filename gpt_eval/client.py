"""A small OpenAI-compatible chat-completions client: rate limits, retries with backoff, clear errors.

The API key lives only in this object's request headers. It is never put in a message, a log line or a
file; text that comes back from the server (error bodies) is scrubbed of it before it is shown.
"""

import email.utils
import http.client
import json
import logging
import math
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque

log = logging.getLogger("gpt_eval")


class GptEvalError(Exception):
    """An error with a message meant for the user; the CLI prints it and exits non-zero."""


class InputError(GptEvalError):
    pass


class AuthError(GptEvalError):
    pass


class EndpointError(GptEvalError):
    pass


class RequestError(GptEvalError):
    pass


class Stopped(GptEvalError):
    """Raised in the other threads once the run is stopping because of an error elsewhere."""


def redact(text: str, secret: str | None) -> str:
    # Short "keys" (e.g. "x" for a local server) would mangle ordinary text and are not secrets anyway.
    return text.replace(secret, "***") if secret and len(secret) >= 8 else text


def estimate_tokens(messages: list[dict], max_tokens: int) -> int:
    """Rough token count for the tokens-per-minute budget: ~4 characters per token, plus the answer budget."""
    return math.ceil(sum(len(m["content"]) for m in messages) / 4) + max_tokens


class RateLimiter:
    """At most `rpm` requests and `tpm` estimated tokens in any sliding `window` seconds, shared by all
    threads. 0/None disables a bound. A single request larger than `tpm` is let through alone."""

    def __init__(self, rpm=None, tpm=None, window=60.0, clock=time.monotonic):
        self.rpm, self.tpm, self.window, self.clock = rpm or None, tpm or None, window, clock
        self._events = deque()  # (time, tokens)
        self._lock = threading.Lock()

    def _wait_time(self, tokens: int) -> float:
        now = self.clock()
        while self._events and self._events[0][0] <= now - self.window:
            self._events.popleft()
        ok_req = self.rpm is None or len(self._events) < self.rpm
        ok_tok = (self.tpm is None or not self._events
                  or sum(t for _, t in self._events) + tokens <= self.tpm)
        if ok_req and ok_tok:
            self._events.append((now, tokens))
            return 0.0
        return max(self._events[0][0] + self.window - now, 0.001)  # when the oldest entry leaves the window

    def acquire(self, tokens: int, stop: threading.Event | None = None) -> bool:
        """Block until the request fits; False if `stop` was set meanwhile."""
        while True:
            with self._lock:
                wait = self._wait_time(tokens)
            if wait == 0.0:
                return True
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class ChatClient:
    def __init__(self, base_url, model, api_key=None, api_key_env="OPENAI_API_KEY", timeout=60.0, max_retries=5,
                 backoff_base=1.0, backoff_max=60.0, max_tokens=256, temperature=0.0, limiter=None, stop=None):
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self._api_key = api_key
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.max_tokens, self.temperature = max_tokens, temperature
        self.limiter = limiter or RateLimiter()
        self.stop = stop or threading.Event()

    def __repr__(self):  # never show the key, even in a debugger or a traceback's locals
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        # Exponential with jitter (so parallel threads do not retry in lockstep); a server's Retry-After wins
        # when it asks for longer.
        delay = min(self.backoff_max, self.backoff_base * 2 ** attempt) * random.uniform(0.5, 1.5)
        return max(delay, retry_after or 0.0)

    def _post(self, body: bytes):
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return resp.read()

    def complete(self, messages: list[dict]) -> tuple[str, dict]:
        """-> (answer text, usage). Retries 429, 5xx, timeouts and connection errors; raises GptEvalError."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens}).encode()
        tokens = estimate_tokens(messages, self.max_tokens)
        problem = ""
        for attempt in range(self.max_retries + 1):
            if self.stop.is_set() or not self.limiter.acquire(tokens, self.stop):
                raise Stopped("stopped")
            retry_after = None
            try:
                raw = self._post(body)
            except urllib.error.HTTPError as e:
                excerpt = redact(e.read()[:300].decode("utf-8", "replace"), self._api_key).strip()
                if e.code in (401, 403):
                    raise AuthError(
                        f"{self.url} rejected the API key (HTTP {e.code}). Check the key in the environment "
                        f"variable {self.api_key_env}" + ("" if self._api_key else " (it is not set)")) from None
                if e.code != 429 and e.code < 500:
                    hint = " (does --base_url end with /v1?)" if e.code == 404 else ""
                    raise RequestError(f"{self.url} answered HTTP {e.code}{hint}: {excerpt}") from None
                retry_after = retry_after_seconds(e.headers.get("Retry-After") if e.headers else None)
                problem = f"HTTP {e.code}"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout,
                    TimeoutError) as e:
                problem = f"connection error: {getattr(e, 'reason', e)}"
            else:
                return self._answer(raw)
            if attempt < self.max_retries:
                delay = self._backoff(attempt, retry_after)
                log.warning("%s; retry %d/%d in %.2fs", problem, attempt + 1, self.max_retries, delay)
                if self.stop.wait(delay):
                    raise Stopped("stopped")
        if problem.startswith("connection error"):
            raise EndpointError(f"could not reach the endpoint at {self.base_url} after {self.max_retries + 1} "
                                f"attempts ({problem}). Is the server running and --base_url right?")
        raise RequestError(f"{self.url} kept failing ({problem}) after {self.max_retries + 1} attempts")

    def _answer(self, raw: bytes) -> tuple[str, dict]:
        # A 200 with an odd body is returned as an (unparseable) answer rather than crashing the run.
        try:
            data = json.loads(raw)
            content = data["choices"][0]["message"].get("content") or ""
            return content, data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return redact(raw[:500].decode("utf-8", "replace"), self._api_key), {}
