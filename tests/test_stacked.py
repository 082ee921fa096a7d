"""Stacked batch evaluation (gradcli.stacked) gives, byte for byte, the answers that
evaluating each record alone gives: for the benchmark's programs, every operator row that
declares a stacking rule, broadcasting, errors, nan and inf, mixed dtypes, integer inputs
and random seeds."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import sample

from gradcli import batch, stacked
from gradcli.api import quietly
from gradcli.ops import TABLE

BENCHMARK = (
    "mean(2*(x+2)^2)",
    "binary_cross_entropy_with_logits(X @ w + b, t)",
    "sum(tanh(W @ x + b))",
)


def alone(lines, **defaults):
    """Each record answered by itself (the reference)."""
    settings = batch.Defaults(**defaults)
    with quietly():
        return [batch.answer(n, raw, settings) for n, raw in _items(lines)]


def together(lines, **defaults):
    settings = batch.Defaults(**defaults)
    with quietly():
        return stacked.answer_many(list(_items(lines)), settings)


def _items(lines):
    for n, line in enumerate(lines, 1):
        yield n, (line if isinstance(line, bytes) else json.dumps(line).encode())


@pytest.fixture
def groups(monkeypatch):
    """How many records the stacked passes answered (so a test sees they were used)."""
    count = [0]
    original = stacked._stack

    def counting(jobs, template, out):
        done = original(jobs, template, out)
        count[0] += len(done)
        return done

    monkeypatch.setattr(stacked, "_stack", counting)
    return count


def same(lines, **defaults):
    want, got = alone(lines, **defaults), together(lines, **defaults)
    for w, g in zip(want, got, strict=True):
        assert g == w
    return want


def vec(rng, *shape):
    return rng.standard_normal(shape).tolist()


def benchmark_records(n, rng):
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            inputs = {"x": vec(rng, 3)}
        elif kind == 1:
            inputs = {"X": vec(rng, 4, 8), "w": vec(rng, 8), "b": float(rng.standard_normal())}
            inputs["t"] = rng.uniform(0, 1, 4).tolist()
        else:
            inputs = {"W": vec(rng, 16, 8), "x": vec(rng, 8), "b": vec(rng, 16)}
        out.append({"id": i, "expr": BENCHMARK[kind], "inputs": inputs})
    return out


@pytest.mark.parametrize("writer", ["orjson", "json"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_benchmark_programs(groups, dtype, writer, monkeypatch):
    """(With orjson, if installed, and with the json module alone.)"""
    from gradcli import jsonio

    if writer == "json":
        monkeypatch.setattr(jsonio, "_orjson", None)
    rng = np.random.default_rng(1)
    records = benchmark_records(90, rng)
    answers = same(records, dtype=dtype)
    assert groups[0] == 90  # every record went through the stacked passes
    assert all(ok for _, ok in answers)


def test_whole_runs_match_one_at_a_time(tmp_path):
    """gradcli batch with --jobs 1 and 2 against batch.answer (one record at a time)."""
    rng = np.random.default_rng(2)
    records = benchmark_records(600, rng)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    want = "".join(text + "\n" for text, _ in alone(path.read_bytes().splitlines()))
    for jobs in ("1", "2"):
        got = subprocess.run(
            [sys.executable, "-m", "gradcli", "batch", "--jobs", jobs, str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert got == want


def _rows_with_rules():
    out = []
    for op in TABLE:
        if op.stack is None:
            continue
        for k, (text, specs) in enumerate(op.examples):
            out.append(pytest.param(op, text, specs, id=f"{op.name}-{k}:{text}"))
    return out


def test_rows_with_rules_have_examples():
    named = {op.name for op in TABLE if op.stack is not None}
    assert {"add", "mul", "pow", "tanh", "sum", "mean", "mv"} <= named
    assert len(_rows_with_rules()) > 30


@pytest.mark.parametrize(("op", "text", "specs"), _rows_with_rules())
def test_each_stacking_rule(groups, op, text, specs):
    """Every row that declares how records stack, on its own examples: the output goes
    through sin() so that the gradient arriving at it is not all ones."""
    rng = np.random.default_rng(3)
    program = f"sum(sin({text}))"
    records = []
    for i in range(8):
        inputs = {
            name: sample(shape, domain, rng).tolist() for name, (shape, domain) in specs.items()
        }
        records.append(
            {"id": i, "expr": program, "inputs": inputs, "dtype": ("float32", "float64")[i % 2]}
        )
    answers = same(records)
    if all(ok for _, ok in answers):
        assert groups[0] == 8, "the records were not stacked"


BROADCASTING = [
    ("sum(x * y)", {"x": (3,), "y": (2, 1)}),
    ("mean((x - y) ^ 2 / z)", {"x": (2, 3), "y": (3,), "z": ()}),
    ("sum(exp(a) * b + a / 3)", {"a": (4, 1, 2), "b": (3, 1)}),
    ("mean(sum(A, dim=0) * v)", {"A": (3, 4), "v": (4,)}),
    ("sum(mean(A, dim=-1, keepdim=True) * A)", {"A": (2, 5)}),
    ("sum(A, dim=[0, 1]) + mean(A)", {"A": (2, 3)}),
    ("sum(tanh(A @ B) * (A @ v).sum())", {"A": (3, 4), "B": (4, 2), "v": (4,)}),
    ("sum(dot(u, v) * u)", {"u": (5,), "v": (5,)}),
    ("y = x * 2; y = y + x; sum(y * y)", {"x": (3,)}),
    ("F.binary_cross_entropy_with_logits(z, t, reduction='sum')", {"z": (2, 3), "t": (2, 3)}),
    ("sum(F.binary_cross_entropy_with_logits(z, t, reduction='none') * z)", {"z": (4,), "t": (4,)}),
    ("F.binary_cross_entropy_with_logits(z, t, weight=w)", {"z": (2, 3), "t": (2, 3), "w": (3,)}),
    ("F.binary_cross_entropy_with_logits(z, t, pos_weight=p)", {"z": (3,), "t": (3,), "p": (3,)}),
    ("F.binary_cross_entropy_with_logits(z, t)", {"z": (), "t": ()}),
    ("F.binary_cross_entropy_with_logits(z, t)", {"z": (0,), "t": (0,)}),
    ("sum(x - x) + mean(x)", {"x": (0,)}),  # empty: a sum of nothing, a mean of nothing
    ("sum(x)", {"x": ()}),
    ("x", {"x": ()}),  # the output is the input itself
]


@pytest.mark.parametrize(("program", "shapes"), BROADCASTING)
def test_broadcasting_and_shapes(groups, program, shapes):
    rng = np.random.default_rng(4)
    wrt = [n for n in shapes if n not in ("w", "p")]  # (a loss's weights may not need grad)
    records = [
        {
            "expr": program,
            "inputs": {n: rng.standard_normal(s).tolist() for n, s in shapes.items()},
            "wrt": wrt,
        }
        for _ in range(7)
    ]
    answers = same(records)
    assert all(ok for _, ok in answers), answers[0]
    assert groups[0] == 7


def test_nan_inf_signed_zero_and_overflow(groups):
    specials = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e38, -1e-45, 3.4e38]
    records = []
    for i in range(len(specials)):
        x = [specials[i], specials[(i + 3) % len(specials)], 1.5]
        records.append({"expr": "mean(2*(x+2)^2) + sum(tanh(x) * x)", "inputs": {"x": x}})
        records.append({"expr": "sum(x / y)", "inputs": {"x": x, "y": [0.0, -0.0, specials[i]]}})
    lines = [json.dumps(r).replace("NaN", '"nan"').replace("-Infinity", '"-inf"') for r in records]
    lines = [line.replace("Infinity", '"inf"').encode() for line in lines]
    answers = same(lines)
    assert groups[0] == len(records)
    assert any("nan" in text for text, _ in answers)


def test_errors_among_stacked_records(groups):
    """Bad records amid good ones: each gets its own answer, the good ones stacked."""
    good = {"expr": "sum(x * 2)", "inputs": {"x": [1.0, 2.0]}}
    lines = [
        good,
        {"expr": "sum(x * 2)", "inputs": {}},  # missing input
        good,
        {"expr": "sum(x * 2)", "inputs": {"x": [1.0, 2.0]}, "color": 1},  # unknown field
        {"expr": "sum(x * y)", "inputs": {"x": [1.0, 2.0], "y": [1.0, 2.0, 3.0]}},  # shapes
        good,
        {"expr": "x * 2", "inputs": {"x": [1.0, 2.0]}},  # no seed vector for a vector output
        {"expr": "x * 2", "inputs": {"x": [1.0, 2.0]}},
        {"expr": "x * 2", "inputs": {"x": [1.0, 2.0]}},
        {"expr": "sum(x *", "inputs": {"x": [1.0]}},  # parse error
        b'{"expr": "sum(x)", "inputs": {"x": [1, 2]',  # not JSON
        {"expr": "sum(x)", "inputs": {"x": [1.0, 2.0]}, "wrt": ["z"]},
        {"expr": "sum(x)", "inputs": {"x": [1.0, 2.0]}, "dtype": "float16"},
        {"expr": "sum(x)", "inputs": {"x": [1.0, 2.0]}, "task": "jvp"},
    ]
    answers = same(lines)
    assert [ok for _, ok in answers] == [True, False, True, False, False, True] + [False] * 8
    assert groups[0] == 3


def test_a_group_that_fails_goes_one_by_one(groups, monkeypatch):
    """An error raised by one record's values inside a stacked pass: every record of the
    group is answered alone, so only that record gets the error."""
    from gradcli.errors import EvaluationError
    from gradcli.ops import OPS

    tanh = OPS["tanh"].forward

    def picky(a):
        if np.any(a > 100):
            raise EvaluationError("too big")
        return tanh(a)

    monkeypatch.setattr(OPS["tanh"], "forward", picky)
    lines = [{"expr": "sum(tanh(x))", "inputs": {"x": [0.5, float(k)]}} for k in range(6)]
    lines[3]["inputs"]["x"][1] = 1000.0
    answers = same(lines)
    assert [ok for _, ok in answers] == [True, True, True, False, True, True]
    assert groups[0] == 0
    monkeypatch.setattr(stacked, "_backward", lambda *a: 1 / 0)  # a bug in the stacked pass
    lines[3]["inputs"]["x"][1] = 3.0
    assert all(ok for _, ok in same(lines))


def test_mixed_dtypes_and_integer_inputs(groups):
    rng = np.random.default_rng(5)
    lines = []
    for i in range(12):
        lines.append(
            {
                "expr": "sum(x * i + b)",
                "inputs": {
                    "x": vec(rng, 3),
                    "i": {"dtype": "int64", "data": rng.integers(-5, 5, 3).tolist()},
                    "b": {"dtype": ("float32", "float64")[i % 2], "data": vec(rng, 3)},
                },
                "dtype": ("float32", "float64")[i // 6],
            }
        )
    answers = same(lines)
    assert all(ok for _, ok in answers)
    assert groups[0] == 12
    assert {json.loads(t)["dtype"] for t, _ in answers} == {"float32", "float64"}


def test_wrt_and_unused_inputs(groups):
    rng = np.random.default_rng(6)
    lines = [
        {"expr": "sum(x * y)", "inputs": {"x": vec(rng, 3), "y": vec(rng, 3), "z": 1.0}, "wrt": wrt}
        for wrt in (["x"], ["x"], ["x"], "x,y", "x,y", "x,y", None, None, None)
    ]
    answers = same(lines)
    assert groups[0] == 9
    assert json.loads(answers[-1][0])["grad"]["z"] is None


def test_random_seeds(groups):
    """Records that draw random numbers are never stacked; those around them still are,
    with the per-record seeds of --random-seed."""
    rng = np.random.default_rng(7)
    lines = []
    for _ in range(4):
        lines.append({"expr": "sum(x * 2)", "inputs": {"x": vec(rng, 3)}})
        lines.append({"expr": "sum(x * 2)", "inputs": {"x": "randn(3)"}})
        lines.append({"expr": "sum(x * torch.randn(3))", "inputs": {"x": vec(rng, 3)}})
    answers = same(lines, random_seed=11)
    assert groups[0] == 4
    assert len({t for t, _ in answers[1::3]}) == 4  # each its own draw


def test_default_program_and_ids(groups):
    rng = np.random.default_rng(8)
    lines = [{"id": f"r{i}", "inputs": {"x": vec(rng, 2)}} for i in range(5)]
    lines.append({"id": [1], "inputs": {"x": [1.0, 2.0]}})  # a bad id
    answers = same(lines, expr="mean(exp(x))")
    assert groups[0] == 5
    assert json.loads(answers[0][0])["id"] == "r0"


def test_matrix_products_are_checked_before_they_are_stacked(groups, monkeypatch):
    """numpy's stacked matmul is used for mv only once it gave the bytes of one call per
    record; one that does not (here made to differ on purpose) stays one call per record."""
    monkeypatch.setattr(stacked, "_VERIFIED", {})
    rng = np.random.default_rng(9)
    lines = [
        {
            "expr": "sum(tanh(W @ x + b))",
            "inputs": {"W": vec(rng, 5, 3), "x": vec(rng, 3), "b": 0.5},
        }
        for _ in range(12)
    ]
    same(lines)
    assert stacked._VERIFIED and all(stacked._VERIFIED.values())
    same(lines)  # (now by the stacked call)
    forward, rules = stacked._BATCHED["mv"]
    monkeypatch.setattr(
        stacked, "_BATCHED", {"mv": (lambda a, v: forward(a, v) * 1.0000001, rules)}
    )
    monkeypatch.setattr(stacked, "_VERIFIED", {})
    same(lines)
    assert False in stacked._VERIFIED.values()
    same(lines)
    assert groups[0] == 48


def test_answer_lines_evaluates_records_together(groups):
    """answer_lines (a block of a split file) stacks its records, with the answers that
    each record gives alone: line numbers from first_line, blank and bad lines included."""
    rng = np.random.default_rng(6)
    lines = [json.dumps(r) for r in benchmark_records(700, rng)]
    lines[5] = '{"inputs": {"x": [1, 2'
    lines[9] = ""
    lines[12] = json.dumps({"expr": "sum(x)", "inputs": {"x": [math.nan, 1.0]}, "id": "n"})
    first = 41
    settings = batch.Defaults()
    with quietly():
        want = [
            batch.answer(first + k, line.encode(), settings)[0]
            for k, line in enumerate(lines)
            if line
        ]
    got = list(batch.answer_lines(lines, first_line=first))
    assert got == want
    assert groups[0] >= 690  # (all but the odd ones, across several blocks)
    assert '"line": 46' in got[5]


def test_a_lone_record_costs_no_pass_over_its_program(monkeypatch):
    """batch -f with one record of a huge program: the check for random draws (a pass over
    every node) is made only for a group worth stacking, and the answer is the same."""
    looked = []
    real = stacked._plain_program
    monkeypatch.setattr(stacked, "_plain_program", lambda p: looked.append(p) or real(p))
    line = {"inputs": {"x": [1.0, 2.0]}}
    want = alone([line], expr="sum(sin(x))")
    assert together([line], expr="sum(sin(x))") == want and looked == []
    three = alone([line] * 3, expr="sum(sin(x))")
    assert together([line] * 3, expr="sum(sin(x))") == three and len(looked) == 1
