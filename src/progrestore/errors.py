"""Errors caused by the user's input, reported as one clear line rather than a traceback."""


class ProgrestoreError(Exception):
    """Base class: bad parameters, unreadable inputs, failed downloads."""


class ParamsError(ProgrestoreError, ValueError):
    """A parameter that is missing, of the wrong type or out of range."""


class InputError(ProgrestoreError, ValueError):
    """An input file or folder that is missing, unreadable or inconsistent with the parameters."""


class DownloadError(ProgrestoreError, RuntimeError):
    """A download that could not be completed or verified."""


class CheckFailed(ProgrestoreError):
    """A check found what it looks for (a violated gate, a file that differs from dvc.lock): exit
    status 1, after its findings."""


QUOTE_HEAD = 60  # characters of a long text an error message quotes


def quote(text: str, head: int = QUOTE_HEAD) -> str:
    """``text`` quoted for an error message, cut to its first ``head`` characters and its length when it is
    longer: an error that echoes a 2,000-character prompt whole is a page, not a line."""
    if len(text) <= head:
        return repr(text)
    return f"{text[:head]!r}… ({len(text)} characters)"
