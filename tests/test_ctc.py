"""F.ctc_loss against PyTorch 2.13: values, PyTorch's gradient (which does not assume the
log-probabilities normalised), every grad_fn label, infeasible alignments with and without
zero_infinity, and PyTorch's errors."""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import our_labels, torch_labels

import gradcli
from gradcli import derivatives as D
from gradcli.cli import main

PADDED = [[1, 2, 2], [3, 1, 0], [2, 2, 2]]
LENGTHS = {"il": [6, 4, 5], "tl": [3, 2, 1]}
# (program over x (T, N, C) and t, {extra int64 inputs}, T, N, C)
CASES = [
    ("F.ctc_loss(x.log_softmax(2), t, il, tl)", PADDED, LENGTHS),
    ("F.ctc_loss(x.log_softmax(2), t, il, tl, reduction='sum')", PADDED, LENGTHS),
    ("F.ctc_loss(x.log_softmax(2), t, il, tl, reduction='none')", PADDED, LENGTHS),
    ("F.ctc_loss(x.log_softmax(2), t, (6, 4, 5), (3, 2, 1))", PADDED, {}),
    ("F.ctc_loss(x.log_softmax(2), t, [6, 4, 5], [3, 2, 1], 0, 'sum')", PADDED, {}),
    ("F.ctc_loss(x.log_softmax(2), t, il, tl)", [1, 2, 2, 3, 1, 2], LENGTHS),  # concatenated
    (
        "F.ctc_loss(x.log_softmax(2), t, il, tl, blank=3)",
        [[1, 2, 2], [0, 1, 0], [2, 2, 0]],
        LENGTHS,
    ),
    # the first sequence cannot be aligned in 4 frames (1 _ 1 _ 1 needs 5): an infinite loss
    # and NaN gradients, or 0 for both with zero_infinity
    (
        "F.ctc_loss(x.log_softmax(2), t, (4, 6, 2), (3, 2, 2), reduction='none')",
        [[1, 1, 1], [3, 1, 0], [1, 2, 0]],
        {},
    ),
    (
        "F.ctc_loss(x.log_softmax(2), t, (4, 6, 2), (3, 2, 2))",
        [[1, 1, 1], [3, 1, 0], [1, 2, 0]],
        {},
    ),
    (
        "F.ctc_loss(x.log_softmax(2), t, (4, 6, 2), (3, 2, 2), zero_infinity=True)",
        [[1, 1, 1], [3, 1, 0], [1, 2, 0]],
        {},
    ),
    (
        "F.ctc_loss(x.log_softmax(2), t, (4, 6, 2), (3, 2, 2), reduction='sum', "
        "zero_infinity=True)",
        [[1, 1, 1], [3, 1, 0], [1, 2, 0]],
        {},
    ),
    (
        "F.ctc_loss(x.log_softmax(2), t, (4, 6, 2), (3, 2, 2), reduction='none', "
        "zero_infinity=True)",
        [[1, 1, 1], [3, 1, 0], [1, 2, 0]],
        {},
    ),
    # empty targets, no frames (with and without a target), every frame used
    ("F.ctc_loss(x.log_softmax(2), t, (6, 0, 0), (0, 0, 1), reduction='none')", PADDED, {}),
    ("F.ctc_loss(x.log_softmax(2), t, (6, 0, 3), (0, 0, 1))", PADDED, {}),
    # PyTorch's gradient of unnormalised log-probabilities: exp(lp) - Σαβ/(p·exp(lp))
    ("F.ctc_loss(x, t, il, tl)", PADDED, LENGTHS),
    ("F.ctc_loss(x * 3, t, il, tl, reduction='sum')", PADDED, LENGTHS),
    # a blank as a target (PyTorch does not check): its last-frame share replaces blank's
    (
        "F.ctc_loss(x.log_softmax(2), t, (6, 5, 5), (3, 2, 2), reduction='sum')",
        [[1, 0, 2], [0, 0, 0], [2, 0, 0]],
        {},
    ),
]
# unbatched: log_probs (T, C), targets (S,)
UNBATCHED = [
    ("F.ctc_loss(x[:, 0].log_softmax(1), t, (6,), (3,))", [1, 2, 2], {}),
    (
        "F.ctc_loss(x[:, 0].log_softmax(1), t, il, tl, reduction='none')",
        [1, 2, 1],
        {"il": 5, "tl": 3},
    ),
    (
        "F.ctc_loss(x[:, 0].log_softmax(1), t, il, tl, reduction='sum')",
        [2, 2],
        {"il": [6], "tl": [2]},
    ),
]


def _run(torch, program, target, extra, dtype, x=None, steps=6, batch=3, classes=4):
    rng = np.random.default_rng(31)
    x = rng.standard_normal((steps, batch, classes)) if x is None else np.asarray(x)
    ints = {"t": np.asarray(target, np.int64)}
    ints |= {k: np.asarray(v, np.int64) for k, v in extra.items()}
    ours = gradcli.evaluate(f"({program}).sum()", {"x": x, **ints}, wrt=["x"], dtype=dtype)
    tdtype = getattr(torch, dtype)
    xt = torch.tensor(x, dtype=tdtype, requires_grad=True)
    ns = {"F": torch.nn.functional, "x": xt, **{k: torch.tensor(v) for k, v in ints.items()}}
    out = eval(program, ns)
    out.sum().backward()
    rtol = 1e-12 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, out.sum().item(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.grad["x"], xt.grad.numpy(), rtol=rtol, atol=rtol)
    assert our_labels(ours) == torch_labels(out.sum())
    assert ours.grad["x"].dtype == np.dtype(dtype)
    return ours, out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,target,extra", CASES + UNBATCHED)
def test_ctc_loss_against_pytorch(torch, program, target, extra, dtype):
    _run(torch, program, target, extra, dtype)


def test_ctc_loss_infeasible_gradients_are_nan_as_in_pytorch(torch):
    ours, out = _run(
        torch,
        "F.ctc_loss(x.log_softmax(2), t, (4, 6), (3, 2), reduction='none')",
        [[1, 1, 1], [3, 1, 0]],
        {},
        "float64",
        batch=2,
    )
    assert np.isinf(ours.value)
    g = ours.grad["x"]
    assert np.isnan(g[:4, 0]).all() and (g[4:, 0] == 0).all() and np.isfinite(g[:, 1]).all()


def test_ctc_loss_output_labels_and_shapes(torch):
    L = "F.ctc_loss(x.log_softmax(2), t, (6, 4, 5), (3, 2, 1)"
    for program, label in (
        (f"{L})", "MeanBackward0"),
        (f"{L}, reduction='sum')", "SumBackward0"),
        (f"{L}, reduction='none')", "CtcLossBackward0"),
        (f"{L}, reduction='none', zero_infinity=True)", "WhereBackward0"),
        ("F.ctc_loss(x[:, 1], t[1, :2], (4,), (2,), reduction='none')", "SqueezeBackward1"),
    ):
        x = np.random.default_rng(1).standard_normal((6, 3, 4))
        xt = torch.tensor(x, requires_grad=True)
        out = eval(program, {"F": torch.nn.functional, "x": xt, "t": torch.tensor(PADDED)})
        seed = None if out.ndim == 0 else np.ones(out.shape)
        r = gradcli.evaluate(program, {"x": x, "t": np.array(PADDED)}, seed_vector=seed)
        assert r.grad_fn == label == type(out.grad_fn).__name__
        assert r.value.shape == tuple(out.shape)


def test_ctc_loss_log_probs_with_minus_infinity(torch):
    """A class of probability 0 (lp = -inf): PyTorch's formula gives NaN there."""
    x = np.log(np.random.default_rng(2).dirichlet(np.ones(4), size=(6, 3)))
    x[2, 0, 3] = x[0, 1, 0] = -np.inf
    _run(
        torch, "F.ctc_loss(x, t, (6, 4, 5), (3, 2, 1), reduction='sum')", PADDED, {}, "float64", x=x
    )


def test_ctc_loss_plans_follow_length_values():
    """The lengths are values, not shapes: a second evaluation of the same program with other
    lengths (a replayed plan, as batch records do) computes with the new ones."""
    from gradcli.parser import parse

    p = parse("F.ctc_loss(x.log_softmax(2), t, il, tl)")
    x = np.random.default_rng(3).standard_normal((6, 3, 4))
    a = {"x": x, "t": np.array(PADDED), "il": np.array([6, 4, 5]), "tl": np.array([3, 2, 1])}
    b = {**a, "il": np.array([3, 6, 6]), "tl": np.array([1, 3, 0])}
    first = gradcli.evaluate(p, a, wrt=["x"], dtype="float64")
    second = gradcli.evaluate(p, b, wrt=["x"], dtype="float64")
    fresh = gradcli.evaluate(
        parse("F.ctc_loss(x.log_softmax(2), t, il, tl)"), b, wrt=["x"], dtype="float64"
    )
    assert first.value != second.value
    assert second.value == fresh.value
    np.testing.assert_array_equal(second.grad["x"], fresh.grad["x"])


def test_ctc_loss_float_class_indices_are_truncated_as_in_pytorch(torch):
    x = np.random.default_rng(4).standard_normal((6, 3, 4))
    ins = {
        "x": x,
        "t": np.array(PADDED, float) + 0.25,
        "il": np.array([6, 4, 5]),
        "tl": np.array([3, 2, 1]),
    }
    ours = gradcli.evaluate(
        "F.ctc_loss(x.log_softmax(2), t, il, tl)", ins, wrt=["x"], dtype="float64"
    )
    out = torch.nn.functional.ctc_loss(
        torch.tensor(x).log_softmax(2), torch.tensor(ins["t"]), (6, 4, 5), (3, 2, 1)
    )
    np.testing.assert_allclose(ours.value, out.item(), rtol=1e-12)
    assert ours.grad.get("t") is None


def test_ctc_loss_has_jvp_jacobian_and_hessian():
    """PyTorch has neither forward mode nor a double backward for ctc_loss; ours come from the
    same rules on dual numbers, and agree with finite differences for normalised inputs."""
    x = np.random.default_rng(5).standard_normal((5, 2, 3))
    ins = {"x": x, "t": np.array([[1, 2], [2, 2]]), "il": np.array([5, 5]), "tl": np.array([2, 2])}
    for program in (
        "F.ctc_loss(x.log_softmax(2), t, il, tl)",
        "F.ctc_loss(x.log_softmax(2), t, il, tl, reduction='sum', zero_infinity=True)",
    ):
        assert D.check(program, ins, wrt=["x"])["ok"], program
    h = D.hessian("F.ctc_loss(x.log_softmax(2), t, il, tl)", ins, wrt=["x"], dtype="float64")[
        "hessian"
    ]["x"]["x"]
    h = np.asarray(h).reshape(x.size, x.size)
    np.testing.assert_allclose(h, h.T, atol=1e-8)  # a Hessian is symmetric


def test_ctc_loss_one_liner_on_the_command_line():
    r = CliRunner().invoke(
        main,
        [
            "grad",
            "F.ctc_loss(x.log_softmax(2), t, (3,), (1,))",
            "x=randn(3,1,3)",
            "t=int64:[[1]]",
            "--random-seed",
            "1",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert '"grad_fn": "MeanBackward0"' in r.output and "CtcLossBackward0" in r.output


TG = "torch.tensor([[1, 2, 2], [3, 1, 0]])"
ERRORS = [
    (f"F.ctc_loss(x, {TG}, (5,), (3, 2))", "input_lengths must be of size batch_size"),
    (f"F.ctc_loss(x, {TG}, (5, 5), (3,))", "target_lengths must be of size batch_size"),
    (f"F.ctc_loss(x, {TG}, (6, 5), (3, 2))", "Expected input_lengths to have value at most 5"),
    (f"F.ctc_loss(x, {TG}, (-1, 5), (3, 2))", "Expected input_lengths to have value at least 0"),
    (f"F.ctc_loss(x, {TG}, (5, 5), (-1, 2))", "Expected target_lengths to have value at least 0"),
    (
        f"F.ctc_loss(x, {TG}, (5, 5), (4, 2))",
        "Expected tensor to have size at least 4 at dimension 1",
    ),
    (f"F.ctc_loss(x, {TG}, (5, 5), (3, 2), blank=4)", "blank must be in label range"),
    (f"F.ctc_loss(x, {TG}, (5, 5), (3, 2), blank=-1)", "blank must be in label range"),
    ("F.ctc_loss(x, torch.tensor([[[1]]]), (5, 5), (3, 2))", "Expected 1 to 2 dimensions"),
    (
        "F.ctc_loss(x, torch.tensor([1, 2]), (5, 5), (3, 2))",
        "Expected tensor to have size 5 at dimension 0, but got size 2",
    ),
    (
        f"F.ctc_loss(x, {TG}[:1], (5, 5), (3, 2))",
        "Expected tensor to have size 2 at dimension 0, but got size 1",
    ),
    (
        f"F.ctc_loss(x[0, 0], {TG}, (5, 5), (3, 2))",
        "Expected 3-dimensional tensor, but got 2-dimensional tensor for argument #1 'log_probs'",
    ),
    (
        f"F.ctc_loss(x[None], {TG}, (5, 5), (3, 2))",
        "Expected 3-dimensional tensor, but got 5-dimensional tensor",
    ),
    (f"F.ctc_loss(x[:0], {TG}, (0, 0), (3, 2))", "log_probs tensor must not be empty"),
    (f"F.ctc_loss(x, {TG}, (5, 5), (3, 2), reduction='x')", "x is not a valid value for reduction"),
]


@pytest.mark.parametrize("program,message", ERRORS)
def test_ctc_loss_errors_are_pytorchs(torch, program, message):
    x = np.ones((5, 2, 4))
    with pytest.raises((RuntimeError, ValueError)) as theirs:
        eval(program, {"F": torch.nn.functional, "x": torch.tensor(x), "torch": torch})
    assert message in str(theirs.value)
    with pytest.raises(gradcli.GradcliError) as ours:
        gradcli.evaluate(program, {"x": x})
    assert message in ours.value.message or "reduction must be one of" in ours.value.message


@pytest.mark.parametrize(
    "program,message",
    [
        ("F.ctc_loss(x, torch.tensor([[1, 9, 2], [3, 1, 0]]), (5, 5), (3, 2))", "out of range"),
        ("F.ctc_loss(x, torch.tensor([[1, 2], [3, -1]]), (5, 5), (2, 2))", "out of range"),
        (f"F.ctc_loss(x, {TG}, (5, 4.5), (3, 2))", "input_lengths must be integral"),
        (f"F.ctc_loss(x, {TG}, 'a', (3, 2))", "input_lengths must be a tensor or a tuple"),
        (f"F.ctc_loss(x, {TG}, il, (3, 2))", "must be a 1-D tensor or a tuple of integers"),
        (f"F.ctc_loss(x, {TG})", "needs the argument 'input_lengths'"),
    ],
)
def test_ctc_loss_refuses_what_pytorch_leaves_undefined(program, message):
    with pytest.raises(gradcli.GradcliError, match=message):
        gradcli.evaluate(program, {"x": np.ones((5, 2, 4)), "il": np.ones((2, 2))})


def test_ctc_loss_lean_replay_matches(monkeypatch):
    """Lean evaluation drops what the rules do not read: the CTC backward reads its inputs."""
    from gradcli import engine
    from gradcli.parser import parse

    monkeypatch.setattr(engine, "LEAN_BYTES", 0)
    monkeypatch.setattr(engine._POOL, "min_bytes", 0)
    p = parse("F.ctc_loss((x * 2).log_softmax(2), t, il, tl, zero_infinity=True)")
    x = np.random.default_rng(6).standard_normal((6, 3, 4))
    ins = {"x": x, "t": np.array(PADDED), "il": np.array([6, 2, 5]), "tl": np.array([3, 2, 1])}
    full = gradcli.evaluate(p, ins, dtype="float64")
    for _ in range(2):
        lean = gradcli.evaluate(p, ins, dtype="float64", keep="inputs")
        assert lean.value == full.value
        np.testing.assert_array_equal(lean.grad["x"], full.grad["x"])


def test_ctc_loss_integer_log_probs_are_refused():
    with pytest.raises(gradcli.GradcliError):
        gradcli.evaluate(
            "F.ctc_loss(x, t, (2,), (1,))",
            {"x": np.ones((2, 1, 3), np.int64), "t": np.array([[1]])},
            wrt=[],
        )
