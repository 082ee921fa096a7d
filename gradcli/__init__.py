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

__version__ = "0.2.0"
__all__ = [
    "evaluate",
    "Result",
    "jvp",
    "jacobian",
    "hessian",
    "check",
    "parse",
    "Program",
    "GradcliError",
    "ParseError",
    "UnknownNameError",
    "InputError",
    "EvaluationError",
    "ShapeError",
    "__version__",
]


# typing.TYPE_CHECKING without importing typing; mypy and pyright take it as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    # What type checkers see. At run time __getattr__ imports these on first use instead, so
    # that `import gradcli` (and the one-liner) does not pay for numpy and lark; it is hidden
    # from type checkers so that a misspelt name is still an error for them.
    from .api import Result, evaluate
    from .derivatives import check, hessian, jacobian, jvp
    from .parser import Program, parse
else:

    def __getattr__(name):
        if name in ("evaluate", "Result"):
            from . import api

            return getattr(api, name)
        if name in ("jvp", "jacobian", "hessian", "check"):
            from . import derivatives

            return getattr(derivatives, name)
        if name in ("parse", "Program"):
            from . import parser

            return getattr(parser, name)
        raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
