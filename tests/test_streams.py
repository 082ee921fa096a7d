"""The streams a command meets in the wild: a full disk, closed stdin/stdout/stderr, a
terminal that reports no width, an output encoding that is not UTF-8, program and inputs
files that never end, and answers that must not cost many times their size. Each runs the
installed console script in the exact situation (through bash for `>&-` and `<&-`)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli.cli import main


def _exe():
    exe = shutil.which("gradcli", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the gradcli console script is not installed beside this Python")
    return exe


def sh(command, env=None, timeout=60, input=None):
    """Run ``gradcli ...`` through bash (so `>&-`, `<&-`, `> /dev/full` mean what they say)."""
    full = command.replace("gradcli ", f"'{_exe()}' ", 1)
    return subprocess.run(
        ["bash", "-c", full],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        input=input,
    )


def no_traceback(p):
    assert b"Traceback" not in p.stderr and b"Traceback" not in p.stdout, p.stderr.decode()


# Every command but batch, each with arguments that succeed.
COMMANDS = [
    "gradcli grad 'mean(2*(x+2)^2)' x=1,2,3",
    "gradcli grad --json 'mean(2*(x+2)^2)' x=1,2,3",
    "gradcli jvp 'sin(x) * 2' x=1,2 --tangent x=1,0",
    "gradcli jacobian 'x * 2' x=1,2",
    "gradcli jacobian --json 'x * 2' x=1,2",
    "gradcli hessian 'sum(x^3)' x=1,2",
    "gradcli check 'sum(x^2)' x=1,2",
    "gradcli graph 'sum(x*x)' x=1,2",
    "gradcli graph --format dot 'sum(x*x)'",
    "gradcli explain 'sum(x*x)' x=1,2",
    "gradcli ops",
    "gradcli ops --json",
    "gradcli --help",
    "gradcli grad --help",
]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_disk_is_one_clear_error(command):
    p = sh(command + " > /dev/full")
    assert p.returncode == 1
    assert p.stderr.decode() == "error: cannot write output: No space left on device\n"


@pytest.fixture
def small_filesystem(tmp_path):
    """A 64 KiB tmpfs (needs root and permission to mount; skipped otherwise)."""
    where = tmp_path / "small"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    p = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True
    )
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


@pytest.mark.parametrize(
    "command",
    [
        "gradcli grad --json 'sum(x)' 'x=ones(100000)'",
        "gradcli jacobian --json 'x * 2' 'x=ones(300)'",
        "gradcli explain 'sum(x" + " * 2" * 1000 + ")' x=1,2",
    ],
    ids=["grad", "jacobian", "explain"],
)
def test_a_small_filesystem_that_fills_up(small_filesystem, command):
    out = small_filesystem / "answer.txt"
    p = sh(f"{command} > '{out}'")
    assert p.returncode == 1
    assert p.stderr.decode() == "error: cannot write output: No space left on device\n"
    assert 0 < out.stat().st_size <= 64 * 1024


@pytest.mark.parametrize("command", COMMANDS)
def test_a_closed_stdout_is_an_error_not_a_silent_success(command):
    p = sh(command + " >&-")
    assert p.returncode == 1
    assert p.stderr.decode() == "error: cannot write output: stdout is closed\n"
    # with stderr closed too, the exit status still says it
    p = sh(command + " >&- 2>&-")
    assert p.returncode == 1 and p.stdout == b""


def test_a_closed_stdout_with_a_file_on_the_lowest_descriptor(tmp_path):
    # With fd 1 closed, opening the program file takes fd 1: the answer must not go there.
    prog = tmp_path / "p.gc"
    prog.write_text("sum(x * 2)\n")
    p = sh(f"gradcli grad -f '{prog}' x=1,2 >&-")
    assert p.returncode == 1 and b"stdout is closed" in p.stderr
    assert prog.read_text() == "sum(x * 2)\n"


def test_a_reader_that_goes_away_is_quiet():
    p = sh("gradcli ops | head -1")
    assert p.returncode == 0 and p.stderr == b"" and p.stdout.count(b"\n") == 1


@pytest.mark.parametrize(
    "command,what",
    [
        ("gradcli grad -f - x=1 <&-", "program file '-'"),
        ("gradcli grad 'sum(x)' -i - <&-", "inputs file '-'"),
        ("gradcli jacobian -f - x=1 <&-", "program file '-'"),
        ("gradcli check 'sum(x)' -i - <&-", "inputs file '-'"),
    ],
)
def test_a_closed_stdin(command, what):
    p = sh(command)
    assert p.returncode == 2, p.stderr
    assert p.stderr.decode().startswith(f"error: cannot read {what}: stdin is closed\n")
    no_traceback(p)


def _on_a_terminal(argv, env):
    """Run ``argv`` with stdout on a fresh pseudo-terminal (which reports 0 columns)."""
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child is gone and the terminal closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    err = p.stderr.read()
    p.stderr.close()
    return p.wait(timeout=60), out, err


@pytest.mark.parametrize("columns", ["0", "", "abc", "-3", None])
def test_a_terminal_without_a_usable_width_still_gets_the_answer(columns):
    env = {"TERM": "xterm"}
    if columns is not None:
        env["COLUMNS"] = columns
    code, out, err = _on_a_terminal([_exe(), "grad", "sum(x)", "x=1,2"], env)
    assert code == 0 and err == b""
    text = out.decode()
    assert "tensor(3., grad_fn=<SumBackward0>)" in text
    assert "AccumulateGrad" in text and "tensor([1., 1.])" in text


def test_graph_tree_on_a_latin1_terminal():
    env = {"COLUMNS": "0", "PYTHONIOENCODING": "latin-1"}
    code, out, err = _on_a_terminal([_exe(), "graph", "sum(x * x)", "x=1,2"], env)
    assert code == 0 and b"Traceback" not in err, err
    assert b"MulBackward0" in out


LONG = "a_rather_long_input_name_of_forty_letters"
NON_UTF8 = [
    ("gradcli jacobian 'x*2' x=1,2", "dout/dx"),
    ("gradcli hessian 'sum(x^3)' x=1,2", "d^2out/dxdx"),
    ("gradcli explain 'sum(x*x)' x=1,2", "dout/dout"),
    ("gradcli graph 'sum(x*x)' x=1,2", "`- [1] x*x"),
    ("gradcli jvp 'x*2' x=1 --tangent x=1", "jvp (J"),
    ("gradcli check 'sum(x)' x=1 --sweep", "ok: "),
    (f"gradcli grad 'sum({LONG} * 2)' {LONG}=1", "a_rather_long_input_name_of_for~"),
    ("gradcli ops", "d(a+b)/da = 1"),
    ("gradcli hessian --help", "Every block d^2out/dadb"),
    ("gradcli jvp --help", "product J"),
]


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
@pytest.mark.parametrize("command,fragment", NON_UTF8)
def test_an_output_encoding_that_is_not_utf8(encoding, command, fragment):
    p = sh(command, env={"PYTHONIOENCODING": encoding})
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    text = p.stdout.decode(encoding)
    assert fragment in text
    assert "∂" not in text and "…" not in text
    if encoding == "ascii":
        assert p.stdout.isascii()


def test_the_ascii_fallback_keeps_the_table_aligned():
    p = sh(f"gradcli grad 'sum({LONG} * 2)' {LONG}=1", env={"PYTHONIOENCODING": "ascii"})
    lines = p.stdout.decode().splitlines()
    header = next(line for line in lines if line.startswith("id"))
    rows = [line for line in lines if line[:2].strip().isdigit()]
    col = header.index("grad_fn")
    assert len(rows) == 3 and all(
        line[col - 2 : col] == "  " and line[col] != " " for line in rows
    ), lines


def test_ascii_text_spells_out_gradcli_symbols():
    from gradcli.commands import ascii_text

    assert ascii_text("∂²out/∂x∂y") == "d^2out/dxdy"
    assert ascii_text("xᵢ · Aᵀ → σ(a) ½ …") == "x_i * A^T -> sigma(a) 1/2 ~"
    assert ascii_text("└─ [0] x") == "`- [0] x"
    assert ascii_text("日") == "\\u65e5"


# ---- a program whose output is a number ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["jvp", "3", "x=1", "--tangent", "x=1"],
        ["jacobian", "0.5", "x=1"],
        ["check", "3", "x=1"],
        ["hessian", "y = 3; y", "x=1"],
    ],
)
def test_a_number_output_is_an_error_as_with_grad(args):
    grad = CliRunner().invoke(main, ["grad", args[1], "x=1"])
    r = CliRunner().invoke(main, args)
    assert r.exit_code == grad.exit_code == 1
    assert "needs a tensor output" in r.output and "Python number" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    j = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(j.output.splitlines()[-1])["error"]["type"] == "EvaluationError"


# ---- files: a byte-order mark, and files that never end -----------------------------------


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    prog, inputs = tmp_path / "p.gc", tmp_path / "in.json"
    prog.write_bytes(b"\xef\xbb\xbf# a comment\nsum(x * 2)\n")
    inputs.write_bytes(b'\xef\xbb\xbf{"x": [1, 2]}')
    r = CliRunner().invoke(main, ["grad", "-f", str(prog), "-i", str(inputs), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["grad"] == {"x": [2.0, 2.0]}
    p = sh(f"gradcli jacobian -f - -i '{inputs}'", input=prog.read_bytes())
    assert p.returncode == 0 and b"tensor([2., 2.])" in p.stdout


@pytest.mark.parametrize(
    "command,what",
    [
        ("gradcli grad -f /dev/zero x=1", "program file '/dev/zero'"),
        ("gradcli grad 'sum(x)' -i /dev/zero", "inputs file '/dev/zero'"),
        ("gradcli grad -f - x=1 < /dev/zero", "program file '-'"),
        ("gradcli explain 'sum(x)' -i - < /dev/zero", "inputs file '-'"),
    ],
)
def test_files_that_never_end_are_refused(command, what):
    p = sh(command, timeout=30)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert err.startswith(f"error: {what} is larger than the limit of 67,108,864 bytes\n")
    assert "--max-input-bytes" in err and "out of memory" not in err


def test_the_file_size_limit_can_be_raised(tmp_path):
    prog = tmp_path / "p.gc"
    prog.write_text("# " + "x" * 200 + "\nsum(x)\n")
    args = ["grad", "-f", str(prog), "x=1"]
    r = CliRunner().invoke(main, [*args, "--max-input-bytes", "100"])
    assert r.exit_code == 2 and "larger than the limit of 100 bytes" in r.output
    r = CliRunner().invoke(main, [*args, "--max-input-bytes", "1_000"])
    assert r.exit_code == 0 and r.output.startswith("tensor(1.")


# ---- caps on work -------------------------------------------------------------------------


def test_check_refuses_hours_of_finite_differences_at_once():
    p = sh("gradcli check 'sum(x^2)' 'x=randn(1000000)'", timeout=30)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "check would evaluate the program 3,000,001 times" in err
    assert "over the limit of 100,000" in err and "--max-evaluations" in err


def test_check_evaluation_cap_counts_the_work_and_can_be_raised():
    args = ["check", "sum(x^2)", "x=1,2,3"]  # 3 + 1 + 6 evaluations; 3 + 1 + 78 with --sweep
    assert CliRunner().invoke(main, [*args, "--max-evaluations", "10"]).exit_code == 0
    r = CliRunner().invoke(main, [*args, "--max-evaluations", "9"])
    assert r.exit_code == 1 and "10 times" in r.output
    r = CliRunner().invoke(main, [*args, "--sweep", "--max-evaluations", "81"])
    assert r.exit_code == 1 and "82 times" in r.output
    assert CliRunner().invoke(main, [*args, "--sweep", "--max-evaluations", "82"]).exit_code == 0
    # --wrt limits the directions checked, and so the work
    r = CliRunner().invoke(main, ["check", "sum(x*y)", "x=1,2,3", "y=1,2,3", "--wrt", "x"])
    assert r.exit_code == 0


def _limited(argv, megabytes, timeout=60):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

    return subprocess.run(
        [_exe(), *argv], preexec_fn=limit, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "argv,block",
    [
        (["jacobian", "x*2", "x=randn(8000)"], "the Jacobian block for x"),
        (["jacobian", "sum(x) * y", "x=randn(3)", "y=randn(8000)"], "the Jacobian block for y"),
        (["hessian", "sum(x*x)", "x=randn(8000)"], "the Hessian block for x, x"),
        (["check", "x*2", "x=randn(8000)"], "the Jacobian block for x"),
    ],
)
def test_jacobian_and_hessian_blocks_are_capped_before_they_are_made(argv, block):
    p = _limited(argv, 300)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith(
        f"error: {block} would have shape [8000, 8000] (64,000,000 elements), "
        "over the limit of 50,000,000\n"
    )
    assert "--max-elements" in p.stderr


def test_the_block_cap_is_max_elements():
    args = ["jacobian", "x*2", "x=1,2,3"]
    assert CliRunner().invoke(main, [*args, "--max-elements", "9"]).exit_code == 0
    r = CliRunner().invoke(main, [*args, "--max-elements", "8"])
    assert r.exit_code == 1 and "shape [3, 3] (9 elements)" in r.output


def test_text_output_does_not_build_the_json(monkeypatch):
    from gradcli import render

    def refuse(*args):
        raise AssertionError("JSON built for text output")

    for name in ("jacobian_json", "hessian_json", "jvp_json", "check_json", "result_json"):
        monkeypatch.setattr(render, name, refuse)
    for args in (
        ["jacobian", "x*2", "x=1,2"],
        ["hessian", "sum(x^3)", "x=1,2"],
        ["jvp", "x*2", "x=1", "--tangent", "x=1"],
        ["check", "x*2", "x=1"],
        ["grad", "x*2", "x=1", "--seed-vector", "1"],
    ):
        assert CliRunner().invoke(main, args).exit_code == 0, args


def test_grad_json_of_a_large_tensor_stays_near_its_size():
    # 1,000,000 float32 elements: the tensors are 4 MB each; the JSON is 30 MB of text.
    # Built as Python lists the answer needed more than 300 MiB of address space.
    p = _limited(["grad", "--json", "sum(x)", "x=ones(1000000)"], 250, timeout=120)
    assert p.returncode == 0, p.stderr
    obj = json.loads(p.stdout)
    assert obj["value"] == 1e6 and len(obj["grad"]["x"]) == 1_000_000


def test_out_of_memory_names_what_was_too_large(tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"x": [' + "1.5," * 6_000_000 + "1.5]}")  # 24 MB: 6,000,001 floats
    p = _limited(["grad", "sum(x)", "-i", str(big)], 250)
    assert p.returncode == 1
    assert p.stderr.startswith(
        f"error: out of memory reading the JSON of inputs file '{big}' (24,000,012 characters)\n"
    )


def test_streamed_json_is_exactly_json_dumps(monkeypatch):
    import numpy as np

    from gradcli import render
    from gradcli.api import json_value

    monkeypatch.setattr(render, "JSON_CHUNK", 7)  # many pieces, nested and split rows
    rng = np.random.default_rng(0)
    for shape in [(), (0,), (50,), (3, 0, 4), (5, 9), (2, 3, 11), (1, 40), (40, 1), (2,) * 6]:
        a = rng.standard_normal(shape).astype("float32")
        if a.size:
            a.flat[0], a.flat[-1] = np.nan, -np.inf
        obj = {"a": a, "b": [a, 1.5, float("inf")], "c": None, "d": {}, "e": [], "f": "s"}
        expected = render.dumps({**obj, "a": json_value(a), "b": [json_value(a), 1.5, "inf"]})
        assert "".join(render.json_pieces(obj)) == expected


# ---- messages: nothing from the user reaches the terminal raw -----------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["grad", "sum(x)", "-i", "/nonexistent/\x1b]0;TITLE\x07\x1b[2J.json"],
        ["grad", "sum(x)", "x=\x1b[2J"],
        ["grad", "sum(x)", "x\x1b[2J"],
        ["grad", "sum(x)", "--random-seed", "\x1b[31m"],
        ["jvp", "x", "x=1", "--tangent", "\u202ex=1"],
        ["ops", "--\x1b[2J"],
        ["grad", "sum(x)", "x=1", "--dtype", "\x9b2J"],
    ],
)
def test_user_text_in_error_messages_is_escaped(args):
    p = subprocess.run([_exe(), *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.startswith(("error: ", "Usage: "))
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in p.stderr
    assert "\\x1b" in p.stderr or "\\u202e" in p.stderr or "\\x9b" in p.stderr


def test_every_command_states_its_limits_in_help():
    for command in ("grad", "jvp", "jacobian", "hessian", "check", "graph", "explain"):
        text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
        assert "--max-elements" in text and "--max-input-bytes" in text, command
        assert "Limits:" in text, command
    text = " ".join(CliRunner().invoke(main, ["check", "--help"]).output.split())
    assert "--max-evaluations" in text and "100,000" in text


def test_the_readme_lists_every_limit_option():
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Hostile input, limits and floating point")[1].split("\n## ")[0]
    options = set()
    for command in ("grad", "jvp", "jacobian", "hessian", "check", "graph", "explain", "batch"):
        options |= set(
            re.findall(r"--max-[a-z-]+", CliRunner().invoke(main, [command, "-h"]).output)
        )
    assert options >= {"--max-elements", "--max-input-bytes", "--max-evaluations"}
    for option in options:
        assert f"`{option} N`" in section, option


# ---- fuzzing: every command, any output encoding, a stream that fails at any byte ---------

FUZZ_COMMANDS = [
    ["grad", "sum(x * y)", "x=1,2", "y=3,4"],
    ["grad", "y = x + 2; y * y", "x=1,2", "--seed-vector", "1,0"],
    ["grad", f"sum({LONG} ^ 2)", f"{LONG}=1,2"],
    ["jvp", "tanh(x) * 2", "x=1,2", "--tangent", "x=1,1"],
    ["jacobian", "softmax(x)", "x=1,2,3"],
    ["hessian", "sum(x^3)", "x=1,2"],
    ["check", "sum(sin(x))", "x=1,2", "--sweep"],
    ["graph", "sum(x * x)", "x=1,2"],
    ["graph", "sum(x * x)", "--format", "mermaid"],
    ["explain", "mean(exp(x))", "x=1,2"],
    ["ops"],
    ["grad", "x +* 2", "x=1"],
    ["jvp", "3", "x=1"],
]


class _Failing:
    """A stdout that takes ``room`` characters, then fails as a full disk does."""

    encoding = "utf-8"

    def __init__(self, room):
        self.room, self.text = room, ""

    def write(self, text):
        if len(text) > self.room:
            import errno

            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(text)
        self.text += text
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        raise OSError("no descriptor")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FUZZ_COMMANDS), st.sampled_from([*range(8), 64, 300, 2000, 10**6]))
def test_any_command_on_a_stream_that_fills_up(argv, room):
    import contextlib
    import io

    from gradcli.commands import main as console_main

    out, err = _Failing(room), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_swapped("stdout", out))
        stack.enter_context(_swapped("stderr", err))
        try:
            console_main(argv)
            code = 0
        except SystemExit as e:
            code = e.code or 0
    if "cannot write output" in err.getvalue():
        assert (
            code == 1 and err.getvalue() == "error: cannot write output: No space left on device\n"
        )
    else:
        assert code in (0, 1, 2), err.getvalue()
        assert code != 0 or err.getvalue() == ""


def _swapped(name, stream):
    import contextlib

    @contextlib.contextmanager
    def swap():
        old = getattr(sys, name)
        setattr(sys, name, stream)
        try:
            yield
        finally:
            setattr(sys, name, old)

    return swap()


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(FUZZ_COMMANDS),
    st.sampled_from(["ascii", "latin-1", "cp1252", "utf-8"]),
    st.booleans(),
)
def test_any_command_in_any_output_encoding(argv, charset, as_json):
    argv = [*argv, "--json"] if as_json and argv[0] != "ops" else argv
    r = CliRunner(charset=charset).invoke(main, argv)
    assert r.exit_code in (0, 1, 2), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    r.stdout_bytes.decode(charset)
