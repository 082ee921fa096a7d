"""The one exception family. The CLI maps it to exit codes and JSON error objects."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any


class GradcliError(Exception):
    """Base of every error gradcli reports to a user. ``exit_code`` is the process's exit
    status: 2 for bad usage or input, 1 (EvaluationError) when the program cannot be evaluated."""

    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        position: tuple[int, int] | None = None,
        context: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position  # (line, column), 1-based, or None
        self.context = context  # source line(s) with a caret, or None
        self.hint = hint

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        pos = None
        if self.position is not None:
            pos = {"line": self.position[0], "column": self.position[1]}
        message = self.message if not self.hint else f"{self.message} ({self.hint})"
        return {"type": self.type, "message": message, "position": pos}


class ParseError(GradcliError):
    """The program text is not in the language."""


class UnknownNameError(GradcliError):
    """An unknown function, keyword argument or attribute."""


class InputError(GradcliError):
    """A malformed VALUE, JSON input, missing input or bad flag value."""


class EvaluationError(GradcliError):
    """The program parsed but could not be evaluated (exit 1)."""

    exit_code: int = 1


class ShapeError(EvaluationError):
    """Operand shapes do not fit the operator."""


class OutputError(GradcliError):
    """The answer could not be written: a full disk, a closed stdout (exit 1)."""

    exit_code: int = 1
