"""Input VALUEs, and PyTorch's repr of what we print (checked against torch itself)."""

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
