"""Beyond backward(): forward mode (JVP), Jacobians, Hessians, and finite-difference checks.

Forward mode uses complex-step dual numbers. Every forward rule in the operator table runs
on x + i·h·t with h = 2^-500 (float64; 2^-66 for float32): h² is negligible, so the
real part is the value and the imaginary part divided by h is the exact directional
derivative J·t, as a dual-number tangent pass gives it, with no subtraction and so no
rounding error of finite differences. Branches (comparisons, |x|, max, relu, ...) are taken
on real parts, as the table's rules do. Running the *reverse* pass on such dual numbers
differentiates the gradient itself (forward-over-reverse): that is how Hessians come out,
exact, including the zero blocks of derivatives that are constant.

h is a power of two so that scaling by it is exact: the imaginary parts are then h times
the tangents computed with the same roundings as PyTorch's float64 passes, and a Hessian
entry whose terms cancel (Rosenbrock's 1200x² - 400y + 2 = 802 at (1, 1)) comes out as
PyTorch's double-backward gives it, not 801.9999999 (h = 1e-150 rounded every h·t).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import engine
from .api import prepare, quietly
from .errors import EvaluationError, InputError
from .inputs import to_array

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .parser import Program

STEP = {"float64": 2.0**-500, "float32": 2.0**-66}
COMPLEX = {"float64": "complex128", "float32": "complex64"}


def _forward(program, arrays, wrt, dtype, cap):
    return engine.forward(program, arrays, set(wrt), dtype, cap)


def _dual(arrays, dtype, direction):
    """Inputs as dual numbers: x + i·h·t for each (name -> tangent) in ``direction``."""
    h = STEP[dtype]
    out = {}
    for name, x in arrays.items():
        if x.dtype.kind not in "fc":  # an integer or bool input carries no tangent
            out[name] = x
            continue
        z = x.astype(COMPLEX[dtype])
        if name in direction:
            z = z + 1j * h * direction[name]
        out[name] = z
    return out


def _tangent(value, real_value, dtype):
    """The derivative carried in the imaginary part (nan where the value itself is nan)."""
    d = (np.imag(value) / STEP[dtype]).astype(dtype)
    return np.where(np.isnan(real_value), np.nan, d)


def jvp(
    expr: str | Program,
    inputs: Mapping[str, ArrayLike] | None,
    tangents: Mapping[str, ArrayLike] | None,
    *,
    wrt: str | Iterable[str] | None = None,
    dtype: str = "float32",
    random_seed: int | None = None,
    max_elements: int | None = None,
) -> dict[str, Any]:
    """J·t for the given tangents (inputs without one have tangent 0): two forward passes,
    one for the value, one on dual numbers."""
    with quietly():
        program, arrays, names, cap, rng = prepare(
            expr, inputs, wrt, dtype, random_seed, max_elements
        )
        nodes, out = _forward(program, arrays, names, dtype, cap)
        _tensor_output(nodes[out], "jvp")
        direction = {}
        for name, value in (tangents or {}).items():
            if name not in arrays:
                raise InputError(
                    f"--tangent names {name}, not an input",
                    hint=f"the inputs are {', '.join(arrays) or 'none'}",
                )
            if name not in names:
                raise InputError(
                    f"--tangent names {name}, which is not in --wrt",
                    hint=f"add {name} to --wrt, or drop its tangent",
                )
            t = to_array(value, dtype, f"tangent {name}", rng, cap)
            if t.shape != arrays[name].shape:
                raise EvaluationError(
                    f"the tangent for {name} has shape {list(t.shape)} but "
                    f"{name} has shape {list(arrays[name].shape)}"
                )
            direction[name] = t
        duals, dout = _forward(program, _dual(arrays, dtype, direction), (), COMPLEX[dtype], cap)
        value = nodes[out].value
        return {
            "value": value,
            "jvp": _tangent(duals[dout].value, value, dtype),
            "grad_fn": None if nodes[out].op == "input" else nodes[out].label,
            "shape": nodes[out].shape,
        }


def _tensor_output(node, what):
    """jvp, jacobian, hessian and check need a tensor output (as torch.autograd.functional
    does); a program whose output is a Python number (`3`, `y = 3; y`) depends on nothing."""
    if not isinstance(node.value, np.ndarray):
        raise EvaluationError(
            f"{what} needs a tensor output, but the program's output is the Python number "
            f"{node.value:g}: it does not depend on any input",
            hint="use an input in the output (e.g. x * 0 + 3), or make a tensor",
        )


def _check_blocks(shapes, what, cap):
    """Refuse a Jacobian or Hessian block over the element cap before any is allocated."""
    for name, shape in shapes:
        engine.check_size(shape, cap, lambda name=name: f"the {what} block for {name}")


def _unit(shape, index, dtype):
    t = np.zeros(shape, dtype=dtype)
    t[index] = 1
    return t


def jacobian(
    expr: str | Program,
    inputs: Mapping[str, ArrayLike] | None,
    *,
    wrt: str | Iterable[str] | None = None,
    dtype: str = "float32",
    random_seed: int | None = None,
    max_elements: int | None = None,
    mode: Literal["forward", "reverse"] | None = None,
) -> dict[str, Any]:
    """The full Jacobian of the output for each input that requires grad, shaped
    output.shape + input.shape: by forward passes (one per input element) or reverse passes
    (one per output element), whichever are fewer, unless ``mode`` says."""
    with quietly():
        program, arrays, names, cap, _ = prepare(
            expr, inputs, wrt, dtype, random_seed, max_elements
        )
        nodes, out = _forward(program, arrays, names, dtype, cap)
        _tensor_output(nodes[out], "a Jacobian")
        oshape = nodes[out].shape
        n_in = sum(arrays[n].size for n in names)
        n_out = int(np.prod(oshape))
        mode = mode or ("forward" if n_in <= n_out else "reverse")
        _check_blocks([(n, oshape + arrays[n].shape) for n in names], "Jacobian", cap)
        blocks = {n: np.zeros(oshape + arrays[n].shape, dtype=dtype) for n in names}
        if mode == "forward":
            for name in names:
                for idx in np.ndindex(arrays[name].shape):
                    direction = {name: _unit(arrays[name].shape, idx, dtype)}
                    duals, dout = _forward(
                        program, _dual(arrays, dtype, direction), (), COMPLEX[dtype], cap
                    )
                    col = _tangent(duals[dout].value, nodes[out].value, dtype)
                    blocks[name][(Ellipsis,) + idx] = col
            passes = n_in
        else:
            by_name = {n.name: n for n in nodes if n.op == "input"}
            if nodes[out].requires_grad:
                for idx in np.ndindex(oshape):
                    engine.backward(nodes, out, _unit(oshape, idx, dtype), dtype)
                    for name in names:
                        g = by_name[name].grad if name in by_name else None
                        if g is not None:
                            blocks[name][idx] = g
            passes = n_out
        return {
            "value": nodes[out].value,
            "jacobian": blocks,
            "mode": mode,
            "passes": passes,
            "grad_fn": None if nodes[out].op == "input" else nodes[out].label,
        }


def hessian(
    expr: str | Program,
    inputs: Mapping[str, ArrayLike] | None,
    *,
    wrt: str | Iterable[str] | None = None,
    dtype: str = "float32",
    random_seed: int | None = None,
    max_elements: int | None = None,
) -> dict[str, Any]:
    """Every block {a: {b: ∂²out/∂a∂b}} of a scalar output: one reverse pass on dual numbers
    per element of b, i.e. the gradient differentiated (forward-over-reverse)."""
    with quietly():
        program, arrays, names, cap, _ = prepare(
            expr, inputs, wrt, dtype, random_seed, max_elements
        )
        nodes, out = _forward(program, arrays, names, dtype, cap)
        _tensor_output(nodes[out], "a Hessian")
        if nodes[out].shape != ():
            raise EvaluationError(
                "a Hessian needs a scalar output",
                hint=f"the output has shape {list(nodes[out].shape)}; "
                f"reduce it, e.g. with sum(...)",
            )
        pairs = [(f"{a}, {b}", arrays[a].shape + arrays[b].shape) for a in names for b in names]
        _check_blocks(pairs, "Hessian", cap)
        blocks = {
            a: {b: np.zeros(arrays[a].shape + arrays[b].shape, dtype=dtype) for b in names}
            for a in names
        }
        if nodes[out].requires_grad:
            cdtype = COMPLEX[dtype]
            for b in names:
                for idx in np.ndindex(arrays[b].shape):
                    direction = {b: _unit(arrays[b].shape, idx, dtype)}
                    duals, dout = _forward(
                        program, _dual(arrays, dtype, direction), names, cdtype, cap
                    )
                    engine.backward(duals, dout, np.ones((), dtype=cdtype), cdtype)
                    by_name = {n.name: n for n in duals if n.op == "input"}
                    for a in names:
                        g = by_name[a].grad if a in by_name else None
                        if g is not None:
                            blocks[a][b][(Ellipsis,) + idx] = np.imag(g) / STEP[dtype]
        return {"value": nodes[out].value, "hessian": blocks, "grad_fn": nodes[out].label}


SWEEP = [10.0**-k for k in range(1, 13)]
MAX_EVALUATIONS = 100_000  # program evaluations one check may make, unless told otherwise


def _plural(n, what):
    return f"{n:,} {what}{'' if n == 1 else ('es' if what.endswith('s') else 's')}"


def _check_work(nodes, out, arrays, names, sweep, cap):
    """Refuse, before starting, a check that would evaluate the program more than ``cap``
    times: one forward-mode pass per input element, one reverse pass per output element,
    and two evaluations per input element for each finite-difference step."""
    n_in = sum(arrays[n].size for n in names)
    n_out = math.prod(nodes[out].shape) if nodes[out].requires_grad else 0
    fd = 2 * n_in * (1 + len(SWEEP) * bool(sweep))
    total = n_in + n_out + fd
    if total > cap:
        parts = (
            _plural(n_in, "forward-mode pass"),
            _plural(n_out, "reverse pass"),
            _plural(fd, "finite-difference evaluation"),
        )
        raise EvaluationError(
            f"check would evaluate the program {total:,} times ({', '.join(parts)}), "
            f"over the limit of {cap:,}",
            hint="raise the limit with --max-evaluations, or check fewer inputs with --wrt",
        )


def _as_given(arrays) -> dict[str, Any]:
    """Prepared arrays as inputs to prepare again: an integer or bool array keeps its dtype
    as a typed value (an untyped array is read as floating point)."""
    return {
        n: a if a.dtype.kind in "fc" else {"dtype": a.dtype.name, "data": a.tolist()}
        for n, a in arrays.items()
    }


def check(
    expr: str | Program,
    inputs: Mapping[str, ArrayLike] | None,
    *,
    wrt: str | Iterable[str] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    random_seed: int | None = None,
    max_elements: int | None = None,
    sweep: bool = False,
    max_evaluations: int | None = None,
) -> dict[str, Any]:
    """Reverse- and forward-mode Jacobians against central finite differences, in float64
    (as torch.autograd.gradcheck): max absolute and relative error per input, ok or not.
    ``sweep`` adds the finite-difference error for steps 1e-1 .. 1e-12. A check that would
    evaluate the program more than ``max_evaluations`` times (default MAX_EVALUATIONS) is
    refused before it starts."""
    dtype = "float64"
    with quietly():
        program, arrays, names, cap, _ = prepare(
            expr, inputs, wrt, dtype, random_seed, max_elements
        )
        nodes, out = _forward(program, arrays, names, dtype, cap)
        _tensor_output(nodes[out], "check")
        limit = MAX_EVALUATIONS if max_evaluations is None else max_evaluations
        _check_work(nodes, out, arrays, names, sweep, limit)
        given = _as_given(arrays)
        rev = jacobian(program, given, wrt=names, dtype=dtype, mode="reverse", max_elements=cap)
        fwd = jacobian(program, given, wrt=names, dtype=dtype, mode="forward", max_elements=cap)

        def value_at(shifted):
            nodes, out = _forward(program, shifted, (), dtype, cap)
            return np.asarray(nodes[out].value, dtype=np.float64)

        def numeric(step):
            blocks = {}
            for name in names:
                x = arrays[name]
                cols = np.zeros(np.shape(rev["value"]) + x.shape)
                for idx in np.ndindex(x.shape):
                    up, down = dict(arrays), dict(arrays)
                    up[name], down[name] = x.copy(), x.copy()
                    up[name][idx] += step
                    down[name][idx] -= step
                    cols[(Ellipsis,) + idx] = (value_at(up) - value_at(down)) / (2 * step)
                blocks[name] = cols
            return blocks

        num = numeric(eps)
        report, ok = {}, True
        for name in names:
            entry = {}
            for label, analytic in (("reverse", rev), ("forward", fwd)):
                a, n = analytic["jacobian"][name], num[name]
                diff = np.abs(a - n)
                bad = ~(diff <= atol + rtol * np.abs(n))
                entry[label] = {
                    "max_abs_error": float(diff.max()) if diff.size else 0.0,
                    "max_rel_error": float((diff / np.maximum(np.abs(n), 1e-300)).max())
                    if diff.size
                    else 0.0,
                    "ok": not bad.any(),
                }
                ok &= not bad.any()
            report[name] = entry
        out = {
            "ok": bool(ok),
            "eps": eps,
            "atol": atol,
            "rtol": rtol,
            "value": rev["value"],
            "inputs": report,
        }
        if sweep:
            rows = []
            for step in SWEEP:
                approx = numeric(step)
                err = (
                    max(
                        (
                            float(np.abs(approx[n] - rev["jacobian"][n]).max())
                            if approx[n].size
                            else 0.0
                        )
                        for n in names
                    )
                    if names
                    else 0.0
                )
                rows.append({"step": step, "max_abs_error": err})
            out["sweep"] = rows
        return out
