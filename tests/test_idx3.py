"""The last spelling gaps of PyTorch's indexing and layout, with PyTorch 2.13 as the oracle:
a call's several results as an index (x[torch.where(m)]), torch.where(condition) itself,
and cat's contiguous result under a later view."""

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


def check(torch, program, inputs=INPUTS, dtype="float64"):
    ours = gradcli.evaluate(program, inputs, dtype=dtype)
    out, grads = run_torch(torch, program, inputs, dtype=dtype)
    theirs = out.detach().numpy()
    assert ours.value.shape == theirs.shape
    assert str(ours.value.dtype) == str(out.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.value, theirs, rtol=1e-12, atol=0)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None, name
        else:
            np.testing.assert_allclose(ours.grad[name], g, rtol=1e-12, atol=0, err_msg=name)
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
