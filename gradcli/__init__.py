"""gradcli: a command-line gradient calculator with PyTorch's labels and numbers.

``gradcli.evaluate(expr, inputs, *, seed_vector=None, wrt=None, dtype="float32")`` is the
Python API; importing the package is cheap (numpy loads on first use).
"""

from .errors import (
    EvaluationError,
    GradcliError,
    InputError,
    ParseError,
    ShapeError,
    UnknownNameError,
)

__version__ = "0.1.0"
__all__ = [
    "evaluate",
    "jvp",
    "jacobian",
    "hessian",
    "check",
    "parse",
    "GradcliError",
    "ParseError",
    "UnknownNameError",
    "InputError",
    "EvaluationError",
    "ShapeError",
    "__version__",
]


def __getattr__(name):
    if name == "evaluate":
        from .api import evaluate

        return evaluate
    if name in ("jvp", "jacobian", "hessian", "check"):
        from . import derivatives

        return getattr(derivatives, name)
    if name == "parse":
        from .parser import parse

        return parse
    raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
