"""Linear algebra against PyTorch 2.13 beyond the table's examples: the nodes batched matmul
records by ranks and by which operand requires grad, empty tensors, nan and inf, cdist (whose
own backward PyTorch cannot differentiate again), and PyTorch's messages for shapes that do
not fit."""

import numpy as np
import pytest
from conftest import our_labels, run_torch, torch_labels

import gradcli
from gradcli import derivatives as D


def check(torch, program, inputs, *, wrt=None, dtype="float64"):
    """Value, gradient of every input that requires grad, and every grad_fn label."""
    from gradcli import engine
    from gradcli.parser import parse

    arrays = {k: np.asarray(v, dtype=dtype) for k, v in inputs.items()}
    with np.errstate(all="ignore"):
        nodes, out = engine.forward(parse(program), arrays, set(), dtype)
    shape = nodes[out].shape
    seed = None if shape == () else np.random.default_rng(0).standard_normal(shape)
    ours = gradcli.evaluate(program, inputs, seed_vector=seed, wrt=wrt, dtype=dtype)
    theirs, grads = run_torch(torch, program, inputs, wrt=wrt, dtype=dtype, seed=seed)
    rtol = 1e-9 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, theirs.detach().numpy(), rtol=rtol, atol=rtol)
    assert ours.value.shape == tuple(theirs.shape)
    for name, g in grads.items():
        assert g is not None
        np.testing.assert_allclose(ours.grad[name], g, rtol=rtol, atol=rtol, err_msg=name)
    assert ours.grad_fn == type(theirs.grad_fn).__name__
    assert our_labels(ours) == torch_labels(theirs)
    return ours


def _randn(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


# -- batched matmul: what torch.matmul records depends on ranks, strides and requires_grad --

RANKS = [
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((2, 1, 3, 4), (1, 5, 4, 2)),
    ((2, 3, 3, 4), (2, 3, 4, 2)),
    ((1, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (1, 4, 5)),
    ((3, 3, 4), (2, 3, 4, 5)),
    ((2, 2, 3, 4), (1, 1, 4, 5)),
    ((3,), (2, 2, 3, 4)),
]


@pytest.mark.parametrize("wrt", [None, ["A"], ["B"]])
@pytest.mark.parametrize("sa,sb", RANKS)
def test_batched_matmul_records_what_torch_records(torch, sa, sb, wrt):
    check(torch, "A @ B", {"A": _randn(*sa), "B": _randn(*sb, seed=2)}, wrt=wrt)


@pytest.mark.parametrize(
    "program,shapes",
    [
        ("A.T @ b", {"A": (4, 3, 2), "b": (4,)}),  # a strided operand: bmm instead of a fold
        ("b @ A.T", {"A": (4, 3, 2), "b": (3,)}),
        ("A.T @ B", {"A": (4, 3, 2), "B": (4, 3)}),
        ("matmul(A, B) + A @ B", {"A": (2, 2, 3), "B": (3, 2)}),
    ],
)
@pytest.mark.parametrize("wrt", [None, ["A"]])
def test_matmul_of_strided_operands(torch, program, shapes, wrt):
    inputs = {k: _randn(*s, seed=i) for i, (k, s) in enumerate(shapes.items())}
    check(torch, program, inputs, wrt=wrt)


def test_batched_matmul_in_float32(torch):
    check(torch, "A @ B", {"A": _randn(2, 1, 3, 4), "B": _randn(3, 4, 2)}, dtype="float32")


# -- cdist: PyTorch's CdistBackward0 cannot be differentiated again, so the table cannot ---
# -- hold it; value, gradient and label against torch here, and jvp/Hessian against the ---
# -- same distances written as a differentiable expression ---------------------------------

CDIST = [
    ("cdist(A, B)", 2.0, (3, 2), (2, 2)),
    ("cdist(A, B, p=1)", 1.0, (2, 2, 2), (1, 3, 2)),
    ("cdist(A, B, 3)", 3.0, (2, 3), (2, 3)),
    ("cdist(A, B, 0.5)", 0.5, (2, 3), (4, 3)),
    ("cdist(A, B, p=inf)", float("inf"), (2, 3), (2, 3)),
    ("cdist(A, B, p=0)", 0.0, (2, 3), (2, 3)),
    ("cdist(A, B)", 2.0, (2, 26, 2), (2, 3, 2)),  # past 25 rows: EuclideanDistBackward0
    ("cdist(A, B)", 2.0, (1, 26, 2), (2, 3, 2)),
    ("cdist(A, B)", 2.0, (26, 2), (1, 3, 2)),
    ("cdist(A, B, 1)", 1.0, (26, 2), (3, 2)),  # p != 2: CdistBackward0 at any size
    ("cdist(A, B, compute_mode='use_mm_for_euclid_dist')", 2.0, (2, 2), (3, 2)),
    ("cdist(A, B, compute_mode='donot_use_mm_for_euclid_dist')", 2.0, (30, 2), (3, 2)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,p,sa,sb", CDIST)
def test_cdist_against_torch(torch, program, p, sa, sb, dtype):
    check(torch, program, {"A": _randn(*sa), "B": _randn(*sb, seed=2)}, dtype=dtype)


@pytest.mark.parametrize("program,p,sa,sb", CDIST[:5])
def test_cdist_jvp_and_hessian(torch, program, p, sa, sb):
    from torch.autograd.functional import hessian, jacobian

    inputs = {"A": _randn(*sa), "B": _randn(*sb, seed=2)}
    args = tuple(torch.tensor(v) for v in inputs.values())

    def reference(a, b):  # the same distances, differentiable twice by PyTorch
        return (a[..., :, None, :] - b[..., None, :, :]).norm(p, dim=-1)

    J = jacobian(reference, args)
    ours = D.jacobian(program, inputs, dtype="float64", mode="forward")["jacobian"]
    for k, name in enumerate(inputs):
        np.testing.assert_allclose(ours[name], J[k].numpy(), rtol=1e-8, atol=1e-10)
    H = hessian(lambda a, b: reference(a, b).sin().sum(), args)
    ours = D.hessian(f"sum(sin({program}))", inputs, dtype="float64")["hessian"]
    for i, a in enumerate(inputs):
        for k, b in enumerate(inputs):
            np.testing.assert_allclose(ours[a][b], H[i][k].numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("p", ["2", "1", "3", "0.5", "inf"])  # (torch fails at p=0)
def test_cdist_and_dist_at_zero_distance(torch, p):
    """Equal rows (a zero distance) and equal coordinates: PyTorch's conventions."""
    inputs = {"A": [[1.0, 2.0], [0.0, 0.0]], "B": [[1.0, 2.0], [1.0, 0.0], [0.0, 0.0]]}
    check(torch, f"cdist(A, B, {p})", inputs)
    check(torch, f"dist(A, B[:2], {p})", inputs)
    check(torch, f"dist(A, A * 1, {p})", {"A": inputs["A"]})


# -- empty tensors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "program,shapes",
    [
        ("A @ B", {"A": (0, 3), "B": (3, 2)}),
        ("A @ B", {"A": (2, 0), "B": (0, 3)}),
        ("A @ B", {"A": (0, 2, 3), "B": (3, 2)}),
        ("A @ B", {"A": (2, 3, 0), "B": (2, 0, 4)}),
        ("A @ b", {"A": (2, 3, 0), "b": (0,)}),
        ("bmm(A, B)", {"A": (0, 2, 3), "B": (0, 3, 2)}),
        ("addmm(s, A, B)", {"s": (2,), "A": (3, 0), "B": (0, 2)}),
        ("einsum('ij,jk->ik', A, B)", {"A": (2, 0), "B": (0, 3)}),
        ("einsum('ii->i', A)", {"A": (0, 0)}),
        ("tensordot(A, B, 1)", {"A": (2, 0), "B": (0, 3)}),
        ("kron(A, B)", {"A": (2, 0), "B": (2, 2)}),
        ("cdist(A, B)", {"A": (0, 2), "B": (3, 2)}),
        ("cdist(A, B)", {"A": (30, 0), "B": (3, 0)}),
        ("diag(a)", {"a": (0,)}),
        ("diag(A, 3)", {"A": (2, 2)}),
        ("cross(A, B, dim=1)", {"A": (0, 3), "B": (0, 3)}),
        ("renorm(A, 2, 0, 1)", {"A": (0, 3)}),
    ],
)
def test_empty_tensors(torch, program, shapes):
    inputs = {k: np.zeros(s) for k, s in shapes.items()}
    check(torch, program, inputs)


def test_dist_of_empty_tensors(torch):
    check(torch, "dist(a, b)", {"a": np.zeros(0), "b": np.zeros(0)})


# -- nan and inf ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program,inputs",
    [
        ("A @ B", {"A": [[[1.0, "nan"], [2.0, 3.0]]], "B": [[1.0, 2.0], [0.0, 1.0]]}),
        ("A @ b", {"A": [[["inf", 1.0], [2.0, 3.0]]], "b": [0.0, 1.0]}),
        (
            "addmm(S, A, B, beta=0)",
            {"S": [["nan", "inf"]], "A": [[1.0, 2.0]], "B": [[1.0, 2.0], [3.0, 4.0]]},
        ),  # noqa: E501
        ("addmv(s, A, v, beta=0, alpha=2)", {"s": ["nan"], "A": [[1.0, 2.0]], "v": [1.0, 3.0]}),
        ("baddbmm(s, A, B, beta=0)", {"s": ["nan"], "A": [[[1.0, 2.0]]], "B": [[[1.0], [3.0]]]}),
        ("dist(a, b)", {"a": [1.0, "inf"], "b": [0.0, 1.0]}),
        ("dist(a, b, 3)", {"a": [1.0, "nan"], "b": [0.0, 1.0]}),
        ("cdist(A, B, 1)", {"A": [[1.0, "nan"]], "B": [[0.0, 1.0], [2.0, 2.0]]}),
        ("cdist(A, B, inf)", {"A": [[1.0, "inf"]], "B": [[0.0, 1.0], [2.0, 2.0]]}),
        ("renorm(A, 2, 0, 1)", {"A": [[1.0, "nan"], [3.0, 4.0]]}),
        ("renorm(A, 1, 1, 5)", {"A": [[1.0, 2.0], [3.0, 4.0]]}),  # a slice exactly at maxnorm
        ("cross(a, b, dim=0)", {"a": [1.0, "inf", 0.0], "b": [0.0, 1.0, 2.0]}),
        ("einsum('i,i->', a, b)", {"a": [1.0, "inf"], "b": [0.0, 1.0]}),
        ("diag_embed(a)", {"a": ["nan", 1.0]}),
        ("kron(a, b)", {"a": ["inf", 1.0], "b": [0.0, 2.0]}),
    ],
)
def test_nan_and_inf(torch, program, inputs):
    check(torch, program, inputs)


# -- PyTorch's messages for shapes that do not fit ---------------------------------------


@pytest.mark.parametrize(
    "program,shapes",
    [
        ("A @ B", {"A": (2, 3), "B": (4, 5)}),
        ("A @ B", {"A": (2, 3, 4), "B": (2, 5, 6)}),
        ("A @ B", {"A": (2, 3, 4), "B": (3, 4, 6)}),
        ("A @ B", {"A": (2, 3, 4), "B": (5,)}),
        ("A @ B", {"A": (5,), "B": (2, 3, 4)}),
        ("A @ B", {"A": (2, 3, 4), "B": (5, 6)}),
        ("A @ B", {"A": (3, 4), "B": (2, 5, 6)}),
        ("mv(A, b)", {"A": (2, 3), "b": (4,)}),
        ("bmm(A, B)", {"A": (2, 3, 4), "B": (2, 5, 6)}),
        ("bmm(A, B)", {"A": (3, 4), "B": (3, 4, 6)}),
        ("addmm(s, A, B)", {"s": (3,), "A": (2, 3), "B": (4, 5)}),
        ("addmm(s, A, B)", {"s": (3,), "A": (2, 3), "B": (3, 5)}),
        ("addmm(s, A, B)", {"s": (3,), "A": (3,), "B": (3, 5)}),
        ("addmv(s, A, v)", {"s": (2,), "A": (2, 3), "v": (4,)}),
        ("addmv(s, A, v)", {"s": (3,), "A": (2, 3), "v": (3,)}),
        ("baddbmm(s, A, B)", {"s": (2, 3, 4), "A": (2, 3, 4), "B": (2, 4, 5)}),
        ("cross(A, B, dim=1)", {"A": (4, 3), "B": (4, 2)}),
        ("cross(A, B, dim=1)", {"A": (2, 3), "B": (4, 3)}),
        ("cross(A, B, dim=2)", {"A": (3, 4), "B": (3, 4)}),
        ("tensordot(A, B, 1)", {"A": (2, 3), "B": (4, 3)}),
        ("tensordot(A, B, dims=([1], [0]))", {"A": (2, 3), "B": (4, 3)}),
        ("tensordot(A, B, 3)", {"A": (2, 3), "B": (4, 3)}),
        ("tensordot(A, B, dims=([1, 0], [1]))", {"A": (2, 3), "B": (4, 3)}),
        ("tensordot(A, B, dims=([1, 1], [0, 0]))", {"A": (2, 3), "B": (3, 3)}),
        ("cdist(A, B)", {"A": (3, 4), "B": (5, 3)}),
        ("cdist(A, B)", {"A": (4,), "B": (5, 4)}),
        ("cdist(A, B)", {"A": (2, 3, 4), "B": (3, 5, 4)}),
        ("cdist(A, B, compute_mode='fast')", {"A": (2, 3), "B": (2, 3)}),
        ("dist(A, b)", {"A": (3, 4), "b": (3,)}),
        ("diag(A)", {"A": (2, 3, 4)}),
        ("diag_embed(A, dim1=0, dim2=0)", {"A": (2, 3)}),
        ("renorm(a, 2, 0, 1)", {"a": (3,)}),
        ("renorm(A, -1, 0, 1)", {"A": (3, 4)}),
        ("renorm(A, 2, 0, -1)", {"A": (3, 4)}),
        ("einsum('ij,jk->ik', A, B)", {"A": (2, 3), "B": (4, 5)}),
        ("einsum('ij,jk', A)", {"A": (2, 3)}),
        ("einsum('ijk,jk', A, B)", {"A": (2, 3), "B": (3, 4)}),
        ("einsum('ij->k', A)", {"A": (2, 3)}),
        ("einsum('ii', A)", {"A": (2, 3)}),
        ("einsum('i1', A)", {"A": (2,)}),
        ("einsum('ij->ii', A)", {"A": (2, 2)}),
        ("einsum('i,i', A)", {"A": (2,)}),
        ("einsum('i', A, A)", {"A": (2,)}),
    ],
)
def test_shape_errors_say_what_torch_says(torch, program, shapes):
    inputs = {k: np.ones(s) for k, s in shapes.items()}
    with pytest.raises((RuntimeError, IndexError, ValueError)) as theirs:
        run_torch(torch, program, inputs)
    with pytest.raises(gradcli.GradcliError) as ours:
        gradcli.evaluate(program, inputs, dtype="float64")
    assert isinstance(ours.value, gradcli.ShapeError)
    expected = str(theirs.value).splitlines()[0]
    assert expected.lower() in ours.value.message.lower()


def test_einsum_equation_comes_first():
    with pytest.raises(gradcli.ParseError, match="equation string first"):
        gradcli.evaluate("einsum(a, a)", {"a": [1.0, 2.0]})
    with pytest.raises(gradcli.ParseError, match="equation string first"):
        gradcli.evaluate("einsum(2, a)", {"a": [1.0, 2.0]})
    with pytest.raises(gradcli.ShapeError, match="must be a string"):
        gradcli.evaluate("einsum(True, a)", {"a": [1.0, 2.0]})


def test_shape_errors_exit_1_on_the_command_line():
    from click.testing import CliRunner

    from gradcli.cli import main

    r = CliRunner().invoke(main, ["grad", "sum(A @ B)", "A=randn(2,3)", "B=randn(4,5)"])
    assert r.exit_code == 1
    assert "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)" in r.output


def test_cdist_in_blocks_of_rows(torch, monkeypatch):
    """Pairwise differences are formed a block of rows at a time: the same answers."""
    from gradcli.ops import linalg

    monkeypatch.setattr(linalg, "PAIR_BLOCK", 7)
    check(torch, "cdist(A, B, 3)", {"A": _randn(2, 5, 3), "B": _randn(1, 4, 3, seed=2)})
