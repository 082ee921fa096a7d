"""PyTorch's conventions at the edges: nan, ±inf, ±0, ties, empty tensors and poles, for
each elementwise operator and for var/std/norm, with PyTorch 2.13 as the oracle (value,
gradient of every input, labels), in float32 and float64. The special functions' accuracy
is checked against torch in float64 over wide ranges."""

import math

import numpy as np
import pytest
from conftest import our_labels, run_torch, torch_labels

import gradcli
from gradcli import derivatives as D

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

NAN, INF = math.nan, math.inf
# Seven elements at a time: PyTorch's CPU kernels take their scalar path below eight, and
# its vectorised path differs from it at nan for some functions (hardtanh's and elu's
# gradients); the scalar path is the one that states the convention.
EDGE = [NAN, INF, -INF, 0.0, -0.0, 1.0, -2.5]  # for unary functions
MORE = [0.5, -1.0, 2.0, -0.5, 1e-300, 1e300, -3.0]
PAIR = EDGE  # each against each, for binary ones
A2 = [x for x in PAIR for _ in PAIR]
B2 = [y for _ in PAIR for y in PAIR]


def _same(ours, theirs, rtol, what):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, what
    # nan where torch has nan, the same infinities, and close elsewhere
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=what)
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs), err_msg=what)
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs), err_msg=what)
    fin = np.isfinite(theirs)
    np.testing.assert_allclose(ours[fin], theirs[fin], rtol=rtol, atol=rtol * 1e-3, err_msg=what)


def check(torch, program, inputs, dtype, wrt=None, seed=None, rtol=None):
    """gradcli and PyTorch agree on the value, the gradients and the labels."""
    ours = gradcli.evaluate(program, inputs, dtype=dtype, wrt=wrt, seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, wrt=wrt, dtype=dtype, seed=seed)
    rtol = rtol or (1e-12 if dtype == "float64" else 1e-6)
    _same(ours.value, out.detach().numpy(), rtol, f"value of {program}")
    assert str(ours.value.dtype) == dtype
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None, f"d/d{name} of {program}"
        else:
            _same(ours.grad[name], g, rtol, f"d/d{name} of {program}")
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)
    return ours


def _values(program, inputs, dtype="float64"):
    """The output of a program that nothing differentiates."""
    from gradcli import engine
    from gradcli.api import quietly
    from gradcli.parser import parse

    arrays = {k: np.asarray(v, dtype=dtype) for k, v in inputs.items()}
    with quietly():
        nodes, out = engine.forward(parse(program), arrays, set(), dtype)
    return nodes[out].value


DTYPES = pytest.mark.parametrize("dtype", ["float64", "float32"])


# -- issue 12, item 4: conventions found wrong ------------------------------------------

ITEM4 = [
    ("sum(abs(x))", {"x": EDGE}),
    ("sum(abs(x))", {"x": MORE}),
    ("sum(sign(x) * x)", {"x": EDGE}),
    ("sum(hardtanh(x))", {"x": EDGE}),
    ("sum(hardtanh(x, -0.5, 1.0))", {"x": EDGE}),
    ("sum(elu(x))", {"x": EDGE}),
    ("sum(elu(x, alpha=0.5))", {"x": EDGE}),
    ("sum(elu(x, alpha=0.5))", {"x": MORE}),
    ("sum(hardtanh(x))", {"x": MORE}),
    ("sum(atan2(a, b))", {"a": A2, "b": B2}),
    ("norm(x, p=inf)", {"x": [1.0, NAN, 3.0]}),
    ("norm(x, p=inf)", {"x": [NAN, INF]}),
    ("norm(x, p=inf)", {"x": [INF, -INF, 1.0]}),
    ("norm(x, p=inf)", {"x": [3.0, -3.0, 1.0]}),
    ("norm(x, p=inf)", {"x": [0.0, 0.0]}),
    ("norm(x, p=-inf)", {"x": [2.0, NAN, -1.0]}),
    ("norm(x, p=1)", {"x": [2.0, NAN, -1.0]}),
    ("sum(norm(A, p=inf, dim=1))", {"A": [[1.0, NAN], [2.0, -2.0]]}),
]
for _c in (0, 1, 2, 3, 5, 1.5):
    for _x in ([1.0, 2.0, 4.0], [3.0], [2.0, 2.0], [], [[1.0, 2.0], [3.0, 5.0]], [[1.0], [3.0]]):
        ITEM4.append((f"var(x, correction={_c})", {"x": _x}))
        ITEM4.append((f"std(x, correction={_c})", {"x": _x}))
        if _x and isinstance(_x[0], list):
            for _d in (0, 1):
                ITEM4.append((f"sum(var(x, dim={_d}, correction={_c}))", {"x": _x}))
                ITEM4.append((f"sum(std(x, {_d}, correction={_c}, keepdim=True))", {"x": _x}))
ITEM4 += [
    ("var(x, dim=0, correction=3)", {"x": [1.0, 2.0, 4.0]}),
    ("sum(var(x, dim=1, correction=1))", {"x": [[], []]}),
    ("var(x, correction=0)", {"x": [NAN, 1.0]}),
    ("std(x, correction=2)", {"x": [INF, 1.0]}),
]


@DTYPES
@pytest.mark.parametrize("program,inputs", ITEM4)
def test_item4_conventions(torch, program, inputs, dtype):
    check(torch, program, inputs, dtype)


def test_atan2_at_the_origin_forward_mode_agrees_with_the_gradient():
    """PyTorch's atan2 gradient is 0 at (0, 0); forward mode gives the same, not nan."""
    inputs = {"a": [0.0, -0.0, 0.0, 1.0], "b": [0.0, 0.0, -0.0, -2.0]}
    fwd = D.jacobian("atan2(a, b)", inputs, dtype="float64", mode="forward")["jacobian"]
    rev = D.jacobian("atan2(a, b)", inputs, dtype="float64", mode="reverse")["jacobian"]
    for name in inputs:
        np.testing.assert_array_equal(fwd[name], rev[name])
    assert not np.isnan(fwd["a"]).any()
    h = D.hessian("sum(atan2(a, b))", {"a": [0.0, 1.0], "b": [0.0, 2.0]}, dtype="float64")
    assert not np.isnan(h["hessian"]["a"]["b"]).any()


# -- issue 12's elementwise operators at nan, ±inf, ±0 and their own edges ------------

UNARY = [
    "asinh(x)",
    "acosh(x)",
    "atanh(x)",
    "rad2deg(x)",
    "deg2rad(x)",
    "trunc(x)",
    "frac(x)",
    "sinc(x)",
    "round(x)",
    "round(x, decimals=0)",
    "round(x * 1000, decimals=2)",
    "round(x * 1000, decimals=-2)",
    "round(x, decimals=400)",
    "nan_to_num(x)",
    "nan_to_num(x, nan=1.5, posinf=2, neginf=-7)",
    "nan_to_num(x, posinf=1e300)",
    "logit(x)",
    "logit(x, eps=0.1)",
    "logit(x, eps=0)",
    "exp2(x)",
    "rsqrt(x)",
    "square(x)",
    "y * isnan(x)",
    "y * isinf(x)",
    "y * isfinite(x)",
    "y * signbit(x)",
]
SMALL = [1e-30, -1e-30, 0.25, 0.75, 1.0 - 1e-7, 1.5, 1e-8]


@DTYPES
@pytest.mark.parametrize("values", [EDGE, MORE, SMALL], ids=["edge", "more", "small"])
@pytest.mark.parametrize("form", UNARY)
def test_unary_edges(torch, form, values, dtype):
    ones = [1.0] * len(values)
    check(torch, form, {"x": values, "y": ones}, dtype, seed=ones)


def test_round_decimals_must_be_an_integer():
    with pytest.raises(gradcli.GradcliError, match="decimals must be an integer"):
        gradcli.evaluate("sum(round(x, decimals=1.5))", {"x": [1.0]})


BINARY = [
    "logaddexp(a, b)",
    "logaddexp2(a, b)",
    "hypot(a, b)",
    "copysign(a, b)",
    "fmod(a, b)",
    "remainder(a, b)",
    "xlogy(a, b)",
    "lerp(a, b, 0.3)",
    "lerp(a, b, 0.7)",
    "lerp(a, b, -0.0)",
    "lerp(a, b, b)",
    "c * isclose(a, b)",
    "c * isclose(a, b, equal_nan=True)",
    "c * isclose(a, b, rtol=0, atol=0)",
    "c * isclose(a, b, rtol=0.5, atol=2)",
]
WITH_NUMBERS = [
    "copysign(a, -1)",
    "copysign(a, 0)",
    "fmod(a, 1.5)",
    "fmod(a, 0)",
    "remainder(a, -1.5)",
    "remainder(a, 0)",
    "xlogy(a, 2)",
    "xlogy(a, 0)",
    "xlogy(a, -1)",
    "xlogy(2, a)",
    "xlogy(0, a)",
]


@DTYPES
@pytest.mark.parametrize("form", BINARY)
def test_binary_edges(torch, form, dtype):
    ones = [1.0] * len(A2)
    check(torch, form, {"a": A2, "b": B2, "c": ones}, dtype, seed=ones)


@DTYPES
@pytest.mark.parametrize("values", [EDGE, MORE], ids=["edge", "more"])
@pytest.mark.parametrize("form", WITH_NUMBERS)
def test_binary_edges_with_a_number(torch, form, values, dtype):
    check(torch, form, {"a": values}, dtype, seed=[1.0] * len(values))


def test_lerp_with_a_tensor_weight_at_the_edges(torch):
    s = [0.0, 1.0, INF, 0.0, NAN, 1.0, -0.0]
    e = [1.0, INF, 1.0, 2.0, 1.0, 3.0, 0.0]
    w = [0.3, 0.7, 0.5, NAN, 0.2, INF, -0.6]
    for dtype in ("float64", "float32"):
        check(torch, "lerp(s, e, w)", {"s": s, "e": e, "w": w}, dtype, seed=[1.0] * 7)


def test_heaviside_values_and_no_gradient(torch):
    x = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0]
    for v in (0.5, NAN, 2.0):
        for dtype in ("float64", "float32"):
            check(torch, f"sum(y * heaviside(x, {v}))", {"x": x, "y": [1.0] * 7}, dtype, wrt=["y"])
    with pytest.raises(RuntimeError, match="derivative for aten::heaviside is not implemented"):
        torch.heaviside(torch.tensor([1.0], requires_grad=True), torch.tensor(0.5)).sum().backward()
    with pytest.raises(gradcli.EvaluationError, match="derivative for aten::heaviside"):
        gradcli.evaluate("sum(heaviside(x, 0.5))", {"x": x})
    expected = torch.heaviside(torch.tensor(x), torch.tensor(0.5)).numpy()
    np.testing.assert_array_equal(_values("heaviside(x, 0.5)", {"x": x}), expected)


def test_heaviside_in_forward_mode_names_the_operator():
    with pytest.raises(gradcli.EvaluationError, match="forward AD with aten::heaviside"):
        D.jvp("heaviside(x, 0.5)", {"x": [1.0, -1.0]}, {"x": [1.0, 1.0]}, dtype="float64")
    with pytest.raises(gradcli.EvaluationError, match="aten::heaviside"):
        D.jacobian("heaviside(x, 0.5)", {"x": [1.0, -1.0]}, dtype="float64", mode="forward")
    with pytest.raises(gradcli.EvaluationError, match="aten::heaviside"):
        D.hessian("sum(heaviside(x, 0.5) * x)", {"x": [1.0, -1.0]}, dtype="float64")
    # a heaviside of constants is fine in every mode
    j = D.jvp("x * heaviside([1, -1], 0.5)", {"x": [2.0, 3.0]}, {"x": [1.0, 1.0]})
    np.testing.assert_array_equal(j["jvp"], [1.0, 0.0])


def test_remainder_of_a_number_by_a_tensor(torch):
    y = torch.tensor([1.5, -2.0], dtype=torch.float64, requires_grad=True)
    out = torch.remainder(2.0, y)
    assert type(out.grad_fn).__name__ == "NotImplemented"
    with pytest.raises(RuntimeError, match="derivative for aten::remainder is not implemented"):
        out.sum().backward()
    np.testing.assert_array_equal(_values("remainder(2, y)", {"y": [1.5, -2.0]}), out.detach())
    with pytest.raises(gradcli.EvaluationError, match="derivative for aten::remainder"):
        gradcli.evaluate("sum(remainder(2, y))", {"y": [1.5, -2.0]})
    with pytest.raises(gradcli.EvaluationError, match="forward AD with aten::remainder"):
        D.jvp("remainder(2, y)", {"y": [1.5, -2.0]}, {"y": [1.0, 1.0]})


def test_isclose_refuses_negative_tolerances(torch):
    with pytest.raises(RuntimeError, match="rtol must be greater than or equal to zero"):
        torch.isclose(torch.ones(1), torch.ones(1), rtol=-1)
    with pytest.raises(gradcli.EvaluationError, match="rtol must be greater than or equal"):
        gradcli.evaluate("sum(a * isclose(a, b, rtol=-1))", {"a": [1.0], "b": [1.0]})


# -- special functions: edges against torch, accuracy against torch in float64 ----------

# PyTorch's trigamma takes sin(πx) unreduced, so at the negative integers (its double
# poles) it gives large finite numbers (6.6e32 at -1); gradcli gives inf there. Those
# points are left out where trigamma appears (digamma's gradient, polygamma(1, ·)).
MORE_NOT_NEGATIVE_INTEGERS = [0.5, 1e-8, 2.0, -0.5, 1e-300, 1e300, -3.25]
SPECIAL = [
    ("lgamma(x)", [EDGE, MORE]),
    ("digamma(x)", [EDGE, MORE_NOT_NEGATIVE_INTEGERS]),
    ("polygamma(0, x)", [EDGE, MORE_NOT_NEGATIVE_INTEGERS]),
    ("polygamma(1, x)", [EDGE, MORE_NOT_NEGATIVE_INTEGERS]),
    ("polygamma(2, x)", [EDGE, MORE]),
    ("polygamma(3, x)", [EDGE, MORE]),
    ("polygamma(6, x)", [EDGE, MORE]),
    ("erfinv(x)", [EDGE, MORE, [0.9999999, -0.99, 1e-8, -0.25, 0.75, 1 - 2**-53, 0.0]]),
    ("i0(x)", [EDGE, MORE, [30.0, -29.9, 100.0, 700.0, 713.0, -12.5, 1e-5]]),
]


@DTYPES
@pytest.mark.parametrize(
    "form,values", [(f, v) for f, vs in SPECIAL for v in vs], ids=lambda p: str(p)[:24]
)
def test_special_function_edges(torch, form, values, dtype):
    # PyTorch computes float32 special functions with float32 formulas (about 1e-6), and
    # its trigamma (digamma's gradient, polygamma(1, ·)) to 5e-10 in float64
    # (and its polygamma at negative arguments to 1e-10: gradcli's are accurate to 1e-14)
    rtol = 2e-5 if dtype == "float32" else 1e-9 if "digamma" in form or "poly" in form else None
    check(torch, form, {"x": values}, dtype, seed=[1.0] * len(values), rtol=rtol)


def test_trigamma_at_negative_integers_is_the_pole():
    out = _values("polygamma(1, x)", {"x": [-1.0, -3.0, -0.0]})
    np.testing.assert_array_equal(out, [np.inf, np.inf, np.inf])


def test_polygamma_takes_a_non_negative_integer_n():
    for bad in ("polygamma(1.5, x)", "polygamma(-1, x)", "polygamma(x, x)"):
        with pytest.raises(gradcli.GradcliError, match="n must be a non-negative integer"):
            gradcli.evaluate(f"sum({bad})", {"x": [1.0, 2.0]})


def _wide(rng):
    return {
        "positive": np.concatenate(
            [rng.uniform(0, 3, 400), rng.uniform(3, 60, 200), 10 ** rng.uniform(-12, 12, 300)]
        ),
        "negative": -np.concatenate([rng.uniform(0, 3, 400), rng.uniform(3, 60, 200)]),
        "near 1 and 2": np.concatenate(
            [1 + rng.uniform(-1e-3, 1e-3, 50), 2 + 10 ** -rng.uniform(3, 15, 50)]
        ),
        "near ±1": np.concatenate(
            [1 - 10 ** -rng.uniform(1, 16, 100), -1 + 10 ** -rng.uniform(1, 15, 100)]
        ),
        "unit": rng.uniform(-1, 1, 400),
        "bessel": np.concatenate([rng.uniform(-40, 40, 400), rng.uniform(-713, 713, 200)]),
    }


ACCURACY = [
    # (gradcli, torch's same function in float64, ranges, rtol, atol)
    ("lgamma(x)", lambda T, x: T.lgamma(x), ("positive", "negative", "near 1 and 2"), 1e-13, 1e-15),
    (
        "digamma(x)",
        lambda T, x: T.digamma(x),
        ("positive", "negative", "near 1 and 2"),
        1e-12,
        1e-14,
    ),
    (
        "polygamma(1, x)",  # torch's own trigamma is accurate to 5e-10 only: zeta(2, x) is exact
        lambda T, x: T.special.zeta(T.tensor(2.0, dtype=T.float64), x),
        ("positive", "negative"),
        1e-13,
        0,
    ),
    ("polygamma(2, x)", lambda T, x: T.polygamma(2, x), ("positive", "negative"), 1e-12, 0),
    ("polygamma(3, x)", lambda T, x: T.polygamma(3, x), ("positive", "negative"), 1e-12, 0),
    ("polygamma(7, x)", lambda T, x: T.polygamma(7, x), ("positive", "negative"), 1e-12, 0),
    ("erfinv(x)", lambda T, x: T.erfinv(x), ("unit", "near ±1"), 1e-13, 0),
    ("i0(x)", lambda T, x: T.i0(x), ("bessel",), 1e-13, 0),
]


@pytest.mark.parametrize("program,theirs,ranges,rtol,atol", ACCURACY, ids=[a[0] for a in ACCURACY])
def test_special_function_accuracy(torch, program, theirs, ranges, rtol, atol):
    wide = _wide(np.random.default_rng(12))
    for name in ranges:
        x = wide[name]
        x = x[x != np.round(x)] if name == "negative" else x  # poles: see the edge tests
        ours = _values(program, {"x": x})
        ref = theirs(torch, torch.tensor(x, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=f"{program}, {name}")


EMPTY_FORMS = (
    [f for f in UNARY if "y" not in f]
    + [f.replace("c * ", "") for f in BINARY if "isclose" not in f]
    + [f for f, _ in SPECIAL]
    + ["copysign(a, -1)", "fmod(a, 1.5)", "remainder(a, 2)", "xlogy(2, a)", "lerp(a, b, 0.3)"]
)


@DTYPES
@pytest.mark.parametrize("form", EMPTY_FORMS)
def test_empty_tensors(torch, form, dtype):
    check(torch, form, {"x": [], "a": [], "b": []}, dtype, seed=[])


@pytest.mark.parametrize("form", ["isnan(x)", "isclose(x, x)", "heaviside(x, 0.5)", "signbit(x)"])
def test_empty_tensors_without_gradient(torch, form):
    assert _values(form, {"x": []}).shape == (0,)


FORWARD_AT_EDGES = [
    ("logit(x)", {"x": [0.0, 1.0, 0.5, 1e-8, 2.0]}),
    ("logit(x, eps=0.2)", {"x": [0.0, 0.1, 0.5, 0.8, 0.9]}),
    ("copysign(a, b)", {"a": [0.0, -0.0, 1.0, -2.0], "b": [-1.0, 1.0, -0.0, 3.0]}),
    ("xlogy(a, b)", {"a": [0.0, -0.0, 1.0, 0.0], "b": [2.0, 0.5, 3.0, -1.0]}),
    ("logaddexp(a, b) + logaddexp2(a, b)", {"a": [1.0, -2.0, 0.0], "b": [1.0, 3.0, 0.0]}),
    ("lerp(a, b, w)", {"a": [0.0, 1.0, 2.0], "b": [1.0, -1.0, 2.0], "w": [0.5, -0.5, 2.0]}),
    ("lgamma(x) + digamma(x) + polygamma(2, x)", {"x": [1.0, 2.0, -2.5, 0.5, 30.0]}),
    ("erfinv(x) + i0(x) + sinc(x)", {"x": [0.0, 0.5, -0.999, 0.9999999]}),
]


@pytest.mark.parametrize("program,inputs", FORWARD_AT_EDGES)
def test_forward_mode_agrees_with_the_gradient_at_edges(program, inputs):
    """Dual numbers carry the derivative that the backward formula gives, also where a
    branch (clamp, a = 0, a tie) makes the plain complex step differ."""
    fwd = D.jacobian(program, inputs, dtype="float64", mode="forward")["jacobian"]
    rev = D.jacobian(program, inputs, dtype="float64", mode="reverse")["jacobian"]
    for name in inputs:  # elementwise: the diagonal (off it, PyTorch's reverse has 0·inf)
        f, r = np.diagonal(fwd[name]), np.diagonal(rev[name])
        np.testing.assert_allclose(f, r, rtol=1e-9, atol=1e-12, err_msg=name)
