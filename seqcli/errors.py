"""Errors a user can cause, and how they are shown.

Every mistake a user can make (a bad recipe, a missing file, an unknown plugin, a broken
checkpoint) raises a `SeqcliError`. The CLI turns it into one line on stderr and a non-zero
exit code; `seqcli --debug` shows the traceback instead.
"""

from __future__ import annotations


class SeqcliError(Exception):
    """Base class of every error caused by user input. `exit_code` is what the CLI exits with."""

    exit_code = 2
    label = "error"  # how the command line prefixes its message


class RecipeError(SeqcliError):
    """One or more problems in a recipe; each problem is one line `where: what`."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(SeqcliError):
    """A bad value for one recipe key, raised by a plugin constructor.

    `key` is the argument name; the recipe loader adds the file and line.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


class PluginError(SeqcliError):
    """A plugin that is unknown, claimed twice, fails to import or breaks its contract."""


class DataError(SeqcliError):
    """A data file that is missing, empty, binary, not UTF-8, or does not parse."""


class CheckpointError(SeqcliError):
    """A checkpoint or run directory that is missing, corrupt, or of the wrong kind."""


class TrainingError(SeqcliError):
    """Training cannot go on (for example the loss became NaN)."""

    exit_code = 1


def did_you_mean(word: str, options) -> str:
    """' (did you mean 'x'?)' for the closest option, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def one_of(options) -> str:
    return ", ".join(sorted(str(o) for o in options))
