"""The two kinds of error a user can cause, each rendered as one clear line."""


class TicketbenchError(Exception):
    """Base class: the CLI prints these as a single line and exits with status 2."""


class ConfigError(TicketbenchError, ValueError):
    """A setting has a value that is not allowed.

    The message always names the key, the value that was given and what is allowed, so that a
    user can fix the config without reading code.
    """

    def __init__(self, key: str, value, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed; {allowed}")


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
