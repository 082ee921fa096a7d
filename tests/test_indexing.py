"""Advanced indexing (integer-tensor and list indices, boolean masks, mixed with slices,
None, ... and integers), checked against torch 2.13 itself (skipped without torch unless
GRADCLI_REQUIRE_TORCH=1) and against finite differences."""

import json

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
]


def _typed(v):
    """A VALUE string for an integer or boolean array (int64:[[0,1],[2,0]])."""
    return f"{v.dtype.name}:{json.dumps(v.tolist())}"


def _ours(program, dtype):
    inputs = {**FLOATS, **INTS, **MASKS}
    used = {k: v for k, v in inputs.items() if k in program}
    floats = [k for k in used if k in FLOATS]
    return used, floats, dtype


def _given(used):
    return {k: v if k in FLOATS else _typed(v) for k, v in used.items()}


def _torch_run(torch, program, used, dtype):
    ns = {"torch": torch}
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
    np.testing.assert_array_equal(ours.value, theirs.detach().numpy())
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
]


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
