"""Tensors made inside a program (torch.tensor, zeros, arange, linspace, ...): value, dtype and
shape as torch 2.13 gives them, under float32 and float64 defaults; they are constants."""

import numpy as np
import pytest
from conftest import _compiled, our_labels, torch_labels

import gradcli
from gradcli import api, engine
from gradcli.errors import GradcliError

MADE = [
    "torch.tensor(1)",
    "torch.tensor(2.5)",
    "torch.tensor(True)",
    "torch.tensor([1, 2, 3])",
    "torch.tensor([1, 2.5])",
    "torch.tensor([[1, 2], [3, 4]])",
    "torch.tensor([])",
    "torch.tensor([1, 2], dtype=torch.float64)",
    "torch.tensor([1.7, -2.7], dtype=torch.int64)",
    "torch.tensor([0, 2], dtype=torch.bool)",
    "torch.tensor(torch.inf)",
    "torch.zeros(2, 3)",
    "torch.zeros((2, 3))",
    "torch.zeros([])",
    "torch.zeros(0)",
    "torch.ones(3, dtype=torch.int32)",
    "torch.full((2, 2), 7)",
    "torch.full((2,), 2.5)",
    "torch.full((2,), True)",
    "torch.full((3,), 1.5, dtype=torch.float64)",
    "torch.arange(5)",
    "torch.arange(2, 7)",
    "torch.arange(7, 2, -2)",
    "torch.arange(0, 1, 0.1)",
    "torch.arange(0.5, 3)",
    "torch.arange(-1.5, 1.5, 0.25)",
    "torch.arange(5, dtype=torch.float32)",
    "torch.arange(0, 10, 3, dtype=torch.int8)",
    "torch.arange(0)",
    "torch.linspace(0, 1, 5)",
    "torch.linspace(-3.3, 7.1, 11)",
    "torch.linspace(-3.3, 7.1, 1001)",
    "torch.linspace(0.1, 0.7, 77, dtype=torch.float64)",
    "torch.linspace(1e6, -2.5, 333)",
    "torch.logspace(-3.3, 7.1, 101)",
    "torch.linspace(0, 1, 1)",
    "torch.linspace(0, 1, 0)",
    "torch.linspace(0, 10, 4, dtype=torch.int64)",
    "torch.linspace(1e-3, 1e3, 7, dtype=torch.float64)",
    "torch.logspace(0, 2, 3)",
    "torch.logspace(-2, 2, 9, base=2)",
    "torch.logspace(0, 1, 4, dtype=torch.float64)",
    "torch.eye(3)",
    "torch.eye(2, 3)",
    "torch.eye(2, dtype=torch.int64)",
    "torch.eye(0)",
]
LIKE = [
    "torch.zeros_like(x)",
    "torch.ones_like(x)",
    "torch.ones_like(x, dtype=torch.int64)",
    "torch.full_like(x, 2.5)",
    "torch.full_like(x, 3, dtype=torch.int32)",
    "torch.zeros_like(i)",
    "torch.full_like(i, 2.7)",
    "torch.ones_like(m)",
]


def _ours(program, inputs, dtype):
    with api.quietly():
        prog, arrays, wrt, cap, _ = api.prepare(program, inputs, None, dtype)
        nodes, out = engine.forward(prog, arrays, set(wrt), dtype, cap)
    return nodes[out]


def _theirs(torch, program, inputs, dtype):
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        code, out = _compiled(program)
        ns = {"torch": torch, **inputs}
        exec(code, ns)
        return ns[out]
    finally:
        torch.set_default_dtype(torch.float32)


def _same(ours, theirs):
    assert np.asarray(ours.value).dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.value, theirs.numpy())
    assert not ours.requires_grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program", MADE)
def test_made_tensors_are_torchs(torch, program, dtype):
    _same(_ours(program, {}, dtype), _theirs(torch, program, {}, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program", LIKE)
def test_like_tensors_are_torchs(torch, program, dtype):
    values = {"x": "1.5,-2,3", "i": "int64:3,-4,5", "m": "bool:true,false,true"}
    theirs = {
        "x": torch.tensor([1.5, -2, 3], dtype=getattr(torch, dtype), requires_grad=True),
        "i": torch.tensor([3, -4, 5]),
        "m": torch.tensor([True, False, True]),
    }
    _same(_ours(program, values, dtype), _theirs(torch, program, theirs, dtype).detach())


GRAD_PROGRAMS = [
    "(x * torch.arange(3)).sum()",
    "(x * torch.tensor([1, 2, 3])).sum()",
    "(x + torch.ones(3, dtype=torch.float64)).sum()",
    "(x * torch.linspace(0, 1, 3)).sum()",
    "(torch.eye(3) @ x).sum()",
    "(x * torch.full_like(x, 2)).sum()",
    "(x * torch.zeros_like(x) + x.double()).sum()",
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program", GRAD_PROGRAMS)
def test_made_tensors_in_gradients(torch, program, dtype):
    x = torch.tensor([1.5, -2, 3], dtype=getattr(torch, dtype), requires_grad=True)
    theirs = _theirs(torch, program, {"x": x}, dtype)
    theirs.backward()
    ours = gradcli.evaluate(program, {"x": "1.5,-2,3"}, dtype=dtype)
    assert ours.value.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.value, theirs.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.grad["x"], x.grad.numpy(), rtol=1e-6)
    assert our_labels(ours) == torch_labels(theirs)


REFUSED = [
    ("torch.zeros(-1)", "negative dimension"),
    ("torch.tensor(300, dtype=torch.uint8)", "cannot be converted to type uint8"),
    ("torch.tensor([1, -1], dtype=torch.uint8)", "cannot be converted to type uint8"),
    ("torch.arange(0, 1, 0)", "step must be nonzero"),
    ("torch.arange(0, 5, -1)", "upper bound and larger bound inconsistent with step sign"),
    ("torch.linspace(0, 1, -1)", "number of steps must be non-negative"),
    ("torch.tensor([[1, 2], [3]])", "rows of different lengths"),
    ("torch.zeros(2, dtype=torch.half)", "torch.float16 is not supported"),
    ("torch.zeros(2, dtype=2)", "dtype must be a dtype"),
]


@pytest.mark.parametrize("program,fragment", REFUSED)
def test_refused_creations(program, fragment):
    with pytest.raises(GradcliError) as info:
        _ours(program, {}, "float32")
    assert fragment in info.value.message


def test_empty_is_zeros():
    # PyTorch leaves torch.empty's memory as it was; gradcli gives zeros
    got = _ours("torch.empty(2, 3, dtype=torch.int32)", {}, "float32")
    assert got.shape == (2, 3) and got.value.dtype == np.int32 and not got.value.any()


RANDOM = [
    ("torch.rand(3)", {}),
    ("torch.randn(2, 2)", {}),
    ("torch.randn(20)", {}),
    ("torch.rand(3, dtype=torch.float64)", {}),
    ("torch.randint(0, 10, (3,))", {}),
    ("torch.randint(5, (4,))", {}),
    ("torch.randint(-3, 3, (2, 2), dtype=torch.int32)", {}),
    ("torch.randperm(5)", {}),
    ("torch.randperm(6, dtype=torch.float64)", {}),
    ("torch.rand_like(x)", {"x": "randn(2)"}),
    ("torch.randn_like(x) * x + torch.rand(2)", {"x": "randn(2)"}),
    ("y * torch.randn(2) + x", {"y": "randn(2)", "x": "rand(2)"}),  # (in order of use)
]


def _torch_inputs(torch, values, dtype):
    """The VALUE generators as torch calls, drawn in the order the program uses them."""
    out = {}
    for name, text in values.items():
        kind, _, size = text.partition("(")
        out[name] = getattr(torch, kind)(int(size.rstrip(")")), dtype=getattr(torch, dtype))
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program,values", RANDOM, ids=[p for p, _ in RANDOM])
def test_random_tensors_are_torchs_draws(torch, program, values, dtype):
    torch.manual_seed(1234)
    theirs = _theirs(torch, program, _torch_inputs(torch, values, dtype), dtype)
    with api.quietly():
        prog, arrays, wrt, cap, rng = api.prepare(program, values, None, dtype, 1234)
        nodes, out = engine.forward(prog, arrays, set(wrt), dtype, cap, rng=rng)
    ours = nodes[out]
    assert np.asarray(ours.value).dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(ours.value, theirs.numpy())


def test_random_tensors_need_one_evaluation():
    out = gradcli.evaluate("(x * torch.rand(2)).sum()", {"x": "1,2"}, random_seed=3)
    again = gradcli.evaluate("(x * torch.rand(2)).sum()", {"x": "1,2"}, random_seed=3)
    np.testing.assert_array_equal(out.grad["x"], again.grad["x"])
    from gradcli import derivatives

    with pytest.raises(GradcliError, match="needs one evaluation"):
        derivatives.jvp("(x * torch.rand(2)).sum()", {"x": "1,2"}, {"x": "1,0"})
