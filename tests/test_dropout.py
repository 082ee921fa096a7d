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


# ---- embedding_bag -------------------------------------------------------------------------

_I = [0, 2, 2, 5, 1, 3, 2, 4]
_LONG = list(np.random.default_rng(0).integers(0, 6, 300))
BAGS = [
    ("F.embedding_bag(i, w, o)", {"i": _I, "o": [0, 2, 2, 5]}),
    ("F.embedding_bag(i, w, o, mode='sum')", {"i": _I, "o": [0, 2, 2, 5]}),
    ("F.embedding_bag(i, w, o, mode='max')", {"i": _I, "o": [0, 2, 2, 5]}),
    ("F.embedding_bag(i, w, o, include_last_offset=True)", {"i": _I, "o": [0, 2, 2, 8]}),
    ("F.embedding_bag(i, w, o, mode='max', include_last_offset=True)", {"i": _I, "o": [0, 3, 8]}),
    ("F.embedding_bag(i, w, o, padding_idx=2)", {"i": _I, "o": [0, 2, 2, 5]}),
    ("F.embedding_bag(i, w, o, padding_idx=2, mode='sum')", {"i": _I, "o": [0, 1, 3]}),
    ("F.embedding_bag(i, w, o, padding_idx=-1, mode='max')", {"i": _I, "o": [0, 3, 6]}),
    (
        "F.embedding_bag(i, w, o, mode='sum', per_sample_weights=p)",
        {"i": _I, "o": [0, 2, 2, 5], "p": (8,)},
    ),
    (
        "F.embedding_bag(i, w, o, None, 2, False, 'sum', False, p, False, 3)",
        {"i": _I, "o": [0, 4], "p": (8,)},
    ),
    ("F.embedding_bag(i, w, o, scale_grad_by_freq=True)", {"i": _I, "o": [0, 3]}),
    (
        "F.embedding_bag(i, w, o, mode='sum', scale_grad_by_freq=True)",
        {"i": [1, 1, 1, 3, 4, 5, 0], "o": [0, 2]},
    ),
    ("F.embedding_bag(i, w, o, scale_grad_by_freq=True, padding_idx=1)", {"i": _I, "o": [0, 3]}),
    ("F.embedding_bag(i, w)", {"i": [[0, 2, 2], [5, 1, 3]]}),
    ("F.embedding_bag(i, w, mode='max')", {"i": [[0, 2, 2], [5, 1, 3]]}),
    (
        "F.embedding_bag(i, w, mode='sum', per_sample_weights=p)",
        {"i": [[0, 2, 2], [5, 1, 3]], "p": (2, 3)},
    ),
    ("F.embedding_bag(i, w, padding_idx=0)", {"i": [[0, 0], [5, 0]]}),
    ("F.embedding_bag(i, w, o, mode='mean')", {"i": _LONG, "o": [0, 7, 100, 101, 250]}),
    (
        "F.embedding_bag(i, w, o, mode='sum', per_sample_weights=p)",
        {"i": _LONG, "o": [0, 7, 100, 250], "p": (300,)},
    ),
    ("F.embedding_bag(i, w, o, mode='max')", {"i": _LONG, "o": [0, 7, 100, 101, 250]}),
    ("F.embedding_bag(i, w, o)", {"i": [], "o": [0, 0]}),
    ("F.embedding_bag(i, w, o)", {"i": np.array(_I, dtype=np.int32), "o": [0, 2]}),
]


def _bag_inputs(torch, values, dtype, rng):
    ours, theirs = {"w": rng.standard_normal((6, 5))}, {}
    for k, v in values.items():
        if k == "p":
            ours[k] = rng.standard_normal(v)
        else:
            kind = "int32" if np.asarray(v).dtype == np.int32 else "int64"
            data = np.asarray(v, dtype=kind).tolist()
            ours[k] = {"dtype": kind, "data": data}
            theirs[k] = torch.tensor(data, dtype=getattr(torch, kind))
    for k in ("w", "p"):
        if k in ours:
            theirs[k] = torch.tensor(ours[k], dtype=getattr(torch, dtype), requires_grad=True)
            ours[k] = ours[k].tolist()
    return ours, theirs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program,values", BAGS, ids=[f"{p}-{v.get('o')}" for p, v in BAGS])
def test_embedding_bag_is_torchs(torch, program, values, dtype):
    """Values bit for bit (float32 per_sample_weights by fused multiply-adds, as fbgemm);
    gradients to rounding; the one EmbeddingBagBackward0 node (ViewBackward0 over a 2-D
    per_sample_weights)."""
    rng = np.random.default_rng(len(program))
    ours_in, theirs_in = _bag_inputs(torch, values, dtype, rng)
    out = eval(program, {"F": torch.nn.functional, **theirs_in})
    seed = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(seed, dtype=out.dtype))
    ours = gradcli.evaluate(program, ours_in, dtype=dtype, seed_vector=seed.tolist())
    assert np.asarray(ours.value).dtype == out.detach().numpy().dtype
    np.testing.assert_array_equal(ours.value, out.detach().numpy())
    tol = {"float32": 1e-6, "float64": 1e-14}[dtype]
    for k in ("w", "p"):
        if k in theirs_in:
            theirs = theirs_in[k].grad.numpy()  # (sums of many terms: to their scale)
            scale = max(1.0, float(np.abs(theirs).max(initial=0)))
            np.testing.assert_allclose(ours.grad[k], theirs, rtol=tol, atol=tol * scale)
    assert our_labels(ours) == torch_labels(out)


@pytest.mark.parametrize(
    "program",
    [
        "F.embedding_bag(i, W, o).sum()",
        "(F.embedding_bag(i, W, o, mode='sum', per_sample_weights=p) ** 2).sum()",
        "(F.embedding_bag(i, W, o, mode='max') ** 2).sum()",
        "(F.embedding_bag(i, W, o, padding_idx=0) ** 2).sum()",
    ],
)
def test_embedding_bag_finite_differences(program):
    """(scale_grad_by_freq changes the gradient, not the function: PyTorch checks it.)"""
    rng = np.random.default_rng(4)
    inputs = {
        "i": {"dtype": "int64", "data": [0, 2, 1, 1, 3, 2]},
        "o": {"dtype": "int64", "data": [0, 1, 4]},
        "W": (rng.permutation(12) * 0.37 - 1).reshape(4, 3).tolist(),  # no ties for max
        "p": rng.uniform(0.5, 2, 6).tolist(),
    }
    wrt = "W,p" if "per_sample_weights" in program else "W"
    assert derivatives.check(program, inputs, wrt=wrt)["ok"]


@pytest.mark.parametrize(
    "program,values",
    [
        ("F.embedding_bag(i, w, o)", {"i": [0, 9], "o": [0]}),
        ("F.embedding_bag(i, w, o)", {"i": [-1, 0], "o": [0]}),
        ("F.embedding_bag(i, w, o)", {"i": _I, "o": [1, 2]}),
        ("F.embedding_bag(i, w, o)", {"i": _I, "o": [0, 9]}),
        ("F.embedding_bag(i.float(), w, o)", {"i": _I, "o": [0]}),
        ("F.embedding_bag(i, w, o, padding_idx=6)", {"i": _I, "o": [0]}),
        (
            "F.embedding_bag(i, w, o, mode='max', per_sample_weights=p)",
            {"i": _I, "o": [0], "p": (8,)},
        ),
        ("F.embedding_bag(i, w, o)", {"i": [[0, 1]], "o": [0]}),
        ("F.embedding_bag(i, w)", {"i": _I}),
        ("F.embedding_bag(i.view(2, 2, 2), w)", {"i": _I}),
        ("F.embedding_bag(i, w, o, mode='avg')", {"i": _I, "o": [0]}),
        ("F.embedding_bag(i, w, o, mode='max', scale_grad_by_freq=True)", {"i": _I, "o": [0]}),
        ("F.embedding_bag(i, w[0], o)", {"i": _I, "o": [0]}),
        ("F.embedding_bag(i, w, o.view(1, 1))", {"i": _I, "o": [0]}),
        (
            "F.embedding_bag(i, w, o, mode='sum', per_sample_weights=p)",
            {"i": _I, "o": [0], "p": (5,)},
        ),
        (
            "F.embedding_bag(i, w, o, mode='sum', per_sample_weights=p.double())",
            {"i": _I, "o": [0], "p": (8,)},
        ),
    ],
)
def test_embedding_bag_errors_are_torchs(torch, program, values):
    rng = np.random.default_rng(0)
    ours_in, theirs_in = _bag_inputs(torch, values, "float32", rng)
    with pytest.raises((RuntimeError, ValueError, NotImplementedError)) as theirs:
        eval(program, {"F": torch.nn.functional, **theirs_in})
    first = str(theirs.value).split("\n")[0][:60]
    with pytest.raises(GradcliError) as ours:
        gradcli.evaluate(program, ours_in)
    assert ours.value.message.startswith(first), (ours.value.message, first)


@pytest.mark.parametrize(
    "program,values,message",
    [
        ("F.embedding_bag(i, w, o, max_norm=1.0)", {"i": _I, "o": [0]}, "renormalises"),
        ("F.embedding_bag(i, w, o)", {"i": _I, "o": [0, 3, 2]}, "offsets must not decrease"),
        (
            "F.embedding_bag(i, w, o, include_last_offset=True)",
            {"i": _I, "o": [0, 2, 5]},
            "must be the input's length 8, but got 5",
        ),
    ],
)
def test_embedding_bag_refusals(torch, program, values, message):
    """What PyTorch does not define (its kernels disagree, or assert) is refused clearly."""
    ours_in, _ = _bag_inputs(torch, values, "float32", np.random.default_rng(0))
    with pytest.raises(GradcliError, match=message):
        gradcli.evaluate(program, ours_in)


def test_batch_records_draw_their_own_masks():
    """Each record's mask comes from its own seed (the run's seed and its line number), also
    when the records share one evaluation plan."""
    from gradcli.batch import answer_lines
    from gradcli.rng import record_seed

    record = json.dumps({"expr": "F.dropout(x, 0.5).sum()", "inputs": {"x": np.ones(40).tolist()}})
    answers = [json.loads(a) for a in answer_lines([record] * 3, random_seed=4)]
    for line, answer in enumerate(answers, start=1):
        alone = gradcli.evaluate(
            "F.dropout(x, 0.5).sum()", {"x": np.ones(40)}, random_seed=record_seed(4, line)
        )
        assert answer["grad"]["x"] == alone.grad["x"].tolist()
    assert answers[0]["grad"] != answers[1]["grad"]
