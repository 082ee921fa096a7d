"""hstack and its kin, rot90, repeat_interleave, float_power, requires_grad_ and F.pad at
their edges (nan, ±inf, ±0, empty tensors, ties of modes and dims) and their errors, with
PyTorch 2.13 as the oracle: value, dtype, gradient of every input and every label."""

import math

import numpy as np
import pytest
from conftest import our_labels, run_torch, torch_labels

import gradcli
from gradcli.errors import GradcliError

NAN, INF = math.nan, math.inf
EDGE = np.array([NAN, INF, -INF, 0.0, -0.0, 1.0, -2.5])


def check(torch, program, inputs, dtype="float64", wrt=None):
    shape = np.shape(_values(program, inputs, dtype))
    seed = None if shape == () else np.random.default_rng(1).standard_normal(shape)
    ours = gradcli.evaluate(program, inputs, dtype=dtype, wrt=wrt, seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, wrt=wrt, dtype=dtype, seed=seed)
    theirs = out.detach().numpy()
    rtol = 1e-9 if dtype == "float64" else 2e-5
    assert ours.value.shape == theirs.shape
    assert str(ours.value.dtype) == str(out.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.value, theirs, rtol=rtol, equal_nan=True)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None, name
        else:
            np.testing.assert_allclose(ours.grad[name], g, rtol=rtol, equal_nan=True, err_msg=name)
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)
    return ours


def _values(program, inputs, dtype="float64"):
    """The output of a program that nothing differentiates."""
    from gradcli import engine
    from gradcli.api import quietly
    from gradcli.parser import parse

    arrays = {
        k: np.asarray(v, dtype=None if v.dtype.kind in "iub" else dtype) for k, v in inputs.items()
    }
    with quietly():
        nodes, out = engine.forward(parse(program), arrays, set(), dtype)
    return nodes[out].value


def refuses(program, inputs, expect):
    with pytest.raises(GradcliError) as ours:
        gradcli.evaluate(program, inputs)
    assert expect in str(ours.value)
    return ours.value


M = np.arange(6.0).reshape(2, 3) - 2.5
B = np.arange(24.0).reshape(2, 3, 4) / 7 - 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "program",
    [
        "torch.hstack([e, e * 2])",
        "torch.hstack([s, e, s])",
        "torch.vstack([e, e])",
        "torch.vstack([s])",
        "torch.dstack([e, e])",
        "torch.dstack([s, s])",
        "torch.dstack([A, A.T.T])",
        "torch.column_stack([e, e])",
        "torch.column_stack([s, s])",
        "torch.column_stack([A.T, A.T[:, :1]])",
        "torch.hstack([z, z])",
        "torch.vstack([z, z])",
        "torch.dstack([z])",
        "e.float_power(2)",
        "p.float_power(0.5)",
        "e.float_power(-1)",
        "torch.float_power(2, e)",
        "torch.float_power(e, e.flip(0))",
        "e.repeat_interleave(2)",
        "e.repeat_interleave(0)",
        "z.repeat_interleave(3)",
        "A.repeat_interleave(1, dim=-1)",
        "A.repeat_interleave(2, dim=0, output_size=4)",
        "A.rot90(5)",
        "A.rot90(-6, [1, 0])",
        "A.rot90(1, [-1, -2])",
        "B.rot90(2, [0, 2])",
        "(e.requires_grad_() * e).sum()",
        "e.requires_grad_(True) * 1",
        "F.pad(e, (2, 1), value=-0.0)",
        "F.pad(e, (1, 1), value=math.nan)",
        "F.pad(e, ())",
        "F.pad(s, ())",
        "F.pad(z, (1, 2))",
        "F.pad(B, (0, 0, 1, 1, 1, 0))",
        "F.pad(A, (-1, -2))",
        "F.pad(A, (-3, 1))",
        "F.pad(A[None], (2, 2), mode='reflect')",
        "F.pad(A, (0, 0), mode='reflect')",
        "F.pad(B, (3, 3, 2, 1), mode='reflect')",
        "F.pad(B[None], (1, 0, 2, 1, 1, 1), mode='reflect')",
        "F.pad(B, (5, 2, 1, 4), mode='replicate')",
        "F.pad(A, (-1, 3), mode='replicate')",
        "F.pad(A[:, None], (1, 2), 'replicate')",
        "F.pad(A[None], (3, 3), mode='circular')",
        "F.pad(A[None], (0, 0), mode='circular')",
        "F.pad(A[None], (-1, -1), mode='circular')",
        "F.pad(e[None, None], (7, 2), mode='circular')",
        "F.pad(B[None, None], (1, 1, 0, 3, 2, 1), mode='circular')",
        "F.pad(B, (1, 0, 1, 1), 'circular')",
    ],
)
def test_edges_as_pytorch(torch, program, dtype):
    inputs = {
        "e": EDGE,
        "s": np.array(-0.0),
        "z": np.zeros(0),
        "A": M,
        "B": B,
        "p": np.array([0.0, 0.25, INF, 1e-300]),
    }
    used = {k: v for k, v in inputs.items() if _uses(program, k)}
    check(torch, program, used, dtype)


def _uses(program, name):
    import re

    return re.search(rf"\b{name}\b", program) is not None


def test_float_power_of_an_integer_tensor_is_float64_without_grad(torch):
    ours = check(torch, "torch.float_power(x.long(), 2) * x", {"x": M[0]})
    assert ours.value.dtype == np.float64
    value = _values("torch.float_power(x.long(), 2)", {"x": np.array([3.7, -2.2])})
    assert value.dtype == np.float64 and list(value) == [9.0, 4.0]


def test_float_power_of_a_float64_input_copies_nothing(torch):
    ours = check(torch, "e.double().float_power(3)", {"e": EDGE}, dtype="float64")
    assert sorted(our_labels(ours).elements()) == ["AccumulateGrad", "PowBackward0"]


def test_float_power_in_forward_mode_and_hessian():
    x = np.array([0.5, 2.0, 3.0])
    j = gradcli.jacobian("x.float_power(3)", {"x": x})
    np.testing.assert_allclose(np.asarray(j["jacobian"]["x"]), np.diag(3 * x**2))
    h = gradcli.hessian("torch.float_power(x, 3).sum()", {"x": x})
    np.testing.assert_allclose(np.asarray(h["hessian"]["x"]["x"]), np.diag(6 * x))


@pytest.mark.parametrize(
    "program,inputs,ours",
    [
        ("torch.hstack([])", {}, "non-empty list"),
        ("torch.hstack([A, e])", {"A": M, "e": EDGE}, "sizes of tensors must match"),
        ("torch.vstack([A, e])", {"A": M, "e": EDGE}, "sizes of tensors must match"),
        ("e.rot90()", {"e": EDGE}, "expected total dims >= 2, but got total dims = 1"),
        ("A.rot90(1, [0, 0])", {"A": M}, "expected rotation dims to be different"),
        ("A.rot90(1, [0])", {"A": M}, "expected total rotation dims == 2"),
        ("A.rot90(1, [0, 2])", {"A": M}, "Dimension out of range"),
        ("e.repeat_interleave(-1)", {"e": EDGE}, "repeats can not be negative"),
        ("A.repeat_interleave(2, dim=2)", {"A": M}, "Dimension out of range"),
        ("A.repeat_interleave(2, 0, output_size=3)", {"A": M}, "output_size"),
        ("F.pad(A, (1,))", {"A": M}, "Padding length must be divisible by 2"),
        ("F.pad(A, (1, 1, 1, 1, 1, 1))", {"A": M}, "less than or equal to two times"),
        ("F.pad(A, (-2, -2))", {"A": M}, "length must be non-negative"),
        ("F.pad(A, (1, 1), mode='foo')", {"A": M}, "Unrecognised padding mode foo"),
        ("F.pad(A, (3, 0), mode='reflect')", {"A": M}, "Padding size should be less than"),
        ("F.pad(A, (1, 1), mode='reflect', value=1.0)", {"A": M}, "doesn't take in value"),
        ("F.pad(e, (1, 1), mode='replicate')", {"e": EDGE}, "is not supported for 1D input"),
        ("F.pad(B, (), mode='reflect')", {"B": B}, "Padding size 0 is not supported"),
        ("F.pad(A[None], (4, 0), mode='circular')", {"A": M}, "wrapping around more than once"),
        ("F.pad(A, (1, 1, 1, 1), mode='circular')", {"A": M}, "is not supported for 2D input"),
        ("F.pad(A[:, :0], (1, 1), mode='replicate')", {"A": M}, "other non-zero dimensions"),
        ("(A * 2).requires_grad_(False)", {"A": M}, "only change requires_grad flags of leaf"),
        ("A.long().requires_grad_()", {"A": M}, "only Tensors of floating point"),
    ],
)
def test_errors_as_pytorch(torch, program, inputs, ours):
    """PyTorch refuses each of these, and gradcli says so in (the gist of) its words."""
    with pytest.raises(Exception):  # noqa: B017 (PyTorch raises RuntimeError, IndexError, ...)
        run_torch(torch, f"({program}).sum()", inputs)
    error = refuses(program, inputs, ours)
    assert error.exit_code in (1, 2)


def test_circular_pad_that_would_read_unwritten_elements_is_refused():
    """(-1, 3) keeps 2 of 3 elements and then wraps 3: PyTorch copies overlapping memory."""
    error = refuses("F.pad(A[None], (-1, 3), mode='circular')", {"A": M}, "leaves undefined")
    assert error.exit_code == 1


def test_requires_grad_false_on_a_differentiated_input_is_refused_clearly():
    error = refuses("A.requires_grad_(False) * 2", {"A": M}, "detach")
    assert error.exit_code == 1


def test_requires_grad_false_on_an_input_not_differentiated_is_the_input():
    ours = gradcli.evaluate("(A.requires_grad_(False) * x).sum()", {"A": M, "x": M}, wrt=["x"])
    np.testing.assert_allclose(ours.grad["x"], M)


def test_pad_spellings_resolve():
    x = {"A": M}
    for spelled in ("F.pad", "torch.nn.functional.pad", "nn.functional.pad"):
        ours = gradcli.evaluate(f"{spelled}(A, (1, 1)).sum()", x)
        np.testing.assert_allclose(ours.grad["A"], np.ones_like(M))
    with pytest.raises(GradcliError):
        gradcli.evaluate("torch.pad(A, (1, 1))", x)
