"""What any backend returns is checked before it is written.

A prompt must be one line of printable text, carry its task's theme, and fit the text encoder's budget
(the model profile's ``text_tokens``, its family's text encoder length). Without the tokenizer at hand the
count is a conservative estimate: every word and punctuation mark counted 1.5 times (T5's SentencePiece
splits English at about 1.3 pieces a word).
"""

from __future__ import annotations

import math
import re
import unicodedata

from progrestore import tasks


def estimate_tokens(text: str) -> int:
    return math.ceil(1.5 * len(re.findall(r"\w+|[^\w\s]", text))) + 1  # + end-of-sequence


def token_problem(text: str, budget: int) -> str | None:
    """Why ``text`` does not fit a text encoder of ``budget`` tokens (it would be cut silently), or None."""
    tokens = estimate_tokens(text)
    return f"too long (about {tokens} tokens > {budget})" if tokens > budget else None


def clean_reply(text: str) -> str:
    """Strip quotes and surrounding whitespace a chat model tends to add; inner text is kept as is."""
    return text.strip().strip('"').strip("'").strip()


def problem(text: str, task: str, budget: int) -> str | None:
    """Why ``text`` is not an acceptable prompt for ``task``, or None when it is."""
    if not text or not text.strip():
        return "empty"
    if "\n" in text or "\r" in text:
        return "more than one line"
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        return "control characters"
    if (too_long := token_problem(text, budget)) is not None:
        return too_long
    if not tasks.get(task).theme.carried_by(text):
        return f"does not carry the {task} theme ({', '.join(tasks.get(task).theme.keywords)})"
    return None
