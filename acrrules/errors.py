"""Domain exceptions and the exit codes they map to.

Every failure the user can cause is one of these; the CLI prints them as
`file:line:column: message` and never shows a traceback.
"""

from __future__ import annotations

from typing import NamedTuple

EXIT_OK = 0
EXIT_CHANGES = 1  # --check found drift, `tags diff` found changes
EXIT_REVIEW = 3  # `tags diff` found a change a person must look at (tagsdiff.TagWarning), changes or not
EXIT_INVALID = 2  # invalid input or usage
EXIT_WRITE = 2  # the output could not be written (nothing was left half-written)


class Diagnostic(NamedTuple):
    """One problem in one input file, at a position when the file has one."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        from .escape import terminal  # a file name is input too: one line, no escape sequence

        file = terminal(self.file)
        if self.line is None:
            return f"{file}: {self.message}"
        return f"{file}:{self.line}:{self.column}: {self.message}"


class AcrrulesError(Exception):
    """Base class: a problem to report to the user, with an exit code."""

    exit_code = EXIT_INVALID

    def lines(self) -> list[str]:
        return [str(self)]


class InputError(AcrrulesError):
    """Invalid input: one or more located diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(set(diagnostics), key=_diag_key)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def lines(self) -> list[str]:
        return [str(d) for d in self.diagnostics]


def _diag_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line or 0, d.column or 0, d.message)


class UsageError(AcrrulesError):
    """The command line itself is wrong."""


class WriteError(AcrrulesError):
    """Output could not be written; earlier outputs were left as they were."""

    exit_code = EXIT_WRITE


class AcrrulesWarning(UserWarning):
    """What a render says besides its files (the Python API issues these; the CLI prints them on
    stderr): a target it skipped and why, or the age of the Service Tags file."""


class FetchError(AcrrulesError):
    """`tags fetch` could not download or accept the file; nothing was written."""
