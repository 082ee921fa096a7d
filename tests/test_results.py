"""Several results (tuples and torch.return_types), order statistics and scans, against
PyTorch 2.13 in float32 and float64 -- values, gradients, labels -- at NaN, ±inf, ±0, ties
and empty tensors, plus finite differences, PyTorch's errors and the graph's rows."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import our_labels, run_torch, torch_labels

import gradcli
from gradcli import derivatives as D
from gradcli.cli import main as cli

nan, inf = float("nan"), float("inf")
TIES = [2.0, 1.0, 2.0, 1.0, 3.0, 3.0, 0.0, -0.0]
WITH_NAN = [2.0, nan, 1.0, nan, 3.0, 1.0]
MIXED = [[3.0, -inf, 2.0], [1.0, 5.0, inf], [0.5, -0.0, 0.0]]
A = [[0.3, -1.2, 2.5, 0.7], [1.1, 0.4, -0.6, 2.2], [-0.9, 1.8, 0.2, -1.5]]
V = [0.3, -1.2, 2.5, 0.7, 1.1]

# (program, inputs): each output is reduced to something differentiable so PyTorch can
# run backward; the seed is ones for a non-scalar output
PROGRAMS = [
    # unpacking, indexing and fields
    ("v, i = x.max(dim=0); v", {"x": A}),
    ("values, indices = torch.max(x, 1, keepdim=True); values * 2", {"x": A}),
    ("x.min(dim=-1)[0] + x.min(dim=-1).values", {"x": A}),
    ("a, b = torch.split(x, 2); a.sum() * b.sum()", {"x": [0.3, 1.5, -2.0, 0.5]}),
    ("p, q, r = x.split(2); p.sum() + r.sum()", {"x": V}),
    ("torch.split(x, 2)[-1]", {"x": V}),
    ("torch.split(x, [1, 3], dim=1)[1]", {"x": A}),
    ("torch.cat(x.split(2)) * x", {"x": V}),
    ("torch.cat(torch.split(x, [2, 2], 1), dim=1)", {"x": A}),
    ("s, m = torch.std_mean(x); s * m", {"x": V}),
    ("s, m = torch.std_mean(x); s + m", {"x": [1.5]}),  # no degrees of freedom: nan
    ("v, m = torch.var_mean(x, correction=3); v * m", {"x": [1.0, 2.0]}),
    ("v, m = torch.var_mean(x, 1, correction=3); v * m", {"x": A}),
    ("torch.std_mean(x, dim=0)[0]", {"x": [[1.0, 1.0], [1.0, 1.0]]}),  # std 0
    ("torch.stack(torch.std_mean(x, dim=0))", {"x": A}),
    ("s, m = torch.std_mean(x, 1, True); s + m", {"x": A}),
    ("torch.std_mean(x, correction=0)[0]", {"x": V}),
    ("v, m = torch.var_mean(x, 1); v * m", {"x": A}),
    ("torch.var_mean(x, unbiased=False)[0]", {"x": V}),
    ("torch.var_mean(x, dim=(0, 1), correction=2)[0]", {"x": A}),
    ("lo, hi = torch.aminmax(x); lo * hi", {"x": TIES}),
    ("r = x.aminmax(dim=1); r.min * 10 + r.max", {"x": [[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]]}),
    ("x0, x1, x2 = x; x0 * x2", {"x": A}),  # a tensor unpacks along dim 0
    ("a, b = (x, x * 2); a * b", {"x": V}),
    ("c = x.chunk(3); c[0].sum() + c[2].sum()", {"x": V}),
    ("torch.chunk(x, 2, dim=1)[1]", {"x": A}),
    ("torch.tensor_split(x, 3)[2]", {"x": V}),
    ("torch.tensor_split(x, [1, 3], dim=1)[1]", {"x": A}),
    ("torch.cat(torch.tensor_split(x, [1, 9]))", {"x": V}),
    ("torch.hsplit(x, 2)[1]", {"x": A}),
    ("torch.vsplit(x, [1])[1]", {"x": A}),
    ("torch.unbind(x, 1)[3]", {"x": A}),
    ("torch.stack(x.unbind(), dim=1)", {"x": A}),
    ("X, Y = torch.meshgrid(x, y, indexing='ij'); X * Y", {"x": [1.0, 2.0, 3.0], "y": [0.5, -1.0]}),
    ("X, Y = torch.meshgrid([x, y], indexing='xy'); X * Y", {"x": [1.0, 2.0, 3.0], "y": [0.5, -1]}),
    # order statistics (ties: the gradient goes where PyTorch's index points)
    ("x.sort().values * x", {"x": TIES}),
    ("v, i = x.sort(descending=True); v * x", {"x": TIES}),
    ("torch.sort(x, dim=0, stable=True)[0]", {"x": A}),
    ("torch.msort(x)", {"x": A}),
    ("x.topk(3).values", {"x": V}),
    ("torch.topk(x, 2, dim=0, largest=False, sorted=True)[0]", {"x": A}),
    ("x.kthvalue(2).values", {"x": V}),
    ("torch.kthvalue(x, 2, 0, True)[0]", {"x": A}),
    ("x.median()", {"x": TIES}),
    ("x.median()", {"x": [1.0, 2.0, 2.0, 3.0]}),
    ("x.median(0).values", {"x": TIES}),
    ("torch.median(x, dim=1, keepdim=True)[0]", {"x": A}),
    ("x.median()", {"x": WITH_NAN}),
    ("x.median(dim=0).values", {"x": WITH_NAN}),
    ("x.nanmedian()", {"x": WITH_NAN}),
    ("x.nanmedian(0).values", {"x": WITH_NAN}),
    ("x.mode().values", {"x": [1.0, 2.0, 2.0, 1.0, 3.0]}),
    ("x.mode(0).values", {"x": [[1.0, 2.0], [1.0, 3.0], [4.0, 3.0]]}),
    ("x.cummax(0).values", {"x": TIES}),
    ("x.cummin(0).values", {"x": TIES}),
    ("torch.cummax(x, 1)[0]", {"x": A}),
    ("x.cummax(0).values", {"x": WITH_NAN}),
    ("x.cummin(dim=0).values", {"x": WITH_NAN}),
    ("x.max(0).values", {"x": WITH_NAN}),
    ("x.min(1).values", {"x": MIXED}),
    ("x.sort(1).values", {"x": MIXED}),
    ("x.sort(descending=True).values", {"x": WITH_NAN}),
    ("x.aminmax().max", {"x": MIXED}),
    # scans and NaN-aware reductions
    ("torch.cumprod(x, 0)", {"x": [2.0, 0.0, 3.0, 0.0, 4.0]}),
    ("x.cumprod(1)", {"x": [[1.5, 0.0, -2.0], [0.0, 2.0, 3.0]]}),
    ("x.cumprod(0)", {"x": V}),
    ("torch.logcumsumexp(x, 0)", {"x": V}),
    ("x.logcumsumexp(1)", {"x": A}),
    ("x.logcumsumexp(0)", {"x": [-800.0, 0.0, 800.0, -inf]}),
    ("torch.nansum(x)", {"x": WITH_NAN}),
    ("x.nansum(1)", {"x": [[1.0, nan], [nan, nan]]}),
    ("torch.nanmean(x)", {"x": WITH_NAN}),
    ("x.nanmean(dim=1, keepdim=True)", {"x": [[1.0, nan, 3.0], [2.0, 4.0, nan]]}),
    ("torch.diff(x)", {"x": V}),
    ("x.diff(n=2, dim=0)", {"x": A}),
    ("torch.diff(x, prepend=y, append=y * 2)", {"x": V, "y": [1.0, -1.0]}),
    ("x.diff(n=9)", {"x": V}),
    ("torch.quantile(x, 0.3)", {"x": TIES}),
    ("x.quantile(0.5, dim=1)", {"x": A}),
    ("torch.quantile(x, 0.0, 0, True, interpolation='higher')", {"x": A}),
    ("torch.quantile(x, 1.0, interpolation='lower')", {"x": V}),
    ("torch.quantile(x, 0.5)", {"x": WITH_NAN}),
    ("torch.quantile(x, 0.25, dim=1)", {"x": [[1.0, nan, 3.0], [2.0, 4.0, 0.5]]}),
    ("torch.nanquantile(x, 0.4)", {"x": WITH_NAN}),
    (
        "x.nanquantile(0.7, dim=0, interpolation='nearest')",
        {"x": [[1.0, nan], [nan, nan], [3.0, 2.0]]},
    ),
    ("torch.quantile(x, 0.35)", {"x": 2.5}),
    ("torch.quantile(x, 0.9, interpolation='midpoint')", {"x": MIXED}),
    ("g0, g1 = torch.gradient(x); g0 * g1", {"x": A}),
    ("torch.gradient(x, dim=1, edge_order=2)[0]", {"x": A}),
    ("torch.gradient(x, spacing=[2.0], dim=[0])[0]", {"x": A}),
    ("torch.stack(torch.gradient(x, spacing=0.5, dim=(1, 0)))", {"x": A}),
    ("torch.gradient(x, edge_order=2)[0]", {"x": [1.0, inf, 3.0, -0.0]}),
]


def _value(program, inputs, dtype="float64"):
    """The program's output value without a backward pass (int64 and bool outputs too)."""
    from gradcli import engine
    from gradcli.parser import parse

    arrays = {k: np.asarray(v, dtype=dtype) for k, v in inputs.items()}
    with gradcli.api.quietly():
        nodes, out = engine.forward(parse(program), arrays, set(), dtype)
    return nodes[out].value


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,inputs", PROGRAMS)
def test_against_pytorch(torch, program, inputs, dtype):
    shape = np.shape(_value(program, inputs, dtype))
    seed = None if shape == () else np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)
    ours = gradcli.evaluate(program, inputs, dtype=dtype, seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, dtype=dtype, seed=seed)
    rtol = 1e-9 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=rtol, atol=rtol)
    assert str(ours.value.dtype) == dtype
    for name in inputs:
        if grads[name] is None:
            assert ours.grad[name] is None, name
        else:
            np.testing.assert_allclose(ours.grad[name], grads[name], rtol=rtol, atol=rtol)
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)


def _smooth(inputs):
    """Finite, distinct inputs: where the derivative is two-sided."""
    arrays = [np.asarray(v, dtype="float64") for v in inputs.values()]
    return all(np.isfinite(a).all() and len(np.unique(a)) == a.size for a in arrays)


@pytest.mark.parametrize("program,inputs", [p for p in PROGRAMS if _smooth(p[1])])
def test_finite_differences(program, inputs):
    inputs = {k: np.asarray(v, dtype="float64") for k, v in inputs.items()}
    shape = np.shape(_value(program, inputs))
    w = 1.0 if shape == () else np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)
    result = gradcli.evaluate(
        program, inputs, dtype="float64", seed_vector=None if shape == () else w
    )
    if not all(g is None or np.isfinite(g).all() for g in result.grad.values()):
        pytest.skip("no finite derivative to difference (checked against PyTorch above)")
    h = 1e-6
    for name, x in inputs.items():
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            up, down = dict(inputs), dict(inputs)
            up[name], down[name] = x.copy(), x.copy()
            up[name][idx] += h
            down[name][idx] -= h
            diff = np.asarray(_value(program, up)) - np.asarray(_value(program, down))
            numeric[idx] = np.sum(w * diff) / (2 * h)
        ours = result.grad[name]
        np.testing.assert_allclose(
            np.zeros_like(x) if ours is None else ours, numeric, rtol=1e-5, atol=1e-6
        )


# the int64 and bool results, compared with PyTorch's (ties and NaNs included)
INDICES = [
    ("x.max(dim=0).indices", TIES),
    ("x.max(dim=0)[1]", WITH_NAN),
    ("x.min(0).indices", TIES),
    ("x.min(1).indices", MIXED),
    ("torch.argmax(x)", TIES),
    ("torch.argmin(x)", TIES),
    ("x.argmax()", WITH_NAN),
    ("x.argmax(dim=1, keepdim=True)", MIXED),
    ("x.argmin(0)", MIXED),
    ("x.argmax(keepdim=True)", MIXED),
    ("x.sort().indices", TIES),
    ("x.sort(descending=True).indices", TIES),
    ("x.sort().indices", WITH_NAN),
    ("x.sort(descending=True)[1]", WITH_NAN),
    ("x.sort(dim=0).indices", MIXED),
    ("x.argsort()", TIES),
    ("torch.argsort(x, descending=True)", WITH_NAN),
    ("x.argsort(dim=0, stable=True)", MIXED),
    ("x.topk(3).values", TIES),  # (which of equal values: see the README)
    ("x.topk(2).indices", WITH_NAN),
    ("x.median(0).indices", TIES),
    ("x.median(0).indices", WITH_NAN),
    ("x.median(1).indices", MIXED),
    ("x.nanmedian(0).indices", WITH_NAN),
    ("x.nanmedian(0).indices", [nan, nan]),
    ("x.nanmedian()", [nan, nan]),
    ("x.mode().indices", TIES),
    ("x.mode(0).indices", [1.0, 2.0, 2.0, 1.0, 3.0]),
    ("x.mode(0).values", TIES),
    ("x.cummax(0).indices", TIES),
    ("x.cummin(0).indices", TIES),
    ("x.cummax(0).indices", WITH_NAN),
    ("x.cummin(0).indices", WITH_NAN),
    ("x.cummax(1).indices", MIXED),
    ("x.aminmax().min", TIES),
    ("torch.aminmax(x).max", WITH_NAN),
    ("x.any()", [0.0, -0.0, nan]),
    ("x.all()", [1.0, nan, -inf]),
    ("x.any(dim=1)", [[0.0, 0.0], [0.0, 2.0]]),
    ("torch.all(x, 0, keepdim=True)", [[0.0, 1.0], [1.0, 2.0]]),
    ("x.count_nonzero()", [0.0, -0.0, nan, 2.0]),
    ("torch.count_nonzero(x, dim=0)", MIXED),
    ("torch.allclose(x, x * (1 + 1e-9))", V),
    ("torch.allclose(x, x)", WITH_NAN),
    ("torch.allclose(x, x, equal_nan=True)", WITH_NAN),
    ("torch.equal(x, x)", V),
    ("torch.equal(x, x)", WITH_NAN),
    ("torch.equal(x, x[:2])", V),
    ("x.nansum()", [nan, nan]),
    ("x.nanmean()", [nan, nan]),
    ("x.kthvalue(6).values", WITH_NAN),
    ("x.sort().values", []),
    ("x.argsort()", []),
    ("x.cummax(0).values", []),
    ("torch.cumprod(x, 0)", []),
    ("torch.logcumsumexp(x, 0)", []),
    ("x.median()", []),
    ("x.nansum()", []),
    ("x.nanmean()", []),
    ("x.any()", []),
    ("x.all()", []),
    ("torch.split(x, 2)[0]", []),
    ("torch.chunk(x, 3)[2]", []),
    ("x.diff()", []),
    ("x.topk(0).values", V),
    ("x.sort().values", 2.5),
    ("x.max(0).indices", 2.5),
    ("x.cummax(0).values", 2.5),
    ("x.argmax()", 2.5),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,x", INDICES)
def test_values_against_pytorch(torch, program, x, dtype):
    ours = np.asarray(_value(program, {"x": x}, dtype))
    tdtype = getattr(torch, dtype)
    ns = {"torch": torch, "x": torch.tensor(x, dtype=tdtype)}
    theirs = eval(program, ns)  # noqa: S307 - our own test programs
    theirs = theirs.numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype or (ours.dtype == np.bool_ and theirs.dtype == np.bool_)
    np.testing.assert_array_equal(ours, theirs)


def test_split_pieces_share_one_backward_node(torch):
    r = gradcli.evaluate("a, b, c = x.split(2); a.sum() + b.sum() * c.sum()", {"x": V})
    rows = [n.label for n in r.nodes if n.label == "SplitBackward0"]
    assert len(rows) == 3  # a row per piece in the graph ...
    assert our_labels(r)["SplitBackward0"] == 1  # ... of the one node PyTorch records


def test_an_element_used_twice_is_one_node():
    r = gradcli.evaluate("s = x.split(2); s[0] * s[0] + s[-3]", {"x": V}, seed_vector=[1, 1])
    assert sum(n.op == "split_part" for n in r.nodes) == 1
    np.testing.assert_allclose(r.grad["x"], [1 + 2 * 0.3, 1 - 2 * 1.2, 0, 0, 0])


def test_index_results_are_int64_and_never_require_grad():
    r = gradcli.evaluate("v, i = x.max(dim=1); v.sum()", {"x": A})
    [values] = [n for n in r.nodes if n.op == "max"]
    assert values.name == "v" and values.label == "MaxBackward0"
    assert not any(n.op == "argmax" for n in r.nodes)  # unused: never computed
    assert str(_value("x.max(dim=1)[1]", {"x": A}).dtype) == "int64"
    with pytest.raises(gradcli.EvaluationError, match="does not require grad"):
        gradcli.evaluate("x.sort().indices.sum()", {"x": V})


def test_forward_mode_and_hessians_through_results(torch):
    from torch.autograd.functional import hessian, jvp

    program = "v, i = x.sort(); s, m = torch.std_mean(x); (v * v.cumsum(0)).sum() * s + m"
    x = np.array(V)
    t = np.array([0.5, -1.0, 0.25, 2.0, 1.0])
    ours = D.jvp(program, {"x": x}, {"x": t}, dtype="float64")

    def f(x):
        v, i = x.sort()
        s, m = torch.std_mean(x)
        return (v * v.cumsum(0)).sum() * s + m

    value, theirs = jvp(f, torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(ours["value"], value.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["jvp"], theirs.numpy(), rtol=1e-9)
    H = D.hessian(program, {"x": x}, dtype="float64")["hessian"]["x"]["x"]
    np.testing.assert_allclose(H, hessian(f, torch.tensor(x)).numpy(), rtol=1e-9, atol=1e-12)
    assert D.check(program, {"x": x})["ok"]


ERRORS = [
    (
        "torch.quantile(x, 1.5)",
        {"x": V},
        gradcli.EvaluationError,
        r"q must be in the range \[0, 1\] but got 1.5",
    ),
    (
        "torch.quantile(x, 0.5, interpolation='cubic')",
        {"x": V},
        gradcli.EvaluationError,
        "interpolation must be one of linear, lower, higher, midpoint or nearest",
    ),
    (
        "torch.quantile(x, 0.5)",
        {"x": []},
        gradcli.EvaluationError,
        "input tensor must be non-empty",
    ),
    (
        "torch.gradient(x)[0].sum()",
        {"x": [1.0]},
        gradcli.EvaluationError,
        r"at least edge_order\+1",
    ),
    (
        "torch.gradient(x, edge_order=3)[0].sum()",
        {"x": V},
        gradcli.EvaluationError,
        "only supports edge_order=1 and edge_order=2",
    ),
    (
        "torch.gradient(x, spacing=[1.0, 2.0], dim=1)[0].sum()",
        {"x": A},
        gradcli.EvaluationError,
        "same length",
    ),
    ("torch.gradient(x)[1].sum()", {"x": V}, gradcli.EvaluationError, "tuple index out of range"),
    # (program, inputs, error class, message PyTorch gives or one in its words)
    ("a, b = x.max(0); a", {"x": A}, gradcli.EvaluationError, None),
    (
        "a, b, c = x.max(0); a.sum()",
        {"x": A},
        gradcli.EvaluationError,
        r"not enough values to unpack \(expected 3, got 2\)",
    ),
    (
        "a, b = x.split(2); a.sum()",
        {"x": V},
        gradcli.EvaluationError,
        r"too many values to unpack \(expected 2, got 3\)",
    ),
    ("x.split(2)[3].sum()", {"x": V}, gradcli.EvaluationError, "tuple index out of range"),
    ("x.max(0)[-3].sum()", {"x": A}, gradcli.EvaluationError, "index out of range"),
    ("x.max(0)", {"x": A}, gradcli.ParseError, "output is a torch.return_types.max of tensors"),
    (
        "exp(x.split(2)).sum()",
        {"x": V},
        gradcli.ParseError,
        r"exp\(\): argument 'input' \(position 1\) must be Tensor, not tuple",
    ),
    (
        "(x.max(0) + 1).sum()",
        {"x": A},
        gradcli.ParseError,
        "must be a tensor, not torch.return_types.max",
    ),
    ("x.split(2).sum()", {"x": V}, gradcli.ParseError, "'tuple' object has no attribute 'sum'"),
    (
        "x.max(0).value.sum()",
        {"x": A},
        gradcli.ParseError,
        "'torch.return_types.max' object has no attribute 'value'",
    ),
    (
        "torch.std_mean(x).values",
        {"x": V},
        gradcli.ParseError,
        "'tuple' object has no attribute 'values'",
    ),
    ("x.split(2)[0:1]", {"x": V}, gradcli.ParseError, "tuple indices must be integers"),
    (
        "torch.cat([x.split(2)])",
        {"x": V},
        gradcli.ParseError,
        "expected Tensor as element 0 in argument 0, but got tuple",
    ),
    ("a, b = 2; a", {}, gradcli.ParseError, "cannot unpack"),
    (
        "a, b = (x, x, x); a",
        {"x": V},
        gradcli.ParseError,
        r"too many values to unpack \(expected 2, got 3\)",
    ),
    (
        "a, b = x; a",
        {"x": 2.0},
        gradcli.EvaluationError,
        "Dimension specified as 0 but tensor has no dimensions",
    ),
    (
        "x.split(0)[0].sum()",
        {"x": V},
        gradcli.EvaluationError,
        "split_size can only be 0 if dimension size is 0, but got dimension size of 5",
    ),
    (
        "x.split([1, 2])[0].sum()",
        {"x": V},
        gradcli.EvaluationError,
        r"split_with_sizes expects split_sizes to sum exactly to 5",
    ),
    ("x.split(1.5)[0].sum()", {"x": V}, gradcli.EvaluationError, "must be an integer"),
    (
        "x.chunk(0)[0].sum()",
        {"x": V},
        gradcli.EvaluationError,
        "chunk expects `chunks` to be greater than 0, got: 0",
    ),
    (
        "torch.tensor_split(x, 0)[0].sum()",
        {"x": V},
        gradcli.EvaluationError,
        "number of sections must be larger than 0, got 0",
    ),
    (
        "torch.hsplit(x, 3)[0].sum()",
        {"x": A},
        gradcli.EvaluationError,
        "torch.hsplit attempted to split along dimension 1, but the size of the dimension 4 is "
        "not divisible by the split_size 3!",
    ),
    (
        "torch.vsplit(x, 1)[0].sum()",
        {"x": V},
        gradcli.EvaluationError,
        "torch.vsplit requires a tensor with at least 2 dimensions",
    ),
    (
        "torch.meshgrid(x, y)[0].sum()",
        {"x": A, "y": V},
        gradcli.EvaluationError,
        "Expected 0D or 1D tensor",
    ),
    (
        "torch.meshgrid(x, x, indexing='yx')[0].sum()",
        {"x": V},
        gradcli.EvaluationError,
        "indexing must be one of",
    ),
    (
        "x.kthvalue(6).values.sum()",
        {"x": V},
        gradcli.EvaluationError,
        r"kthvalue\(\): selected number k out of range for dimension 0",
    ),
    ("x.topk(6).values.sum()", {"x": V}, gradcli.EvaluationError, "selected index k out of range"),
    (
        "x.max(1).values.sum()",
        {"x": np.zeros((2, 0))},
        gradcli.EvaluationError,
        "to have non-zero size",
    ),
    (
        "x.mode().values.sum()",
        {"x": []},
        gradcli.EvaluationError,
        r"mode\(\): Expected reduction dim 0 to have non-zero size",
    ),
    (
        "x.aminmax().min",
        {"x": []},
        gradcli.EvaluationError,
        "cannot compute aminmax over an empty dimension",
    ),
    ("x.cummax(1).values.sum()", {"x": V}, gradcli.EvaluationError, "Dimension out of range"),
    (
        "torch.std_mean(x, unbiased=False, correction=1)[0]",
        {"x": V},
        gradcli.EvaluationError,
        "not both",
    ),
    (
        "x.diff(n=-1).sum()",
        {"x": V},
        gradcli.EvaluationError,
        "order must be non-negative but got -1",
    ),
    (
        "x.diff().sum()",
        {"x": 2.0},
        gradcli.EvaluationError,
        "diff expects input to be at least one-dimensional",
    ),
    (
        "torch.diff(x, prepend=y).sum()",
        {"x": V, "y": A},
        gradcli.EvaluationError,
        "same dimension as input",
    ),
]


@pytest.mark.parametrize("program,inputs,error,message", ERRORS)
def test_errors(program, inputs, error, message):
    with pytest.raises(error, match=message) as info:
        gradcli.evaluate(program, inputs)
    assert info.value.exit_code == (2 if error is gradcli.ParseError else 1)


def test_pytorch_gives_the_same_errors(torch):
    """The messages above are PyTorch's where PyTorch has one."""
    x = torch.tensor(V)
    for call, message in [
        (lambda: x.split(0), "split_size can only be 0 if dimension size is 0"),
        (lambda: torch.chunk(x, 0), "chunk expects `chunks` to be greater than 0, got: 0"),
        (lambda: torch.tensor_split(x, 0), "number of sections must be larger than 0, got 0"),
        (lambda: x.kthvalue(6), "selected number k out of range for dimension 0"),
        (lambda: x.topk(6), "selected index k out of range"),
        (lambda: torch.zeros(0).mode(), "Expected reduction dim 0 to have non-zero size"),
        (lambda: torch.zeros(0).aminmax(), "cannot compute aminmax over an empty dimension"),
        (lambda: torch.diff(x, n=-1), "order must be non-negative but got -1"),
    ]:
        with pytest.raises((RuntimeError, IndexError), match=message):
            call()


def test_cli_shows_a_row_per_element_and_exits_with_pytorchs_codes():
    runner = CliRunner()
    r = runner.invoke(cli, ["grad", "--json", "a, b = x.split(2); a.sum() * b.sum()", "x=1,2,3,4"])
    assert r.exit_code == 0, r.output
    nodes = json.loads(r.output)["nodes"]
    pieces = [n for n in nodes if n["grad_fn"] == "SplitBackward0"]
    assert [p["name"] for p in pieces] == ["a", "b"]
    assert [p["value"] for p in pieces] == [[1.0, 2.0], [3.0, 4.0]]
    assert json.loads(r.output)["grad"]["x"] == [7.0, 7.0, 3.0, 3.0]
    text = runner.invoke(cli, ["grad", "torch.cat(x.split(2)).sum()", "x=1,2,3"]).output
    assert "x[0:2] (dim 0)" in text and "x[2:3] (dim 0)" in text
    r = runner.invoke(cli, ["grad", "a, b = x.split(1); a.sum()", "x=1,2,3"])
    assert r.exit_code == 1 and "too many values to unpack (expected 2, got 3)" in r.output
    r = runner.invoke(cli, ["grad", "x.max(0)", "x=1,2"])
    assert r.exit_code == 2 and "[0], .values / .indices" in r.output
    for command in ("graph", "explain"):
        r = runner.invoke(cli, [command, "v, i = x.max(0); v * 2", "x=1,3,2"])
        assert r.exit_code == 0, r.output
        assert "MaxBackward0" in r.output
