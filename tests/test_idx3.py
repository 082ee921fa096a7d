"""The last spelling gaps of PyTorch's indexing and layout, with PyTorch 2.13 as the oracle:
a call's several results as an index (x[torch.where(m)]), torch.where(condition) itself,
and cat's contiguous result under a later view."""

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import our_labels, run_torch, torch_labels

import gradcli
from gradcli.cli import main as cli
from gradcli.errors import GradcliError

X = [1.5, -2.0, 0.0, 3.0, -0.5]
A = [[1.0, -2.0, 0.0], [3.0, 0.0, -4.0]]
B = [[[1.0, -1.0], [0.0, 2.0]], [[-3.0, 0.0], [4.0, 5.0]]]
INPUTS = {"x": X, "A": A, "B": B}


def check(torch, program, inputs=INPUTS, dtype="float64", rtol=1e-12):
    ours = gradcli.evaluate(program, inputs, dtype=dtype)
    out, grads = run_torch(torch, program, inputs, dtype=dtype)
    theirs = out.detach().numpy()
    assert ours.value.shape == theirs.shape
    assert str(ours.value.dtype) == str(out.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.value, theirs, rtol=rtol, atol=0)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None, name
        else:
            np.testing.assert_allclose(ours.grad[name], g, rtol=rtol, atol=0, err_msg=name)
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)
    return ours


# ---- 1. a call's several results as an index ----------------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        "x[torch.nonzero(x, as_tuple=True)].sum()",
        "x[torch.where(x > 0)].sum()",
        "(A[torch.where(A != 0)] * A[torch.where(A != 0)]).sum()",
        "(A[torch.nonzero(A < 0, as_tuple=True)] ** 2).sum()",
        "B[torch.where(B > 0)].sum()",
        "B[torch.where(B > 100)].sum()",  # nothing selected: an empty index of each dimension
        "m = torch.where(A > 0); (A[m] * 3).sum() + A[m].sum()",
        "A.exp()[torch.where(A.t().t() >= 0)].sum()",
    ],
)
def test_a_tuple_of_index_tensors_indexes_as_pytorch(torch, program):
    check(torch, program)


def values(program, inputs=INPUTS):
    """The output of a program, which nothing differentiates."""
    from gradcli import engine
    from gradcli.api import quietly
    from gradcli.parser import parse

    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    with quietly():
        nodes, out = engine.forward(parse(program), arrays, set(), "float64")
    return nodes[out].value


@pytest.mark.parametrize("cond", ["A > 0", "x != 0", "B < 1", "A > 9"])
def test_one_argument_where_is_nonzero_as_tuple(torch, cond):
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in INPUTS.items()}
    theirs = eval(f"torch.where({cond})", {"torch": torch, **t})  # noqa: S307 (our own text)
    assert len(theirs) == np.ndim(INPUTS[cond[0]])
    for k in range(-len(theirs), len(theirs)):
        ours = values(f"torch.where({cond})[{k}]")
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours, theirs[k].numpy())


def test_a_tuple_index_in_jacobian_and_check():
    runner = CliRunner()
    r = runner.invoke(cli, ["jacobian", "--json", "x[torch.where(x > 0)]", "x=1,-2,3,0.5"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["jacobian"]["x"] == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    r = runner.invoke(cli, ["check", "--json", "(x[torch.where(x > 0)] ** 3).sum()", "x=1,-2,3"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ok"] is True


def test_a_tuple_index_with_other_items_is_refused():
    with pytest.raises(GradcliError):
        gradcli.evaluate("A[torch.where(A > 0), 0].sum()", INPUTS)


# ---- 2. cat and stack lay their result out as PyTorch does --------------------------------

C = np.arange(48.0).reshape(2, 3, 4, 2) - 20.0  # (N, H, W, C): .permute(0, 3, 1, 2) is NCHW


@pytest.mark.parametrize(
    "program",
    [
        "torch.cat([A.t(), A.t()]).view(-1).sum()",
        "(torch.cat([A.t(), A.t() * 2], dim=1).view(-1) ** 2).sum()",
        "(torch.cat([B.transpose(0, 2), B.permute(2, 1, 0)], 2).view(4, -1) * 2).sum()",
        "(torch.cat([A.t(), A.t()]).reshape(-1) ** 2).sum()",
        "(torch.stack([A.t(), A.t()]).view(-1) ** 2).sum()",
        "(torch.stack([A.t(), A.t()], dim=1).reshape(-1) ** 2).sum()",
        "(torch.stack([A.t(), A.t()], dim=-1).view(-1) ** 2).sum()",
        "(torch.hstack([A.t(), A.t()]).view(-1) ** 2).sum()",
        "(torch.vstack([A.t(), A.t()]).view(-1) ** 2).sum()",
        # channels-last inputs give a channels-last cat (reshape copies), mixed ones contiguous
        "(torch.cat([C.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2)]).reshape(-1) ** 2).sum()",
        "(torch.cat([C.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2)], 1).flatten() ** 2).sum()",
        "(torch.cat([C.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2) + 0]).reshape(-1) ** 2).sum()",
        "(torch.cat([C.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2).contiguous()]).view(-1)).sum()",
        "(torch.stack([C.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2)]).reshape(-1) ** 2).sum()",
    ],
)
def test_a_view_after_cat_sees_pytorchs_layout(torch, program):
    check(torch, program, {**INPUTS, "C": C})


@pytest.mark.parametrize(
    "program",
    [
        "torch.cat([C.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2)]).view(-1).sum()",
        "torch.stack([C.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2)], 1).view(-1).sum()",
    ],
)
def test_a_view_of_a_channels_last_cat_fails_as_in_pytorch(torch, program):
    with pytest.raises(GradcliError, match="view size is not compatible"):
        gradcli.evaluate(program, {"C": C})
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        run_torch(torch, program, {"C": C})


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 4, 2), (1, 3, 1, 2), (2, 1, 2, 3, 2)])
def test_cat_and_stack_strides_are_pytorchs(torch, shape):
    """Every permuted layout, cat and stack along every dim, with itself and with a
    contiguous copy: the strides of every dimension longer than 1 are PyTorch's."""
    from gradcli.ops import OPS

    def strides(a):  # (of the dimensions longer than 1, in elements)
        step = a.itemsize if isinstance(a, np.ndarray) else 1
        sizes = a.strides if isinstance(a, np.ndarray) else a.stride()
        return [s // step for s, n in zip(sizes, a.shape, strict=True) if n > 1]

    base = torch.arange(float(np.prod(shape))).reshape(shape)
    for perm in itertools.permutations(range(len(shape))):
        t = base.permute(perm)
        for other in (t, t.contiguous()):
            for d in range(len(shape) + 1):
                for theirs, ours in (("cat", "cat"), ("stack", "stack")):
                    if theirs == "cat" and d == len(shape):
                        continue
                    want = getattr(torch, theirs)([t, other], d)
                    got = OPS[ours].forward(t.numpy(), other.numpy(), dim=d)
                    np.testing.assert_array_equal(got, want.numpy())
                    assert strides(got) == strides(want)


# ---- 3. a number literal divides (and raises to 3 and -2) in the tensor's own dtype --------


def _edgy(dtype, n=4000):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(n) * rng.choice([1e-40, 1e-30, 1e-3, 1.0, 1e3, 1e30], n)
    x[:9] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3e38, 3e38, 1.0]
    with np.errstate(over="ignore"):
        return x.astype(dtype)


def _bits(a):
    a = np.asarray(a)
    return a.view(np.int32 if a.dtype == np.float32 else np.int64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", ["3", "7", "-10", "4", "0", "16777216", "-16777216", "0.1"])
@pytest.mark.parametrize("spelling", ["x / {k}", "x.div({k})", "torch.true_divide(x, {k})"])
def test_division_by_a_literal_is_pytorchs_to_the_bit(torch, dtype, k, spelling):
    x = _edgy(dtype)
    program = spelling.format(k=k)
    ours = values(program, {"x": x}) if dtype == "float64" else _values32(program, x)
    with np.errstate(all="ignore"):
        # what gradcli computed before: an integer literal in double, then rounded
        today = x / float(k) if "." in k else (x.astype(np.float64) / float(k)).astype(dtype)
    theirs = eval(program, {"torch": torch, "x": torch.from_numpy(x)}).numpy()  # noqa: S307
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(_bits(ours), _bits(theirs))
    np.testing.assert_array_equal(_bits(ours), _bits(today))


def _values32(program, x):
    from gradcli import engine
    from gradcli.api import quietly
    from gradcli.parser import parse

    with quietly():
        nodes, out = engine.forward(parse(program), {"x": x}, set(), "float32")
    return nodes[out].value


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", ["3", "-2", "3.0", "-2.0", "2", "-1"])
def test_pow_by_three_and_minus_two_is_pytorchs_to_the_bit(torch, dtype, k):
    x = _edgy(dtype)
    program = f"x ** {k}"
    ours = values(program, {"x": x}) if dtype == "float64" else _values32(program, x)
    theirs = eval(program, {"torch": torch, "x": torch.from_numpy(x)}).numpy()  # noqa: S307
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(_bits(ours), _bits(theirs))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", ["3", "7", "10", "0.1", "-3"])
def test_the_gradient_of_a_division_by_a_literal_is_pytorchs_to_the_bit(torch, dtype, k):
    x = np.random.default_rng(5).standard_normal(3000).astype(dtype)
    program = f"((x / {k}) ** 2).sum()"
    ours = gradcli.evaluate(program, {"x": x}, dtype=dtype)
    _, grads = run_torch(torch, program, {"x": x}, dtype=dtype)
    np.testing.assert_array_equal(_bits(ours.grad["x"]), _bits(grads["x"]))


# ---- 4. spellings PyTorch has that the table lacked ---------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        "(x.view_as(V) * V).sum()",
        "(A.reshape(-1).view_as(A.t().contiguous()) ** 2).sum()",
        "(A.t().reshape_as(A) ** 2).sum()",
        "(x.reshape_as(V) * V).sum()",
        "(A.reshape_as(A) * 2).sum()",
        "torch.arcsinh(x).sum() + x.arcsinh().sum()",
        "torch.arccosh(x.abs() + 1).sum() + (x.abs() + 1).arccosh().sum()",
        "torch.arctanh(x / 4).sum() + (x / 4).arctanh().sum()",
        "(torch.fix(x * 3) + x.fix() * x).sum()",
        "torch.special.gammaln(x.abs() + 0.5).sum()",
        "torch.special.psi(x.abs() + 0.5).sum()",
    ],
)
def test_spellings_pytorch_has(torch, program):
    # (digamma's gradient, polygamma(1, a), is a series good to about 1e-9)
    check(torch, program, {**INPUTS, "V": [[1.0, 2.0, -1.0, 0.5, 3.0]]}, rtol=1e-8)


def test_view_as_refuses_what_view_refuses(torch):
    program = "A.t().view_as(A).sum()"
    with pytest.raises(GradcliError, match="view size is not compatible"):
        gradcli.evaluate(program, INPUTS)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        run_torch(torch, program, INPUTS)
    with pytest.raises(GradcliError, match="invalid for input of size 5"):
        gradcli.evaluate("x.view_as(A).sum()", INPUTS)
