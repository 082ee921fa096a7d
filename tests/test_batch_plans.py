"""batch's speed paths for one record at a time: a program's first record is evaluated
without recording an engine plan (the second records it, later ones replay it), and a
record is answered with the cyclic collector paused. Every answer must be the bytes the
planned path gives."""

import gc
import json
import random
import weakref

import pytest

from gradcli import batch
from gradcli.cli import main

RECORDS = [
    {"expr": "mean(2*(x+2)^2)", "inputs": {"x": [-1.0475, 0.2038, 0.2971]}},
    {"expr": "sum(log(x)*y)", "inputs": {"x": "0,-0.0,nan,inf,-inf", "y": [1, 2, 3, 4, 5]}},
    {"expr": "sum(x / y)", "inputs": {"x": [0.0, -0.0, 1.0], "y": [0.0, -0.0, 0.0]}},
    {"expr": "sum(x)", "inputs": {"x": []}},
    {"expr": "mean(x)", "inputs": {"x": []}, "dtype": "float64"},
    {"expr": "x * 2", "inputs": {"x": [1, 2]}, "seed_vector": [1, -1]},
    {"expr": "x * 2", "inputs": {"x": [1, 2]}},  # an error: a vector output, no seed
    {"expr": "sum(x@y)", "inputs": {"x": [1, 2], "y": [1, 2, 3]}},  # an error: shapes
    {"expr": "sum(tanh(W @ x + b))", "inputs": {"W": [[1e-30, 3e38], [-0.0, 1]]}},  # missing
    {"expr": "sum(exp(x) * sin(y))", "inputs": {"x": [80, 90, -1e4], "y": [1e-45, 3, 4]}},
    {"expr": "a = x * 2\nb = x + 1\nsum(a * b)", "inputs": {"x": [[1, 2], [3, 4]]}},
    {"expr": "v, i = max(x, 0); sum(v)", "inputs": {"x": [[1, "nan"], [3, 4]]}},
]


def _random_records(n, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(0, 6)
        out.append(
            {
                "expr": "sum(tanh(W @ x + b))",
                "inputs": {
                    "W": [[rng.gauss(0, 3) for _ in range(k)] for _ in range(3)],
                    "x": [rng.gauss(0, 3) for _ in range(k)],
                    "b": [rng.choice([0.0, -0.0, rng.gauss(0, 1e-5)]) for _ in range(3)],
                },
                "dtype": rng.choice(["float32", "float64"]),
            }
        )
    return out


@pytest.mark.parametrize("record", RECORDS + _random_records(12))
def test_first_second_and_later_records_give_the_same_bytes(record):
    raw = json.dumps(record).encode()
    cache = batch.ProgramCache()  # (a program no record has used yet)
    defaults = batch.Defaults()
    program = cache.get(record["expr"])
    first = batch.answer(1, raw, defaults, cache)  # no plan recorded ...
    assert not program.plans and not program.once
    second = batch.answer(1, raw, defaults, cache)  # ... the second records one ...
    assert program.plans or "error" in json.loads(first[0])
    third = batch.answer(1, raw, defaults, cache)  # ... and a later one replays it
    assert first == second == third
    assert not program.once


def test_a_fresh_program_records_no_plan_and_a_used_one_does():
    cache = batch.ProgramCache()
    program = cache.get("sum(x * x)")
    assert batch._first_use(program)
    assert not batch._first_use(program)  # (seen)
    other = cache.get("sum(x * x * x)")
    batch.answer(1, b'{"expr": "sum(x * x * x)", "inputs": {"x": [1, 2]}}', batch.Defaults(), cache)
    assert not other.plans
    batch.answer(2, b'{"expr": "sum(x * x * x)", "inputs": {"x": [1, 2]}}', batch.Defaults(), cache)
    assert len(other.plans) == 1


def test_a_program_with_a_plan_is_not_a_first_use():
    cache = batch.ProgramCache()
    program = cache.get("sum(x + 1)")
    program.plans["somebody's"] = None  # e.g. the stacked path's template recorded one
    assert not batch._first_use(program)


def test_the_first_use_set_does_not_keep_programs_alive():
    cache = batch.ProgramCache()
    program = cache.get("sum(x - 7)")
    assert batch._first_use(program)
    ref = weakref.ref(program)
    del program, cache
    gc.collect()
    assert ref() is None


def test_once_is_put_back_after_an_internal_error(monkeypatch):
    cache = batch.ProgramCache()
    program = cache.get("sum(x * 3)")
    seen = []

    def boom(prog, *args, **kwargs):
        seen.append(prog.once)
        raise ValueError("boom")

    batch._Lazy.bind()
    monkeypatch.setattr(batch._Lazy, "run", boom)
    text, ok = batch.answer(
        1, b'{"expr": "sum(x * 3)", "inputs": {"x": 1}}', batch.Defaults(), cache
    )
    assert not ok and "InternalError" in text and "boom" in text
    assert seen == [True] and program.once is False


@pytest.mark.parametrize("enabled", [True, False])
def test_answer_leaves_the_collector_as_it_found_it(enabled):
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        for raw in (b'{"expr": "sum(x)", "inputs": {"x": [1]}}', b"not json", None):
            batch.answer(1, raw, batch.Defaults(), batch.ProgramCache())
            assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()


def test_batch_f_answers_a_programs_first_record_as_its_later_ones(tmp_path):
    """Through the command: records of two shapes in turn, too few of each to be stacked,
    each answered alone (the first of all without a plan, the first of the second shape
    recording one, later ones replaying)."""
    from click.testing import CliRunner

    program = tmp_path / "p.gc"
    program.write_text(" + ".join(f"{k / 7:g}*sum(sin(x) * x)" for k in range(1, 300)) + "\n")
    records = [{"inputs": {"x": [0.5, -0.0, 2.0]}}, {"inputs": {"x": [[1e-40, 3.0]]}}] * 2
    data = "".join(json.dumps(r) + "\n" for r in records)
    got = CliRunner().invoke(main, ["batch", "--jobs", "1", "-f", str(program)], input=data)
    assert got.exit_code == 0, got.output
    answers = [json.loads(line) for line in got.stdout.splitlines()]
    assert [a.pop("id") for a in answers] == [1, 2, 3, 4]
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert answers[0] != answers[1]
    lines = [line.split(", ", 1)[1] for line in got.stdout.splitlines()]
    assert lines[0] == lines[2] and lines[1] == lines[3]  # (the bytes, past the id)
