"""The scatter family (scatter, scatter_add, scatter_reduce, index_add, index_copy,
masked_scatter) checked against torch 2.13 itself (skipped without torch unless
GRADCLI_REQUIRE_TORCH=1) — values, dtypes, every floating input's gradient, grad_fn labels and
error messages, with repeated indices, ties, zeros, nan, empty indices and negative dims — and
against finite differences."""

import numpy as np
import pytest
from conftest import NamedInputs

import gradcli
from gradcli import derivatives as D
from gradcli import engine
from gradcli.api import prepare
from gradcli.errors import GradcliError

RNG = np.random.default_rng(7)
FLOATS = {
    "A": RNG.standard_normal((3, 4)),
    "S": RNG.standard_normal((2, 4)),
    "x": np.array([1.0, 2.0, 3.0, 2.0, 1.0]),  # ties with y at the places p sends y to
    "y": np.array([2.0, 2.0, 3.0, 0.0, 1.0]),
    "z": np.array([1.0, 0.0, 3.0, 2.0, 1.0]),  # zeros, for prod
    "w": np.array([0.0, 2.0, 0.0, 0.0, 5.0]),
    "n": np.array([np.nan, 2.0, -1.0, 0.5, np.inf]),
}
INTS = {
    "k": np.array([[0, 1, 2, 0], [2, 0, 0, 1]]),  # repeats within the columns
    "d": np.zeros((2, 4), dtype=np.int64),  # every element of a column to the same place
    "h": np.array([[0, 1, 2, 0], [2, 0, 0, 1]], dtype=np.int32),
    "p": np.array([1, 1, 2, 0, 4]),
    "q": np.array([0, 0, 0, 0, 0]),
    "e": np.zeros((0,), dtype=np.int64),
    "j": np.array([2, 0]),
    "J": np.array([1, 1, 3, 0, 3]),
    "I": np.array([4, -3, 7, 0, 2]),
}
MASKS = {"m": np.array([True, False, True, True, False])}

REDUCES = ("sum", "prod", "mean", "amax", "amin")
CASES = [
    "A.scatter(0, k, S)",
    "A.scatter(0, d, S)",  # repeats: the last write stays; every src element gets its gradient
    "torch.scatter(A, 1, h, S)",
    "A.scatter(-2, k, src=S)",
    "A.scatter(1, k.T[:2], S[:, :2])",
    "A.scatter(0, k, 2.5)",
    "A.scatter(1, k, value=-1)",
    "A.scatter(0, k, True)",
    "A.scatter(0, torch.zeros(0, 4, dtype=torch.long), S.detach())",
    "A.scatter(0, torch.zeros(0, 4, dtype=torch.long), 2.0)",
    "x.scatter(0, e, y.detach())",
    "x.scatter(0, p, n)",
    "x.sum().scatter(0, torch.tensor(0), y[0])",
    "x.scatter(0, q, y)",
    "A.scatter_add(0, k, S)",
    "torch.scatter_add(A, -1, k, S)",
    "x.scatter_add(0, p, n)",
    "x.scatter_add(0, e, y.detach())",
    "A.scatter_add(0, h, S)",
    *(f"x.scatter_reduce(0, p, y, '{r}')" for r in REDUCES),
    *(f"x.scatter_reduce(0, p, y, '{r}', include_self=False)" for r in REDUCES),
    *(f"z.scatter_reduce(0, p, w, '{r}')" for r in ("prod", "amax", "amin")),
    "z.scatter_reduce(0, p, w, 'prod', include_self=False)",
    "z.scatter_reduce(0, q, w, 'prod')",  # three zeros in src at one place
    "z.scatter_reduce(0, q, w, 'prod', include_self=False)",
    "z.scatter_reduce(0, J, y, 'prod')",  # a zero in self, one in src
    *(f"x.scatter_reduce(0, p, n, '{r}')" for r in REDUCES),
    *(f"torch.scatter_reduce(A, 1, k, S, reduce='{r}')" for r in REDUCES),
    *(f"A.scatter_reduce(-2, k, S, '{r}', include_self=False)" for r in REDUCES),
    "A.scatter_reduce(0, torch.zeros(0, 4, dtype=torch.long), S.detach(), 'mean')",
    "(torch.scatter_reduce(J, 0, p, I, 'mean') * x).sum()",  # integer mean: floor division
    "(torch.scatter_reduce(J, 0, p, I, 'mean', include_self=False) * x).sum()",
    "(torch.scatter_reduce(J, 0, p, I, 'amax', include_self=False) * x).sum()",
    "(torch.scatter_reduce(J, 0, p, I, 'prod') * x).sum()",
    "(J.scatter(0, p, I) * x).sum()",
    "(J.scatter(0, p, 2.7) * x).sum()",
    # index_add, index_copy, masked_scatter
    "A.index_add(0, j, S)",
    "A.index_add(0, torch.tensor([1, 1]), S, alpha=-2.5)",  # repeats add
    "torch.index_add(A, -1, torch.tensor([3, 0, 3, 1, 2]), x[:3, None] * y, alpha=2)",
    "A.index_add(0, j.int(), S)",
    "A.index_add(0, torch.tensor([], dtype=torch.long), S[:0])",
    "x.sum().index_add(0, torch.tensor([0]), y[1])",
    "x.index_add(0, p, n)",
    "(J.index_add(0, p, I, alpha=3) * x).sum()",
    "A.index_copy(0, j, S)",
    "A.index_copy(0, torch.tensor([1, 1]), S)",  # repeats: the last stays
    "torch.index_copy(A, -1, torch.tensor([3, 1]), S.T[:3])",
    "x.index_copy(0, torch.tensor(3), y[2])",
    "x.sum().index_copy(0, torch.tensor([0]), y[1])",
    "x.index_copy(0, p[2:], n[:3])",
    "A.index_copy(0, torch.tensor([], dtype=torch.long), S[:0])",
    "x.masked_scatter(m, y)",
    "x.masked_scatter(x > 1.5, n)",
    "A.masked_scatter(A > 0, torch.cat([S.reshape(-1), y]))",
    "A[0].masked_scatter(A > 0, torch.cat([S.reshape(-1), y]))",  # self broadcast
    "A.masked_scatter(A[0] > 0, torch.cat([S.reshape(-1), y]))",  # mask broadcast
    "x.masked_scatter(x > 100, y)",
    "x.sum().masked_scatter(torch.tensor(True), y)",
    # masked_fill with a 0-dim tensor value, gather's sparse_grad
    "x.masked_fill(m, y.sum())",
    "A.masked_fill(A > 0, S[0, 1])",
    "A.masked_fill(m[:4], S[1, 2] * 2)",
    "x.masked_fill(m, torch.tensor(2.5))",
    "(J.masked_fill(m, y[0].detach()) * x).sum()",
    "x.masked_fill(x > 100, y[0])",
    "A.gather(1, k, sparse_grad=False)",
]


CASE = NamedInputs(FLOATS, {**INTS, **MASKS})
_used, _given, _torch_run, _ours = CASE.used, CASE.given, CASE.torch_run, CASE.ours


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program", CASES)
def test_against_torch(torch, program, dtype):
    CASE.check(torch, program, dtype, RNG)


def test_repeated_index_keeps_the_last_write():
    """PyTorch calls the result undefined when index repeats; its CPU kernel (and gradcli)
    keeps the last element in index order."""
    r = gradcli.evaluate(
        "torch.zeros(2).scatter(0, i, s)",
        {"i": "int64:0,0,0,1,0", "s": "1,2,3,4,5"},
        seed_vector=[1, 1],
    )
    np.testing.assert_array_equal(r.value, [5.0, 4.0])
    np.testing.assert_array_equal(r.grad["s"], [1.0, 1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "program",
    [
        "(x.scatter(0, torch.tensor([4, 0, 2]), y[:3]) ** 2).sum()",
        "(A.scatter_add(1, k, S) ** 2).sum()",
        "(z.scatter_reduce(0, p, w, 'prod') ** 2).sum()",
        "(z.scatter_reduce(0, q, w, 'prod', include_self=False) ** 2).sum()",
        "(A.scatter_reduce(0, k, S, 'mean', include_self=False) ** 2).sum()",
        "(A.scatter_reduce(1, k, S, 'amax') ** 2).sum()",
    ],
)
def test_finite_differences(program):
    """prod is a polynomial, so its gradient at zeros is checked by differences too."""
    CASE.check_differences(program)


@pytest.mark.parametrize(
    "program",
    [
        "x.scatter_reduce(0, p, y, 'amax')",
        "x.scatter_reduce(0, p, y, 'amin', include_self=False)",
        "z.scatter_reduce(0, p, w, 'prod')",
        "x.scatter_reduce(0, p, y, 'mean', include_self=False)",
        "x.scatter(0, p, y)",
    ],
)
def test_jvp_matches_torch(torch, program):
    """Forward mode (dual numbers) as PyTorch's forward mode: amax/amin's tangent is the mean
    of the tied elements' (the included ones), scatter's the last write's. (PyTorch's forward
    mode does not implement prod, whose tangent is checked against the double-backward one.)"""
    from torch.autograd.functional import jvp as double_backward_jvp
    from torch.func import jvp

    if "prod" in program:
        jvp = double_backward_jvp

    used = _used(program)
    floats = [k for k in used if k in FLOATS]
    tangents = {k: RNG.standard_normal(used[k].shape) for k in floats}
    ours = D.jvp(program, _given(used), tangents, dtype="float64")

    def f(*args):
        ns = {"torch": torch, **{k: torch.from_numpy(v) for k, v in used.items()}}
        ns.update(zip(floats, args, strict=True))
        return eval(program, ns)

    primals = tuple(torch.from_numpy(used[k]) for k in floats)
    value, theirs = jvp(f, primals, tuple(torch.from_numpy(tangents[k]) for k in floats))
    np.testing.assert_allclose(ours["value"], value.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["jvp"], theirs.numpy(), rtol=1e-10, atol=1e-12)


ERRORS = [
    "A.scatter(0, torch.tensor([[3]]), S)",
    "A.scatter(0, torch.tensor([[-1]]), S)",
    "A.scatter(2, k, S)",
    "A.scatter(-3, k, S)",
    "A.scatter(0, k.float(), S)",
    "A.scatter(0, k[0], S)",
    "A.scatter(0, k, S.float())",
    "A.scatter(0, k, S[:1])",
    "A.scatter(0, torch.zeros(4, 4, dtype=torch.long), S)",
    "A.scatter(0, torch.zeros(1, 5, dtype=torch.long), 1.0)",
    "A.scatter(0, k, S.sum())",
    "A.scatter(0, torch.zeros(0, 4, dtype=torch.long), S.float())",
    "A.scatter(0, k, S, reduce='mean')",
    "A.scatter_add(0, k, S.float())",
    "A.scatter_add(0, k, 2.0)",
    "A.scatter_add(0, torch.tensor([[3]]), S)",
    "torch.scatter_reduce(A, 0, k, S, 'foo')",
    "torch.scatter_reduce(A, 0, torch.tensor([[7]]), S, 'sum')",
    "A.scatter_reduce(0, k, 2.0, 'sum')",
    "A.index_add(0, j.float(), S)",
    "A.index_add(0, torch.tensor([[0, 1]]), S)",
    "A.index_add(0, torch.tensor([0, 3]), S)",
    "A.index_add(0, torch.tensor([0, -1]), S)",
    "A.index_add(0, j, S.float())",
    "A.index_add(0, j, S[:, :3])",
    "A.index_add(0, torch.tensor([0, 1, 2]), S)",
    "A.index_add(3, j, S)",
    "A.index_add(1, torch.tensor([0]), S.sum())",
    "A.index_add(0, j, 2.0)",
    "A.index_copy(0, j.int(), S)",
    "A.index_copy(0, torch.tensor([0, 3]), S)",
    "A.index_copy(0, torch.tensor([0, -1]), S)",
    "A.index_copy(0, j, S.float())",
    "A.index_copy(0, j, S[:, :3])",
    "A.index_copy(0, torch.tensor([0, 1, 2]), S)",
    "A.index_copy(0, torch.tensor([[0, 1]]), S)",
    "A.index_copy(0, j, S[None])",
    "A.index_copy(0, j, S.sum())",
    "A.masked_scatter(A > 0, y[:1])",
    "A.masked_scatter((A > 0).int(), S)",
    "A.masked_scatter(A > 0, S.float())",
    "A.masked_scatter(A[:2] > 0, S)",
    "A.masked_scatter(A > 0, 2.0)",
    "x.masked_fill(m, y[:1])",
    "x.masked_fill(J, y[0])",
    "(J.masked_fill(m, y[0]) * x).sum()",  # an int64 result of a tensor requiring grad
    "torch.scatter_reduce(A, 0, k, S.float(), 'sum')",
]


@pytest.mark.parametrize("program", ERRORS)
def test_errors_are_torchs(torch, program):
    used = _used(program)
    with pytest.raises(Exception) as theirs:
        _torch_run(torch, program, used, "float64")
    with pytest.raises(GradcliError) as ours:
        _ours(program, used, "float64")
    assert ours.value.to_dict()["message"].split(" (in '")[0] == str(theirs.value)
    assert ours.value.exit_code == 1


@pytest.mark.parametrize(
    "program",
    [
        "A.scatter(0, k[:, :2], S).sum()",  # index smaller than src: PyTorch's backward fails
        "x.scatter(0, e, y).sum()",
        "A.scatter_reduce(0, torch.zeros(0, 4, dtype=torch.long), S, 'sum').sum()",
        "A.scatter_reduce(0, torch.zeros(0, 4, dtype=torch.long), S.detach(), 'amax').sum()",
        "A.scatter_reduce(0, k[:, :2], S, 'prod').sum()",
        "A.scatter(0, k, S, reduce='add').sum()",  # the deprecated overload: no derivative
        "A.scatter(0, k, 2.0, reduce='multiply').sum()",
    ],
)
def test_backward_errors_are_torchs(torch, program):
    used = _used(program)
    theirs, _ = _torch_run(torch, program, used, "float64")
    with pytest.raises(RuntimeError) as err:
        theirs.backward()
    with pytest.raises(GradcliError) as ours:
        _ours(program, used, "float64")
    assert ours.value.to_dict()["message"].split(" (in '")[0] == str(err.value)
    assert ours.value.exit_code == 1


def test_deprecated_reduce_values_and_label(torch):
    used = _used("A k S")
    for program in ("A.scatter(0, k, S, reduce='add')", "A.scatter(1, k, -2.0, reduce='multiply')"):
        theirs, _ = _torch_run(torch, program, used, "float64")
        prog, arrays, _, _, _ = prepare(program, _given(used), "", "float64")
        nodes, out = engine.forward(prog, arrays, set(), "float64")
        np.testing.assert_allclose(nodes[out].value, theirs.detach().numpy())
        with pytest.raises(GradcliError, match="not implemented"):
            _ours(program + ".sum()", used, "float64")
        assert type(theirs.grad_fn).__name__ == "NotImplemented"


def test_gather_sparse_grad_is_refused_clearly():
    with pytest.raises(GradcliError, match=r"sparse_grad=True\) is not supported") as err:
        _ours("A.gather(1, k, sparse_grad=True)", _used("A k"), "float64")
    assert err.value.exit_code == 1


@pytest.mark.parametrize(
    "arg", ["A > 0", "x", "n", "A.sum()", "A.sum() * 0", "x > 100", "torch.zeros(2, 0, 3)"]
)
def test_nonzero_as_tuple(torch, arg):
    """nonzero(as_tuple=True): one int64 index vector per dimension, as PyTorch's tuple; each
    element is used through a product with a tensor requiring grad."""
    used = _used(arg)
    theirs, _ = _torch_run(torch, f"torch.nonzero({arg}, as_tuple=True)", used, "float64")
    for k, want in enumerate(theirs):
        program = f"(torch.nonzero({arg}, as_tuple=True)[{k}] * x[0]).sum()"
        ours = gradcli.evaluate(program, _given({**used, "x": FLOATS["x"]}), dtype="float64")
        made = [n.value for n in ours.nodes if n.op == "nonzero_column"]
        assert len(made) == 1 and made[0].dtype == np.int64
        np.testing.assert_array_equal(made[0], want.numpy())
    given = _given({**used, "x": FLOATS["x"]})
    ours = gradcli.evaluate(
        f"t = torch.nonzero({arg}, as_tuple=True); (torch.stack(t) * x[0]).sum()", given
    )
    np.testing.assert_array_equal(ours.value, torch.stack(theirs).sum().item() * FLOATS["x"][0])
    with pytest.raises(GradcliError):  # (one element per dimension, here: too many)
        gradcli.evaluate(f"torch.nonzero({arg}, as_tuple=True)[{len(theirs)}].sum() * x[0]", given)
