"""The language: precedence, statements, names, errors with positions, PyTorch's spelling, and
programs far deeper and longer than any recursion limit."""

import math

import numpy as np
import pytest

import gradcli
from gradcli.parser import parse


def value(program, **inputs):
    return float(
        gradcli.evaluate(program, inputs or {"x": 1.0}, dtype="float64", seed_vector=None).value
    )


@pytest.mark.parametrize(
    "program,expected",
    [
        ("-x^2", -(3.0**2)),  # unary minus binds looser than power, as in Python
        ("2^3^2 * x / x", 2.0**9),  # power is right-associative
        ("x ** 2 ** 0.5", 3.0 ** (2**0.5)),
        ("x^-1", 1 / 3),
        ("2 * x + 1", 7.0),
        ("2 + x * 3", 11.0),
        ("(2 + x) * 3", 15.0),
        ("x - 1 - 1", 1.0),  # left-associative
        ("x / 2 / 3", 0.5),
        ("+x", 3.0),
        ("- -x", 3.0),
        ("x * .5 + 1e-3 + 2.5e1 * 0", 1.501),
    ],
)
def test_precedence_like_python(program, expected):
    assert value(program, x=3.0) == pytest.approx(expected)


def test_statements_newlines_semicolons_and_comments():
    program = "# a comment\ny = x + 2   # trailing\n\n;; z = y * (y +\n 0) * 2\nz.mean()\n"
    assert value(program, x=[1.0, 2.0]) == pytest.approx((18 + 32) / 2)


def test_last_assignment_is_the_output():
    r = gradcli.evaluate("y = x * 3", {"x": 2.0})
    assert r.value == 6 and r.output.name == "y"


def test_reassignment_sees_latest_value():
    r = gradcli.evaluate("c = x; c = c + 1; c = c * c; c", {"x": 2.0}, dtype="float64")
    assert r.value == 9 and r.grad["x"] == 6


def test_numbers_fold_as_in_python():
    p = parse("2 * 3 * x")
    assert [n.op for n in p.nodes] == ["input", "number", "mul"]
    assert p.nodes[1].attrs["value"] == 6.0
    assert value("x * (1/0)", x=1.0) == math.inf
    assert math.isnan(value("x * (0/0)", x=1.0))


def test_shared_names_make_one_node():
    r = gradcli.evaluate("y = x + 2; y * y", {"x": 1.0})
    adds = [n for n in r.nodes if n.op == "add"]
    assert len(adds) == 1 and r.grad["x"] == 6


def test_method_sugar_and_T():
    r = gradcli.evaluate(
        "(x * x).relu().sum() + A.T.sum() + A.t().sum()", {"x": [1.0, -2.0], "A": [[1.0, 2.0]]}
    )
    assert r.value == 5 + 3 + 3


def test_keyword_and_positional_arguments():
    a = gradcli.evaluate("sum(x, 0)", {"x": [[1.0, 2.0]]}, seed_vector=[1, 1])
    b = gradcli.evaluate("x.sum(dim=0)", {"x": [[1.0, 2.0]]}, seed_vector=[1, 1])
    assert a.value.tolist() == b.value.tolist() == [1.0, 2.0]


def test_matrix_literal_constant():
    r = gradcli.evaluate("sum([[1, 2], [3, 4]] @ x)", {"x": [1.0, 1.0]})
    assert r.value == 10 and r.grad["x"].tolist() == [4.0, 6.0]


def test_dead_statements_are_not_in_the_graph():
    r = gradcli.evaluate("y = x * 2; w = q + 1; x + 1", {"x": 1.0})
    assert [n.op for n in r.nodes] == ["input", "number", "add"]


# -- errors: the exception family, positions, suggestions -----------------------------


@pytest.mark.parametrize(
    "program,cls,line,column,fragment",
    [
        ("mean(x", gradcli.ParseError, 1, 7, "unexpected end"),
        ("x +* 2", gradcli.ParseError, 1, 4, "unexpected '*'"),
        ("x $ 2", gradcli.ParseError, 1, 3, "unexpected character '$'"),
        ("y = 1\nz = y +\n", gradcli.ParseError, 2, 8, "unexpected end"),
        ("y = 1 +\nz = y\n", gradcli.ParseError, 1, 8, "unexpected line break"),
        ("meen(x)", gradcli.UnknownNameError, 1, 1, "unknown function 'meen'"),
        ("sum(x, dims=0)", gradcli.UnknownNameError, 1, 8, "unexpected keyword argument 'dims'"),
        ("x.foo", gradcli.UnknownNameError, 1, 3, "unknown attribute"),
        ("sum(x, dim=1.5)", gradcli.ParseError, 1, 12, "dim must be an integer"),
        ("exp()", gradcli.ParseError, 1, 1, "takes 1 tensor argument"),
        ("sum(x, 0, True, 1)", gradcli.ParseError, 1, 1, "got 4"),
        ("exp(x, dim=0)", gradcli.UnknownNameError, 1, 8, "unexpected keyword"),
        ("'text'", gradcli.ParseError, 1, 1, "must be a tensor expression"),
        ("x + 'a'", gradcli.ParseError, 1, 5, "not the string"),
        ("[1, x]", gradcli.ParseError, 1, 5, "numbers only"),
        ("True = x", gradcli.ParseError, 1, 1, "cannot assign"),
        ("x ≤ 2", gradcli.ParseError, 1, 3, "U+2264"),
    ],
)
def test_parse_errors(program, cls, line, column, fragment):
    with pytest.raises(cls) as info:
        parse(program)
    e = info.value
    assert fragment in str(e) + (e.hint or "")
    assert e.position == (line, column)
    assert "^" in e.context
    assert e.exit_code == 2


def test_unknown_function_suggests_close_match():
    with pytest.raises(gradcli.UnknownNameError) as info:
        parse("sigmod(x)")
    assert info.value.hint == "did you mean 'sigmoid'?"


def test_empty_program():
    for text in ["", "   ", "# only a comment\n"]:
        with pytest.raises(gradcli.ParseError, match="empty program"):
            parse(text)


def test_evaluation_errors_have_positions_and_exit_1():
    with pytest.raises(gradcli.ShapeError) as info:
        gradcli.evaluate("y = x + 1\nz = y * w", {"x": [1.0, 2.0], "w": [1.0, 2.0, 3.0]})
    assert info.value.position == (2, 5) and info.value.exit_code == 1
    assert "[2] and [3]" in info.value.message


def test_missing_inputs_are_named():
    with pytest.raises(gradcli.InputError, match="missing inputs: y, z"):
        gradcli.evaluate("x + y * z", {"x": 1.0})


def test_nonscalar_output_and_seed_shape():
    with pytest.raises(gradcli.EvaluationError, match="only for scalar outputs") as info:
        gradcli.evaluate("x * 2", {"x": [1.0, 2.0]})
    assert "--seed-vector" in info.value.hint
    with pytest.raises(gradcli.EvaluationError, match=r"shape \[3\].*shape \[2\]"):
        gradcli.evaluate("x * 2", {"x": [1.0, 2.0]}, seed_vector=[1, 2, 3])


# -- size and depth: linear, never recursive --------------------------------------------


def test_ten_thousand_nested_parentheses():
    r = gradcli.evaluate("(" * 10_000 + "x * 2" + ")" * 10_000, {"x": 3.0})
    assert r.value == 6 and r.grad["x"] == 2


def test_deep_unary_and_power_tower():
    r = gradcli.evaluate("-" * 10_001 + "x", {"x": 2.0})
    assert r.value == -2 and r.grad["x"] == -1
    r = gradcli.evaluate("x" + "^1" * 2_000, {"x": 2.0})
    assert r.value == 2 and r.grad["x"] == 1
    r = gradcli.evaluate("sqrt(" * 3000 + "x" + ")" * 3000, {"x": 1.0}, dtype="float64")
    assert r.value == 1


def test_hundred_thousand_node_program():
    lines = ["y0 = x"] + [f"y{i} = y{i - 1} + x * 0.5" for i in range(1, 34_000)]
    r = gradcli.evaluate("\n".join(lines) + "\nsum(y33999)", {"x": [1.0, 2.0]}, dtype="float64")
    assert len(r.nodes) >= 100_000
    np.testing.assert_allclose(r.grad["x"], [1 + 33_999 * 0.5] * 2)


# -- PyTorch's spelling: resolved from the operator table ------------------------------


def test_pytorch_names_file_matches_installed_torch(torch):
    from gradcli.ops import pytorch

    path = pytorch._FILE
    with open(path, encoding="utf-8") as f:
        shipped = f.read()
    assert shipped == pytorch.render(pytorch.collect(torch)), (
        f"regenerate {path}: python -c 'import torch; from gradcli.ops import pytorch; "
        f'open(pytorch._FILE, "w").write(pytorch.render(pytorch.collect(torch)))\''
    )


# PyTorch spellings of a supported name that gradcli deliberately does not accept, and why
NOT_THE_SAME = {
    "torch.linalg.norm": "a matrix norm for 2-D input with ord given; vector_norm is supported",
    "torch.linalg.diagonal": "its defaults are dim1=-2, dim2=-1 (torch.diagonal's are 0, 1)",
    "Tensor.unfold": "a sliding window over one dimension, not F.unfold's im2col",
    "torch.batch_norm": "weight and bias come before the running statistics; cudnn_enabled",
    "torch.kl_div": "reduction is an integer enum there (F.kl_div takes the string)",
    "torch.instance_norm": "weight and bias come before the running statistics; cudnn_enabled",
    "torch.embedding": "the weight comes before the indices (F.embedding's are reversed)",
    "torch.ctc_loss": "reduction is an integer enum there (F.ctc_loss takes the string)",
    "torch.embedding_bag": "the weight comes first, and it returns four tensors",
    "torch.adaptive_max_pool1d": "it returns (values, indices) (F.'s the values alone)",
}
# torch.long, torch.float, ...: dtypes there, the Tensor methods x.long(), x.float() here
NOT_THE_SAME |= {
    f"torch.{n}": "a dtype"
    for n in ("long", "int", "short", "bool", "float", "double", "half", "bfloat16")
}


def test_every_spelling_is_pytorchs_and_none_is_missing():
    """Each qualified name a row claims exists in PyTorch 2.13, and wherever PyTorch has one
    of a row's names (torch, F, torch.special, torch.linalg, Tensor) the row claims it."""
    from gradcli.ops import SPELLINGS, TABLE, pytorch

    known = pytorch.names()
    owners = {}
    for op in TABLE:
        for spelling in op.names():
            assert spelling not in owners, f"{spelling}: {owners.get(spelling)} and {op.name}"
            owners[spelling] = op.name
            if "." in spelling:
                assert pytorch.has(spelling), f"{op.name}: PyTorch has no {spelling}"
        if not op.public:
            continue
        for name in (op.name, *op.aliases):
            for section in ("torch", "torch.nn.functional", "torch.special", "torch.linalg"):
                spelled = f"{section}.{name}"
                if name in known[section] and spelled not in NOT_THE_SAME:
                    assert spelled in op.names(), f"{op.name} lacks {spelled}"
            if name in known["Tensor"] and f"Tensor.{name}" not in NOT_THE_SAME:
                assert f"Tensor.{name}" in op.names(), f"{op.name} lacks the method {name}"
    assert set(owners) == set(SPELLINGS)


@pytest.mark.parametrize(
    "program,cls,fragment,hint",
    [
        ("torch.fft.fft(x)", gradcli.UnknownNameError, "torch.fft.fft is not supported", "ops"),
        (
            "F.fractional_max_pool2d(x)",
            gradcli.UnknownNameError,
            "F.fractional_max_pool2d is not supported",
            "ops",
        ),
        ("torch.nn.Linear(x)", gradcli.UnknownNameError, "torch.nn.Linear is not supported", ""),
        ("stft(x)", gradcli.UnknownNameError, "stft() is not supported", ""),
        ("x.index_put(0)", gradcli.UnknownNameError, "Tensor.index_put is not supported", ""),
        ("x.mT", gradcli.UnknownNameError, "Tensor.mT is not supported", ""),
        ("torch.qqq(x)", gradcli.UnknownNameError, "unknown function 'torch.qqq'", "ops"),
        ("F.rleu(x)", gradcli.UnknownNameError, "unknown function 'F.rleu'", "'F.relu'"),
        ("torch.special.expt(x)", gradcli.UnknownNameError, "unknown", "'torch.special.expit'"),
        ("x.sumn()", gradcli.UnknownNameError, "unknown method 'Tensor.sumn'", "'Tensor.sum'"),
        ("torch + 1", gradcli.UnknownNameError, "torch is a module, not a tensor", ""),
        ("torch.float64", gradcli.ParseError, "output is the dtype torch.float64", ""),
        ("(2).reshape(-1)", gradcli.ParseError, "a number has no methods", ""),
        ("torch.add(x, input=x)", gradcli.ParseError, "got argument 'input' twice", ""),
        ("torch.where(x > 0, other=x)", gradcli.ParseError, "before it is missing", ""),
    ],
)
def test_names_pytorch_has_are_reported_as_unsupported(program, cls, fragment, hint):
    with pytest.raises(cls) as info:
        parse(program)
    assert fragment in info.value.message
    assert hint in (info.value.hint or "")
    assert info.value.exit_code == 2


def test_module_names_are_inputs_when_used_as_values():
    """F and nn are ordinary names unless they are followed by a function of the module."""
    r = gradcli.evaluate("F.sum() + nn * 2 + F.relu(nn)", {"F": [1.0, 2.0], "nn": 3.0})
    assert r.value == 3 + 6 + 3 and r.grad["F"].tolist() == [1, 1] and r.grad["nn"] == 3
    r = gradcli.evaluate("F = x * 2; F.sum()", {"x": [1.0, 2.0]})
    assert r.value == 6


def test_constants():
    for text, expected in [
        ("torch.pi", math.pi),
        ("math.pi", math.pi),
        ("torch.e", math.e),
        ("math.e", math.e),
        ("torch.inf", math.inf),
        ("-math.inf", -math.inf),
    ]:
        assert value(f"x * 0 + {text}", x=1.0) == expected
    assert math.isnan(value("x + torch.nan", x=1.0))


def forward_value(program, **inputs):
    """The output's value alone (no backward pass: // has no derivative in PyTorch)."""
    from gradcli import engine
    from gradcli.api import quietly

    p = parse(program)
    arrays = {k: np.asarray(v, dtype="float64") for k, v in inputs.items()}
    with quietly():
        nodes, out = engine.forward(p, arrays, set(), "float64")
    return np.asarray(nodes[out].value)


@pytest.mark.parametrize(
    "program,expected",
    [
        ("x + 7 // 2", 3 + 3),  # // and % bind like * and /
        ("x * 7 % 4", 21 % 4),
        ("-x // 2", -3 // 2),  # unary minus binds tighter than //
        ("x ** 2 % 5", 9 % 5),
        ("x // 2 * 2", (3 // 2) * 2),  # left-associative
        ("100 % x", 100 % 3),
        ("-7.5 % x + x * 0", -7.5 % 3),
        ("x * (1 + 2 & 3)", 3 * ((1 + 2) & 3)),  # & looser than +
        ("x * (1 | 2 & 3)", 3 * (1 | (2 & 3))),  # | looser than &
        ("x * (1 << 2 + 1)", 3 * (1 << (2 + 1))),  # << looser than +
        ("x * (6 >> 1 & 7)", 3 * ((6 >> 1) & 7)),  # & looser than >>
        ("x * ~0", 3 * ~0),
        ("x * -~1", 3 * -~1),
        ("x * (x >= 2 | 1)", 3 * (3 >= (2 | 1))),  # comparisons loosest of all
        ("x * ((x > 0) & (x < 5))", 3.0),
        ("x * ((x > 5) | (x < 0))", 0.0),
        ("x * ~(x > 5)", 3.0),
        ("x * (7 // 0) * 0 + x", math.nan),  # inf * 0, as IEEE arithmetic gives
        ("x * (7 % 0)", math.nan),
    ],
)
def test_python_precedence_of_the_new_operators(program, expected):
    got = float(forward_value(program, x=3.0))
    assert got == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    "program,fragment,exit_code",
    [
        ("x << 1", "\"lshift_cpu\" not implemented for 'Double'", 1),
        ("x * (1.5 & 1)", "'&' takes whole numbers", 2),
        ("x * (1 << -1)", "negative shift count", 2),
        ("x & x", "\"bitwise_and_cpu\" not implemented for 'Double'", 1),
        ("~x", "\"bitwise_not_cpu\" not implemented for 'Double'", 1),
        ("x[..., 0, ...]", "a single ellipsis", 2),
        ("x[0, 0]", "too many indices for tensor of dimension 1", 1),
    ],
)
def test_operator_errors(program, fragment, exit_code):
    with pytest.raises(gradcli.GradcliError) as info:
        forward_value(program, x=[1.0, 2.0])
    assert fragment in info.value.message and info.value.exit_code == exit_code


def test_floor_division_has_no_gradient_as_in_pytorch():
    # the messages are PyTorch's
    with pytest.raises(gradcli.EvaluationError, match="derivative for aten::floor_divide"):
        gradcli.evaluate("sum(x // 2)", {"x": [1.0, 2.0]})
    with pytest.raises(gradcli.EvaluationError, match="derivative for aten::remainder"):
        gradcli.evaluate("sum(100 % x)", {"x": [1.0, 2.0]})
    # an input that does not require grad may be floor-divided freely
    r = gradcli.evaluate("sum(x * (y // 2))", {"x": [1.0, 2.0], "y": [5.0, -5.0]}, wrt=["x"])
    assert r.value == 2 - 6 and r.grad["x"].tolist() == [2, -3]


@pytest.mark.parametrize(
    "program,fragment",
    [
        ("flatten(x, inf)", "start_dim must be an integer"),
        ("flatten(x, nan)", "start_dim must be an integer"),
        ("flatten(x, 0.5)", "start_dim must be an integer"),
        ("flatten(x, 0, 1.5)", "end_dim must be an integer"),
        ("stack([x, x], None)", "dim must be an integer"),
        ("cat([x, x], dim=None)", "dim must be an integer"),
        ("unsqueeze(x, [1, 2])", "dim must be an integer"),
        ("x.unsqueeze(None)", "dim must be an integer"),
        ("cumsum(x, [0])", "dim must be an integer"),
        ("(2).reshape(-1)", "a number has no methods"),
        ("reshape(x, " + ", ".join(["1"] * 70) + ")", "70 dimensions"),
        ("x[" + ", ".join(["None"] * 65) + "]", "65 dimensions"),
        ("unsqueeze(reshape(x, " + ", ".join(["1"] * 64) + "), 0)", "65 dimensions"),
    ],
)
def test_bad_arguments_are_clear_errors(program, fragment):
    with pytest.raises(gradcli.GradcliError) as info:
        gradcli.evaluate(program, {"x": 1.0})
    assert fragment in info.value.message


def test_a_number_where_a_tensor_goes_is_a_constant():
    with pytest.raises(gradcli.EvaluationError, match="does not require grad"):
        gradcli.evaluate("flatten(2)", {})
