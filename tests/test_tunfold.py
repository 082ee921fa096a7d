"""Tensor.unfold(dimension, size, step), the sliding-window view, with PyTorch 2.13 as the
oracle: values, gradients (each window's gradient summed back), labels, layout and errors."""

import numpy as np
import pytest
from conftest import our_labels, run_torch, torch_labels

import gradcli
from gradcli.errors import GradcliError

X = [1.5, -2.0, 0.0, 3.0, -0.5, 2.5, 4.0]
A = [[1.0, -2.0, 0.5, 3.0], [3.0, 0.25, -4.0, 1.5], [-1.0, 2.0, 0.0, -0.5]]
B = np.arange(30.0).reshape(2, 3, 5) / 7.0 - 2.0
INPUTS = {"x": X, "A": A, "B": B, "s": 1.25}


def check(torch, program, dtype="float64"):
    ours = gradcli.evaluate(program, INPUTS, dtype=dtype)
    out, grads = run_torch(torch, program, INPUTS, dtype=dtype)
    theirs = out.detach().numpy()
    assert ours.value.shape == theirs.shape
    assert str(ours.value.dtype) == str(out.dtype).removeprefix("torch.")
    rtol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(ours.value, theirs, rtol=rtol, atol=0)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None, name
        else:
            np.testing.assert_allclose(ours.grad[name], g, rtol=rtol, atol=0, err_msg=name)
    assert our_labels(ours) == torch_labels(out)
    return ours


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "program",
    [
        "(x.unfold(0, 3, 1) * x.unfold(0, 3, 1).exp()).sum()",  # overlapping windows
        "(x.unfold(0, 2, 3) ** 2).sum()",  # step > size: some positions in no window
        "(x.unfold(0, 2, 2) * x[:6].unfold(0, 2, 2)).sum()",  # one element left over
        "(A.unfold(1, 3, 1).sin() * A.unfold(1, 3, 1)).sum()",
        "(A.unfold(0, 2, 1) ** 3).sum()",
        "(A.unfold(-1, 4, 1) * 2).sum()",  # one window: the whole dimension
        "(B.unfold(1, 2, 1).unfold(-2, 3, 2) ** 2).sum()",  # an unfold of an unfold
        "(B.unfold(2, 0, 2) + 1).sum() + B.sum()",  # windows of length 0
        "(s.unfold(0, 1, 1) * 3).sum()",  # 0-d: a window of one, no new dimension
        "(s.unfold(-1, 1, 5) ** 2).sum()",
        "s.unfold(0, 0, 1).sum() + s",  # 0-d, size 0
        "A[:0].unfold(1, 2, 1).sum() + A.sum()",  # empty: no windows
        "A[:, :0].unfold(1, 0, 1).sum() + A.sum()",  # an empty dimension, one empty window
        "x.unfold(dimension=0, size=3, step=2).pow(2).sum()",
        "x.unfold(0, 3, 1).contiguous().sum()",  # overlapping: a strided view, cloned
        "x[:6].unfold(0, 3, 3).contiguous().sum()",  # side by side: contiguous already
        "(x.unfold(0, 3, 1).reshape(-1) ** 2).sum()",
    ],
)
def test_unfold_matches_pytorch(torch, program, dtype):
    check(torch, program, dtype)


@pytest.mark.parametrize(
    "expr,shape",
    [
        ("x.unfold(0, 2, 1)", (6, 2)),
        ("x.unfold(0, 7, 1)", (1, 7)),
        ("x.unfold(0, 3, 10)", (1, 3)),
        ("x.unfold(0, 0, 1)", (8, 0)),
        ("A.unfold(0, 2, 1)", (2, 4, 2)),
        ("B.unfold(-1, 2, 2)", (2, 3, 2, 2)),
        ("s.unfold(0, 1, 1)", (1,)),
        ("s.unfold(0, 0, 1)", (0,)),
    ],
)
def test_unfold_shape_is_pytorch_s(torch, expr, shape):
    leaves = {k: torch.tensor(np.asarray(v, dtype="float64")) for k, v in INPUTS.items()}
    out = eval(expr, {}, {k: t.requires_grad_() for k, t in leaves.items()})  # a non-scalar
    ours = gradcli.evaluate(expr, INPUTS, dtype="float64", seed_vector=np.ones(shape))
    np.testing.assert_array_equal(ours.value, out.detach().numpy())
    assert ours.value.shape == tuple(out.shape) == shape
    assert ours.grad_fn == type(out.grad_fn).__name__ == "UnfoldBackward0"


@pytest.mark.parametrize(
    "expr",
    [
        "x.unfold(0, 8, 1)",  # larger than the dimension
        "s.unfold(0, 2, 1)",  # a 0-d tensor's dimension has length 1
        "x.unfold(0, 2, 0)",
        "x.unfold(0, 2, -1)",
        "x.unfold(0, -1, 1)",
        "x.unfold(1, 2, 1)",
        "A.unfold(-3, 2, 1)",
        "s.unfold(1, 1, 1)",
        "x.unfold(3, 9, 0)",  # the dimension is checked first
        "x.unfold(0, 9, 0)",  # then the size
    ],
)
def test_unfold_errors_are_pytorch_s(torch, expr):
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        run_torch(torch, expr, INPUTS)
    with pytest.raises(GradcliError) as ours:
        gradcli.evaluate(expr, INPUTS)
    assert str(theirs.value) in str(ours.value)


@pytest.mark.parametrize("expr", ["x.unfold(0, 2.5, 1)", "x.unfold(0.5, 2, 1)", "x.unfold(0, 2)"])
def test_unfold_needs_three_integers(expr):
    with pytest.raises(GradcliError):
        gradcli.evaluate(expr, INPUTS)


def test_torch_has_no_unfold_function(torch):
    """PyTorch's torch.unfold does not exist; F.unfold is im2col, a row of its own."""
    assert not hasattr(torch, "unfold")
    with pytest.raises(GradcliError):
        gradcli.evaluate("torch.unfold(x, 0, 2, 1).sum()", INPUTS)
