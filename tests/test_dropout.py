"""The random layers of torch.nn.functional: dropout and its family draw PyTorch's masks
under --random-seed (torch.manual_seed(N) then the same call), bit for bit, with PyTorch's
values, gradients and labels."""

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import our_labels, torch_labels

import gradcli
from gradcli import derivatives
from gradcli.cli import main
from gradcli.errors import GradcliError
from gradcli.rng import Generator

SIZES = [1, 7, 800, 801, 10**5]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("n", SIZES)
def test_bernoulli_draws_are_torchs(torch, n, p, dtype):
    torch.manual_seed(11)
    theirs = torch.empty(n, dtype=getattr(torch, dtype)).bernoulli_(p).numpy()
    ours = Generator(11).bernoulli((n,), p)
    np.testing.assert_array_equal(ours, theirs == 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", SIZES)
def test_exponential_draws_are_torchs(torch, n, dtype):
    torch.manual_seed(5)
    theirs = torch.empty(n, dtype=getattr(torch, dtype)).exponential_().numpy()
    ours = Generator(5).exponential((n,), dtype)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def _torch_run(torch, program, values, dtype, seed, seed_vector):
    """The program as PyTorch runs it after torch.manual_seed(seed): (output, grads, the
    seed vector, made by ``seed_vector(shape)``)."""
    F = torch.nn.functional
    xs = {
        k: torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True)
        for k, v in values.items()
    }
    torch.manual_seed(seed)
    before = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # what --dtype means for torch.randn(4)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dropout2d's warnings about 3-D inputs
            out = eval(program, {"F": F, "torch": torch, **xs})
    finally:
        torch.set_default_dtype(before)
    seed_vector = seed_vector(tuple(out.shape))
    out.backward(torch.tensor(seed_vector, dtype=out.dtype))
    return out, {k: x.grad.numpy() for k, x in xs.items()}, seed_vector


DROPOUT = [
    *(("F.dropout(x, 0.3)", (n,)) for n in SIZES),
    ("F.dropout(x)", (4, 5)),
    ("F.dropout(x, p=0.8, training=True)", (3, 4, 5)),
    ("F.dropout(x, 1.0)", (3,)),
    ("F.dropout(x, 1)", (2, 2)),
    ("F.dropout(x, 0.0)", (3,)),
    ("F.dropout(x, 0.3, training=False)", (3,)),
    ("F.dropout(x, 0.3, False)", (2, 3)),
    ("F.alpha_dropout(x, 0.3, True)", (50,)),
    ("F.alpha_dropout(x, 0.5, training=True)", (801,)),
    ("F.alpha_dropout(x, 1.0, True)", (4,)),
    ("F.alpha_dropout(x, 0.2)", (3,)),
    ("F.feature_alpha_dropout(x, 0.3, True)", (4, 6, 3)),
    ("F.feature_alpha_dropout(x, 0.3)", (4, 6, 3)),
    ("F.dropout1d(x, 0.4)", (5, 3)),
    ("F.dropout1d(x, 0.4)", (2, 5, 3)),
    ("F.dropout1d(x, 0.4, training=False)", (5, 3)),
    ("F.dropout2d(x, 0.4)", (2, 5, 3, 2)),
    ("F.dropout2d(x, 0.4)", (5, 3, 2)),
    ("F.dropout2d(x, 0.5)", (6, 4)),
    ("F.dropout3d(x, 0.4)", (5, 3, 2, 2)),
    ("F.dropout3d(x, 0.4)", (2, 5, 3, 2, 2)),
    ("F.dropout3d(x, 1.0)", (5, 3, 2, 2)),
    ("F.dropout(x, 0.3) + F.dropout(x, 0.6) * 2", (30,)),
    ("F.dropout(x[:0], 0.3)", (4,)),
    ("(torch.randn(4) + F.dropout(x, 0.5)) * x", (4,)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program,shape", DROPOUT, ids=[f"{p}-{s}" for p, s in DROPOUT])
def test_dropout_is_torchs(torch, program, shape, dtype):
    rng = np.random.default_rng(len(program) + len(shape))
    x = rng.standard_normal(shape)
    draw = lambda shape: rng.standard_normal(shape).tolist()  # noqa: E731
    out, grads, seed_vector = _torch_run(torch, program, {"x": x.tolist()}, dtype, 42, draw)
    ours = gradcli.evaluate(
        program, {"x": x.tolist()}, dtype=dtype, random_seed=42, seed_vector=seed_vector
    )
    assert np.asarray(ours.value).dtype == out.detach().numpy().dtype
    np.testing.assert_array_equal(ours.value, out.detach().numpy())
    np.testing.assert_array_equal(ours.grad["x"], grads["x"])
    theirs = torch_labels(out) if out.grad_fn is not None else {"AccumulateGrad": 1}
    assert our_labels(ours) == theirs


def test_feature_dropout_drops_whole_channels():
    r = gradcli.evaluate(
        "F.dropout2d(x, 0.5)",
        {"x": np.ones((3, 8, 4, 4)).tolist()},
        random_seed=1,
        seed_vector=np.ones((3, 8, 4, 4)).tolist(),
    )
    v = np.asarray(r.value).reshape(24, 16)
    assert set(np.unique(v)) == {0.0, 2.0}
    assert (v == v[:, :1]).all()  # one draw per (sample, channel)


def test_without_a_seed_the_mask_is_random():
    program, x = "F.dropout(x, 0.5).sum()", {"x": np.ones(256).tolist()}
    grads = [gradcli.evaluate(program, x).grad["x"] for _ in range(2)]
    assert not np.array_equal(*grads)
    assert set(np.unique(grads[0])) == {0.0, 2.0}


def test_seeded_runs_repeat():
    program, x = "F.dropout(x, 0.5).sum()", {"x": np.ones(64).tolist()}
    a, b = (gradcli.evaluate(program, x, random_seed=9).grad["x"] for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_cli_random_seed_draws_torchs_mask(torch):
    torch.manual_seed(3)
    x = torch.tensor([1.0, 2, 3, 4, 5, 6], requires_grad=True)
    y = torch.nn.functional.dropout(x, 0.4).sum()
    y.backward()
    res = CliRunner().invoke(
        main, ["grad", "F.dropout(x, 0.4).sum()", "x=1,2,3,4,5,6", "--random-seed", "3", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["value"] == pytest.approx(y.item(), abs=0)
    assert out["grad"]["x"] == x.grad.tolist()


@pytest.mark.parametrize(
    "command",
    [
        lambda p: derivatives.jvp(p, {"x": "1,2"}, {"x": "1,0"}),
        lambda p: derivatives.jacobian(p, {"x": "1,2"}),
        lambda p: derivatives.hessian(p, {"x": "1,2"}),
        lambda p: derivatives.check(p, {"x": "1,2"}),
    ],
    ids=["jvp", "jacobian", "hessian", "check"],
)
def test_commands_that_evaluate_twice_refuse_a_drawn_mask(command):
    with pytest.raises(GradcliError, match="needs one evaluation") as e:
        command("F.dropout(x, 0.5).sum()")
    assert "training=False" in e.value.hint
    command("F.dropout(x, 0.5, training=False).sum()")  # the identity needs no draw
    command("F.dropout(x, 1.0).sum()")  # nor does dropping everything


@pytest.mark.parametrize(
    "program,shape,message",
    [
        ("F.dropout(x, 1.5)", (3,), "dropout probability has to be between 0 and 1, but got 1.5"),
        ("F.alpha_dropout(x, -0.1, True)", (3,), "between 0 and 1, but got -0.1"),
        ("F.dropout(x, 0.5, inplace=True)", (3,), "inplace=True"),
        ("F.dropout(x, 0.5, training=1)", (3,), "training must be True or False"),
        ("F.dropout1d(x, 0.5)", (3,), "dropout1d: Expected 2D or 3D input, but received a 1D"),
        ("F.dropout2d(x, 0.5)", (3,), "Feature dropout requires at least 2 dimensions"),
        ("F.feature_alpha_dropout(x, 0.5, True)", (3,), "Feature dropout requires at least 2"),
        (
            "F.dropout(x.long(), 0.5)",
            (3,),
            "result type Float can't be cast to the desired output type Long",
        ),
    ],
)
def test_pytorchs_errors(torch, program, shape, message):
    with pytest.raises(GradcliError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gradcli.evaluate(program, {"x": np.ones(shape).tolist()}, random_seed=0)
    if "inplace" not in message and "training" not in message:  # PyTorch says the same
        with pytest.raises((RuntimeError, ValueError, TypeError), match=message.split(",")[0]):
            x = torch.ones(shape, requires_grad=True)
            eval(program, {"F": torch.nn.functional, "x": x})


# ---- gumbel_softmax ------------------------------------------------------------------------

GUMBEL = [
    ("F.gumbel_softmax(x)", (3, 5)),
    ("F.gumbel_softmax(x, tau=0.5, hard=True)", (4, 6)),
    ("F.gumbel_softmax(x, 2, True, dim=0)", (40, 30)),
    ("F.gumbel_softmax(x, dim=1)", (200, 50)),
    ("F.gumbel_softmax(x, tau=0.3, hard=True, dim=-2)", (2, 7, 3)),
    ("F.gumbel_softmax(x, hard=True)", (5,)),
    ("F.gumbel_softmax(x, eps=1e-5) * F.dropout(x, 0.5)", (2, 9)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program,shape", GUMBEL, ids=[f"{p}-{s}" for p, s in GUMBEL])
def test_gumbel_softmax_is_torchs(torch, program, shape, dtype):
    """PyTorch's exponential draws, so the same sample: hard=True's one-hot is exact; soft
    values agree to rounding (PyTorch's vectorised log and exp are SLEEF's)."""
    rng = np.random.default_rng(len(program))
    x = rng.standard_normal(shape)
    draw = lambda shape: rng.standard_normal(shape).tolist()  # noqa: E731
    out, grads, seed_vector = _torch_run(torch, program, {"x": x.tolist()}, dtype, 3, draw)
    ours = gradcli.evaluate(
        program, {"x": x.tolist()}, dtype=dtype, random_seed=3, seed_vector=seed_vector
    )
    tol = {"float32": 1e-5, "float64": 1e-13}[dtype]
    theirs = out.detach().numpy()
    assert np.asarray(ours.value).dtype == theirs.dtype
    if "hard=True" in program or "True," in program:
        np.testing.assert_array_equal(ours.value, theirs)
    np.testing.assert_allclose(ours.value, theirs, rtol=tol, atol=tol)
    np.testing.assert_allclose(ours.grad["x"], grads["x"], rtol=tol, atol=tol)
    assert our_labels(ours) == torch_labels(out)


def test_gumbel_softmax_noise_is_torchs_sample(torch):
    """With logits 0, softmax(g) is monotone in the noise g, so each row's one-hot marks
    the largest of PyTorch's gumbels."""
    torch.manual_seed(8)
    gumbels = -torch.empty(300, 10).exponential_().log()
    ours = gradcli.evaluate(
        "F.gumbel_softmax(x, hard=True)",
        {"x": np.zeros((300, 10)).tolist()},
        random_seed=8,
        seed_vector=np.ones((300, 10)).tolist(),
    )
    np.testing.assert_array_equal(np.argmax(ours.value, axis=1), gumbels.argmax(1).numpy())


@pytest.mark.parametrize(
    "program,message",
    [
        (
            "F.gumbel_softmax(x.long())",
            "Exponential distribution is a continuous probability "
            "distribution. dtype must be a floating point but you specified Long",
        ),
        ("F.gumbel_softmax(x, dim=2)", "(?i)dimension out of range"),
    ],
)
def test_gumbel_softmax_errors(torch, program, message):
    with pytest.raises(GradcliError, match=message):
        gradcli.evaluate(program, {"x": np.ones((2, 3)).tolist()}, random_seed=0)
    with pytest.raises((RuntimeError, IndexError), match=message):
        eval(program, {"F": torch.nn.functional, "x": torch.ones(2, 3, requires_grad=True)})


def test_gumbel_softmax_needs_one_evaluation():
    with pytest.raises(GradcliError, match="needs one evaluation"):
        derivatives.jvp("F.gumbel_softmax(x).sum()", {"x": "1,2"}, {"x": "1,0"})
