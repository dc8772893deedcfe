"""Refiners: a caption and a task in, one prompt that keeps the scene and the restoration theme out.

- ``template`` (offline default): "<caption, without its full stop>[,] <the task's clause>. Nothing moves.
  Static image." (a comma when the caption has clauses). Deterministic.
- ``openai``: any OpenAI-compatible chat-completions endpoint (ChatGPT, a local vLLM or Ollama server),
  base URL and model as parameters. The API key is read from the environment variable *named* by
  ``prompts.openai.api_key_env`` at call time and goes nowhere but the Authorization header. Timeouts,
  429 and 5xx answers are retried with exponential back-off (honouring Retry-After); a reply that is not a
  valid prompt is retried, then replaced by the template and counted; an endpoint still failing after the
  retries stops the stage (finished refinements are already cached).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from progrestore import tasks
from progrestore.errors import ProgrestoreError
from progrestore.prompts.validation import clean_reply, problem

STATIC_SUFFIX = "Nothing moves. Static image."  # what every prompt ends with: the clip shows no motion
INSTRUCTION = (
    "You write prompts for an image-to-video model that shows an image being restored. Given a caption "
    "of the scene and the restoration, answer with exactly one sentence (at most 40 words) that names the "
    "scene's main content and says how it is restored, in the style of 'A night street gradually brightens "
    "under lamplight.' or 'A blurred portrait becomes focused.'. Then add: 'Nothing moves. Static image.' "
    "Answer with the prompt only, on one line."
)


class RefinerUnavailable(ProgrestoreError):
    """The endpoint kept failing after every retry."""


class TemplateRefiner:
    name = "template"
    model = "template-v2"

    def settings_key(self, task: str) -> str:
        return f"{self.name}/{self.model}/{tasks.get(task).theme.clause}"

    def check(self) -> None:
        """Nothing to check: the template needs no service."""

    def refine(self, caption: str, task: str) -> tuple[str, bool]:
        """(prompt, replaced_by_template) — the template is never a replacement of itself."""
        scene = caption.strip().rstrip(".").strip() or "The scene"
        joint = ", " if "," in scene else " "  # "A dim scene, full of detail, gradually brightens ..."
        return f"{scene}{joint}{tasks.get(task).theme.clause}. {STATIC_SUFFIX}", False


@dataclass
class OpenAIRefiner:
    base_url: str
    model: str
    api_key_env: str
    budget: int  # the text encoder's sequence length: a longer reply is refused
    timeout_s: float = 30.0
    retries: int = 4
    backoff_s: float = 0.5
    temperature: float = 0.0
    name: str = "openai"

    def check(self) -> None:
        """Before any request: the key's variable must be set (its value is never shown)."""
        if not os.environ.get(self.api_key_env):
            raise RefinerUnavailable(
                f"prompts.openai.api_key_env: the environment variable {self.api_key_env} is not set; export "
                "it with the API key (any value for a local server that needs none)"
            )

    def settings_key(self, task: str) -> str:
        return f"{self.name}/{self.base_url}/{self.model}/{self.temperature}/{INSTRUCTION}/{tasks.get(task).theme.description}"

    def _request(self, caption: str, task: str) -> urllib.request.Request:
        body = {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": 120,
            "messages": [
                {"role": "system", "content": INSTRUCTION},
                {
                    "role": "user",
                    "content": f"Restoration: {tasks.get(task).theme.description}.\nCaption: {caption}",
                },
            ],
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        return urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def _wait(self, attempt: int, retry_after: str | None = None) -> None:
        delay = self.backoff_s * 2**attempt
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            delay = max(delay, float(retry_after))
        time.sleep(delay)

    def refine(self, caption: str, task: str) -> tuple[str, bool]:
        last_error = "no attempt"
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(self._request(caption, task), timeout=self.timeout_s) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                reply = clean_reply(payload["choices"][0]["message"]["content"])
            except urllib.error.HTTPError as err:
                last_error = f"HTTP {err.code}"
                if err.code == 429 or err.code >= 500:
                    self._wait(attempt, err.headers.get("Retry-After"))
                    continue
                raise RefinerUnavailable(
                    f"{self.base_url}: {self._http_cause(err.code)} (not retried)"
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, ssl.SSLError) as err:
                cause = err.reason if isinstance(err, urllib.error.URLError) else err
                if isinstance(cause, PERMANENT_FAILURES):  # retrying cannot help
                    raise RefinerUnavailable(f"{self.base_url}: {_describe(cause)} (not retried)") from None
                last_error = _describe(cause)
                self._wait(attempt)
                continue
            except (ValueError, KeyError, IndexError, TypeError):
                last_error = "a reply that is not a chat completion"
                continue
            why = problem(reply, task, self.budget)
            if why is None:
                return reply, False
            last_error = f"an invalid prompt ({why})"
        if last_error.startswith(("a reply", "an invalid")):
            return TemplateRefiner().refine(caption, task)[0], True
        raise RefinerUnavailable(
            f"{self.base_url}: still failing after {self.retries} retries ({last_error})"
        )

    def _http_cause(self, code: int) -> str:
        causes = {
            401: f"the API key in ${self.api_key_env} was refused (HTTP 401)",
            403: f"the key in ${self.api_key_env} may not use this model or endpoint (HTTP 403)",
            404: f"no such endpoint or model (HTTP 404): check prompts.openai.base_url and model ({self.model})",
        }
        return causes.get(code, f"HTTP {code}")


# failures that a retry cannot mend: nothing listens, the host name does not resolve, TLS is refused
PERMANENT_FAILURES = (ConnectionRefusedError, socket.gaierror, ssl.SSLError)


def _describe(cause: object) -> str:
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused (is the server running at that address and port?)"
    if isinstance(cause, socket.gaierror):
        return f"the host name does not resolve (DNS: {cause.strerror or cause})"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate is not trusted ({cause.verify_message})"
    if isinstance(cause, ssl.SSLError):
        return f"TLS failed ({cause.reason or cause})"
    if isinstance(cause, TimeoutError | socket.timeout):
        return "timed out"
    return f"{cause.__class__.__name__}: {cause}"
