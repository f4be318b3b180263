"""The kinds of error a user can cause, each rendered as one clear line."""

import ast
import re
import reprlib

# Values in messages are cut: a refused value may be a 50 MB string or a list that expands to billions of items.
_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 3, 160, 40, 160
_SHORT.maxtuple = _SHORT.maxlist = _SHORT.maxdict = _SHORT.maxset = 8
MAX_VALUE_CHARS = 240


def short_repr(value) -> str:
    """``repr(value)`` cut to a readable length without building the whole repr first."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


class TicketbenchError(Exception):
    """Base class: the CLI prints these as a single line and exits with status 2."""


class ConfigError(TicketbenchError, ValueError):
    """A setting has a value that is not allowed.

    The message always names the key, the value that was given and what is allowed, so that a
    user can fix the config without reading code.
    """

    def __init__(self, key: str, value, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={short_repr(value)} is not allowed; {allowed}")


class ArtifactError(TicketbenchError, OSError):
    """A file the suite wrote (or should have written) is missing, truncated or of the wrong kind."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


class DataRootError(TicketbenchError, FileNotFoundError):
    """A dataset's files are not where the config says they are."""

    def __init__(self, dataset: str, path, how: str):
        self.dataset, self.path = dataset, str(path)
        super().__init__(f"dataset {dataset!r}: no data at {self.path}; {how}")


class DataFileError(DataRootError):
    """One file of a dataset is missing, empty, not an image, or cannot be decoded.

    Built from a single message string, unlike its base: a DataLoader worker cannot send the exception itself, so
    torch re-raises it in the main process as ``type(exc)(text)``, where text is a multi-line traceback, and falls
    back to a RuntimeError for any class that cannot be built from one string. This class takes that text and
    keeps only the original one-line message, so the user sees the same line with or without workers.
    Use ``DataFileError.about(...)`` to build one.

    Attributes:
        dataset: The dataset's registry name (None if the message is not in the ``about`` format).
        path: The file (None likewise).
    """

    def __init__(self, message: str):
        message = _original_line(str(message), type(self))
        self.dataset, self.path = _dataset_and_path(message)
        # Skips DataRootError.__init__, whose "no data at" wording does not fit a file that is there.
        TicketbenchError.__init__(self, message)

    @classmethod
    def about(cls, dataset: str, path, problem: str, how: str) -> "DataFileError":
        """``dataset 'NAME': file 'PATH' PROBLEM; HOW``, with line breaks in the parts flattened to spaces."""
        flat = " ".join(f"{problem}; {how}".split())
        return cls(f"dataset {dataset!r}: file {str(path)!r} {flat}")


def _original_line(message: str, kind: type) -> str:
    if "\n" not in message:
        return message
    # torch's text ends with the formatted traceback, whose last "module.Class: message" line is the original.
    marker = f"{kind.__module__}.{kind.__qualname__}: "
    lines = [line for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(marker):
            return line[len(marker):]
    return lines[-1] if lines else message


_STR_LITERAL = r"""('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_ABOUT = re.compile(rf"dataset {_STR_LITERAL}: file {_STR_LITERAL} ")


def _dataset_and_path(message: str) -> tuple[str | None, str | None]:
    """The dataset and path of an ``about`` message; quoting them with repr makes this exact for any path."""
    match = _ABOUT.match(message)
    if not match:
        return None, None
    return ast.literal_eval(match.group(1)), ast.literal_eval(match.group(2))
