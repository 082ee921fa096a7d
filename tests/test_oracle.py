"""Whole programs against PyTorch 2.13: the autograd walk-through, micrograd's engine tests,
PyTorch's conventions at kinks and ties, and hypothesis-generated random programs."""

import numpy as np
import pytest
from conftest import our_labels, run_torch, torch_labels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli

X = [-1.0475, 0.2038, 0.2971]


def check(torch, program, inputs, *, seed=None, wrt=None, dtype="float64"):
    ours = gradcli.evaluate(program, inputs, seed_vector=seed, wrt=wrt, dtype=dtype)
    out, grads = run_torch(torch, program, inputs, wrt=wrt, dtype=dtype, seed=seed)
    rtol = 1e-9 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=rtol, atol=1e-12)
    assert set(ours.grad) == set(grads)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None
        else:
            np.testing.assert_allclose(
                ours.grad[name], g, rtol=rtol, atol=1e-12, err_msg=f"d/d{name} of {program}"
            )
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)
    return ours


# -- the PyTorch autograd walk-through --------------------------------------------------


def test_walkthrough_mean(torch):
    r = check(torch, "mean(2*(x+2)^2)", {"x": X}, dtype="float32")
    assert [n.label for n in r.nodes if n.label] == [
        "AccumulateGrad",
        "AddBackward0",
        "PowBackward0",
        "MulBackward0",
        "MeanBackward0",
    ]
    np.testing.assert_allclose(r.grad["x"], [1.27, 2.9384, 3.0628], atol=1e-4)


def test_walkthrough_program(torch):
    r = check(torch, "y = x + 2; z = y * y * 2; z.mean()", {"x": X}, dtype="float32")
    assert r.value == pytest.approx(7.3604, abs=1e-4)


def test_walkthrough_vjp(torch):
    r = check(torch, "y = x + 2; z = y * y * 2; z", {"x": X}, seed=[1, 0, 0], dtype="float32")
    np.testing.assert_allclose(r.grad["x"], [3.81, 0, 0], atol=1e-5)


def test_walkthrough_nonscalar_needs_seed():
    with pytest.raises(
        gradcli.EvaluationError, match="grad can be implicitly created only for scalar outputs"
    ):
        gradcli.evaluate("y = x + 2; z = y * y * 2; z", {"x": X})


# -- micrograd's test/test_engine.py, in gradcli's language ---------------------------


def test_micrograd_sanity_check(torch):
    program = """
z = 2 * x + 2 + x
q = z.relu() + z * x
h = (z * z).relu()
y = h + q + q * x
"""
    r = check(torch, program, {"x": -4.0})
    assert r.value == pytest.approx(-20.0) and r.grad["x"] == pytest.approx(46.0)


def test_micrograd_more_ops(torch):
    program = """
c = a + b
d = a * b + b**3
c = c + c + 1
c = c + 1 + c + (-a)
d = d + d * 2 + (b + a).relu()
d = d + 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g = g + 10.0 / f
"""
    r = check(torch, program, {"a": -4.0, "b": 2.0})
    assert r.value == pytest.approx(24.70408163265306)
    assert r.grad["a"] == pytest.approx(138.83381924198252)
    assert r.grad["b"] == pytest.approx(645.5772594752186)


# -- conventions at kinks, ties and edges (PyTorch's, checked against PyTorch) ---------


@pytest.mark.parametrize(
    "program,inputs",
    [
        ("sum(relu(x))", {"x": [-1.0, 0.0, 2.0]}),
        ("sum(abs(x))", {"x": [-1.0, 0.0, 2.0]}),
        ("max(x)", {"x": [1.0, 3.0, 3.0, 2.0]}),
        ("min(x)", {"x": [1.0, 1.0, 3.0]}),
        ("max(x)", {"x": [1.0, "nan", 3.0]}),
        ("sum(maximum(x, y))", {"x": [1.0, 2.0, 3.0], "y": [1.0, 5.0, 0.0]}),
        ("sum(minimum(x, y))", {"x": [1.0, 2.0, 3.0], "y": [1.0, 5.0, 0.0]}),
        ("sum(sqrt(x))", {"x": [0.0, 4.0]}),
        ("sum(x^0)", {"x": [0.0, 2.0]}),
        ("sum(x^2)", {"x": [0.0, -3.0]}),
        ("sum(x^y)", {"x": [0.0, 2.0, 0.0], "y": [0.0, 3.0, 2.0]}),
        ("sum(2^x)", {"x": [0.0, -1.0, 3.5]}),
        ("sum(0^x)", {"x": [0.0, 1.0, 2.0]}),
        ("sum(log(x))", {"x": [0.0, 1.0]}),
        ("sum(x / y)", {"x": [1.0, 0.0], "y": [0.0, 0.0]}),
        ("sum(sigmoid(x))", {"x": [-1000.0, 0.0, 1000.0]}),
        ("sum(tanh(x))", {"x": [-30.0, 0.0, 30.0]}),
        ("mean(x)", {"x": [[1.0, 2.0], [3.0, 4.0]]}),
        ("sum(exp(x))", {"x": [1000.0, -1000.0]}),
        # issue 3 operators at their kinks, ties and edges
        ("sum(leaky_relu(x))", {"x": [-1.0, 0.0, 2.0]}),
        ("sum(elu(x))", {"x": [-1.0, 0.0, 2.0]}),
        ("sum(hardtanh(x))", {"x": [-1.0, 0.0, 1.0, 2.0]}),
        ("sum(clamp(x, -1, 1))", {"x": [-1.0, 0.0, 1.0, 2.0]}),
        ("sum(clamp(x, min=0))", {"x": [-1.0, 0.0, 2.0]}),
        ("sum(sign(x) + floor(x) + ceil(x) + round(x))", {"x": [-1.5, 0.0, 0.5, 2.5]}),
        ("sum(max(A, dim=1).values)", {"A": [[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]]}),
        ("sum(min(A, dim=0)[0])", {"A": [[1.0, 3.0, 3.0], [1.0, 2.0, 4.0]]}),
        ("sum(amax(A, dim=1))", {"A": [[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]]}),
        ("amin(A)", {"A": [[1.0, 3.0, 1.0], [2.0, 2.0, 1.0]]}),
        ("norm(x)", {"x": [0.0, 0.0]}),
        ("norm(x, p=inf)", {"x": [1.0, -3.0, 3.0]}),
        ("norm(x, p=1)", {"x": [0.0, -3.0, 3.0]}),
        ("std(x)", {"x": [2.0, 2.0, 2.0]}),
        ("prod(x)", {"x": [0.0, 2.0, 3.0]}),
        ("prod(x)", {"x": [0.0, 2.0, 0.0]}),
        ("sum(prod(A, dim=1))", {"A": [[0.0, 2.0], [3.0, 4.0]]}),
        ("sum(where(x > 0, x, y))", {"x": [-1.0, 0.0, 2.0], "y": [5.0, 6.0, 7.0]}),
        ("sum(sqrt(x) * (x != 0))", {"x": [0.0, 4.0]}),
        # numerically stable forms: nothing overflows at +-1000
        ("sum(log_softmax(x, 0))", {"x": [1000.0, -1000.0, 0.0]}),
        ("sum(softmax(x, 0) * x)", {"x": [1000.0, -1000.0, 0.0]}),
        ("logsumexp(x, 0)", {"x": [1000.0, -1000.0, 0.0]}),
        ("logsumexp(x, 0)", {"x": ["-inf", "-inf"]}),
        ("sum(softplus(x))", {"x": [1000.0, -1000.0, 0.0, 19.0, 21.0]}),
        (
            "binary_cross_entropy_with_logits(x, t)",
            {"x": [1000.0, -1000.0, 0.0], "t": [0.0, 1.0, 0.5]},
        ),
        ("binary_cross_entropy(p, t)", {"p": [0.0, 1.0, 0.5], "t": [1.0, 0.0, 0.5]}),
        ("cross_entropy(x, 0)", {"x": [1000.0, -1000.0, 0.0]}),
        ("sum(sigmoid(x) + tanh(x) + silu(x) + gelu(x) + erf(x))", {"x": [-1000.0, 0.0, 1000.0]}),
    ],
)
def test_conventions(torch, program, inputs):
    check(torch, program, inputs)


# -- assorted programs: broadcasting, sharing, reassignment, VJPs, --wrt, dtypes --------

PROGRAMS = [
    ("sum(A * b + c)", {"A": [[1.0, 2, 3], [4, 5, 6]], "b": [0.5, -1, 2], "c": 3.0}, None, None),
    ("y = x * x; y = y + x; sum(y * y)", {"x": [1.0, -2, 3]}, None, None),
    ("sum(x * y)", {"x": [1.0, 2], "y": [3.0, 4]}, None, ["x"]),
    ("A @ x", {"A": [[1.0, 2], [3, 4], [5, 6]], "x": [1.0, -1]}, [1.0, 2, 3], None),
    ("x @ A", {"A": [[1.0, 2, 3], [3, 4, 5]], "x": [1.0, -1]}, [1.0, 2, 3], None),
    ("A @ B", {"A": [[1.0, 2], [3, 4]], "B": [[0.5, 1], [2, -1]]}, [[1.0, 0], [0, 1]], None),
    ("x @ y", {"x": [1.0, 2, 3], "y": [4.0, 5, 6]}, None, None),
    ("sum(A.T * 2) + sum(transpose(A)) + sum(A.t())", {"A": [[1.0, 2, 3], [4, 5, 6]]}, None, None),
    ("2 - x", {"x": [1.0, 2]}, [1.0, 1], None),
    ("2 / x + x / 2", {"x": [1.0, 2]}, [1.0, 1], None),
    ("-x^2 + 2^3^0.5 * x", {"x": [1.5, 2]}, [1.0, -1], None),
    ("sum(x, dim=0)", {"x": [[1.0, 2], [3, 4]]}, [1.0, 2], None),
    ("mean(x, dim=1, keepdim=True)", {"x": [[1.0, 2], [3, 4]]}, [[1.0], [2]], None),
    ("s = sum(x); s * s", {"x": [1.0, 2]}, None, None),
    (
        "exp(x) * log1p(x) + expm1(x) / sqrt(x) - tan(x) + cos(x) * sin(x)",
        {"x": [0.3, 0.7]},
        [1.0, 2],
        None,
    ),
    ("x * [1, 2, 3]", {"x": 2.0}, [1.0, 1, 1], None),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,inputs,seed,wrt", PROGRAMS)
def test_programs(torch, program, inputs, seed, wrt, dtype):
    if "[" in program:  # a list literal: PyTorch spells it torch.tensor([...])
        ours = gradcli.evaluate(program, inputs, seed_vector=seed, wrt=wrt, dtype=dtype)
        t = torch.tensor(inputs["x"], dtype=getattr(torch, dtype), requires_grad=True)
        out = t * torch.tensor([1, 2, 3], dtype=getattr(torch, dtype))
        out.backward(torch.tensor(seed, dtype=getattr(torch, dtype)))
        np.testing.assert_allclose(ours.grad["x"], t.grad.numpy())
        assert our_labels(ours) == torch_labels(out)
        return
    check(torch, program, inputs, seed=seed, wrt=wrt, dtype=dtype)


# -- random programs -----------------------------------------------------------------

UNARY = [
    "sin({})",
    "cos({})",
    "tanh({})",
    "sigmoid({})",
    "relu({})",
    "abs({})",
    "-{}",
    "({})^2",
    "exp(tanh({}))",
    "sqrt(1 + ({})^2)",
    "log1p(({})^2)",
    "(x * {}).relu()",
    "softplus({})",
    "silu({})",
    "gelu({})",
    "erf({})",
    "atan({})",
    "leaky_relu({})",
    "elu({})",
    "softmax(x * {}, 0)",
    "log_softmax(x + {}, dim=0)",
    "clamp({}, -0.5, 0.5)",
    "where(x > 0, {}, y)",
    "cumsum(x * {}, 0)",
    "square({})",
    "hardtanh({})",
    # PyTorch's spelling and the shape operators
    "torch.flip(x * {}, [0])",
    "torch.roll(x + {}, 1)",
    "(x * {})[None][0]",
    "torch.remainder(x * {}, 1.3)",
    "torch.clip(x * {}, -0.5, 0.5)",
    "(x - {}).expand(2, 3)[1]",
    "torch.tril((x * {}).repeat(3, 1))[2]",
    "torch.diagonal(torch.outer(x, x * {}))",
    "F.softplus(x * {}).flip(0)",
]
BINARY = [
    "{} + {}",
    "{} - {}",
    "{} * {}",
    "{} / (1 + ({})^2)",
    "maximum({}, {})",
    "minimum({}, {})",
    "({})^(sigmoid({}))",
]
LEAVES = ["x", "y", "s", "2", "0.5", "t1"]


def _expr(draw, depth):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(LEAVES))
    if draw(st.booleans()):
        return draw(st.sampled_from(UNARY)).format(_expr(draw, depth - 1))
    form = draw(st.sampled_from(BINARY))
    if form.startswith("({})^(sigmoid"):  # a positive base keeps the power real
        return f"(1 + ({_expr(draw, depth - 1)})^2)^(sigmoid({_expr(draw, depth - 1)}))"
    return form.format(_expr(draw, depth - 1), _expr(draw, depth - 1))


@st.composite
def programs(draw):
    first = _expr(draw, 3).replace("t1", "x")
    second = _expr(draw, 3)
    reducer = draw(
        st.sampled_from(
            [
                "sum({})",
                "mean({})",
                "max({})",
                "({}).sum()",
                "norm({})",
                "logsumexp({}, 0)",
                "prod({})",
                "var({})",
                "amax({})",
                "mse_loss({}, y)",
                "cross_entropy({}, 1)",
                "sum(({})[1:] * ({})[:-1])",
            ]
        )
    )
    body = "t2 * t1 + x"
    return f"t1 = {first}\nt2 = {second}\n" + reducer.format(*[body] * reducer.count("{}"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    program=programs(), seed=st.integers(0, 2**31), wrt=st.sampled_from([None, ["x"], ["y", "s"]])
)
def test_random_programs(program, seed, wrt):
    import conftest

    torch = conftest._torch()
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.standard_normal(3), "y": rng.standard_normal(3), "s": rng.standard_normal()}
    try:
        out, grads = run_torch(torch, program, inputs, wrt=wrt)
    except RuntimeError as e:  # the output does not depend on what requires grad
        with pytest.raises(gradcli.EvaluationError, match="does not require grad"):
            gradcli.evaluate(program, inputs, wrt=wrt, dtype="float64")
        assert "does not require grad" in str(e)
        return
    ours = gradcli.evaluate(program, inputs, wrt=wrt, dtype="float64")
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-9, atol=1e-12)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None
        else:
            np.testing.assert_allclose(ours.grad[name], g, rtol=1e-7, atol=1e-9)
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)


@pytest.mark.parametrize("program,inputs,seed,wrt", PROGRAMS)
def test_lean_mode_gives_the_same_gradients(program, inputs, seed, wrt, monkeypatch):
    """keep='inputs' frees intermediates during the reverse pass: same answers."""
    from gradcli import engine
    from gradcli.parser import parse

    monkeypatch.setattr(engine, "LEAN_BYTES", 0)  # small tensors too: drops and reuse
    monkeypatch.setattr(engine._POOL, "min_bytes", 0)
    parsed = parse(program)
    full = gradcli.evaluate(parsed, inputs, seed_vector=seed, wrt=wrt, dtype="float64")
    for _ in range(2):  # the second evaluation replays the plan: drops and in-place writes
        lean = gradcli.evaluate(
            parsed, inputs, seed_vector=seed, wrt=wrt, dtype="float64", keep="inputs"
        )
        np.testing.assert_array_equal(full.value, lean.value)
        assert full.to_dict(nodes=False) == lean.to_dict(nodes=False)


def test_lean_evaluation_never_writes_into_the_callers_arrays():
    """Buffers are reused only when nothing else references them: inputs never are."""
    from gradcli.parser import parse

    rng = np.random.default_rng(0)
    x = rng.standard_normal(100_000).astype(np.float32)
    y = rng.standard_normal(100_000).astype(np.float32)
    before = x.copy(), y.copy()
    for program in (
        "mean(2*(x+2)^2)",
        "sum(x * y + x)",
        "sum(exp(x) - y * 3)",
        "z = x + y; w = reshape(z, 1000, 100); sum(w * w) + sum(z)",
    ):
        p = parse(program)
        results = [gradcli.evaluate(p, {"x": x, "y": y}, keep="inputs") for _ in range(4)]
        assert np.array_equal(x, before[0]) and np.array_equal(y, before[1])
        first = results[0].grad
        for r in results[1:]:  # earlier results are not overwritten by later evaluations
            for k in first:
                np.testing.assert_array_equal(r.grad[k], first[k])


# -- PyTorch's own spelling: qualified names, aliases, methods, keywords ------------------

SPELLED = [
    "torch.sin(x).sum()",
    "F.relu(x).sum()",
    "torch.sum(x)",
    "torch.sum(A, 1).sum()",
    "A.sum(dim=(0, 1))",
    "A.sum(axis=0).sum()",
    "A.sum([0, 1])",
    "A.sum(0, True).sum()",
    "A.sum(dim=None)",
    "A.mean(axis=1, keepdims=True).sum()",
    "torch.nn.functional.gelu(x).mean()",
    "nn.functional.softplus(x, beta=2).sum()",
    "torch.special.expit(x).sum()",
    "torch.special.erf(x).sum() + torch.special.log1p(x * x).sum()",
    "torch.clip(x, -0.5, 0.5).sum()",
    "x.clip(min=0).sum()",
    "x.absolute().sum()",
    "torch.arccos(x * 0.3).sum() + x.arctan().sum()",
    "torch.multiply(x, y).sum() + x.multiply(2).sum()",
    "torch.subtract(x, y).sum() + torch.divide(x, 2).sum() + x.negative().sum()",
    "(x * torch.greater(x, 0)).sum() + (y * x.less_equal(y)).sum()",
    "torch.add(x, other=y).sum()",
    "torch.sum(input=x)",
    "torch.where(condition=x > 0, input=x, other=y).sum()",
    "torch.linalg.vector_norm(x, ord=3)",
    "x.norm(p=1)",
    "torch.pi * x.sum() + math.e + torch.e * math.pi",
    "torch.clamp(x, max=torch.inf).sum() + x.clamp(min=-math.inf).sum()",
    "torch.concat([x, y]).sum() + torch.concatenate([x, y], dim=0).sum()",
    "torch.reshape(A, (3, 2)).sum() + A.reshape([3, 2]).sum() + A.reshape(3, 2).sum()",
    "torch.special.logsumexp(x, 0) + torch.logsumexp(A, dim=1).sum()",
    "F.log_softmax(x, dim=0).sum() + torch.softmax(A, 1)[0, 1] + A.softmax(dim=0)[1, 0]",
    "torch.linalg.matmul(A, x).sum() + torch.matmul(x, x) + torch.ger(x, y).sum()",
    "F.mse_loss(x, target=y) + F.l1_loss(input=x, target=y, reduction='sum')",
    "torch.nn.functional.binary_cross_entropy_with_logits(x, torch.sigmoid(y))",
    "F.tanh(x).sum() + F.sigmoid(x).sum() + x.relu().sum()",
]


@pytest.mark.parametrize("program", SPELLED)
def test_pytorch_spelling(torch, program):
    rng = np.random.default_rng(11)
    inputs = {
        "x": rng.uniform(-1, 1, 3),
        "y": rng.uniform(-1, 1, 3),
        "A": rng.standard_normal((2, 3)),
    }
    used = {k: v for k, v in inputs.items() if k in program.replace("torch.", "")}
    check(torch, program, used)


# -- //, % and fmod at nan, +-inf, +-0 and signs, against PyTorch ---------------------------

EDGES = [5.5, -3.25, 7.0, 0.0, -0.0, "inf", "-inf", "nan", 2.0, -2.0, 3.0]


def _forward(program, inputs, dtype, wrt=()):
    from gradcli import engine
    from gradcli.api import quietly
    from gradcli.parser import parse

    arrays = {k: np.asarray(np.array(v, dtype=float), dtype=dtype) for k, v in inputs.items()}
    with quietly():
        nodes, out = engine.forward(parse(program), arrays, set(wrt), dtype)
    return nodes[out]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "program", ["x // y", "x % y", "torch.fmod(x, y)", "x // 2.5", "-7 // y", "100 % y", "x % -2"]
)
def test_floor_division_and_remainder_values(torch, program, dtype):
    pairs = [(a, b) for a in EDGES for b in EDGES]
    inputs = {"x": [float(a) for a, _ in pairs], "y": [float(b) for _, b in pairs]}
    ours = _forward(program, inputs, dtype, wrt={"x", "y"})
    tdtype = getattr(torch, dtype)
    ns = {k: torch.tensor(v, dtype=tdtype, requires_grad=True) for k, v in inputs.items()}
    theirs = eval(program, {"torch": torch}, ns)  # noqa: S307 - our own test programs
    expected = theirs.detach().numpy()
    np.testing.assert_array_equal(ours.value, expected)
    numbers = ~np.isnan(expected)  # -0.0 as PyTorch gives it (a nan's sign is not shown)
    assert np.array_equal(np.signbit(ours.value)[numbers], np.signbit(expected)[numbers])
    assert ours.label == type(theirs.grad_fn).__name__


@pytest.mark.parametrize("program", ["sum(x % y)", "sum(x % 1.5)", "sum(torch.fmod(x, y))"])
def test_remainder_gradients_at_the_edges(torch, program):
    finite = [5.5, -3.25, 7.0, 0.0, -0.0, 2.0, -2.0, 3.0, "inf", "nan"]
    pairs = [(a, b) for a in finite for b in [5.5, -3.25, 2.0, -2.0, "inf", "-inf", "nan"]]
    check(torch, program, {"x": [a for a, _ in pairs], "y": [b for _, b in pairs]})


# -- shape ops at their edges: empty tensors, empty dims, offsets past the end -------------

SHAPE_EDGES = [
    "a.repeat(0).sum()",
    "a.flip(()).sum()",
    "E.roll(1).sum()",
    "E.flip(0).sum()",
    "E.expand(2, 0).sum()",
    "S.diagonal(5).sum() + S.diagonal(-2).sum()",
    "A.tril(10).sum() + A.triu(-10).sum()",
    "E.narrow(0, 0, 0).sum()",
    "A.squeeze(()).sum()",
    "a.tile(()).sum()",
    "A.permute(-1, -2).sum()",
    "A.movedim(-1, 0).sum()",
    "A.transpose(-1, -2).sum()",
    "a.unflatten(0, (-1, 1)).sum()",
    "S.trace() + E.sum()",
    "A.select(1, -3).sum()",
    "A[None, ..., None].sum() + a[...].sum()",
    "B.flatten(1, 1).sum() + a.flatten().sum()",
]


@pytest.mark.parametrize("program", SHAPE_EDGES)
def test_shape_ops_at_the_edges(torch, program):
    inputs = {
        "a": [1.0, 2.0, 3.0],
        "A": np.arange(6.0).reshape(2, 3),
        "S": np.arange(9.0).reshape(3, 3),
        "B": np.arange(24.0).reshape(2, 3, 4),
        "E": np.zeros(0),
    }
    check(
        torch,
        program,
        {k: v for k, v in inputs.items() if k + "." in program or k + "[" in program},
    )


@pytest.mark.parametrize(
    "program,fragment",
    [
        ("A.t().view(-1)", "view size is not compatible"),
        ("a.expand(4)", "must match the existing size (3) at non-singleton dimension 0"),
        ("A.expand(3)", "must be greater or equal to the number of dimensions"),
        ("a.expand(-1, 3)", "isn't allowed in a leading, non-existing dimension 0"),
        ("A.permute(0)", "input.dim() = 2 is not equal to len(dims) = 1"),
        ("A.permute(0, 0)", "duplicate dims"),
        ("A.repeat(2)", "can not be smaller than number of dimensions"),
        ("a.fliplr()", "Input must be >= 2-d."),
        ("a.tril()", "at least 2 dimensions"),
        ("a.trace()", "expected a matrix"),
        ("A.diagonal(0, 1, 1)", "diagonal dimensions cannot be identical"),
        ("A.narrow(1, 2, 2)", "exceeds dimension size (3)"),
        ("A.select(1, 3)", "index 3 out of range"),
        ("A.roll((1, 2), 0)", "shifts and dimensions must align"),
        ("A.unflatten(1, (2, 2))", "don't multiply up to the size of dim 1 (3)"),
        ("A.transpose(0, 2)", "Dimension out of range"),
        ("A.movedim((0, 1), 0)", "should contain the same number of dims"),
    ],
)
def test_shape_op_errors_say_what_pytorch_says(torch, program, fragment):
    inputs = {"a": [1.0, 2.0, 3.0], "A": np.arange(6.0).reshape(2, 3)}
    used = {k: v for k, v in inputs.items() if k + "." in program}
    with pytest.raises(gradcli.ShapeError) as info:
        gradcli.evaluate(program, used, seed_vector=None)
    assert fragment in info.value.message and info.value.exit_code == 1
    with pytest.raises((RuntimeError, IndexError, TypeError)):  # PyTorch refuses it too
        eval(program, {"torch": torch}, {k: torch.tensor(v) for k, v in used.items()})  # noqa: S307


@pytest.mark.parametrize(
    "program,inputs",
    [
        ("E.softmax(0).sum() + E.log_softmax(0).sum()", {"E": np.zeros(0)}),
        ("E.prod()", {"E": np.zeros(0)}),
        ("s.transpose(0, -1) + s.swapdims(0, 0) + s.flip(0) + s.roll(1)", {"s": 2.0}),
        ("s.movedim(0, -1) * s.permute(())", {"s": 2.0}),
    ],
)
def test_empty_and_zero_dimensional_tensors(torch, program, inputs):
    check(torch, program, inputs)


@pytest.mark.parametrize(
    "program,inputs,fragment",
    [
        ("s.roll(1, 0)", {"s": 2.0}, "Dimension specified as 0 but tensor has no dimensions"),
        ("s.transpose(0, 1)", {"s": 2.0}, "expected to be in range of [-1, 0], but got 1"),
        ("E.norm(inf)", {"E": np.zeros(0)}, "cannot compute the inf norm on an empty tensor"),
    ],
)
def test_empty_and_zero_dimensional_errors(torch, program, inputs, fragment):
    with pytest.raises(gradcli.GradcliError) as info:
        gradcli.evaluate(program, inputs)
    assert fragment in info.value.message
    with pytest.raises((RuntimeError, IndexError)):
        ns = {k: torch.tensor(v) for k, v in inputs.items()}
        eval(program, {"torch": torch, "inf": float("inf")}, ns)  # noqa: S307


@pytest.mark.parametrize(
    "program", ["sum(x * x.detach())", "(A * torch.detach(A).exp()).sum()", "sum(x.detach() + x)"]
)
def test_detach_stops_the_gradient_as_in_pytorch(torch, program):
    from conftest import torch_function
    from torch.autograd.functional import jvp

    from gradcli import derivatives

    inputs = {"x": [0.5, -1.0, 2.0], "A": np.arange(6.0).reshape(2, 3) / 4}
    used = {k: v for k, v in inputs.items() if k in program.replace("torch.", "")}
    check(torch, program, used)
    names = list(used)
    tangents = {k: np.ones(np.shape(v)) for k, v in used.items()}
    ours = derivatives.jvp(program, used, tangents, dtype="float64")
    f = torch_function(torch, program, names)
    _, theirs = jvp(
        f,
        tuple(torch.tensor(np.asarray(v, dtype=float)) for v in used.values()),
        tuple(torch.tensor(t) for t in tangents.values()),
    )
    np.testing.assert_allclose(ours["jvp"], theirs.numpy(), rtol=1e-12)
