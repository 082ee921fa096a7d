"""gradcli batch: JSON Lines in and out, bad lines cost only themselves, streaming, --jobs,
and shell manners (head, Ctrl-C), run as real processes where that is the point."""

import io
import json
import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gradcli.cli import main

EXPR = "mean(2*(x+2)^2)"
GOOD = {"id": "walk", "expr": EXPR, "inputs": {"x": [-1.0475, 0.2038, 0.2971]}}
BAD_LINES = [
    b"not json",
    b"[1, 2, 3]",
    b'"a string"',
    b"\xff\xfe invalid utf-8",
    b'{"expr": "mean(x", "inputs": {"x": 1}}',
    b'{"expr": "meen(x)", "inputs": {"x": 1}}',
    b'{"expr": "x + y", "inputs": {"x": [1, 2], "y": [1, 2, 3]}}',
    b'{"expr": "x * 2", "inputs": {"x": [1, 2]}}',
    b'{"expr": "x * 2", "inputs": {"x": [1, 2]}, "seed_vector": [1, 2, 3]}',
    b'{"inputs": {"y": 1}}',
    b'{"inputs": {"x": "abc"}}',
    b'{"inputs": {"x": [[1, 2], [3]]}}',
    b'{"inputs": {"x": [true, 1]}}',
    b'{"inputs": 3}',
    b'{"expr": 7, "inputs": {"x": 1}}',
    b'{"dtype": "float16", "inputs": {"x": 1}}',
    b'{"wrt": 5, "inputs": {"x": 1}}',
    b'{"wrt": ["q"], "inputs": {"x": 1}}',
    b'{"bogus": 1}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"inputs": {"x": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}}",
]


def run(args, data):
    return CliRunner().invoke(main, ["batch", *args], input=data)


def answers(output):
    return [
        json.loads(line, parse_constant=lambda c: pytest.fail(c)) for line in output.splitlines()
    ]


def test_good_and_bad_lines_mixed():
    lines = []
    for bad in BAD_LINES:
        lines += [json.dumps(GOOD).encode(), bad, b""]
    r = run(["--expr", EXPR], b"\n".join(lines) + b"\n")
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(got) == 2 * len(BAD_LINES)  # one answer per non-blank line
    for k, bad in enumerate(BAD_LINES):
        good, err = got[2 * k], got[2 * k + 1]
        assert good["id"] == "walk" and good["grad_fn"] == "MeanBackward0"
        assert good["grad"]["x"] == [1.2699999809265137, 2.9384000301361084, 3.062800168991089]
        assert set(err) == {"id", "error"}, bad[:60]
        assert set(err["error"]) == {"type", "message", "line"} and err["error"]["message"]
        assert err["error"]["line"] == 3 * k + 2 and err["id"] == 3 * k + 2
    assert r.exit_code == 1
    assert f"{len(BAD_LINES)} of {2 * len(BAD_LINES)} records failed" in r.stderr
    assert "Traceback" not in r.output


def test_ids_keys_and_nodes():
    data = (
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": 7, "inputs": {"x": [1, 2]}},
                {"inputs": {"x": [1, 2]}, "dtype": "float64", "wrt": ["x"]},
                {"expr": "sum(x * y)", "inputs": {"x": [1, 2], "y": "3,4"}, "wrt": "x"},
                {
                    "expr": "y = x + 2; z = y * y * 2; z",
                    "inputs": {"x": [1, 2]},
                    "seed_vector": "1,0",
                },
            ]
        )
        + "\n"
    )
    r = run(["--expr", EXPR], data)
    assert r.exit_code == 0 and r.stderr == ""
    a, b, c, d = answers(r.stdout)
    assert a["id"] == 7 and b["id"] == 2 and c["id"] == 3
    assert list(a) == ["id", "expr", "dtype", "value", "shape", "grad_fn", "grad"]
    assert b["dtype"] == "float64" and c["grad"] == {"x": [3.0, 4.0]}
    assert d["grad"] == {"x": [12.0, 0.0]}
    r = run(["--expr", EXPR, "--nodes"], data)
    assert "nodes" in answers(r.stdout)[0]


def test_defaults_from_flags_and_file(tmp_path):
    prog = tmp_path / "p.gc"
    prog.write_text("sum(x * w)")
    r = run(
        ["-f", str(prog), "--wrt", "w", "--dtype", "float64"],
        '{"inputs": {"x": [1, 2], "w": [3, 4]}}\n',
    )
    (a,) = answers(r.stdout)
    assert a["grad"] == {"w": [1.0, 2.0]} and a["dtype"] == "float64"


def test_records_accept_generators_reproducibly():
    data = '{"inputs": {"x": "randn(3)"}}\n' * 2
    one = run(["--expr", EXPR, "--random-seed", "5"], data).stdout
    two = run(["--expr", EXPR, "--random-seed", "5"], data).stdout
    assert one == two
    a, b = answers(one)
    assert a["value"] != b["value"]  # each record its own draw


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--expr", "mean(x"], "unexpected end"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--dtype", "half"], "unknown dtype"),
        (["/nonexistent.jsonl"], "cannot read"),
    ],
)
def test_usage_errors_exit_2(args, fragment):
    r = run(args, "")
    assert r.exit_code == 2 and fragment in r.output


def test_blank_input_is_fine():
    r = run(["--expr", EXPR], "\n\n  \n")
    assert r.exit_code == 0 and r.stdout == ""


def test_program_cache():
    from gradcli.batch import CACHE_TEXT, ProgramCache

    cache = ProgramCache(size=2)
    p = cache.get("x + 1")
    assert cache.get("x + 1") is p
    cache.get("x + 2"), cache.get("x + 3")
    assert cache.get("x + 1") is not p  # evicted, parsed again
    long = "x" + " + x" * (CACHE_TEXT // 4)
    assert len(long) > CACHE_TEXT and cache.get(long) is not cache.get(long)  # never kept
    assert cache.get("x + 3") is cache.get("x + 3")  # and it evicted nothing


def test_default_program_is_parsed_once_whatever_its_size(monkeypatch):
    from gradcli import batch, parser

    text = "sum(" + " + ".join(f"x*{i}" for i in range(2000)) + ")"
    assert len(text) > batch.CACHE_TEXT
    calls = []
    real = parser.parse
    monkeypatch.setattr(parser, "parse", lambda t: calls.append(t) or real(t))
    out = io.StringIO()
    summary = batch.run(io.BytesIO(b'{"inputs": {"x": [1, 2]}}\n' * 5), out, batch.Defaults(text))
    assert summary == (5, 0, None) and calls == [text]
    assert answers(out.getvalue())[0]["grad"] == {"x": [1999000.0, 1999000.0]}


def test_lines_numbers_every_line_and_skips_blank_ones(monkeypatch):
    from gradcli import batch

    monkeypatch.setattr(batch, "MAX_LINE", 10)
    data = b"a\r\n\n  \t\nbb\n" + b"c" * 50 + b"\nlast"
    assert list(batch.lines(io.BytesIO(data))) == [(1, b"a"), (4, b"bb"), (5, None), (6, b"last")]


class _Trickle(io.RawIOBase):
    """A stream that gives at most ``step`` bytes a read."""

    def __init__(self, data, step):
        self.data, self.at, self.step = data, 0, step

    def readable(self):
        return True

    def read1(self, n):
        chunk = self.data[self.at : self.at + min(n, self.step)]
        self.at += len(chunk)
        return chunk


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("limit", [6, 1 << 20])
def test_lines_are_the_same_whatever_the_reads(monkeypatch, step, limit):
    """Lines split from one read together or across many reads, under and over the line
    limit, with a byte-order mark, CR LF, blank and white lines: the same pairs."""
    from gradcli import batch

    monkeypatch.setattr(batch, "MAX_LINE", limit)
    data = b"\xef\xbb\xbfab\r\n\n \t\r\nxyz\n" + b"q" * 9 + b"\n\n\r\nlast\r"
    got = list(batch.lines(_Trickle(data, step)))  # type: ignore[arg-type]
    long = (5, None) if limit < 9 else (5, b"q" * 9)
    assert got == [(1, b"ab"), (4, b"xyz"), long, (8, b"last")]


def test_byte_order_mark_on_the_first_line_is_not_an_error():
    r = run(["--expr", EXPR], b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert r.exit_code == 0 and answers(r.stdout)[0]["id"] == "walk"


def test_readme_batch_example():
    """The README's `printf ... | gradcli batch` example, run by the shell as written."""
    import pathlib

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Batch and scripting")[1].split("\n## ")[0]
    command = section.split("# many programs, one record each\n")[1].split("\n```")[0]
    gradcli_dir = str(pathlib.Path(sys.executable).parent)
    p = subprocess.run(
        command,
        shell=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": gradcli_dir + os.pathsep + os.environ["PATH"]},
    )
    a, b = answers(p.stdout)
    assert p.returncode == 0 and a["value"] == 5.0 and a["grad"] == {"x": [2.0, 4.0]}
    assert b["value"] == 25.0 and b["dtype"] == "float64" and b["grad"] == {"x": [6.0, 8.0]}


# ---- as real processes ----------------------------------------------------------------


def gradcli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "gradcli", *args], **kw)


def records(n):
    return "".join(json.dumps({"inputs": {"x": [i * 0.001, 0.2, 0.3]}}) + "\n" for i in range(n))


def test_jobs_output_is_byte_identical(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(records(3000) + "garbage\n" + records(10))
    outs = []
    for jobs in ("1", "2", "3"):
        p = subprocess.run(
            [sys.executable, "-m", "gradcli", "batch", "--expr", EXPR, "--jobs", jobs, str(path)],
            capture_output=True,
        )
        assert p.returncode == 1 and p.stderr == b"1 of 3011 records failed\n"
        outs.append(p.stdout)
    assert outs[0] == outs[1] == outs[2]


def test_head_exits_quietly(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(records(20000))
    for jobs in ("1", "2"):
        p = subprocess.run(
            f"{sys.executable} -m gradcli batch --expr '{EXPR}' --jobs {jobs} {path} | head -1",
            shell=True,
            capture_output=True,
            timeout=120,
        )
        assert p.stderr == b"" and len(p.stdout.splitlines()) == 1


def test_interactive_pipe_answers_each_line_at_once():
    p = gradcli("batch", "--expr", EXPR, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for i in range(3):
            p.stdin.write(json.dumps({"id": i, "inputs": {"x": [1.0, 2.0]}}).encode() + b"\n")
            p.stdin.flush()
            line = p.stdout.readline()  # arrives while stdin is still open
            assert json.loads(line)["id"] == i
    finally:
        p.stdin.close()
        assert p.wait(timeout=30) == 0


def test_ctrl_c_while_waiting_exits_130():
    p = gradcli(
        "batch",
        "--expr",
        EXPR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    p.stdin.write(b'{"inputs": {"x": 1}}\n')
    p.stdin.flush()
    assert json.loads(p.stdout.readline())["id"] == 1
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130 and b"Traceback" not in err and b"interrupted after 1" in err


def test_ctrl_c_mid_file_stops_at_a_line_boundary(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(records(200000))
    p = gradcli(
        "batch",
        "--expr",
        EXPR,
        str(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # (so that readline, then communicate, loses nothing)
    )
    first = p.stdout.readline()  # mid-file: answers are coming
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    out = first + out
    assert p.returncode == 130 and b"Traceback" not in err
    assert out.endswith(b"\n")
    rows = out.splitlines()
    assert 0 < len(rows) < 200000
    assert [json.loads(r)["id"] for r in rows] == list(range(1, len(rows) + 1))


def test_memory_stays_flat(tmp_path):
    """Peak memory for 20x the records stays within a few MB of the small run's."""

    def peak(n):
        path = tmp_path / f"r{n}.jsonl"
        path.write_text(records(n))
        code = (
            "import resource, subprocess, sys; subprocess.run([sys.executable, '-m', "
            f"'gradcli', 'batch', '--expr', '{EXPR}', '{path}'], stdout=subprocess.DEVNULL);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        return int(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        )

    small, large = peak(1000), peak(20000)
    assert large < small + 10_000  # KiB


def test_huge_line_costs_only_itself(tmp_path, monkeypatch):
    from gradcli import batch

    monkeypatch.setattr(batch, "MAX_LINE", 1000)
    good = json.dumps(GOOD).encode()
    huge = b'{"inputs": {"x": [' + b"1," * 5000 + b"1]}}"

    out = io.StringIO()
    total, failed, _ = batch.run(
        io.BytesIO(b"\n".join([good, huge, good]) + b"\n"), out, batch.Defaults(EXPR)
    )
    rows = [json.loads(r) for r in out.getvalue().splitlines()]
    assert (total, failed) == (3, 1)
    assert "longer than 1000 bytes" in rows[1]["error"]["message"] and rows[2]["id"] == "walk"


def test_progress_bar_leaves_stdout_alone(tmp_path, capsys, monkeypatch):
    from rich.console import Console

    from gradcli import batch

    # as on a terminal, where rich would otherwise capture stdout into its live display
    monkeypatch.setattr(
        batch, "_stderr_console", lambda: Console(file=sys.stderr, force_terminal=True)
    )
    path = tmp_path / "r.jsonl"
    path.write_text(records(600))
    with open(path, "rb") as stream:
        bar, progress = batch.progress_bar(stream)
        bar.start()
        total, failed, _ = batch.run(stream, sys.stdout, batch.Defaults(EXPR), progress=progress)
    bar.stop()
    captured = capsys.readouterr()
    assert total == 600 and len(captured.out.splitlines()) == 600
    assert "600 answered" in captured.err and "100%" in captured.err


@pytest.mark.parametrize(
    "line,fragment",
    [
        (b'{"id": [1], "inputs": {"x": 1}}', '"id" must be a string'),
        (b'{"id": 1e400, "inputs": {"x": 1}}', '"id" must be a string'),
        (b'{"id": NaN, "inputs": {"x": 1}}', "NaN is not JSON"),
        (b'{"inputs": {"x": [Infinity]}}', "Infinity is not JSON"),
    ],
)
def test_ids_and_non_standard_json(line, fragment):
    from gradcli import batch

    text, ok = batch.answer(4, line, batch.Defaults("x"), batch.ProgramCache())
    obj = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert not ok and fragment in obj["error"]["message"] and obj["id"] == 4


# ---- tasks, --first-line and answer_lines (one block of a split file) -------------------


TASK_CASES = [
    (
        {"task": "jvp", "tangents": {"x": [1, 0]}},
        ["jvp", "sin(x) * y", "x=1,2", "y=3,4", "--tangent", "x=1,0"],
    ),
    (
        {"task": "jacobian", "mode": "forward"},
        ["jacobian", "sin(x) * y", "x=1,2", "y=3,4", "--mode", "forward"],
    ),
    ({"task": "jacobian"}, ["jacobian", "sin(x) * y", "x=1,2", "y=3,4"]),
    ({"task": "hessian", "expr": "sum(x^3 * y)"}, ["hessian", "sum(x^3 * y)", "x=1,2", "y=3,4"]),
    ({"task": "check", "expr": "sum(x^3 * y)"}, ["check", "sum(x^3 * y)", "x=1,2", "y=3,4"]),
    (
        {"task": "check", "expr": "sum(x * y)", "eps": 1e-4, "atol": 0.1, "rtol": 0.2},
        ["check", "sum(x * y)", "x=1,2", "y=3,4", "--eps", "1e-4", "--atol", ".1", "--rtol", ".2"],
    ),
    ({"task": "grad", "expr": "sum(x * y)"}, ["grad", "sum(x * y)", "x=1,2", "y=3,4"]),
    (
        {"task": "jvp", "dtype": "float64", "tangents": {"y": [0, 1]}},
        ["jvp", "sin(x) * y", "x=1,2", "y=3,4", "--dtype", "float64", "--tangent", "y=0,1"],
    ),
]


@pytest.mark.parametrize("fields,command", TASK_CASES)
def test_a_record_task_answers_as_its_command(fields, command):
    record = {"id": "r", "expr": "sin(x) * y", "inputs": {"x": [1, 2], "y": [3, 4]}, **fields}
    r = run([], json.dumps(record) + "\n")
    single = CliRunner().invoke(main, [*command, "--json"])
    assert r.exit_code == 0 and single.exit_code == 0, r.output + single.output
    expected = json.loads(single.stdout)
    expected.pop("nodes", None)  # (grad's answers in batch leave them out, unless --nodes)
    assert answers(r.stdout) == [{"id": "r", **expected}]


def test_a_failing_check_is_a_failed_record():
    r = run([], '{"task": "check", "expr": "sum(relu(x))", "inputs": {"x": [0, 1]}}\n')
    (a,) = answers(r.stdout)
    assert a["ok"] is False and a["inputs"]["x"]["reverse"]["max_abs_error"] > 0.4
    assert r.exit_code == 1 and "1 of 1 records failed" in r.stderr


@pytest.mark.parametrize(
    "record,fragment",
    [
        ({"task": "frob"}, '"task" must be one of grad, jvp'),
        ({"task": 3}, '"task" must be one of'),
        ({"task": "jvp", "mode": "forward"}, "'mode' is not a field of task jvp"),
        ({"task": "grad", "tangents": {}}, "'tangents' is not a field of task grad"),
        ({"task": "hessian", "seed_vector": 1}, "'seed_vector' is not a field of task hessian"),
        ({"task": "jvp", "tangents": [1]}, '"tangents" must be a JSON object'),
        ({"task": "jvp", "tangents": {"q": 1}}, "--tangent names q, not an input"),
        ({"task": "jacobian", "mode": "sideways"}, '"mode" must be "auto", "forward"'),
        ({"task": "check", "eps": 0}, '"eps" must be a positive finite number'),
        ({"task": "check", "atol": -1}, '"atol" must be at least 0'),
        ({"task": "check", "rtol": "1"}, '"rtol" must be a number'),
        ({"task": "hessian", "expr": "x * 2"}, "a Hessian needs a scalar output"),
        ({"task": "jvp", "dtype": "half"}, "unknown dtype"),
    ],
)
def test_task_errors_cost_only_their_record(record, fragment):
    line = json.dumps({"expr": "sum(x)", "inputs": {"x": [1, 2]}, **record})
    r = run([], line + "\n" + json.dumps(GOOD) + "\n")
    bad, good = answers(r.stdout)
    assert fragment in bad["error"]["message"] and good["id"] == "walk"
    assert r.exit_code == 1


def split_records():
    rows = []
    for i in range(40):
        rows.append(json.dumps({"inputs": {"x": "randn(3)"}}) if i % 3 else "")
        if i == 17:
            rows.append("not json")
    return [row + "\n" for row in rows]


def test_first_line_makes_blocks_identical_to_the_whole_file(tmp_path):
    lines = split_records()
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(lines))
    args = ["--expr", EXPR, "--random-seed", "7"]
    expected = run([*args, str(whole)], "").stdout
    got = ""
    for start, stop in ((0, 11), (11, 30), (30, len(lines))):
        block = tmp_path / f"b{start}.jsonl"
        block.write_text("".join(lines[start:stop]))
        got += run([*args, "--first-line", str(start + 1), str(block)], "").stdout
    assert got == expected and len(answers(expected)) == 27
    assert '"line": 19' in expected  # the bad line, numbered as in the whole file


def test_answer_lines_is_batch_for_one_block():
    from gradcli.batch import answer_lines

    lines = split_records()
    expected = run(["--expr", EXPR, "--random-seed", "7"], "".join(lines)).stdout.splitlines()
    got = []
    for start, stop in ((0, 5), (5, len(lines))):
        block = lines[start:stop] if start else [line.encode() for line in lines[start:stop]]
        got += answer_lines(block, first_line=start + 1, expr=EXPR, random_seed=7)
    assert got == expected


@pytest.mark.parametrize("value", ["0", "x", "1.5"])
def test_first_line_must_be_a_line_number(value):
    r = run(["--first-line", value], "")
    assert r.exit_code == 2 and "--first-line" in r.output


# ---- fast JSON (jsonio): orjson where installed, the same bytes as json -------------------


@pytest.fixture(params=["orjson", "json"])
def json_path(request, monkeypatch):
    """Each jsonio test on both paths: orjson (where installed) and json alone."""
    from gradcli import jsonio

    if request.param == "orjson":
        pytest.importorskip("orjson")
    else:
        monkeypatch.setattr(jsonio, "_orjson", None)
    return jsonio


def _arrays():
    """Tensors of every kind an answer holds: float32 and float64, 0-d to 3-d, empty, in and
    out of the range orjson formats, with nan, inf and -0.0."""
    import numpy as np

    rng = np.random.default_rng(11)
    out = []
    for dtype in ("float32", "float64"):
        for scale in (1e-7, 1e-4, 1.0, 1e3, 1e14, 1e15, 1e20):
            out.append((rng.standard_normal(40) * scale).astype(dtype))
        bits = rng.integers(0, 2**63, size=5000, dtype=np.int64)
        wide = bits.view(np.float64)
        with np.errstate(over="ignore"):
            out.append(wide[np.isfinite(wide)].astype(dtype))
        out.append(np.arange(-30, 30, dtype=dtype).reshape(3, 4, 5) / 7)
        special = np.linspace(-2, 2, 20).astype(dtype)
        special[[1, 5, 9]] = [np.nan, np.inf, -np.inf]
        out += [special, np.zeros((2, 0), dtype), np.array(-0.0, dtype), np.full(17, -0.0, dtype)]
        out.append(np.array([1e-4, np.nextafter(1e-4, 0), 1e15, np.nextafter(1e15, 0)] * 5, dtype))
        small = (rng.uniform(1, 10, 60) * 10.0 ** rng.integers(-12, -3, 60)).astype(dtype)
        out += [small, small[:1], small[1:3], -small[3:5], np.array([1e-5, 1e-9, 1e-10], dtype)]
    narrow = rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32)
    narrow = narrow.view(np.float32)  # every float32 bit pattern alike, subnormals too
    out.append(narrow[np.isfinite(narrow)])
    return out


def test_answer_lines_are_json_module_bytes(json_path):
    from gradcli.render import dumps

    arrays = _arrays()
    for k, arr in enumerate(arrays):
        answer = {"id": k, "expr": "f(x, y)", "value": arr, "grad": {"x": arr, "y": None}}
        assert json_path.dumps(answer) == dumps(answer), (k, arr.dtype)
    nested = {"id": "a, b: c", "nodes": [{"value": arrays[0]}], "grad": {}, "v": [1.5, "nan"]}
    assert json_path.dumps(nested) == dumps(nested)


def test_grad_lines_are_dumps(json_path):
    """A stacked group's answers (shared parts spelled once, each stacked gradient written
    by one orjson call and cut between records) are dumps' bytes, record by record."""
    import numpy as np

    rng = np.random.default_rng(12)
    stacks = []
    for dtype in ("float32", "float64"):
        for shape in ((5, 3), (4, 2, 3), (3, 1, 1, 2), (1, 4), (6, 0), (2,), (3, 2, 0, 2)):
            scale = 10.0 ** rng.integers(-12, 18, shape)
            stacks.append((rng.standard_normal(shape) * scale).astype(dtype))
        special = rng.standard_normal((4, 3)).astype(dtype)
        special[2, 1] = np.nan
        stacks += [special, np.full((3, 2), -0.0, dtype), np.array([[1e-5, 10.00001]] * 3, dtype)]
    for k, g in enumerate(stacks):
        b = g.shape[0]
        ids = [k, f"r{k}", k + 0.5][:b] + list(range(max(0, b - 3)))
        value = rng.standard_normal(b).astype(g.dtype)
        value[0] = np.inf
        grads = {"x": g, "y": None, "z": value}
        got = json_path.grad_lines(ids, "f(x, y)", [], "SumBackward0", value, grads)
        for r, record_id in enumerate(ids):
            answer = {"id": record_id, "expr": "f(x, y)", "dtype": g.dtype.name}
            answer |= {"value": value[r, ...], "shape": [], "grad_fn": "SumBackward0"}
            answer["grad"] = {"x": g[r, ...], "y": None, "z": value[r, ...]}
            assert got[r] == json_path.dumps(answer), (k, r)


TRICKY_RECORDS = [
    b'{"id": 1, "inputs": {"x": [1.5, -0.0, 1e-7, 2.5e300, -0]}}',
    b'{"id": 123456789012345678901234567890, "inputs": {}}',
    b'{"id": 18446744073709551616}',
    b'{"id": 9223372036854775807, "x": -9223372036854775808}',
    b'{"inputs": {"x": 1e400}}',
    b'{"inputs": {"x": -1e999}}',
    b'{"inputs": {"x": 1.00000000000000000000001}}',
    b'{"inputs": {"x": NaN}}',
    b'{"inputs": {"x": Infinity}}',
    b'{"a": 1, "a": 2}',
    b'{"a": 1, "b": 2, "a": 3}',
    b'{"s": "\\ud800"}',
    b'{"s": "\\u00e9\\n\\t", "t": "\xc3\xa9"}',
    b'{"s": "\x01"}',
    b"\xef\xbb\xbf{}",
    b"\xff{}",
    b'{"a": 01}',
    b'{"a": 1.}',
    b"[1, 2]",
    b"{} {}",
    b'{"a": [' * 3000 + b"]" * 3000 + b"}",
    b'{"a": ' + b"9" * 500 + b"}",
]


def test_records_read_alike(json_path):
    """orjson reads a record to exactly what json reads (types too), and anything it would
    read otherwise goes to json, whose error is the answer's."""
    from gradcli import jsonio
    from gradcli.errors import GradcliError

    def read(reader, raw):
        try:
            return ("ok", repr(reader(raw)))
        except RecursionError:  # (its message names where the stack ran out)
            return ("error", "RecursionError")
        except GradcliError as e:
            return ("error", type(e).__name__, str(e))

    def canonical(raw):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise jsonio.InputError(f"line is not valid UTF-8 (byte {e.start})") from None
        return jsonio.load_object(text, "record")

    import random

    rng = random.Random(8)
    numbers = []
    for _ in range(3000):  # decimal numbers as records spell them, up to 40 digits
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 41)))
        point = rng.randrange(len(digits) + 1)
        text = (digits[:point].lstrip("0") or "0") + (
            "." + digits[point:] if digits[point:] else ""
        )
        numbers.append(
            rng.choice(["", "-"]) + text + rng.choice(["", f"e{rng.randrange(-330, 330)}"])
        )
    records = [
        b'{"x": [' + ", ".join(numbers[k : k + 50]).encode() + b"]}" for k in range(0, 3000, 50)
    ]
    for raw in TRICKY_RECORDS + records:
        assert read(json_path.load_record, raw) == read(canonical, raw), raw[:60]
    assert all(read(canonical, raw)[0] == "ok" for raw in records)  # (numbers, not errors)


@pytest.mark.parametrize(
    ("raw", "long"),
    [
        (b'{"x": 0.0012345678901234567}', False),  # a fraction: orjson reads it as json does
        (b'{"x": 1234567890123456789.5}', False),
        (b'{"x": 1234567890123456789e3}', False),
        (b'{"x": [1, 1234567890123456789]}', True),  # an integer past what orjson keeps
        (b'{"x": -12345678901234567890, "y": 0.5}', True),
        (b'{"x": 0.5, "y": 0.12345678901234567891, "id": 12345678901234567890}', True),
        (b'{"x": "1234567890123456789"}', True),  # (in a string: json reads it, the same)
        (b'{"x": 123456789012345678}', False),
    ],
)
def test_which_lines_orjson_reads(raw, long):
    from gradcli import jsonio

    assert jsonio._long_integer(raw) is long


def test_batch_output_is_the_same_with_and_without_orjson(monkeypatch):
    pytest.importorskip("orjson")
    from gradcli import batch, jsonio

    lines = [json.dumps(GOOD).encode(), *BAD_LINES[:-2]]
    lines += [
        b'{"expr": "x * 1e30 * 1e30", "inputs": {"x": [1, 2]}, "seed_vector": [1, 1]}',
        b'{"expr": "log(x)", "inputs": {"x": [0, -1, 2]}, "seed_vector": [1, 1, 1]}',
        b'{"expr": "sum(tanh(W @ x + b))", "inputs": {"W": "randn(16, 8)", "x": "randn(8)", '
        b'"b": "randn(16)"}}',
        b'{"expr": "sum(x * y)", "inputs": {"x": "rand(40)", "y": "randn(40)"}, '
        b'"dtype": "float64"}',
        b'{"id": 123456789012345678901234567890, "expr": "sum(x)", "inputs": {"x": 1}}',
        b'{"task": "jacobian", "expr": "x * 2", "inputs": {"x": [1, 2]}}',
    ]
    data = b"\n".join(lines) + b"\n"
    outs = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(jsonio, "_orjson", None)
        out = io.StringIO()
        batch.run(io.BytesIO(data), out, batch.Defaults(EXPR, nodes=True, random_seed=3))
        out2 = io.StringIO()
        batch.run(io.BytesIO(data), out2, batch.Defaults(EXPR, random_seed=3))
        outs.append((out.getvalue(), out2.getvalue()))
    assert outs[0] == outs[1]
    assert '"inf"' in outs[0][1] and '"nan"' in outs[0][1]
    assert '"id": 123456789012345678901234567890' in outs[0][1]


# ---- --max-line-bytes: the two line limits, raised ---------------------------------------


def test_max_line_bytes_raises_the_line_limit(monkeypatch):
    from gradcli import batch

    monkeypatch.setattr(batch, "MAX_LINE", 1000)
    huge = b'{"inputs": {"x": [' + b"1," * 1000 + b"1]}}"
    data = b"\n".join([json.dumps(GOOD).encode(), huge]) + b"\n"
    for jobs in ("1", "2"):
        r = run(["--expr", EXPR, "--jobs", jobs], data)
        rows = answers(r.stdout)
        assert r.exit_code == 1 and "--max-line-bytes" in rows[1]["error"]["message"]
        r = run(["--expr", EXPR, "--jobs", jobs, "--max-line-bytes", "3000"], data)
        rows = answers(r.stdout)
        assert r.exit_code == 0 and rows[1]["grad_fn"] == "MeanBackward0"
        assert len(rows[1]["grad"]["x"]) == 1001
        r = run(["--expr", EXPR, "--jobs", jobs, "--max-line-bytes", "1_500"], data)
        assert r.exit_code == 1 and "longer than 1500 bytes" in r.stdout


def test_max_line_bytes_raises_the_endless_line_limit(monkeypatch):
    from gradcli import batch

    monkeypatch.setattr(batch, "MAX_LINE", 100)
    monkeypatch.setattr(batch, "MAX_SKIP", 10_000)
    monkeypatch.setattr(batch, "BLOCK", 1000)
    good = b'{"inputs": {"x": 1}}\n'
    endless = good + b"a" * 50_000
    with pytest.raises(batch.InputError, match="first 10,000 bytes") as e:
        batch.run(io.BytesIO(endless), io.StringIO(), batch.Defaults(EXPR))
    assert "--max-line-bytes" in e.value.hint
    out = io.StringIO()  # 16 times 4000 bytes: the 50,000 are skipped, the run goes on
    summary = batch.run(
        io.BytesIO(endless + b"\n" + good), out, batch.Defaults(EXPR, max_line_bytes=4000)
    )
    assert summary == (3, 1, None) and "longer than 4000 bytes" in out.getvalue()

    class Failing(io.RawIOBase):
        def readinto(self, buffer):
            raise OSError(5, "Input/output error")

    with pytest.raises(batch.InputError, match="Input/output error") as e:  # no line limit
        batch.run(Failing(), io.StringIO(), batch.Defaults(EXPR))
    assert e.value.hint is None


@pytest.mark.parametrize("value", ["0", "-5", "lots", "1.5"])
def test_max_line_bytes_must_be_a_count(value):
    r = run(["--expr", EXPR, "--max-line-bytes", value], "")
    assert r.exit_code == 2 and "--max-line-bytes" in r.output


# ---- inputs: the fast conversion of plain lists is the careful one's ---------------------


def test_fast_input_conversion_matches_the_careful_one():
    """inputs._numbers (a number, a list of numbers or of rows) gives bit for bit what the
    general path gives, and leaves to it everything else (bools, strings, ragged rows,
    deeper lists, numbers past float64); a float32 overflow is inf, without a warning."""
    import random
    import warnings

    import numpy as np

    from gradcli import inputs

    rng = random.Random(4)
    values = [
        [],
        [[]],
        [[], []],
        1.5,
        -0.0,
        3,
        2**70,
        10**400,
        1e39,
        -1e39,
        [1e39, 1],
        [[1, 2], [3e38, -1e39]],
        [2**60 + 1, 0.5],
        [2**64, 1],
        [10**400],
        [[1, 2], [3]],
        [[1, 2], 3],
        [[1, 2], (3, 4)],
        [[[1.0]]],
        [True, 1],
        [[1, False]],
        [None, 1.0],
        ["nan", 1.0],
        [[1.0, "inf"]],
        [{"a": 1}],
        [[1, 2], "ab"],
        [-0.0, 0.0, 5e-324, 1.7976931348623157e308],
    ]
    values += [[rng.uniform(-1e6, 1e6) for _ in range(rng.randrange(1, 40))] for _ in range(50)]
    values += [[[rng.randrange(-(2**62), 2**62) for _ in range(3)] for _ in range(4)]]
    values += [[rng.getrandbits(64) for _ in range(5)] for _ in range(20)]

    def careful(value, dtype):
        try:
            with np.errstate(all="ignore"):
                return inputs._to_array(value, dtype, "x", None, 10**9)
        except inputs.InputError as e:
            return str(e)

    for value in values:
        for dtype in ("float32", "float64"):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # (an overflow warning would fail here)
                fast = inputs._numbers(value, dtype)
            want = careful(value, dtype)
            if fast is None:
                continue  # the careful path answers it
            assert isinstance(want, np.ndarray), (value, dtype, want)
            assert (fast.dtype, fast.shape) == (want.dtype, want.shape), (value, dtype)
            assert fast.tobytes() == want.tobytes() and fast.flags.c_contiguous, (value, dtype)
            got = inputs.to_array(value, dtype, "x")
            assert got.tobytes() == want.tobytes()
    # and the fast path is taken where it should be
    assert inputs._numbers([[1, 2.5], [3, 4]], "float32") is not None
    assert inputs._numbers([1e39], "float32")[0] == np.inf
    assert inputs._numbers([True, 1], "float32") is None


def test_one_decoder_reads_as_json_loads_does():
    from gradcli import inputs

    def read(fn, text):
        try:
            return ("ok", repr(fn(text)))
        except RecursionError:  # (its message names where the stack ran out)
            return ("error", "RecursionError")
        except (ValueError, ArithmeticError) as e:
            return ("error", type(e).__name__, str(e))

    def reference(text):
        return json.loads(text, parse_constant=inputs._reject_constant, parse_int=inputs._parse_int)

    for raw in TRICKY_RECORDS:
        text = raw.decode("utf-8", "replace")
        assert read(inputs.loads, text) == read(reference, text), raw[:60]


def test_default_program_is_parsed_once_per_process(monkeypatch):
    """A Dask task gets its own copy of Defaults, without the parsed program: the worker's
    copies share one parse of it."""
    import dataclasses

    from gradcli import batch, parser

    text = "sum(x * 3) + 0.25"
    calls = []
    real = parser.parse
    monkeypatch.setattr(parser, "parse", lambda t: calls.append(t) or real(t))
    batch._parse_default.cache_clear()
    first = batch.Defaults(text)
    copies = [dataclasses.replace(first) for _ in range(3)]
    assert all(c.program() is first.program() for c in copies) and calls == [text]
    assert list(batch.answer_lines(['{"inputs": {"x": [1, 2]}}'], expr=text))[0].count("3.0") == 2
    assert calls == [text]
