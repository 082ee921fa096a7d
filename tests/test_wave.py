"""Wavefront evaluation (gradcli.wave) gives the bits node-by-node evaluation gives: every
value, every gradient, every label and every error, on programs of many 0-d nodes."""

import random

import numpy as np
import pytest

import gradcli
from gradcli import derivatives, engine, wave
from gradcli.errors import GradcliError

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, -1e-38, 3e38, -3e38, 88.7, 89.5, 710.0]
SPECIAL += [float("inf"), float("-inf"), float("nan"), 1e-45, 16777217.0, 2.0**-149]


@pytest.fixture
def node_by_node():
    """A function running ``fn`` with the wave path off, then on: both answers."""

    def both(fn):
        wave.ENABLED = False
        try:
            alone = _outcome(fn)
        finally:
            wave.ENABLED = True
        return alone, _outcome(fn)

    return both


def _outcome(fn):
    try:
        return ("ok", fn())
    except GradcliError as e:
        return ("error", type(e).__name__, e.message, e.position, e.hint)


def _bits(x):
    if x is None:
        return None
    a = np.asarray(x)
    return (a.dtype.str, a.shape, a.tobytes())


def _answer(program, inputs, dtype="float32"):
    """Everything a user sees of an evaluation: the value, label, gradients, and every
    node's op, label, value and gradient, as bytes."""
    r = gradcli.evaluate(program, inputs, dtype=dtype)
    nodes = [(n.op, n.args, n.label, n.name, _bits(n.value), _bits(n.grad)) for n in r.nodes]
    grads = {k: _bits(v) for k, v in r.grad.items()}
    return _bits(r.output.value), r.output.label, grads, nodes


def _same(node_by_node, program, inputs, dtype="float32"):
    alone, waved = node_by_node(lambda: _answer(program, inputs, dtype))
    assert waved == alone, program
    return waved


def _sum_of(terms):
    return " + ".join(terms)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(wave.WAVE_OPS - wave.NUMBER_OPS))
def test_every_unary_op_gives_the_same_bits(node_by_node, op, dtype):
    """Thousands of values (random, and nan, inf, -0, the edges of the dtype) each in its
    own node: the stacked call gives each the value and gradient it gets alone."""
    rng = np.random.default_rng(0)
    values = list(rng.standard_normal(3000) * 3) + list(rng.standard_normal(500) * 100)
    values += SPECIAL
    inputs = {f"x{k}": v for k, v in enumerate(values)}
    program = _sum_of(f"{op}(x{k})" for k in range(len(values)))
    _same(node_by_node, program, inputs, dtype)
    # the same input in every term (its adjoint a sum of all of them, in order)
    _same(node_by_node, _sum_of(f"{op}(x)" for _ in range(200)), {"x": 0.7}, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_arithmetic_with_numbers_and_tensors(node_by_node, op, dtype):
    """Each of + - * / between tensors, with a number literal on either side (floats,
    whole numbers in and out of float32's exact range, nan, inf), as a chain and not."""
    rng = np.random.default_rng(7)
    values = list(rng.standard_normal(200) * 10) + SPECIAL
    inputs = {f"x{k}": v for k, v in enumerate(values)}
    numbers = ["2", "0.1", "3", "-0.0", "1e-45", "16777216", "16777217", "1e39", "nan", "inf"]
    numbers += ["-7", "0.3333333", "1e300"]
    n = len(values)
    terms = [f"{numbers[k % len(numbers)]} {op} x{k}" for k in range(n)]
    terms += [f"x{k} {op} {numbers[k % len(numbers)]}" for k in range(n)]
    terms += [f"(x{k} {op} x{(k * 7 + 3) % n})" for k in range(n)]
    _same(node_by_node, _sum_of(terms), inputs, dtype)
    # a left chain of the op itself: one accumulate, the same roundings
    chain = f" {op} ".join([f"x{k}" for k in range(n)] + numbers + [f"x{k}" for k in range(n)])
    _same(node_by_node, chain, inputs, dtype)
    _same(node_by_node, f" {op} ".join(f"sin(x{k})" for k in range(n)), inputs, dtype)


def test_the_big_program_shape(node_by_node):
    """c_i * sin(x) summed (benchmarks/big_program.py's program), x used by every term."""
    terms = [f"{(i % 1000 + 1) / 100:g}*sin(x)" for i in range(5000)]
    for x in (1.5, -0.0, float("nan"), 1e30):
        _same(node_by_node, _sum_of(terms), {"x": x})


def test_chains_interleaved_with_their_own_links(node_by_node):
    """A chain whose later terms read its own earlier links, names shared by later nodes,
    chains of different ops nested: levels keep every value after what it reads."""
    program = "y = x + 1 + 2 + x; z = y * sin(y) + y - exp(y) + y; w = z / 3 / y / 2; w + z * y"
    _same(node_by_node, program, {"x": 0.3})
    lines = ["a = x"]
    for k in range(200):
        lines.append(f"a = a + {k % 5} * sin(a) - cos(x) + a * 0.5")
    _same(node_by_node, "; ".join(lines) + "; a", {"x": 0.25})


def test_mixed_with_ops_outside_the_wave(node_by_node):
    """Vectors, reductions, integer inputs, broadcasting and comparisons among 0-d wave
    nodes: those nodes are evaluated as before, after the deferred values they read."""
    inputs = {"x": 0.5, "v": [1.0, -2.0, 3.0], "i": np.array(3, dtype=np.int64)}
    programs = [
        "s = sum(v * x); t = sin(s) + s * 2; t + mean(v / t) + x",
        "a = x + 1; b = a * a; c = b + sum(v) * a + i; c * (a > 0.3) + b",
        "a = sin(x) + 2; b = torch.stack([a, a * 2, x]); sum(b * v) + a",
        "a = x * 3; b = a + i; c = b / 2 + a; c + i * 2 + torch.where(a > 1, a, b)",
        "a = x + 1; q = max(v); a * q + sin(a) * q + a",
        "a = x * x; y = v[1] + a; z = y * 2 + a; z + v.sum() * y",
        "a = x.float() + 1; b = a.double() * 2; c = b + 1; c.float() + a",
    ]
    for program in programs:
        _same(node_by_node, program, inputs)
        _same(node_by_node, program, inputs, "float64")


def test_random_programs(node_by_node):
    """Random programs of 0-d nodes: shared names, numbers, every wave op."""
    rnd = random.Random(15)
    unary = sorted(wave.WAVE_OPS - wave.NUMBER_OPS)
    for _ in range(30):
        names = ["x", "y"]
        lines = []
        for k in range(rnd.randint(5, 60)):
            a, b = rnd.choice(names), rnd.choice(names)
            kind = rnd.random()
            if kind < 0.3:
                expr = f"{rnd.choice(unary)}({a})"
            elif kind < 0.6:
                expr = f"{a} {rnd.choice('+-*/')} {b}"
            elif kind < 0.8:
                expr = f"{a} {rnd.choice('+-*/')} {rnd.choice(['2', '0.5', '-3', '1e-3'])}"
            else:
                expr = f" {rnd.choice('+-*/')} ".join(rnd.choice(names) for _ in range(6))
            name = f"t{k}"
            lines.append(f"{name} = {expr}")
            names.append(name)
        program = "; ".join(lines) + "; " + " + ".join(names[-4:])
        inputs = {"x": rnd.uniform(-2, 2), "y": rnd.choice([0.5, -0.0, 3.0, 1e-3])}
        _same(node_by_node, program, inputs, rnd.choice(["float32", "float64"]))


@pytest.mark.parametrize(
    "program",
    [
        "a = x + 1; b = sin(a) * 2; c = b + a; c + unknown_name(c)",
        "a = x + 1; b = sin(a) * 2; c = b + a + v; c",  # shapes that do not broadcast
        "a = x * 2; b = a + 1; b + v.view(2, 2)",
        "a = sin(x) + 1; b = a * 3; b[0] + a",
        "a = sin(x) + 1; b = a + 2; torch.zeros(a)",
    ],
)
def test_errors_mid_program_are_the_same(node_by_node, program):
    inputs = {"x": 0.5, "v": [1.0, 2.0, 3.0]}
    alone, waved = node_by_node(lambda: _answer(program, inputs))
    assert waved == alone
    assert alone[0] == "error"


def test_derivative_commands_unchanged(node_by_node):
    """jvp, jacobian, hessian and check read the same nodes: the same answers."""
    program = _sum_of(f"{k % 7 + 1} * sin(x * {k % 3 + 1}) * y" for k in range(300))
    program += " + x * y / 3 - exp(y) * x"
    inputs = {"x": 0.3, "y": -0.7}

    def run():
        wrt = ["x", "y"]
        out = [derivatives.jvp(program, inputs, {"x": 1.0, "y": 0.5}, wrt=wrt)]
        for mode in ("forward", "reverse"):
            out.append(derivatives.jacobian(program, inputs, wrt=wrt, mode=mode))
        out.append(derivatives.hessian(program, inputs, wrt=wrt, dtype="float64"))
        out.append(derivatives.check(program, inputs, wrt=wrt))
        return repr(out)

    alone, waved = node_by_node(run)
    assert waved == alone
    assert alone[0] == "ok" and "nan" not in alone[1]


def test_values_are_views_of_one_array_and_read_only_stand_ins_never_leak():
    """After the forward pass no node holds the stand-in: every wave node's value is its
    own number, and the nodes of one op share one stacked array (views, not copies)."""
    r = gradcli.evaluate(_sum_of(f"{k} * sin(x)" for k in range(1, 50)), {"x": 0.5})
    sins = [n for n in r.nodes if n.op == "sin"]
    assert len({id(n.value.base) for n in sins}) == 1
    for n in r.nodes:
        if n.op in wave.WAVE_OPS:
            assert n.value.flags.writeable and n.value.base is not None
    assert engine.Node  # (the engine's node type holds them)


def test_keep_inputs_and_anomaly_checks_unchanged(node_by_node):
    """keep="inputs" frees intermediates as node by node does; --detect-anomaly (which
    takes the node-by-node pass) names the same node."""
    program = _sum_of(f"{k % 5 + 1} * sin(x * {k % 3 + 1}) / y" for k in range(500))

    def kept():
        r = gradcli.evaluate(program, {"x": 0.3, "y": 2.0}, keep="inputs")
        return [(n.op, n.label, _bits(n.value), _bits(n.grad)) for n in r.nodes]

    alone, waved = node_by_node(kept)
    assert waved == alone
    assert any(n[2] is None for n in alone[1]) and any(n[3] is not None for n in alone[1])

    def anomaly():
        return gradcli.evaluate(program, {"x": 0.3, "y": 0.0}, detect_anomaly=True)

    alone, waved = node_by_node(anomaly)
    assert waved == alone
    assert alone[0] == "error" and "anomaly" in alone[2]


def _answer_wrt(program, inputs, wrt, dtype="float32"):
    r = gradcli.evaluate(program, inputs, wrt=wrt, dtype=dtype)
    nodes = [(n.op, n.args, n.label, n.name, _bits(n.value), _bits(n.grad)) for n in r.nodes]
    return _bits(r.output.value), r.output.label, nodes


def test_node_ids_shifted_and_operands_of_other_dtypes_used_many_times(node_by_node):
    """Program nodes that emit several nodes (casts, several results) shift the node ids
    of the wave nodes after them; an operand of another dtype or an integer one, read by
    many terms, is declined every time (the forward remembers only the 0-d operands of the
    evaluation dtype it checked)."""
    inputs = {"x": 0.5, "v": [1.0, -2.0, 3.0, 4.0], "i": np.array(3, dtype=np.int64)}
    many = _sum_of(f"{k % 4 + 1} * sin(d) + i * {k % 3}" for k in range(60))
    programs = [
        f"d = x.double(); y = {many}; y + x",
        "p, q = torch.split(v, 2); a = sin(x) + 1; b = a * p.sum() + a; b + sin(x) * q[0]",
        "a = softmax(v, dim=0, dtype=torch.float64).sum(); b = x * 2 + a; sin(b) + b * x",
        f"d = x + 1; y = {many}; y * d",
    ]
    for program in programs:
        assert _same(node_by_node, program, inputs)[0] == "ok"
        assert _same(node_by_node, program, inputs, "float64")[0] == "ok"


def test_labels_with_and_without_gradients(node_by_node):
    """Labels are remembered per op and number operands: the same op with a number on
    either side, on inputs that require grad and ones that do not, in one program."""
    program = "; ".join(
        ["a = 2 * x + y * 3 - x / 2 + 3 / y", "b = y * y - x * y + sin(y) + 1 - y", "a * b + y"]
    )
    for wrt in (["x"], ["y"], ["x", "y"]):
        alone, waved = node_by_node(lambda w=wrt: _answer_wrt(program, {"x": 0.5, "y": 2.0}, w))
        assert waved == alone and alone[0] == "ok"


def test_adjoints_summed_from_many_senders_of_every_kind(node_by_node, monkeypatch):
    """An input sent more than FOLD contributions: from one rule's stacked array (one
    column taken from it), from several rules, or sent on unchanged (add) among them, or
    holding a nan: each the same sum, in the same order, as node by node."""
    calls = []
    real = wave._sent

    def counted(*args):
        col = real(*args)
        calls.append(col is not None)
        return col

    monkeypatch.setattr(wave, "_sent", counted)
    n = 3 * wave.FOLD
    programs = [
        _sum_of(f"{k % 7 + 1} * sin(x)" for k in range(n)),  # one rule sends all
        _sum_of(["sin(x)", "cos(x)", "exp(x)"] * n),  # several rules
        _sum_of(["x", "sin(x)", "3 * x"] * n),  # sent on, and by rules
        _sum_of(f"x * {k} * y + y * x" for k in range(n)),  # both argument positions
        _sum_of(f"sin(x * {k + 1})" for k in range(n)),
    ]
    for program in programs:
        for x in (0.3, -0.0, float("inf"), float("nan"), 1e30):
            assert _same(node_by_node, program, {"x": x, "y": -1.5})[0] == "ok"
            assert _same(node_by_node, program, {"x": x, "y": -1.5}, "float64")[0] == "ok"
    assert True in calls and False in calls  # (both ways were taken)


def test_a_unit_computed_node_by_node_after_all(node_by_node, monkeypatch):
    """A stacked call that fails computes its nodes one by one; nodes after it read them
    as values of their own (checked again, not taken for deferred ones)."""

    def fails(self, unit):
        raise FloatingPointError("never expected")

    monkeypatch.setattr(wave.Wave, "_group", fails)
    program = _sum_of(f"{k % 3 + 1} * sin(x) / (x + {k})" for k in range(40))
    assert _same(node_by_node, program, {"x": 0.7})[0] == "ok"
    assert (
        _same(node_by_node, "a = sin(x); b = a * a + a; c = b - a * 2; c * b + a", {"x": 0.7})[0]
        == "ok"
    )
