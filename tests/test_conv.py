"""Convolutions and pooling against PyTorch beyond the table's examples: PyTorch's errors for
wrong shapes and arguments, and the edge cases (stride past the kernel, padding, groups,
dilation, ceil_mode windows that start in the padding, empty batches, ties, NaN, -inf)."""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import our_labels, pool_indices_match_pytorch, run_torch, torch_labels

import gradcli
from gradcli.cli import main
from gradcli.errors import EvaluationError, GradcliError, ParseError


def _random(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


def _shape(program, inputs):
    from gradcli import engine
    from gradcli.parser import parse

    arrays = {k: np.asarray(v, dtype="float64") for k, v in inputs.items()}
    nodes, out = engine.forward(parse(program), arrays, set(), "float64")
    return nodes[out].shape


def _agree(torch, program, inputs, wrt=None):
    """Value, every gradient, the output label and the label multiset, as PyTorch's."""
    shape = _shape(program, inputs)
    seed = None if shape == () else np.random.default_rng(1).standard_normal(shape)
    ours = gradcli.evaluate(program, inputs, dtype="float64", seed_vector=seed, wrt=wrt)
    out, grads = run_torch(torch, program, inputs, wrt=wrt, seed=seed)
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(ours.grad[name], g, rtol=1e-10, atol=1e-12, err_msg=name)
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)
    return ours


EDGES = [
    # stride past the kernel: inputs between windows get no gradient
    ("conv2d(x, w, b, stride=3)", {"x": (1, 2, 7, 7), "w": (3, 2, 2, 2), "b": (3,)}),
    ("conv1d(x, w, stride=4, dilation=2)", {"x": (2, 3, 11), "w": (2, 3, 2)}),
    ("conv2d(x, w, padding=(2, 0), dilation=(2, 3))", {"x": (1, 1, 6, 8), "w": (2, 1, 3, 2)}),
    ("conv2d(x, w, b, groups=3)", {"x": (2, 3, 4, 4), "w": (6, 1, 2, 2), "b": (6,)}),
    ("conv2d(x, w, padding='same', dilation=3)", {"x": (1, 2, 5, 6), "w": (1, 2, 2, 4)}),
    ("conv3d(x, w, padding='same')", {"x": (1, 1, 3, 4, 3), "w": (2, 1, 2, 3, 2)}),
    ("conv1d(x, w, padding='valid')", {"x": (1, 2, 4), "w": (1, 2, 4)}),  # kernel = input
    ("conv_transpose2d(x, w, stride=3, padding=1)", {"x": (1, 2, 2, 3), "w": (2, 1, 2, 2)}),
    (
        "conv_transpose2d(x, w, b, stride=2, output_padding=1, groups=2, dilation=2)",
        {"x": (1, 4, 2, 2), "w": (4, 3, 2, 2), "b": (6,)},
    ),
    ("conv_transpose1d(x, w, padding=2, dilation=3)", {"x": (3, 4), "w": (3, 2, 3)}),
    ("max_pool2d(x, 2, stride=3)", {"x": (1, 1, 7, 7)}),
    ("max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)", {"x": (1, 2, 6, 6)}),
    ("max_pool1d(x, 3, stride=3, padding=1, ceil_mode=True)", {"x": (1, 2, 7)}),
    ("max_pool3d(x, 2, stride=2, padding=1, dilation=2, ceil_mode=True)", {"x": (1, 4, 4, 5)}),
    ("avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)", {"x": (1, 2, 6, 6)}),
    (
        "avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)",
        {"x": (1, 2, 6, 6)},
    ),
    ("avg_pool1d(x, 4, stride=3, padding=2, ceil_mode=True)", {"x": (2, 9)}),
    ("avg_pool3d(x, (1, 2, 3), stride=(1, 3, 2), divisor_override=5)", {"x": (2, 2, 5, 6)}),
    ("adaptive_avg_pool2d(x, (5, 2))", {"x": (2, 3, 7)}),  # more outputs than inputs
    ("adaptive_max_pool2d(x, (4, 3))", {"x": (1, 1, 3, 7)}),
    ("adaptive_avg_pool3d(x, 1)", {"x": (2, 3, 2, 2)}),
    ("lp_pool1d(x, 1.5, 3, stride=2, ceil_mode=True)", {"x": (1, 2, 8)}),
    ("fold(unfold(x, 2, stride=1), (4, 5), 2)", {"x": (1, 2, 4, 5)}),
    ("pixel_unshuffle(pixel_shuffle(x, 3), 3)", {"x": (2, 1, 9, 1, 2)}),
]


@pytest.mark.parametrize("program,shapes", EDGES)
def test_edge_cases_against_pytorch(torch, program, shapes):
    inputs = _random(shapes)
    if "lp_pool" in program:
        inputs = {k: np.abs(v) + 0.5 for k, v in inputs.items()}
    _agree(torch, program, inputs)


@pytest.mark.parametrize(
    "program,shapes",
    [
        ("conv2d(x, w, b)", {"x": (0, 2, 5, 5), "w": (3, 2, 3, 3), "b": (3,)}),
        ("conv_transpose1d(x, w)", {"x": (0, 2, 5), "w": (2, 3, 3)}),
        ("max_pool2d(x, 2)", {"x": (0, 2, 5, 5)}),
        ("avg_pool1d(x, 2)", {"x": (0, 2, 5)}),
        ("adaptive_avg_pool2d(x, 2)", {"x": (0, 2, 5, 5)}),
        ("adaptive_max_pool2d(x, 2)", {"x": (0, 2, 5, 5)}),
    ],
)
def test_empty_batch(torch, program, shapes):
    """A batch of zero: PyTorch gives an empty output and zero-size gradients."""
    inputs = _random(shapes)
    wrt = [k for k in shapes if k != "x"] + ["x"]
    seed = np.zeros(_shape(program, inputs))
    ours = gradcli.evaluate(program, inputs, dtype="float64", seed_vector=seed, wrt=wrt)
    out, grads = run_torch(torch, program, inputs, seed=seed)
    assert ours.value.shape == tuple(out.shape)
    for name, g in grads.items():
        np.testing.assert_array_equal(ours.grad[name], g)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "program,x",
    [
        # ties: the first maximum of a window takes the whole gradient
        ("max_pool2d(x, 2)", [[[[1.0, 3.0], [3.0, 3.0]]]]),
        ("max_pool1d(x, 3, stride=1)", [[[2.0, 2.0, 2.0, 1.0, 2.0]]]),
        ("adaptive_max_pool1d(x, 2)", [[[5.0, 5.0, 5.0, 5.0, 5.0]]]),
        ("adaptive_max_pool2d(x, (1, 2))", [[[[1.0, 3.0, 3.0], [3.0, 2.0, 3.0]]]]),
        # NaN: the last NaN of a window wins
        ("max_pool1d(x, 4, stride=2)", [[[1.0, 3.0, NAN, 2.0, NAN, 1.0, NAN, 0.0]]]),
        ("adaptive_max_pool1d(x, 1)", [[[NAN, 3.0, NAN, 2.0]]]),
        # all -inf, with padding: the first position inside the input
        ("max_pool2d(x, 3, stride=1, padding=1)", [[[[-INF] * 3] * 3]]),
        ("max_pool1d(x, 2, padding=1)", [[[-INF, INF, 1.0]]]),
        ("avg_pool1d(x, 2, padding=1)", [[[INF, 1.0, -2.0]]]),
    ],
)
def test_max_pool_choices_as_pytorch(torch, program, x):
    x = np.array(x)
    seed_shape = _shape(program, {"x": x})
    seed = np.arange(1.0, 1.0 + np.prod(seed_shape)).reshape(seed_shape)
    ours = gradcli.evaluate(program, {"x": x}, dtype="float64", seed_vector=seed)
    out, grads = run_torch(torch, program, {"x": x}, seed=seed)
    np.testing.assert_array_equal(ours.value, out.detach().numpy())
    np.testing.assert_array_equal(ours.grad["x"], grads["x"])


def test_max_pool_forward_mode_uses_real_parts(torch):
    """jvp and the Hessian run max pooling on dual numbers: the choice is the real part's."""
    from gradcli import derivatives as D

    x = np.array([[[1.0, 3.0, 3.0, 2.0, 0.5, 0.5]]])
    t = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]])
    got = D.jvp("max_pool1d(x, 2)", {"x": x}, {"x": t}, dtype="float64")
    np.testing.assert_array_equal(got["jvp"], [[[2.0, 3.0, 5.0]]])


ERRORS = [
    # (program, input shapes, the same call in PyTorch)
    (
        "conv2d(x, w)",
        {"x": (8, 4, 32, 32), "w": (16, 3, 3, 3)},
        "F.conv2d(x, w)",
    ),
    ("conv2d(x, w)", {"x": (4, 32), "w": (16, 4, 3, 3)}, "F.conv2d(x, w)"),
    ("conv2d(x, w)", {"x": (1, 4, 2, 2), "w": (16, 4, 3, 3)}, "F.conv2d(x, w)"),
    ("conv2d(x, w, b)", {"x": (1, 4, 5, 5), "w": (16, 4, 3, 3), "b": (15,)}, "F.conv2d(x, w, b)"),
    ("conv2d(x, w, b)", {"x": (1, 4, 5, 5), "w": (16, 4, 3, 3), "b": (16, 1)}, "F.conv2d(x, w, b)"),
    (
        "conv2d(x, w, groups=2)",
        {"x": (1, 4, 5, 5), "w": (15, 2, 3, 3)},
        "F.conv2d(x, w, groups=2)",
    ),
    ("conv2d(x, w, stride=0)", {"x": (1, 4, 5, 5), "w": (2, 4, 3, 3)}, "F.conv2d(x, w, stride=0)"),
    (
        "conv2d(x, w, padding=-1)",
        {"x": (1, 4, 5, 5), "w": (2, 4, 3, 3)},
        "F.conv2d(x, w, padding=-1)",
    ),
    (
        "conv2d(x, w, dilation=0)",
        {"x": (1, 4, 5, 5), "w": (2, 4, 3, 3)},
        "F.conv2d(x, w, dilation=0)",
    ),
    ("conv2d(x, w, groups=0)", {"x": (1, 4, 5, 5), "w": (2, 4, 3, 3)}, "F.conv2d(x, w, groups=0)"),
    (
        "conv2d(x, w, stride=(1, 1, 1))",
        {"x": (1, 4, 5, 5), "w": (2, 4, 3, 3)},
        "F.conv2d(x, w, stride=(1, 1, 1))",
    ),
    ("conv2d(x, w)", {"x": (8, 4, 32, 32), "w": (16, 3, 3)}, "F.conv2d(x, w)"),
    (
        "conv2d(x, w, padding='same', stride=2)",
        {"x": (1, 4, 5, 5), "w": (2, 4, 3, 3)},
        "F.conv2d(x, w, padding='same', stride=2)",
    ),
    (
        "conv2d(x, w, padding='full')",
        {"x": (1, 4, 5, 5), "w": (2, 4, 3, 3)},
        "F.conv2d(x, w, padding='full')",
    ),
    ("conv2d(x, w)", {"x": (1, 4, 5, 5), "w": (0, 4, 3, 3)}, "F.conv2d(x, w)"),
    ("conv1d(x, w)", {"x": (1, 4, 5, 5), "w": (16, 4, 3)}, "F.conv1d(x, w)"),
    ("conv3d(x, w)", {"x": (1, 4, 5, 5), "w": (16, 4, 3, 3, 3)}, "F.conv3d(x, w)"),
    ("conv_transpose2d(x, w)", {"x": (1, 4, 5, 5), "w": (3, 4, 3, 3)}, "F.conv_transpose2d(x, w)"),
    (
        "conv_transpose2d(x, w, stride=2, output_padding=2)",
        {"x": (1, 4, 5, 5), "w": (4, 2, 3, 3)},
        "F.conv_transpose2d(x, w, stride=2, output_padding=2)",
    ),
    (
        "conv_transpose2d(x, w, padding=5)",
        {"x": (1, 4, 5, 5), "w": (4, 2, 3, 3)},
        "F.conv_transpose2d(x, w, padding=5)",
    ),
    (
        "conv_transpose2d(x, w, b)",
        {"x": (1, 4, 5, 5), "w": (4, 2, 3, 3), "b": (4,)},
        "F.conv_transpose2d(x, w, b)",
    ),
    ("max_pool2d(x, 3, padding=2)", {"x": (1, 2, 5, 5)}, "F.max_pool2d(x, 3, padding=2)"),
    ("max_pool2d(x, 3)", {"x": (1, 2, 2, 2)}, "F.max_pool2d(x, 3)"),
    ("max_pool2d(x, 3)", {"x": (2, 2)}, "F.max_pool2d(x, 3)"),
    ("max_pool2d(x, 0)", {"x": (1, 2, 5, 5)}, "F.max_pool2d(x, 0)"),
    ("max_pool2d(x, 2, dilation=0)", {"x": (1, 2, 5, 5)}, "F.max_pool2d(x, 2, dilation=0)"),
    ("max_pool2d(x, (2, 2, 2))", {"x": (1, 2, 5, 5)}, "F.max_pool2d(x, (2, 2, 2))"),
    ("max_pool2d(x, 2)", {"x": (1, 0, 5, 5)}, "F.max_pool2d(x, 2)"),
    ("max_pool1d(x, 3)", {"x": (2, 2)}, "F.max_pool1d(x, 3)"),
    ("max_pool1d(x, 3)", {"x": (5,)}, "F.max_pool1d(x, 3)"),
    ("max_pool3d(x, 3)", {"x": (2, 2, 2)}, "F.max_pool3d(x, 3)"),
    ("avg_pool2d(x, 3, padding=2)", {"x": (1, 2, 5, 5)}, "F.avg_pool2d(x, 3, padding=2)"),
    ("avg_pool2d(x, 3)", {"x": (1, 2, 2, 2)}, "F.avg_pool2d(x, 3)"),
    ("avg_pool2d(x, 3)", {"x": (2, 2)}, "F.avg_pool2d(x, 3)"),
    (
        "avg_pool2d(x, 2, divisor_override=0)",
        {"x": (1, 2, 5, 5)},
        "F.avg_pool2d(x, 2, divisor_override=0)",
    ),
    ("avg_pool1d(x, 3)", {"x": (5,)}, "F.avg_pool1d(x, 3)"),
    ("avg_pool2d(x, 2, stride=0)", {"x": (1, 2, 5, 5)}, "F.avg_pool2d(x, 2, stride=0)"),
    ("adaptive_avg_pool2d(x, 3)", {"x": (2, 2)}, "F.adaptive_avg_pool2d(x, 3)"),
    ("adaptive_avg_pool2d(x, 3)", {"x": (1, 2, 0, 2)}, "F.adaptive_avg_pool2d(x, 3)"),
    (
        "adaptive_avg_pool2d(x, (2, 2, 2))",
        {"x": (1, 2, 5, 5)},
        "F.adaptive_avg_pool2d(x, (2, 2, 2))",
    ),
    ("adaptive_avg_pool1d(x, 3)", {"x": (5,)}, "F.adaptive_avg_pool1d(x, 3)"),
    ("adaptive_avg_pool3d(x, 3)", {"x": (2, 2)}, "F.adaptive_avg_pool3d(x, 3)"),
    ("adaptive_max_pool2d(x, 3)", {"x": (2, 2)}, "F.adaptive_max_pool2d(x, 3)"),
    ("adaptive_max_pool2d(x, 3)", {"x": (1, 2, 0, 2)}, "F.adaptive_max_pool2d(x, 3)"),
    ("adaptive_max_pool1d(x, 3)", {"x": (5,)}, "F.adaptive_max_pool1d(x, 3)"),
    ("lp_pool2d(x, 2, 0)", {"x": (1, 2, 5, 5)}, "F.lp_pool2d(x, 2, 0)"),
    ("pixel_shuffle(x, 2)", {"x": (1, 6, 2, 2)}, "F.pixel_shuffle(x, 2)"),
    ("pixel_unshuffle(x, 2)", {"x": (1, 1, 3, 4)}, "F.pixel_unshuffle(x, 2)"),
]


@pytest.mark.parametrize("program,shapes,call", ERRORS)
def test_errors_are_pytorchs(torch, program, shapes, call):
    inputs = _random(shapes)
    ns = {"F": torch.nn.functional, **{k: torch.tensor(v) for k, v in inputs.items()}}
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        eval(call, ns)
    with pytest.raises(EvaluationError) as ours:
        gradcli.evaluate(program, inputs, dtype="float64")
    expected = str(theirs.value).splitlines()[0]
    assert ours.value.message.startswith(expected), (ours.value.message, expected)


ADAPTIVE_INDICES = [
    ("F.adaptive_max_pool1d(x, 3, return_indices=True)", (2, 3, 7)),
    ("F.adaptive_max_pool1d(x, 9, True)", (3, 5)),  # more outputs than inputs, unbatched
    ("F.adaptive_max_pool2d(x, (2, 3), return_indices=True)", (2, 3, 5, 7)),
    ("F.adaptive_max_pool2d(x, (4, 1), return_indices=True)", (2, 3, 7)),
    ("torch.nn.functional.adaptive_max_pool3d(x, (2, 3, 2), True)", (1, 2, 3, 4, 5)),
    ("F.adaptive_max_pool3d(x, 2, return_indices=True)", (2, 5, 3, 4)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("call,shape", ADAPTIVE_INDICES)
def test_adaptive_max_pool_indices_match_pytorch(torch, call, shape, dtype):
    """(values, int64 indices) as PyTorch's, with ties (the first maximum), NaN (the last)
    and -inf in the windows; the values' gradient and labels too."""
    pool_indices_match_pytorch(torch, call, shape, dtype, seed=12)


def test_adaptive_max_pool_indices_feed_max_unpool(torch):
    x = np.random.default_rng(13).standard_normal((2, 3, 6, 6))
    program = "v, i = F.adaptive_max_pool2d(x, 3, return_indices=True)\nF.max_unpool2d(v, i, 2)"
    _agree(torch, program, {"x": x})


def test_adaptive_max_pool_indices_of_an_empty_batch(torch):
    from gradcli import derivatives as D

    x = np.zeros((0, 2, 5, 5))
    call = "F.adaptive_max_pool2d(x, 2, return_indices=True)[1]"
    ours = D.jvp(call, {"x": x}, {"x": x}, dtype="float64")["value"]
    theirs = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), 2, return_indices=True)[1]
    assert ours.shape == tuple(theirs.shape) and ours.dtype == np.int64


@pytest.mark.parametrize(
    "call,shape",
    [
        ("F.adaptive_max_pool2d(x, (2, 2, 2), return_indices=True)", (1, 2, 5, 5)),
        ("F.adaptive_max_pool1d(x, 3, return_indices=True)", (5,)),
        ("F.adaptive_max_pool2d(x, 3, return_indices=True)", (1, 2, 0, 2)),
        ("F.adaptive_max_pool3d(x, (2, -3, -1), return_indices=True)", (2, 3, 3, 3)),
        ("F.adaptive_max_pool1d(x, -2, return_indices=True)", (2, 5)),
        ("F.adaptive_max_pool3d(x, (2, 2), return_indices=True)", (1, 2, 3, 3, 3)),
        ("F.adaptive_max_pool2d(x, (2, 2, 2))", (1, 2, 5, 5)),
    ],
)
def test_adaptive_max_pool_indices_errors_are_pytorchs(torch, call, shape):
    """The checks run when the call is made, before either result is used."""
    x = np.ones(shape)
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        eval(call, {"F": torch.nn.functional, "x": torch.tensor(x)})
    with pytest.raises(EvaluationError) as ours:
        gradcli.evaluate(f"v, i = {call}\nv.sum()", {"x": x}, dtype="float64")
    assert ours.value.message.startswith(str(theirs.value).splitlines()[0])


@pytest.mark.parametrize(
    "program",
    [
        "conv2d(x, w, stride=1.5)",
        "conv2d(x, w, padding=[1, 0.5])",
        "max_pool2d(x, True)",
        "conv2d(x, w, groups=x)",
        "conv2d(x, w, bias='b')",
    ],
)
def test_non_integer_arguments_are_usage_errors(program):
    with pytest.raises(ParseError):
        gradcli.evaluate(program, {"x": np.ones((1, 1, 4, 4)), "w": np.ones((1, 1, 2, 2))})


def test_bias_by_keyword_by_position_and_none(torch):
    inputs = _random({"x": (1, 2, 4, 4), "w": (3, 2, 2, 2), "b": (3,)})
    by_name = _agree(torch, "conv2d(x, w, bias=b, padding=1)", inputs)
    by_position = gradcli.evaluate("sum(conv2d(x, w, b, 1, 1))", inputs, dtype="float64")
    np.testing.assert_allclose(by_name.value.sum(), by_position.value, rtol=1e-12)
    none = gradcli.evaluate("sum(conv2d(x, w, None))", inputs, dtype="float64")
    assert none.grad["b"] is None  # b is an input that does not feed the output


def test_lenet_style_program_against_pytorch(torch):
    program = """h = max_pool2d(relu(conv2d(x, w1, b1, padding=2)), 2)
h = avg_pool2d(relu(conv2d(h, w2, b2)), 2, ceil_mode=True)
h = flatten(h, 1)
cross_entropy(h @ W.T + b, [1, 0])"""
    shapes = {
        "x": (2, 1, 12, 12),
        "w1": (4, 1, 5, 5),
        "b1": (4,),
        "w2": (6, 4, 3, 3),
        "b2": (6,),
        "W": (3, 24),
        "b": (3,),
    }
    _agree(torch, program, _random(shapes))


def test_cli_shape_error_exits_1_with_pytorchs_message():
    r = CliRunner().invoke(
        main, ["grad", "sum(conv2d(x, w))", "x=randn(1,4,5,5)", "w=randn(2,3,3,3)"]
    )
    assert r.exit_code == 1
    assert "expected input[1, 4, 5, 5] to have 3 channels, but got 4 channels instead" in (
        r.output + (r.stderr if r.stderr_bytes is not None else "")
    )


def test_random_arguments_fail_or_agree_as_pytorch(torch):
    """Whatever the numbers, gradcli fails (with one of its errors) where PyTorch fails, and
    gives PyTorch's numbers where it does not."""
    rng = np.random.default_rng(7)
    F = torch.nn.functional
    for _ in range(150):
        k, s, p, dl = (int(v) for v in rng.integers(-1, 4, 4))
        n = int(rng.integers(0, 5))
        x, w = rng.standard_normal((1, 1, n, 3)), rng.standard_normal((1, 1, 2, 2))
        for program, call in (
            (f"max_pool2d(x, {k}, {s}, {p}, {dl}, ceil_mode=True)", F.max_pool2d),
            (f"avg_pool2d(x, {k}, {s}, {p}, ceil_mode=True)", F.avg_pool2d),
            (f"conv2d(x, w, stride={s}, padding={p}, dilation={dl})", None),
        ):
            try:
                if call is None:
                    theirs = F.conv2d(torch.tensor(x), torch.tensor(w), None, s, p, dl)
                elif call is F.max_pool2d:
                    theirs = call(torch.tensor(x), k, s, p, dl, ceil_mode=True)
                else:
                    theirs = call(torch.tensor(x), k, s, p, ceil_mode=True)
            except (RuntimeError, IndexError):
                theirs = None
            try:
                ours = gradcli.evaluate(f"sum({program})", {"x": x, "w": w}, dtype="float64")
            except GradcliError:
                ours = None
            assert (ours is None) == (theirs is None), program
            if ours is not None:
                np.testing.assert_allclose(ours.value, theirs.sum().item(), rtol=1e-12)


@pytest.mark.parametrize(
    "program",
    [
        "adaptive_avg_pool1d(x, None)",
        "adaptive_max_pool1d(x, (1, 2))",
        "lp_pool1d(x, 0, 2)",
        "max_pool1d(x, None)",
        "conv1d(x, x, groups=(2,))",
        "fold(x, 4, 2)",
    ],
)
def test_odd_arguments_are_errors_not_crashes(torch, program):
    x = np.ones((1, 2, 4))
    with pytest.raises((RuntimeError, TypeError, ZeroDivisionError, ValueError)):
        run_torch(torch, f"sum({program})", {"x": x})
    with pytest.raises(GradcliError):
        gradcli.evaluate(f"sum({program})", {"x": x}, dtype="float64")


@pytest.mark.parametrize("program", ["max_pool2d(x, 2)", "max_pool2d(x, 3, stride=1, padding=1)"])
def test_an_infinite_gradient_reaches_only_the_maximum(torch, program):
    """inf · 0 is nan: positions that are not the window's maximum must get 0, not nan."""
    x = np.random.default_rng(3).standard_normal((1, 1, 4, 4))
    seed = np.ones(_shape(program, {"x": x}))
    seed.flat[0], seed.flat[-1] = np.inf, -np.inf
    ours = gradcli.evaluate(program, {"x": x}, dtype="float64", seed_vector=seed)
    _, grads = run_torch(torch, program, {"x": x}, seed=seed)
    np.testing.assert_array_equal(ours.grad["x"], grads["x"])


# -- interpolation ------------------------------------------------------------------------

INTERPOLATE = [
    # ATen's special cases: an unchanged axis is copied, a doubled one shifts the index
    ("F.interpolate(x, scale_factor=(1.2, 2), mode='bilinear')", (1, 1, 3, 3)),
    ("F.interpolate(x, scale_factor=2.1, mode='nearest')", (1, 2, 2)),
    ("F.interpolate(x, scale_factor=(1.2, 1.2), mode='bicubic')", (1, 1, 3, 3)),
    ("F.interpolate(x, scale_factor=(1.2, 2), mode='bicubic')", (1, 1, 3, 3)),
    ("F.interpolate(x, size=(3, 3), mode='bicubic')", (1, 1, 3, 3)),
    ("F.interpolate(x, scale_factor=(1, 2), mode='nearest')", (1, 1, 3, 3)),
    ("F.interpolate(x, scale_factor=(1.2, 1.2), mode='nearest-exact')", (1, 1, 3, 3)),
    # downsampling, one output pixel, align_corners with one output
    ("F.interpolate(x, size=(2, 3), mode='bicubic')", (1, 2, 7, 8)),
    ("F.interpolate(x, size=1, mode='linear', align_corners=True)", (2, 1, 5)),
    ("F.interpolate(x, size=(1, 1), mode='bilinear')", (1, 1, 4, 4)),
    ("F.interpolate(x, size=(1, 1), mode='area')", (1, 3, 4, 4)),
    ("F.interpolate(x, size=(3, 1, 4), mode='nearest-exact')", (1, 1, 2, 3, 5)),
    ("F.interpolate(x, scale_factor=0.3, mode='nearest')", (1, 1, 10)),
    ("F.interpolate(x, scale_factor=3, mode='bicubic', align_corners=True)", (1, 1, 2, 2)),
    ("F.interpolate(x, size=4, mode='trilinear', recompute_scale_factor=None)", (1, 1, 2, 3, 3)),
    ("F.upsample(x, size=(5, 5), mode='bicubic', align_corners=True)", (1, 2, 3, 3)),
    ("F.upsample_nearest(x, scale_factor=3)", (1, 1, 2)),
    ("F.upsample_bilinear(x, size=(4, 2))", (2, 1, 3, 3)),
    ("torch.nn.functional.interpolate(x, 6, None, 'linear', False).sin()", (1, 2, 4)),
]


@pytest.mark.parametrize("program,shape", INTERPOLATE)
def test_interpolation_against_pytorch(torch, program, shape):
    _agree(torch, program, _random({"x": shape}))


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic", "area"])
def test_interpolation_of_non_finite_values_and_empty_batches(torch, mode):
    """A NaN or an infinity spreads exactly as far as PyTorch spreads it (a zero weight
    times inf is NaN there too), and a batch of zero is empty on both sides."""
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    x[0, 0, 1, 1], x[0, 0, 2, 3], x[0, 0, 0, 0] = NAN, INF, -INF
    program = f"F.interpolate(x, size=(5, 7), mode='{mode}')"
    seed = np.ones((1, 1, 5, 7))
    seed[0, 0, 2, 2] = INF
    ours = gradcli.evaluate(program, {"x": x}, dtype="float64", seed_vector=seed)
    out, grads = run_torch(torch, program, {"x": x}, seed=seed)
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad["x"], grads["x"], rtol=1e-12)
    empty = {"x": np.zeros((0, 2, 3, 4))}
    ours = gradcli.evaluate(program, empty, seed_vector=np.zeros((0, 2, 5, 7)))
    assert ours.value.shape == (0, 2, 5, 7) and ours.grad["x"].shape == (0, 2, 3, 4)


def test_interpolation_in_float32_keeps_float32(torch):
    x = np.random.default_rng(4).standard_normal((2, 3, 5, 6)).astype(np.float32)
    for mode in ("bilinear", "bicubic", "nearest"):
        program = f"F.interpolate(x, scale_factor=1.7, mode='{mode}').square().sum()"
        ours = gradcli.evaluate(program, {"x": x}, dtype="float32")
        out, grads = run_torch(torch, program, {"x": x}, dtype="float32")
        assert ours.value.dtype == np.float32 and ours.grad["x"].dtype == np.float32
        np.testing.assert_allclose(ours.value, out.item(), rtol=2e-5)
        np.testing.assert_allclose(ours.grad["x"], grads["x"], rtol=2e-5, atol=2e-5)


def test_interpolation_forward_mode_and_hessian():
    from gradcli import derivatives as D

    x = np.random.default_rng(5).standard_normal((1, 1, 3, 3))
    for mode in ("bilinear", "bicubic", "nearest"):
        assert D.check(f"F.interpolate(x, size=(4, 5), mode='{mode}').sin().sum()", {"x": x})["ok"]


INTERPOLATE_ERRORS = [
    ("F.interpolate(x, size=2, scale_factor=2)", (1, 1, 3), "only one of size or scale_factor"),
    ("F.interpolate(x)", (1, 1, 3), "either size or scale_factor should be defined"),
    ("F.interpolate(x, size=(2, 2, 2))", (1, 1, 3, 3), "same number of spatial dimensions"),
    ("F.interpolate(x, scale_factor=(2, 2))", (1, 1, 3), "scale_factor must have the same"),
    (
        "F.interpolate(x, size=3, recompute_scale_factor=True)",
        (1, 1, 3),
        "recompute_scale_factor is not meaningful with an explicit size.",
    ),
    (
        "F.interpolate(x, size=3, align_corners=True)",
        (1, 1, 3),
        "align_corners option can only be set with the interpolating modes",
    ),
    ("F.interpolate(x, size=3, mode='linear')", (1, 1, 3, 3), "Got 4D input, but linear mode"),
    ("F.interpolate(x, size=3, mode='trilinear')", (1, 1, 3), "Got 3D input, but trilinear"),
    ("F.interpolate(x, size=3, mode='bicubic')", (1, 1, 3), "Only 3D, 4D and 5D input Tensors"),
    ("F.interpolate(x, size=3, mode='foo')", (1, 1, 3), "(got foo)"),
    ("F.interpolate(x, size=3)", (2, 3), "(got 2D)"),
    ("F.interpolate(x, scale_factor=0.1)", (1, 1, 4, 3), "output (H: 0, W: 0)"),
    ("F.interpolate(x, size=3, mode='bilinear')", (1, 1, 0, 3), "input (H: 0, W: 3)"),
    ("F.interpolate(x, size=3)", (1, 0, 3), "Non-empty 3D data tensor expected"),
]


@pytest.mark.parametrize("program,shape,message", INTERPOLATE_ERRORS)
def test_interpolation_errors_are_pytorchs(torch, program, shape, message):
    x = np.ones(shape)
    with pytest.raises((RuntimeError, ValueError, NotImplementedError)) as theirs:
        run_torch(torch, program, {"x": x})
    assert message in str(theirs.value)
    with pytest.raises(EvaluationError) as ours:
        gradcli.evaluate(program, {"x": x}, dtype="float64")
    assert message in ours.value.message


ANTIALIAS = [
    ("size=(4, 5)", (1, 2, 9, 8)),
    ("scale_factor=0.37", (2, 1, 7, 7)),
    ("size=(11, 3)", (1, 1, 5, 6)),  # up along one axis, down along the other
    ("size=(9, 3)", (1, 1, 9, 8)),  # one axis unchanged (the forward copies it)
    ("size=(3, 3)", (1, 1, 20, 3)),
    ("scale_factor=0.5, align_corners=True", (1, 1, 6, 6)),
    ("size=(1, 1), align_corners=True", (1, 1, 6, 6)),
    ("scale_factor=(0.6, 2.3), recompute_scale_factor=True", (1, 1, 5, 5)),
    ("scale_factor=(0.45, 0.7)", (1, 3, 8, 9)),  # the kernel gets the scales, not the sizes
    ("size=(4, 3)", (2, 1, 4, 3)),  # no size changes
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("args,shape", ANTIALIAS)
def test_antialias_against_pytorch(torch, args, shape, mode, dtype):
    x = np.random.default_rng(16).standard_normal(shape).astype(dtype)
    program = f"F.interpolate(x, {args}, mode='{mode}', antialias=True)"
    if dtype == "float64":
        _agree(torch, program, {"x": x})
        return
    seed = np.random.default_rng(17).standard_normal(_shape(program, {"x": x})).astype(dtype)
    ours = gradcli.evaluate(program, {"x": x}, dtype=dtype, seed_vector=seed)
    out, grads = run_torch(torch, program, {"x": x}, dtype=dtype, seed=seed)
    assert ours.value.dtype == np.float32 and ours.grad["x"].dtype == np.float32
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.grad["x"], grads["x"], rtol=1e-5, atol=1e-6)
    assert ours.grad_fn == type(out.grad_fn).__name__


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(2, 3), (5, 7), (3, 4)])
def test_antialias_of_non_finite_values_and_empty_batches(torch, mode, size):
    """NaN and infinities spread as in PyTorch, zero weights included (its backward also
    runs over an unchanged axis, so an infinite seed reaches the neighbour as NaN)."""
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    x[0, 0, 1, 1], x[0, 0, 2, 3], x[0, 0, 0, 0] = NAN, INF, -INF
    program = f"F.interpolate(x, size={size}, mode='{mode}', antialias=True)"
    seed = np.ones((1, 1, *size))
    seed[0, 0, 1, 1] = INF
    ours = gradcli.evaluate(program, {"x": x}, dtype="float64", seed_vector=seed)
    out, grads = run_torch(torch, program, {"x": x}, seed=seed)
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad["x"], grads["x"], rtol=1e-12)
    empty = {"x": np.zeros((0, 2, 3, 4))}
    ours = gradcli.evaluate(program, empty, seed_vector=np.zeros((0, 2, *size)))
    assert ours.value.shape == (0, 2, *size) and ours.grad["x"].shape == (0, 2, 3, 4)


def test_antialias_forward_mode_and_finite_differences():
    from gradcli import derivatives as D

    x = np.random.default_rng(18).standard_normal((1, 2, 6, 5))
    for mode in ("bilinear", "bicubic"):
        program = f"F.interpolate(x, size=(3, 7), mode='{mode}', antialias=True).sin().sum()"
        assert D.check(program, {"x": x})["ok"], mode


@pytest.mark.parametrize(
    "program,shape",
    [
        ("F.interpolate(x, size=2, mode='nearest', antialias=True)", (1, 1, 4, 4)),
        ("F.interpolate(x, size=2, mode='bilinear', antialias=True)", (1, 1, 4)),
        ("F.interpolate(x, size=2, mode='trilinear', antialias=True)", (1, 1, 4, 4, 4)),
    ],
)
def test_antialias_errors_are_pytorchs(torch, program, shape):
    x = np.ones(shape)
    with pytest.raises(ValueError) as theirs:
        run_torch(torch, program, {"x": x})
    with pytest.raises(EvaluationError) as ours:
        gradcli.evaluate(program, {"x": x}, dtype="float64")
    assert ours.value.message.startswith(str(theirs.value))


@pytest.mark.parametrize(
    "program",
    [
        "conv2d(x, w, padding=1)",
        "conv2d(x, w, stride=2)",
        "conv_transpose2d(x, w, padding=1)",
        "conv1d(x[:, :, 1], w[:, :, 1], dilation=2)",
    ],
)
@pytest.mark.parametrize("where", ["x", "w"])
def test_convolutions_of_infinities_as_pytorch(torch, program, where):
    """An infinity in the input or the weights spreads as in PyTorch: the unit-stride input
    gradient sums contiguous columns only when the weights are finite."""
    inputs = _random({"x": (1, 2, 4, 5), "w": (2, 2, 3, 3)}, seed=5)
    inputs[where][0, 1, 1, 2] = INF
    inputs[where][0, 0, 2, 1] = -INF
    with np.errstate(all="ignore"):  # (the shape probe runs the engine bare)
        seed = np.random.default_rng(6).standard_normal(_shape(program, inputs))
    ours = gradcli.evaluate(program, inputs, dtype="float64", seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, seed=seed)
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(ours.grad[name], g, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    "program", ["max_pool2d(x, 2)", "max_pool2d(x, 3, stride=1, padding=1)", "max_pool1d(x, 2)"]
)
def test_pooling_gradients_keep_pytorchs_signed_zeros(torch, program):
    """Positions that are no window's maximum get +0.0, the maximum gets the seed's -0.0."""
    x = np.random.default_rng(8).standard_normal((1, 2, 4, 4) if "2d" in program else (2, 6))
    seed = -np.ones(_shape(program, {"x": x}))
    seed.flat[0] = -0.0
    ours = gradcli.evaluate(program, {"x": x}, dtype="float64", seed_vector=seed)
    _, grads = run_torch(torch, program, {"x": x}, seed=seed)
    np.testing.assert_array_equal(np.signbit(ours.grad["x"]), np.signbit(grads["x"]))
    np.testing.assert_array_equal(ours.grad["x"], grads["x"])


# -- affine_grid and grid_sample -----------------------------------------------------------

GRID = [
    # sample points exactly on pixels, on cell edges, far outside, and NaN
    ([[[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]], [[5.0, -7.0], [-1.0, 0.5], [NAN, 0.2]]]], "zeros"),
    ([[[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]], [[5.0, -7.0], [-1.0, 0.5], [0.3, 0.2]]]], "border"),
    (
        [[[[-3.1, 2.2], [1.0, 1.0], [0.0, 4.5]], [[5.0, -7.0], [-1.0, 0.5], [0.3, 0.2]]]],
        "reflection",
    ),
]


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize("grid,padding", GRID)
def test_grid_sample_at_the_edges(torch, grid, padding, align, mode):
    x = np.arange(24.0).reshape(1, 2, 3, 4) / 7
    x[0, 1, 2, 3] = INF  # read only by the samples that reach the corner
    program = f"F.grid_sample(x, g, mode='{mode}', padding_mode='{padding}', align_corners={align})"
    inputs = {"x": x, "g": np.array(grid)}
    seed = np.random.default_rng(9).standard_normal((1, 2, 2, 3))
    wrt = ["x"] if np.isnan(inputs["g"]).any() else ["x", "g"]
    ours = gradcli.evaluate(program, inputs, dtype="float64", seed_vector=seed, wrt=wrt)
    out, grads = run_torch(torch, program, inputs, seed=seed, wrt=wrt)
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    for name in wrt:
        np.testing.assert_allclose(ours.grad[name], grads[name], rtol=1e-12, atol=1e-12)
    assert our_labels(ours) == torch_labels(out)


def test_grid_sample_forward_mode_and_hessian():
    from gradcli import derivatives as D

    rng = np.random.default_rng(10)
    inputs = {"x": rng.standard_normal((1, 2, 3, 4)), "t": rng.uniform(-0.6, 0.6, (1, 2, 3))}
    for padding in ("zeros", "border", "reflection"):
        program = (
            f"F.grid_sample(x, F.affine_grid(t, (1, 2, 3, 2), align_corners=False), "
            f"padding_mode='{padding}', align_corners=False).sin().sum()"
        )
        assert D.check(program, inputs)["ok"], padding


GRID_ERRORS = [
    ("F.grid_sample(x, g, mode='foo')", (2, 3, 4, 5), (2, 6, 7, 2), "expected mode to be"),
    ("F.grid_sample(x, g, padding_mode='foo')", (2, 3, 4, 5), (2, 6, 7, 2), "padding_mode"),
    ("F.grid_sample(x, g)", (2, 3, 4, 5), (3, 6, 7, 2), "same batch size"),
    ("F.grid_sample(x, g)", (2, 3, 4, 5), (2, 6, 7, 3), "size 2 in last dimension"),
    ("F.grid_sample(x, g)", (2, 3, 4, 5), (2, 6, 7, 1, 2), "same number of dimensions"),
    ("F.grid_sample(x, g, mode='bicubic')", (2, 3, 4, 5, 6), (2, 6, 7, 1, 3), "only supports 4D"),
    ("F.grid_sample(x, g)", (2, 3, 0, 5), (2, 6, 7, 2), "dimension 2 being empty"),
    ("F.affine_grid(x, (2, 3, 4))", (2, 2, 3), None, "only supports 4D and 5D sizes"),
    ("F.affine_grid(x, (2, 3, 0, 5))", (2, 2, 3), None, "Expected non-zero, positive output"),
    ("F.affine_grid(x, (2, 3, 4, 5))", (2, 3, 4), None, "affine matrices of shape Nx2x3"),
    ("F.affine_grid(x, (2, 3, 4, 5, 6))", (2, 2, 3), None, "affine matrices of shape Nx3x4"),
    ("F.affine_grid(x, (3, 3, 4, 5))", (2, 2, 3), None, "first two dimensions of batch2"),
]


@pytest.mark.parametrize("program,xs,gs,message", GRID_ERRORS)
def test_grid_errors_are_pytorchs(torch, program, xs, gs, message):
    inputs = {"x": np.ones(xs), **({"g": np.zeros(gs)} if gs else {})}
    with pytest.raises((RuntimeError, ValueError, NotImplementedError)) as theirs:
        run_torch(torch, program, inputs)
    assert message in str(theirs.value)
    with pytest.raises(EvaluationError) as ours:
        gradcli.evaluate(program, inputs)
    assert message in ours.value.message


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [True, False])
def test_grid_sample_bicubic_against_pytorch(torch, padding, align, dtype):
    """Samples inside, near the edges and far outside (where each of the 4×4 neighbours is
    padded on its own): value, both gradients and the label, in both dtypes."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    g = rng.uniform(-2.5, 2.5, (2, 3, 6, 2)).astype(dtype)
    g[0, 0, 0] = (-1.0, 1.0)  # on the corners: t = 0, the outer weights are 0
    g[0, 0, 1] = (1.0, -1.0)
    program = (
        f"F.grid_sample(x, g, mode='bicubic', padding_mode='{padding}', align_corners={align})"
    )
    seed = rng.standard_normal((2, 3, 3, 6)).astype(dtype)
    ours = gradcli.evaluate(program, {"x": x, "g": g}, dtype=dtype, seed_vector=seed)
    out, grads = run_torch(torch, program, {"x": x, "g": g}, seed=seed, dtype=dtype)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    assert ours.value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(ours.value, out.detach().numpy(), **tol)
    for name in ("x", "g"):
        assert ours.grad[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(ours.grad[name], grads[name], err_msg=name, **tol)
    assert our_labels(ours) == torch_labels(out)


def test_grid_sample_bicubic_finite_differences_and_forward_mode():
    from gradcli import derivatives as D

    rng = np.random.default_rng(15)
    inputs = {"x": rng.standard_normal((1, 2, 3, 4)), "g": rng.uniform(-1.3, 1.3, (1, 2, 3, 2))}
    for padding in ("zeros", "border", "reflection"):
        for align in (True, False):
            program = (
                f"F.grid_sample(x, g, mode='bicubic', padding_mode='{padding}', "
                f"align_corners={align}).sin().sum()"
            )
            assert D.check(program, inputs)["ok"], (padding, align)


def test_readme_networks_against_pytorch(torch):
    """The README's LeNet-style network: value, every gradient and every label as
    PyTorch's."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Neural networks")[1].split("\n## ")[0]
    lenet = re.findall(r"```text\n(.*?)```", section, flags=re.S)[0]  # (block: test_nn.py)
    rng = np.random.default_rng(11)
    cases = [
        (
            lenet,
            {"x": (2, 1, 12, 12), "w1": (4, 1, 5, 5), "b1": (4,), "w2": (6, 4, 3, 3)}
            | {"b2": (6,), "W3": (16, 24), "b3": (16,), "W4": (10, 16), "b4": (10,)},
            np.array([3.0, 7.0]),
        ),
    ]
    F = torch.nn.functional
    for program, shapes, y in cases:
        inputs = {k: rng.standard_normal(s) * 0.5 for k, s in shapes.items()}
        ours = gradcli.evaluate(program, {**inputs, "y": y}, wrt=list(shapes), dtype="float64")
        leaves = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
        ns = {"F": F, "torch": torch, **leaves}
        lines = program.strip().splitlines()
        exec("\n".join(lines[:-1]), ns)
        out = eval(lines[-1].replace(", y)", ", yy)"), {**ns, "yy": torch.tensor(y).long()})
        out.backward()
        np.testing.assert_allclose(ours.value, out.item(), rtol=1e-10)
        for k, leaf in leaves.items():
            np.testing.assert_allclose(ours.grad[k], leaf.grad.numpy(), rtol=1e-9, atol=1e-12)
        assert our_labels(ours) == torch_labels(out)


def test_work_arrays_never_leak_into_results(torch):
    """The kernels reuse work arrays between calls: a result that were one of them would
    change under a later convolution or pooling. Every intermediate here is read after
    several others ran."""
    program = """u = unfold(x, 2)
c = conv2d(x, w, padding=1)
p = max_pool2d(c, 2)
t = conv_transpose2d(c, v, stride=2)
d = conv2d(x, w, stride=2)
u.sum() * 0.1 + (c * c).sum() + p.sum() + t.mean() + d.sum() + unfold(c, 3).mean()"""
    shapes = {"x": (2, 3, 6, 6), "w": (4, 3, 3, 3), "v": (4, 2, 3, 3)}
    _agree(torch, program, _random(shapes, seed=19))


def test_convolutions_in_threads_agree_with_one_thread():
    """The work arrays are per thread: concurrent evaluations do not share them."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(20)
    cases = [
        ({"x": rng.standard_normal((2, 3, 9 + k, 8)), "w": rng.standard_normal((5, 3, 3, 2))})
        for k in range(6)
    ]
    program = "max_pool2d(relu(conv2d(x, w, padding=1)), 2).square().sum()"

    def run(inputs):
        r = gradcli.evaluate(program, inputs, dtype="float64")
        return r.value, r.grad["x"], r.grad["w"]

    serial = [run(c) for c in cases]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            for got, want in zip(pool.map(run, cases), serial, strict=True):
                for a, b in zip(got, want, strict=True):
                    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "call,shape",
    [
        ("F.adaptive_max_pool1d(x, 0)", (2, 3, 5)),
        ("F.adaptive_max_pool1d(x, 0)", (3, 5)),
        ("F.adaptive_max_pool2d(x, (0, 2))", (2, 3, 5, 5)),
        ("F.adaptive_max_pool2d(x, 0)", (3, 5, 5)),
        ("F.adaptive_max_pool3d(x, (2, 0, 2))", (2, 3, 4, 4, 4)),
        ("F.adaptive_avg_pool1d(x, 0)", (2, 3, 5)),
        ("F.adaptive_avg_pool2d(x, (2, 0))", (2, 3, 5, 5)),
        ("F.adaptive_avg_pool3d(x, (0, 2, 2))", (2, 3, 4, 4, 4)),
    ],
)
def test_adaptive_pool_to_an_empty_size_has_a_value_but_no_gradient(torch, call, shape):
    """An output size of 0 gives an empty value; PyTorch's backward then refuses the empty
    gradient (it checks every dimension after the first), and so does ours."""
    x = np.random.default_rng(0).standard_normal(shape)
    t = torch.tensor(x, requires_grad=True)
    y = eval(call, {"F": torch.nn.functional, "x": t})
    with pytest.raises(RuntimeError) as theirs:
        y.sum().backward()
    assert _shape(call, {"x": x}) == tuple(y.shape)
    with pytest.raises(EvaluationError) as ours:
        gradcli.evaluate(f"{call}.sum()", {"x": x}, dtype="float64")
    assert ours.value.message.startswith(str(theirs.value).splitlines()[0])


def test_adaptive_pool_of_an_empty_batch_still_has_a_gradient(torch):
    x = np.zeros((0, 3, 5, 5))
    for call in ("F.adaptive_max_pool2d(x, 2)", "F.adaptive_avg_pool2d(x, (2, 3))"):
        t = torch.tensor(x, requires_grad=True)
        eval(call, {"F": torch.nn.functional, "x": t}).sum().backward()
        ours = gradcli.evaluate(f"{call}.sum()", {"x": x}, dtype="float64")
        assert ours.grad["x"].shape == tuple(t.grad.shape)


EMPTY_SHAPES = [(0, 4, 4), (1, 0, 4, 4), (0, 3, 4, 4), (2, 0, 4), (3, 0), (2, 3, 0), (0, 0, 4)]
EMPTY_SHAPES += [(1, 0, 2, 4, 4), (0, 2, 4, 4), (0, 0, 4, 4), (0, 4)]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_adaptive_pools_of_empty_dimensions_fail_where_pytorchs_do(torch, kind, d, shape):
    """Which empty dimensions each adaptive pool refuses, and whether forward or backward
    does: max pooling and the 3-d average pool refuse any empty dimension after the first in
    the forward (the 1-d max pool under its own name), the 1-d and 2-d average pools only an
    empty pooled one, and their backward an empty result (0 channels)."""
    call = f"F.adaptive_{kind}_pool{d}d(x, 2).sum()"
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    try:
        eval(call, {"F": torch.nn.functional, "x": x}).backward()
        expected = None
    except RuntimeError as e:
        expected = str(e).splitlines()[0]
    if expected is None:
        ours = gradcli.evaluate(call, {"x": np.zeros(shape)}, dtype="float64")
        assert ours.grad["x"].shape == shape
    else:
        with pytest.raises(GradcliError) as e:
            gradcli.evaluate(call, {"x": np.zeros(shape)}, dtype="float64")
        assert e.value.message.startswith(expected), (e.value.message, expected)
