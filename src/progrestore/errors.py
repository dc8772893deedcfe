"""Errors caused by the user's input, reported as one clear line rather than a traceback."""

from __future__ import annotations

import errno
import os

# a write the machine refused (a full disk or quota, a read-only or size-limited file system)
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
WRITE_ERRNOS = DISK_FULL_ERRNOS | {errno.EROFS, errno.EFBIG}


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


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while a command ran (raised by the handlers of :mod:`progrestore.entry`).

    A ``BaseException``, as ``KeyboardInterrupt`` is, and no ``ProgrestoreError``: no ``except Exception``
    takes it for an ordinary failure, so it unwinds every ``with``/``finally`` (staging folders go) and
    ends as one line and exit status 128 + the signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def disk_full(err: BaseException | str) -> int | None:
    """ENOSPC or EDQUOT if ``err`` says the disk or the quota is full, else None: as an errno, or in the
    words of the C library that ffmpeg's log and safetensors' errors carry."""
    code = getattr(err, "errno", None)
    if code in DISK_FULL_ERRNOS:
        return code
    text = str(err)
    return next((code for code in sorted(DISK_FULL_ERRNOS) if os.strerror(code) in text), None)


def disk_full_error(code: int, path: str | os.PathLike[str]) -> OSError:
    """The ``OSError`` a full disk raises, naming the file the program was writing."""
    return OSError(code, os.strerror(code), os.fspath(path))
