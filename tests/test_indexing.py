"""Advanced indexing (integer-tensor and list indices, boolean masks, mixed with slices,
None, ... and integers), checked against torch 2.13 itself (skipped without torch unless
GRADCLI_REQUIRE_TORCH=1) and against finite differences."""

import json
import re

import numpy as np
import pytest
from conftest import our_labels, torch_labels

import gradcli
from gradcli.errors import GradcliError

RNG = np.random.default_rng(12)
FLOATS = {
    "x": RNG.standard_normal(5),
    "A": RNG.standard_normal((3, 4)),
    "B": RNG.standard_normal((2, 3, 4)),
}
INTS = {
    "i": np.array([0, -1, 2, 2]),  # a repeat: its gradients add
    "j": np.array([1, 0, 3, -4]),
    "k": np.array([[0, 1], [2, 0]]),
    "e": np.array([], dtype=np.int64),
    "w": np.array([1, 0], dtype=np.int32),
    "p": np.array([2, 0, 2]),
    "q": np.array([[0, 0], [1, 0], [3, 3]]),
    "r": np.ones((5, 1), dtype=np.int64),
}
MASKS = {
    "m": np.array([True, False, True]),
    "M": np.array([[True, False, True], [False, False, True]]),
}

CASES = [
    "x[i[:2]]",
    "x[i]",
    "x[[0, 2, 0]]",
    "x[[-1]]",
    "x[x > 0]",
    "x[x > 100]",
    "x[e]",
    "A[i[:3]]",
    "A[:, j]",
    "A[i[:3], 1:]",
    "A[0, j]",
    "A[[1, 0], [2, 0]]",
    "A[A > 0]",
    "A[m]",
    "A[m, 2]",
    "A[k]",
    "A[k, j[:2]]",
    "A[w]",
    "A[torch.tensor(1)]",
    "A[..., j]",
    "A[None, i[:3]]",
    "A[j[:3] % 3][:, 1]",
    "B[:, k[0], None]",
    "B[i[:2], :, j[:2]]",
    "B[0, k, j[:2]]",
    "B[M]",
    "B[M, 1:]",
    "B[:, m]",
    "B[..., k]",
    "(x[i] * x[[1, 1, 3, 4]]).sum()",
    # index_select, gather, take, masked_fill, masked_select, nonzero
    "A.index_select(0, p)",
    "torch.index_select(A, -1, p)",
    "torch.index_select(A, 1, w)",
    "x.index_select(0, e)",
    "torch.index_select(x.sum(), 0, torch.tensor([0]))",
    "A.gather(1, q)",
    "torch.gather(A, 0, q[:2, :2])",
    "torch.gather(A, dim=1, index=q[:, :1])",
    "x.gather(0, p)",
    "A.take(q)",
    "torch.take(x, i)",
    "A.masked_fill(A > 0, 2.0)",
    "torch.masked_fill(x, x < 0, -1)",
    "A.masked_fill(m[:, None], 0.5)",
    "x[:4].masked_fill(j > 0, 3) * i",
    "x[:4] * i.masked_fill(i < 0, 7)",
    "A.masked_select(A > 0)",
    "A[0].masked_select(A > 0)",
    "torch.masked_select(A, m[:, None])",
    "(torch.nonzero(A > 0) * A[0, :2]).sum()",
    "torch.take_along_dim(A, q[:, :1], 1)",
    "torch.take_along_dim(A, q[:1], dim=1)",
    "A[:1].take_along_dim(q[:, :1], 1)",
    "torch.take_along_dim(A, q[:, :1], -1)",
    "torch.take_along_dim(A, q)",
    "torch.take_along_dim(x.sum(), e)",
    "A.index_fill(1, p[:2], -1.0)",
    "torch.index_fill(A, 0, torch.tensor(1), 2)",
    "x.index_fill(0, i, 0.5)",
    "A.index_fill(-1, e, 3.0)",
    "(F.one_hot(p) * A[0, :3]).sum()",
    "(F.one_hot(q, 5) * x).sum()",
    "(torch.nn.functional.one_hot(torch.tensor(1), num_classes=5) * x).sum()",
]


def _typed(v):
    """A VALUE string for an integer or boolean array (int64:[[0,1],[2,0]])."""
    return f"{v.dtype.name}:{json.dumps(v.tolist())}"


def _ours(program, dtype):
    inputs = {**FLOATS, **INTS, **MASKS}
    names = set(re.findall(r"[A-Za-z_]\w*", program))
    used = {k: v for k, v in inputs.items() if k in names}
    floats = [k for k in used if k in FLOATS]
    return used, floats, dtype


def _given(used):
    return {k: v if k in FLOATS else _typed(v) for k, v in used.items()}


def _torch_run(torch, program, used, dtype):
    ns = {"torch": torch, "F": torch.nn.functional}
    leaves = {}
    for k, v in used.items():
        if k in FLOATS:
            leaves[k] = ns[k] = torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True)
        else:
            ns[k] = torch.from_numpy(v)
    return eval(program, ns), leaves


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program", CASES)
def test_against_torch(torch, program, dtype):
    used, floats, _ = _ours(program, dtype)
    theirs, leaves = _torch_run(torch, program, used, dtype)
    seed = RNG.standard_normal(tuple(theirs.shape)).astype(dtype) if theirs.dim() else np.ones(())
    ours = gradcli.evaluate(
        program,
        _given(used),
        dtype=dtype,
        wrt=",".join(floats),
        seed_vector=seed if theirs.dim() else None,
    )
    theirs.backward(torch.from_numpy(seed))
    assert ours.shape == tuple(theirs.shape)
    assert ours.value.dtype == theirs.detach().numpy().dtype
    np.testing.assert_allclose(ours.value, theirs.detach().numpy(), rtol=1e-6)
    assert ours.grad_fn == type(theirs.grad_fn).__name__
    assert our_labels(ours) == torch_labels(theirs)
    for k in floats:
        want = leaves[k].grad.numpy()
        assert ours.grad[k].dtype == want.dtype
        np.testing.assert_allclose(ours.grad[k], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("program", ["x[i]", "A[:, j]", "B[M, 1:]", "A[k, j[:2]]", "A[A > 0]"])
def test_finite_differences(program):
    """The gradient of sum(y²) for y = the indexed tensor: 2y added back where each element
    came from, against central differences."""
    used, floats, _ = _ours(program, "float64")
    given = _given(used)
    scalar = f"(({program}) ** 2).sum()"
    ours = gradcli.evaluate(scalar, given, dtype="float64", wrt=",".join(floats))
    for k in floats:
        base = used[k]
        numeric = np.zeros_like(base)
        for pos in np.ndindex(base.shape):
            h = np.zeros_like(base)
            h[pos] = 1e-6
            up = gradcli.evaluate(scalar, {**given, k: base + h}, dtype="float64").value
            down = gradcli.evaluate(scalar, {**given, k: base - h}, dtype="float64").value
            numeric[pos] = (up - down) / 2e-6
        np.testing.assert_allclose(ours.grad[k], numeric, rtol=1e-6, atol=1e-8)


ERRORS = [
    "x[torch.tensor([5])]",
    "x[torch.tensor([0, -6])]",
    "A[:, torch.tensor([[4]])]",
    "B[torch.tensor([0]), :, torch.tensor([7])]",
    "A[m[:2]]",
    "B[:, M]",
    "B[A[:1, :3] > 0]",
    "A[m, torch.tensor([5])]",
    "A[torch.tensor([0, 1]), torch.tensor([0, 1, 2])]",
    "B[torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([0, 1, 2])]",
    "x[x]",
    "x[torch.tensor([1], dtype=torch.int8)]",
    "A[m, 1, 2]",
    "A.index_select(1, torch.tensor([4]))",
    "A.index_select(1, torch.tensor([[1]]))",
    "A.index_select(1, x[:1])",
    "A.gather(1, torch.tensor([[4]]))",
    "A.gather(1, torch.tensor([-1]))",
    "A.gather(1, r)",
    "A.gather(1, A)",
    "A.take(torch.tensor([12]))",
    "A.take(torch.tensor([-13]))",
    "A.take(A)",
    "A.take(w)",
    "A.masked_fill(j, 1.0)",
    "A.masked_select(j)",
    "torch.take_along_dim(A, w[None], 1)",
    "torch.take_along_dim(A, p, 1)",
    "torch.take_along_dim(x.sum(), e, 0)",
    "torch.take_along_dim(A.T, p)",
    "F.one_hot(w)",
    "F.one_hot(j)",
    "F.one_hot(p, 2)",
    "F.one_hot(e)",
    "F.one_hot(x)",
    "A.index_fill(1, torch.tensor([4]), 1.0)",
    "A.index_fill(1, q, 1.0)",
    "A.index_fill(1, x[:1], 1.0)",
]


@pytest.mark.parametrize("program", ["torch.nonzero(A > 0)", "torch.nonzero(x)", "B.nonzero()"])
def test_nonzero(torch, program):
    """nonzero's int64 rows, as PyTorch's (seen through a product that requires grad)."""
    used, _, _ = _ours(program, "float64")
    theirs, _ = _torch_run(torch, program, used, "float64")
    ours = gradcli.evaluate(
        f"({program} * x[0]).sum()", _given({**used, "x": FLOATS["x"]}), wrt="x"
    )
    made = [n.value for n in ours.nodes if n.op == "nonzero_values"]
    assert made[0].dtype == np.int64
    np.testing.assert_array_equal(made[0], theirs.numpy())


@pytest.mark.parametrize("program", ERRORS)
def test_errors_are_torchs(torch, program):
    used, floats, _ = _ours(program, "float64")
    with pytest.raises(Exception) as theirs:
        _torch_run(torch, program, used, "float64")
    with pytest.raises(GradcliError) as ours:
        gradcli.evaluate(program, _given(used), dtype="float64", wrt=",".join(floats))
    assert ours.value.to_dict()["message"].split(" (in '")[0] == str(theirs.value)
    assert ours.value.exit_code == 1


def test_typed_inputs_and_output_dtypes():
    r = gradcli.evaluate("(x[i] * 2).sum()", {"x": "1,2,3", "i": "int64:2,0,2"})
    assert float(r.value) == 14.0
    np.testing.assert_array_equal(r.grad["x"], [2.0, 0.0, 4.0])
    given = {"x": "1,2", "i": "int64:4,5,6", "m": "bool:[true,false,true]"}
    r = gradcli.evaluate("(x * i[m]).sum()", given)
    assert float(r.value) == 16.0 and r.grad["x"].dtype == np.float32
    np.testing.assert_array_equal(r.grad["x"], [4.0, 6.0])


def test_check_keeps_integer_and_bool_index_inputs():
    """check evaluates the program again from its prepared arrays: an int64 index or a bool
    mask must stay one (read as floating point it is PyTorch's "tensors used as indices"
    error)."""
    from gradcli.derivatives import check

    for inputs in ({"x": "1,2,3", "i": "int64:0,2"}, {"x": "1,2,3", "i": "bool:[true,false,true]"}):
        report = check("sum(x[i] * x[i])", inputs)
        assert report["ok"] is True, report
