"""Input VALUEs, and PyTorch's repr of what we print (checked against torch itself)."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcli.errors import InputError
from gradcli.inputs import parse_value, to_array
from gradcli.rng import Generator
from gradcli.torchrepr import tensor_repr


@pytest.mark.parametrize(
    "text,expected",
    [
        ("3", 3.0),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("1e-3", 1e-3),
        ("1,2,3", [1.0, 2.0, 3.0]),
        (" 1, -2 ", [1.0, -2.0]),
        ("[1, 2]", [1.0, 2.0]),
        ("[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]),
        ('["nan", 1]', [math.nan, 1.0]),
        ('"inf"', math.inf),
        ("nan,-inf", [math.nan, -math.inf]),
        ("[]", []),
    ],
)
def test_values(text, expected):
    got = to_array(parse_value(text), "float64")
    np.testing.assert_array_equal(got, np.array(expected, dtype="float64"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1,,2",
        "[1, 2",
        "[[1, 2], [3]]",
        "[true, 1]",
        '[1, "x"]',
        '{"a": 1}',
        "null",
        "[1, [2]]",
        "1,2,",
        "1_000",
        "randn(-1)",
        "linspace(0, 1)",
        "arange(0, 1, 0)",
        "zeros(x)",
        "randn(100000, 100000)",
        "[" * 5000 + "]" * 5000,
    ],
)
def test_bad_values(text):
    with pytest.raises(InputError):
        to_array(parse_value(text), "float32")


def test_generators():
    rng = Generator(0)
    assert to_array("randn(2,3)", "float32", rng=rng).shape == (2, 3)
    assert to_array("rand(4)", "float64", rng=rng).dtype == np.float64
    assert to_array("zeros(2)", "float32").tolist() == [0, 0]
    assert to_array("ones(1, 2)", "float32").tolist() == [[1, 1]]
    assert to_array("arange(3)", "float32").tolist() == [0, 1, 2]
    assert to_array("linspace(0, 1, 3)", "float32").tolist() == [0, 0.5, 1]
    a = to_array("randn(5)", "float32", rng=Generator(7))
    b = to_array("randn(5)", "float32", rng=Generator(7))
    assert a.tolist() == b.tolist()


REPR_CASES = [
    np.array([1.27, 2.9384, 3.0628], np.float32),
    np.float32(7.36043),
    np.array([1e-5, 1.0]),
    np.arange(2000, dtype=np.float32) / 7,
    np.array([[1.0, 2], [3, 4]], np.float32),
    np.array([np.nan, 1.5, np.inf], np.float32),
    np.array([np.nan, -np.inf, 2.0], np.float32),
    np.zeros((2, 0), np.float32),
    np.array([], np.float64),
    np.array([1.0, -2.0, 3.0]),
    np.array([1e10, 1.0], np.float32),
    np.array([0.0, 0.0], np.float32),
    np.linspace(-50, 50, 41).astype(np.float32).reshape(41),
    np.full((3, 40), 1.5, np.float32),
    np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 1.5,
    np.arange(1200.0).reshape(40, 30),
]


@pytest.mark.parametrize("a", REPR_CASES, ids=range(len(REPR_CASES)))
def test_repr_matches_torch(torch, a):
    t = torch.tensor(a)
    assert tensor_repr(a) == repr(t)
    if a.size:
        g = torch.tensor(a, requires_grad=True) * 1.0
        assert tensor_repr(a, grad_fn="MulBackward0") == repr(g)
        assert tensor_repr(a, requires_grad=True) == repr(torch.tensor(a, requires_grad=True))


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
        elements=st.floats(-(1024.0**3), 1024.0**3, width=32, allow_subnormal=False)
        | st.sampled_from([0.0, 1.0, -3.0, 1e-7]),
    )
)
def test_repr_random_arrays_match_torch(a):
    import conftest

    torch = conftest._torch()
    assert tensor_repr(a) == repr(torch.tensor(a))


def test_repr_known_strings():
    assert (
        tensor_repr(np.float32(7.36043), grad_fn="MeanBackward0")
        == "tensor(7.3604, grad_fn=<MeanBackward0>)"
    )
    assert tensor_repr(np.array([1e-5, 1.0], np.float32)) == "tensor([1.0000e-05, 1.0000e+00])"
    assert tensor_repr(np.array([1.0, 2.0])) == "tensor([1., 2.], dtype=torch.float64)"


# ---- generators and JSON at their limits: a clear error (exit 2) on every path -----------

SEVENTY = "zeros(" + ",".join(["1"] * 70) + ")"
HUGE_CAP = "1" + "0" * 24  # --max-elements 10^24, written out
BAD_GENERATORS = [
    ("arange(1e999)", [], "arange() takes finite numbers, got '1e999'"),
    ("arange(0,1,1e-320)", [], "arange(0, 1, 1e-320) would make more than 1e308 elements"),
    ("arange(0,1,1e-300)", [], "arange(0, 1, 1e-300) would make about 1e+300 elements"),
    ("zeros(0,1e20)", [], "zeros(0, 1e20) has a dimension of about 1e+20, over the limit"),
    ("zeros(0,9e18)", [], "zeros(0, 9e18) has a dimension of about 9e+18, over the limit"),
    (SEVENTY, [], "zeros() with 70 sizes; a tensor has at most 32 dimensions"),
    ("linspace(0,1e999,3)", [], "linspace() takes finite numbers"),
    ("randn(nan)", [], "randn() takes numbers, got 'nan'"),
    ("zeros(1e20)", ["--max-elements", HUGE_CAP], "zeros(1e20) is larger than an array can be"),
    ("zeros(0,9e18)", ["--max-elements", HUGE_CAP], "zeros(0, 9e18) is larger than an array"),
]


def cli(*args, input=None):
    from click.testing import CliRunner

    from gradcli.cli import main

    r = CliRunner().invoke(main, list(args), input=input)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


def batch_error(record, *options):
    r = cli("batch", *options, input=json.dumps(record) + "\n")
    answer = json.loads(r.output.splitlines()[0])
    assert r.exit_code == 1 and answer["error"]["type"] == "InputError", r.output
    return answer["error"]["message"]


def assert_input_error(r, message):
    assert r.exit_code == 2, r.output
    assert f"error: {message}" in r.output, r.output


@pytest.mark.parametrize("value,options,message", BAD_GENERATORS, ids=range(len(BAD_GENERATORS)))
def test_bad_generators_on_every_path(value, options, message):
    assert_input_error(cli("grad", "sum(x)", f"x={value}", *options), f"x: {message}")
    r = cli("grad", "x * 1", "x=1", "--seed-vector", value, *options)
    assert_input_error(r, f"seed vector: {message}")
    r = cli("jvp", "sum(x)", "x=1", "--tangent", f"x={value}", *options)
    assert_input_error(r, f"tangent x: {message}")
    r = cli("grad", "sum(x)", "-i", "-", *options, input=json.dumps({"x": value}))
    assert_input_error(r, f"x: {message}")
    assert message in batch_error({"expr": "sum(x)", "inputs": {"x": value}}, *options)
    record = {"expr": "x * 1", "inputs": {"x": 1}, "seed_vector": value}
    assert message in batch_error(record, *options)


LONG_INT = "1" * 5000


def raw_x(json_text):
    """An inputs object whose x is the JSON text as written (numbers json.dumps cannot)."""
    return '{"x": ' + json_text + "}"


DEEP = "[" * 70 + "1" + "]" * 70


def test_huge_json_integers_do_not_leak_python_advice():
    message = "a JSON integer of 5,000 digits is too large for a number"
    for r in (
        cli("grad", "sum(x)", f"x=[{LONG_INT}]"),
        cli("grad", "sum(x)", "-i", "-", input=raw_x(LONG_INT)),
    ):
        assert r.exit_code == 2 and message in r.output
        assert "set_int_max_str_digits" not in r.output and "4300" not in r.output
    line = '{"expr": "sum(x)", "inputs": ' + raw_x(f"[{LONG_INT}]") + "}\n"
    r = cli("batch", input=line)
    assert message in r.output and "set_int_max_str_digits" not in r.output
    # shorter, still past float64: the same kind of message, never OverflowError
    assert_input_error(
        cli("grad", "sum(x)", "-i", "-", input=raw_x("1" * 350)),
        "x: the number is too large",
    )
    assert_input_error(cli("grad", "sum(x)", "x=[" + "1" * 350 + "]"), "x: the number at [0]")


def test_deep_lists_are_too_deep_not_ragged():
    message = "lists nested more than 32 deep; a tensor has at most 32 dimensions"
    for r in (
        cli("grad", "sum(x)", f"x={DEEP}"),
        cli("grad", "sum(x)", "-i", "-", input=raw_x(DEEP)),
        cli("grad", "x * 1", "x=1", "--seed-vector", DEEP),
    ):
        assert r.exit_code == 2 and message in r.output and "ragged" not in r.output
    assert message in batch_error({"expr": "sum(x)", "inputs": {"x": json.loads(DEEP)}})
    for value in ("[" * 70 + "]" * 70, "[" * 70 + '"nan"' + "]" * 70, "[" * 33 + "1" + "]" * 33):
        with pytest.raises(InputError, match="nested more than 32 deep"):
            to_array(json.loads(value), "float32")
    assert to_array(json.loads("[" * 32 + "1" + "]" * 32), "float32").ndim == 32


@pytest.mark.parametrize("value", ["zeros(11)", "[0,0,0,0,0,0,0,0,0,0,0]", "0,0,0,0,0,0,0,0,0,0,0"])
def test_element_cap_is_bad_input_however_written(value):
    r = cli("grad", "sum(x)", f"x={value}", "--max-elements", "10")
    assert r.exit_code == 2 and "11 elements, over the limit of 10" in r.output
    assert "--max-elements" in r.output
    r = cli("grad", "sum(x)", "-i", "-", "--max-elements", "10", input=json.dumps({"x": value}))
    assert r.exit_code == 2 and "11 elements, over the limit of 10" in r.output


def test_generators_at_their_limits_still_work():
    assert to_array("zeros(0, 50000000)", "float32").shape == (0, 50_000_000)
    assert to_array("arange(0, 1, 0.25)", "float64").tolist() == [0, 0.25, 0.5, 0.75]
    assert to_array("arange(5, 0, 1)", "float32").shape == (0,)
    assert to_array("ones(" + ",".join(["1"] * 32) + ")", "float32").ndim == 32
    assert to_array("linspace(-1e300, 1e300, 3)", "float64").tolist() == [-1e300, 0, 1e300]
