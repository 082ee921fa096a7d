"""The Python API: ``evaluate(expr, inputs, ...)`` -> Result. Never prints."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import engine
from .errors import InputError
from .inputs import check_dtype, check_names, shown, to_array
from .parser import Program, parse, short, without_gc

if TYPE_CHECKING:
    import contextlib

    from numpy.typing import ArrayLike


class Result:
    """An evaluated program: output value and label, gradients, and every node."""

    program: Program
    keep: Literal["all", "inputs"]
    nodes: list[engine.Node]  # in evaluation order; each node's args are earlier ids
    output: engine.Node
    dtype: str  # "float32" or "float64"
    wrt: list[str]  # input names that require grad, in program order
    grad: dict[str, np.ndarray | None]  # d(output)/d(input) per name in wrt

    def __init__(
        self,
        program: Program,
        nodes: list[engine.Node],
        output: int,
        wrt: list[str],
        dtype: str,
        keep: Literal["all", "inputs"] = "all",
    ) -> None:
        self.program = program
        self.keep = keep
        self.nodes = nodes
        self.output = nodes[output]
        self.dtype = dtype
        self.wrt = wrt  # input names that require grad, in program order
        by_name = {n.name: n for n in nodes if n.op == "input"}
        self.grad = {name: by_name[name].grad if name in by_name else None for name in wrt}

    @property
    def value(self) -> np.ndarray:
        return self.output.value

    @property
    def grad_fn(self) -> str | None:
        """The output's grad_fn: None for a leaf, as in PyTorch (its node row shows the
        AccumulateGrad that the backward graph holds for it)."""
        return None if self.output.op == "input" else self.output.label

    @property
    def shape(self) -> tuple[int, ...]:
        return self.output.shape

    def text(self, node: engine.Node) -> str:
        """The source text a node came from."""
        return self.program.source(self.program.nodes[node.src])

    def to_dict(self, nodes: bool = True, encode: Any = None) -> dict[str, Any]:
        """The JSON object of ``grad --json``; strict-JSON-ready values, or each value as
        ``encode(value)`` makes it."""
        encode = encode or json_value
        out = {
            "expr": self.program.text,
            "dtype": getattr(self.value, "dtype", np.dtype(self.dtype)).name,  # the output's
            "value": encode(self.value),
            "shape": list(self.shape),
            "grad_fn": self.grad_fn,
            "grad": {k: encode(v) for k, v in self.grad.items()},
        }
        if nodes:
            if self.keep != "all":
                raise ValueError("this result was evaluated with keep='inputs': no node values")
            out["nodes"] = [
                {
                    "id": n.id,
                    "name": n.name,
                    "text": self.text(n),
                    "op": n.op,
                    "grad_fn": n.label,
                    "inputs": list(n.args),
                    "shape": list(n.shape),
                    "value": encode(n.value),
                    "grad": encode(n.grad),
                }
                for n in self.nodes
            ]
        return out


def json_value(value: ArrayLike | None) -> Any:
    """A number or nested lists at full precision; non-finite numbers as strings."""
    if value is None:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else _special(value)
    arr = np.asarray(value)
    if arr.ndim == 0 and arr.dtype.kind == "f":
        v = float(arr)
        return v if math.isfinite(v) else _special(v)
    if arr.dtype.kind == "b":
        return arr.tolist()
    if np.isfinite(arr).all():
        return arr.tolist()
    obj = arr.astype(object)
    obj[np.isnan(arr)] = "nan"
    obj[arr == np.inf] = "inf"
    obj[arr == -np.inf] = "-inf"
    return obj.tolist()


def _special(x):
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


@without_gc  # parse and run in one pause: the first collection after it would walk the graph
def evaluate(
    expr: str | Program,
    inputs: Mapping[str, ArrayLike] | None = None,
    *,
    seed_vector: ArrayLike | None = None,
    wrt: str | Iterable[str] | None = None,
    dtype: str = "float32",
    random_seed: int | None = None,
    max_elements: int | None = None,
    detect_anomaly: bool = False,
    keep: Literal["all", "inputs"] = "all",
) -> Result:
    """Parse (unless given a Program), evaluate, and run reverse mode.

    ``inputs`` maps names to values: numbers, nested lists, numpy arrays, or VALUE strings
    (JSON, ``1,2,3``, ``randn(3)``...). ``wrt`` is a list or comma string of input names that
    require grad (default: all). ``seed_vector`` is the cotangent for a non-scalar output.
    ``keep="inputs"`` frees every intermediate value and adjoint as soon as the reverse pass
    is done with it (as PyTorch keeps only what backward needs): the result then has the
    output, the inputs and their gradients, but no per-node values.
    """
    if keep not in ("all", "inputs"):
        raise ValueError(f"keep must be 'all' or 'inputs', not {keep!r}")
    check_dtype(dtype)
    program = expr if isinstance(expr, Program) else parse(expr)
    program.once = program is not expr  # (only this call sees a program parsed here)
    with quietly():
        return run(
            program,
            inputs,
            seed_vector,
            wrt,
            dtype,
            random_seed,
            max_elements,
            detect_anomaly,
            keep,
        )


def quietly() -> contextlib.ExitStack:
    """Overflow, 0/0, log(0), the mean of nothing: inf and nan, as in PyTorch, and no
    warnings on stderr."""
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(np.errstate(all="ignore"))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore", RuntimeWarning)
    return stack


def prepare(
    expr: str | Program,
    inputs: Mapping[str, ArrayLike] | None,
    wrt: str | Iterable[str] | None,
    dtype: str,
    random_seed: int | Sequence[int] | None = None,
    max_elements: int | None = None,
) -> tuple[Program, dict[str, np.ndarray], list[str], int, Any]:
    """Parse (unless given a Program) and check the inputs: (program, name -> ndarray,
    names that require grad, the element cap, the random generator)."""
    check_dtype(dtype)
    program = expr if isinstance(expr, Program) else parse(expr)
    inputs = dict(inputs or {})
    check_names(inputs)  # every path passes here: -i files, batch records, the API
    missing = [n for n in program.inputs if n not in inputs]
    if missing:
        raise InputError(
            f"missing input{'s' if len(missing) > 1 else ''}: "
            f"{', '.join(short(m) for m in missing[:10])}"
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""),
            hint="give each a value: NAME=VALUE on the command line (e.g. "
            'x=1,2,3), or in "inputs" in a batch record',
        )
    cap = engine.MAX_ELEMENTS if max_elements is None else max_elements
    rng = _LazyRng(random_seed)
    # Every supplied input is a leaf, as in PyTorch: one the output does not use still
    # requires grad and reports a grad of None.
    names = list(program.inputs) + [n for n in inputs if n not in program.inputs]
    arrays = {n: to_array(inputs[n], dtype, n, rng, cap) for n in names}
    fixed = {n: a.dtype.name for n, a in arrays.items() if a.dtype.kind != "f"}  # int, bool
    return program, arrays, resolve_wrt(names, wrt, fixed), cap, rng


class _LazyRng:
    """PyTorch's CPU generator (gradcli.rng), made only if a randn()/rand() input asks for
    it (making one costs more than evaluating a small record)."""

    def __init__(self, seed):
        if seed is not None and not isinstance(seed, list):  # (batch's [seed, line]: checked)
            from .rng import check_seed  # (not per record: an import statement costs)

            seed = check_seed(seed)
        self.seed = seed
        self.rng = None

    def __getattr__(self, name):
        if self.rng is None:
            from .rng import Generator

            self.rng = Generator(self.seed)
        return getattr(self.rng, name)


@without_gc  # its forward and reverse loops make 10^6 objects in a long program
def run(
    program: Program,
    inputs: Mapping[str, ArrayLike] | None,
    seed_vector: ArrayLike | None = None,
    wrt: str | Iterable[str] | None = None,
    dtype: str = "float32",
    random_seed: int | Sequence[int] | None = None,
    max_elements: int | None = None,
    detect_anomaly: bool = False,
    keep: Literal["all", "inputs"] = "all",
) -> Result:
    """evaluate() without its checks of the arguments and its quietly(): for callers that
    parsed the program and hold quietly() themselves (batch enters it once for all records)."""
    program, arrays, wrt, cap, rng = prepare(program, inputs, wrt, dtype, random_seed, max_elements)
    nodes, out = engine.forward(
        program, arrays, set(wrt), dtype, cap, lean=keep == "inputs" and not detect_anomaly, rng=rng
    )
    text = (lambda node: program.source(program.nodes[node.src])) if detect_anomaly else None
    if detect_anomaly:
        engine.check_forward(nodes, text)
    seed = None if seed_vector is None else to_array(seed_vector, dtype, "seed vector", rng, cap)
    engine.backward(
        nodes, out, engine.make_seed(nodes[out], seed, dtype), dtype, text, free=keep == "inputs"
    )
    return Result(program, nodes, out, wrt, dtype, keep)


def resolve_wrt(
    inputs: Sequence[str], wrt: str | Iterable[str] | None, fixed: Mapping[str, str] | None = None
) -> list[str]:
    """The input names that require grad, in input order. ``fixed`` maps the integer and
    boolean inputs to their dtype: they never require grad (PyTorch refuses them)."""
    fixed = fixed or {}
    if wrt is None:
        return [n for n in inputs if n not in fixed]
    names = [w.strip() for w in wrt.split(",")] if isinstance(wrt, str) else list(wrt)
    unknown = [n for n in names if n and n not in inputs]
    if unknown:
        raise InputError(
            f"--wrt names {', '.join(shown(u) for u in unknown[:10])}, not an input",
            hint=f"the inputs are {', '.join(short(i) for i in list(inputs)[:10]) or 'none'}",
        )
    refused = [n for n in names if n in fixed]
    if refused:
        raise InputError(
            "only Tensors of floating point dtype can require gradients",
            hint=f"--wrt names {shown(refused[0])}, which is {fixed[refused[0]]}; leave it out",
        )
    return [n for n in inputs if n in names]
