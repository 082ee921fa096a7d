"""--jobs: what a worker sends back (its unit's answer bytes and how many of them are errors,
unpickled) gives exactly the bytes and the failure count of --jobs 1, on ordinary records
and on the odd ones: nan, +-inf, -0, ties, empty tensors, bad JSON, errors of every kind,
blank lines, CRLF, a byte-order mark, no final newline, nothing at all."""

import io
import json

import pytest

from gradcli import batch

ODD = [
    {"id": "plain", "expr": "sum(x^2)", "inputs": {"x": [1.0, 2.0]}},
    {"id": "nan", "expr": "sum(x*y)", "inputs": {"x": ["nan", 1.0], "y": [2.0, "inf"]}},
    {"id": "inf", "expr": "sum(exp(x))", "inputs": {"x": [1000.0, -1000.0]}},
    {"id": "zero", "expr": "sum(x * 0)", "inputs": {"x": [-0.0, 0.0]}},
    {"id": "ties", "expr": "max(x)", "inputs": {"x": [2.0, 2.0, 1.0]}},
    {"id": "empty", "expr": "sum(x)", "inputs": {"x": []}},
    {"id": "tiny", "expr": "sum(x * 1e-30)", "inputs": {"x": [1e-10, 3.0]}},
    {"id": "f64", "expr": "mean(x)", "inputs": {"x": [0.1, 0.2]}, "dtype": "float64"},
    {"id": "shape", "expr": "x @ y", "inputs": {"x": [1.0, 2.0], "y": [1.0]}},
    {"id": "parse", "expr": "sum(x", "inputs": {"x": [1.0]}},
    {"id": "field", "expr": "sum(x)", "inputs": {"x": [1.0]}, "bogus": 1},
    {"id": "jvp", "task": "jvp", "expr": "sum(x^2)", "inputs": {"x": [1.0]}},
    {"id": "check", "task": "check", "expr": "sum(x^3)", "inputs": {"x": [0.5, 2.0]}},
    {"id": 7.5, "expr": "mean(2*(x+2)^2)", "inputs": {"x": [1.0, -2.0, 3.0]}},
]


def lines(copies):
    out = []
    for k in range(copies):
        for record in ODD:
            out.append(json.dumps({**record, "id": f"{record['id']}-{k}"}).encode())
        out.append(b"{not json")
        out.append(b"[1, 2]")
        out.append(b"")  # a blank line: numbered, not answered
        out.append(b"   ")
    return out


def both(data, monkeypatch=None, chunk=None):
    """(summary, bytes) of --jobs 1 and of --jobs 2, on the same input bytes."""
    if chunk is not None:
        monkeypatch.setattr(batch, "CHUNK", chunk)  # many units: many messages per worker
    results = []
    for jobs in (1, 2):
        out = io.StringIO()
        summary = batch.run(io.BytesIO(data), out, batch.Defaults(), jobs=jobs)
        results.append((summary, out.getvalue()))
    return results


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_worker_answers_are_the_bytes_and_failures_of_one_process(monkeypatch, chunk):
    data = b"\n".join(lines(20)) + b"\n"
    serial, parallel = both(data, monkeypatch, chunk)
    assert parallel == serial
    summary, text = serial
    rows = [json.loads(r) for r in text.splitlines()]
    assert summary.records == len(rows) == 20 * (len(ODD) + 2)
    assert summary.failed == sum("error" in r for r in rows) > 0
    assert summary.failed < summary.records  # (not all errors: the test can tell them apart)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n  \n",
        b"\xef\xbb\xbf" + json.dumps(ODD[0]).encode(),  # a BOM and no final newline
        b"\r\n".join(json.dumps(r).encode() for r in ODD) + b"\r\n",  # CRLF
        b"{not json\n",
    ],
    ids=["empty", "blank", "bom", "crlf", "bad"],
)
def test_odd_inputs_with_workers(data):
    serial, parallel = both(data)
    assert parallel == serial


def test_a_unit_of_only_errors_counts_every_one(monkeypatch):
    """A unit whose every answer is an error: the count the worker sends is the unit's
    size (its digits as sent, more than one of them)."""
    data = b"\n".join([b"{not json"] * 30 + [json.dumps(ODD[0]).encode()]) + b"\n"
    serial, parallel = both(data, monkeypatch, chunk=15)
    assert parallel == serial
    assert serial[0].failed == 30 and serial[0].records == 31
