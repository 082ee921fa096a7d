"""The end of the console script after a big graph, and the collector around it.

A `grad` or `batch` run that succeeds leaves the process at once (os._exit) instead of
walking and freeing its graph object by object in the interpreter's teardown; what it
prints, where, and its exit status are those of the ordinary end, which every failure, a
broken pipe, a closed stdout and any process with something still pending (an atexit
handler, another thread, code after main()) keeps. Each case runs a script that ends like
the installed console script, once as it is and once with an atexit handler that forces
the ordinary end, through bash (so `>&-`, `| head -1` and `> /dev/full` mean what they say).
"""

import gc
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gradcli import commands

# The console script as pip writes it, with a stdout that says when the interpreter's
# teardown flushes it (it never does after os._exit; a finalizer would not do: batch
# freezes every object alive, and frozen objects are never finalized at exit).
SCRIPT = """\
import io, os, sys
{extra}
class _Stdout(io.TextIOWrapper):
    def flush(self):
        if sys.is_finalizing():
            try:
                os.write(2, b"[teardown]\\n")
            except OSError:
                pass
        return super().flush()
if sys.stdout is not None:
    out = sys.stdout
    sys.stdout = _Stdout(out.detach(), out.encoding, out.errors, line_buffering=out.line_buffering)
from gradcli.commands import main
sys.argv[0] = "gradcli"
main()
"""
TEARDOWN = b"[teardown]\n"


def big_program(terms):
    """Enough terms that the text answer (and the JSON one) outgrows a pipe's buffer."""
    return " + ".join(f"{(i % 1000 + 1) / 100:g}*sin(x)" for i in range(terms)) + "\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("whole")
    (d / "quick.py").write_text(SCRIPT.format(extra=""))
    (d / "ordinary.py").write_text(SCRIPT.format(extra="import atexit; atexit.register(int)"))
    thread = "import threading, time; threading.Thread(target=time.sleep, args=(60,), daemon=True)"
    (d / "threaded.py").write_text(SCRIPT.format(extra=thread + ".start()"))
    (d / "big.txt").write_text(big_program(3000))
    (d / "nan.txt").write_text("sum(log(x - 2) * 3)\n")
    (d / "records.jsonl").write_text('{"inputs": {"x": 1.5}}\n{"inputs": {"x": 2}}\n')
    (d / "one.jsonl").write_text('{"inputs": {"x": 1.5}}\n')
    (d / "bad.jsonl").write_text('{"inputs": {"x": 1.5}}\n{"inputs": {"y": 2}}\n')
    return d


def sh(files, script, command):
    """``command`` with `gradcli` standing for ``script``, in ``files``; gradcli's own exit
    status is written last on stderr (a pipeline's status is head's)."""
    run = f"'{sys.executable}' {script}.py"
    full = command.replace("gradcli", run, 1) + '; echo "[status ${PIPESTATUS[0]}]" >&2'
    p = subprocess.run(["bash", "-c", full], capture_output=True, cwd=files, timeout=120)
    return p.stdout, p.stderr


def both(files, command, out=None):
    """(stdout, stderr without the teardown line, -o file's bytes) of the quick script and
    the ordinary one, and whether each ran the teardown."""
    results = []
    for script in ("quick", "ordinary"):
        if out:
            (files / out).unlink(missing_ok=True)
        stdout, stderr = sh(files, script, command)
        written = (files / out).read_bytes() if out else None
        results.append(((stdout, _without_teardown(stderr), written), TEARDOWN in stderr))
    return results


def _without_teardown(stderr):
    return stderr.replace(TEARDOWN, b"")


# (command, ends at once, exit status)
CASES = [
    ("gradcli grad 'mean(2*(x+2)^2)' x=1,2,3", True, 0),
    ("gradcli grad --json 'mean(2*(x+2)^2)' x=1,2,3", True, 0),
    ("gradcli grad -f big.txt x=1.5", True, 0),
    ("gradcli grad -f big.txt x=1.5 | cat", True, 0),
    ("gradcli grad -f big.txt --json x=1.5", True, 0),
    ("gradcli grad -f big.txt --json --no-nodes x=1.5", True, 0),
    ("gradcli grad -f big.txt --dtype float64 x=1.5", True, 0),
    ("gradcli grad -f big.txt x=1.5,-2 --seed-vector 1,0", True, 0),
    ("gradcli grad -f big.txt x=1.5,-2", False, 1),  # a non-scalar output without a seed
    ("gradcli grad -f big.txt x=1.5 y=2", True, 0),  # (a warning on stderr)
    ("gradcli grad -f nan.txt x=1,2,3", True, 0),  # nan and -inf in the answer
    ("gradcli batch -f big.txt records.jsonl", True, 0),
    ("gradcli batch --expr 'sum(x^2)' records.jsonl", True, 0),
    ("gradcli batch records.jsonl", False, 1),  # no program: every record fails
    ("gradcli batch -f big.txt bad.jsonl", False, 1),  # a record fails
    ("gradcli grad -f big.txt", False, 2),  # missing input
    ("gradcli grad -f big.txt x=1.5 --wrt z", False, 2),
    ("gradcli grad 'sin(x' x=1", False, 2),  # parse error
    ("gradcli grad -f nan.txt x=1,2,3 --detect-anomaly", False, 1),
    ("gradcli grad -f big.txt x=1.5 | head -1", False, 0),  # broken pipe
    ("gradcli grad -f big.txt --json x=1.5 | head -c 10", False, 0),
    ("gradcli grad -f big.txt x=1.5 >&-", False, 1),  # stdout closed
    ("gradcli grad -f big.txt x=1.5 > /dev/full", False, 1),  # disk full
    ("gradcli grad 'x * 2' x=1 2>&-", True, 0),  # stderr closed
    ("gradcli grad 'x * 2' x=1 <&-", True, 0),  # stdin closed
    ("gradcli grad --help", False, 0),  # no graph: the ordinary end
    ("gradcli jacobian 'x * 2' x=1,2", False, 0),
]


@pytest.mark.parametrize("command,quick,status", CASES)
def test_the_quick_end_prints_what_the_ordinary_end_prints(files, command, quick, status):
    (fast, fast_teardown), (slow, slow_teardown) = both(files, command)
    assert fast == slow
    assert fast[1].endswith(f"[status {status}]\n".encode()), fast[1]
    if "2>&-" not in command and " >&-" not in command:  # (the probe needs both streams)
        assert slow_teardown  # the probe works: the ordinary end runs the teardown
        assert fast_teardown is not quick  # the quick end skips it, every other end runs it
    assert b"Traceback" not in fast[1]


def test_the_quick_end_leaves_a_complete_output_file(files):
    """-o FILE is closed (and its errors reported) before the process ends."""
    (fast, fast_teardown), (slow, _) = both(
        files, "gradcli grad -f big.txt x=1.5 -o out.txt", "out.txt"
    )
    assert not fast_teardown
    assert fast == slow and fast[2].endswith(b"\n") and len(fast[2]) > 100_000
    expected, _ = sh(files, "ordinary", "gradcli grad -f big.txt x=1.5")
    assert fast[2] == expected


def test_batch_output_file_is_complete(files):
    (fast, fast_teardown), (slow, _) = both(
        files, "gradcli batch -f big.txt records.jsonl -o answers.jsonl", "answers.jsonl"
    )
    assert not fast_teardown
    assert fast == slow and fast[2].count(b"\n") == 2


def test_another_thread_keeps_the_ordinary_end(files):
    """A thread still running (here a daemon thread, which Python would not wait for)."""
    fast = sh(files, "threaded", "gradcli grad -f big.txt x=1.5")
    slow = sh(files, "ordinary", "gradcli grad -f big.txt x=1.5")
    assert TEARDOWN in fast[1] and fast == slow


def test_python_m_gradcli_ends_as_the_script_does(files):
    for command in ("grad -f big.txt x=1.5", "grad -f big.txt", "batch -f big.txt records.jsonl"):
        quick = subprocess.run(
            [sys.executable, "-m", "gradcli", *command.split()], capture_output=True, cwd=files
        )
        ordinary = sh(files, "ordinary", "gradcli " + command)
        assert (quick.stdout, quick.stderr + b"[status %d]\n" % quick.returncode) == (
            ordinary[0],
            _without_teardown(ordinary[1]),
        )


# ---- when the process may end at once ---------------------------------------------------


OUTERMOST = (
    "import sys; from gradcli.commands import _outermost; print(_outermost(sys._getframe(0)))"
)


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["-c", OUTERMOST], "True"),  # a script's top level
        (["-m", "probe_outermost"], "True"),  # python -m: runpy's frames only above
        (["-m", "cProfile", "-m", "probe_outermost"], "False"),  # cProfile prints after it
        (["-c", f"def f():\n    {OUTERMOST}\nf()"], "False"),  # called from a function
        (["-c", f"try:\n    {OUTERMOST}\nfinally:\n    pass"], "False"),  # code after it
        (["-c", f"with open('/dev/null'):\n    {OUTERMOST}"], "False"),
    ],
)
def test_outermost(tmp_path, argv, expected):
    (tmp_path / "probe_outermost.py").write_text(OUTERMOST + "\n")
    p = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=tmp_path)
    assert p.stdout.splitlines()[0] == expected, p.stderr


def test_code_after_main_still_runs(files, tmp_path):
    """A script that does something after main() (here in a finally) gets its turn."""
    script = tmp_path / "after.py"
    script.write_text(
        "import sys\nfrom gradcli.commands import main\nsys.argv[0] = 'gradcli'\n"
        "try:\n    main()\nfinally:\n    print('after main', file=sys.stderr)\n"
    )
    p = subprocess.run(
        [sys.executable, str(script), "grad", "-f", "big.txt", "x=1.5"],
        capture_output=True,
        cwd=files,
    )
    assert p.returncode == 0 and p.stderr == b"after main\n"


class _Exited(Exception):
    pass


@pytest.fixture
def kept(monkeypatch):
    """A graph kept for the quick end, nothing pending in this process (the test runner's
    own atexit handlers, threads and warnings options aside), and os._exit that raises
    _Exited instead."""
    import _thread
    import atexit

    def fake_exit(code):
        raise _Exited(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(commands, "_KEPT", [(object(), False)])
    monkeypatch.setattr(atexit, "_ncallbacks", lambda: 0)
    monkeypatch.setattr(_thread, "_count", lambda: 0)
    monkeypatch.setattr(sys, "warnoptions", [])
    monkeypatch.delenv("PYTHONINSPECT", raising=False)
    if sys.flags.inspect or sys.flags.dev_mode:
        pytest.skip("this Python runs with -i or -X dev")
    return commands._KEPT


def test_quick_exit_when_nothing_is_pending(kept):
    with pytest.raises(_Exited) as e:
        commands._quick_exit(0)
    assert e.value.args == (0,)
    with pytest.raises(_Exited):
        commands._quick_exit(None)


@pytest.mark.parametrize("code", [1, 2, 130, "message"])
def test_no_quick_exit_on_a_failure(kept, code):
    commands._quick_exit(code)  # returns: the ordinary end


def test_no_quick_exit_without_a_kept_graph(kept):
    kept.clear()
    commands._quick_exit(0)


def test_no_quick_exit_with_an_atexit_handler(kept, monkeypatch):
    import atexit

    monkeypatch.setattr(atexit, "_ncallbacks", lambda: 1)
    commands._quick_exit(0)


def test_no_quick_exit_with_another_thread(kept, monkeypatch):
    import _thread

    monkeypatch.setattr(_thread, "_count", lambda: 1)
    commands._quick_exit(0)


def test_no_quick_exit_with_warnings_options(kept, monkeypatch):
    monkeypatch.setattr(sys, "warnoptions", ["default"])
    commands._quick_exit(0)


def test_no_quick_exit_before_an_interactive_prompt(kept, monkeypatch):
    monkeypatch.setenv("PYTHONINSPECT", "1")
    commands._quick_exit(0)


def test_no_quick_exit_when_stdout_cannot_flush(kept, monkeypatch):
    class Failing:
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Failing())
    commands._quick_exit(0)


def test_let_go_undoes_only_its_own_freeze(monkeypatch):
    if gc.get_freeze_count():
        pytest.skip("this process froze objects already (batch does)")
    monkeypatch.setattr(commands, "_KEPT", [])
    monkeypatch.setattr(commands, "_SCRIPT", [True])
    gc.disable()
    try:
        graph = [[i] for i in range(1000)]
        commands._keep_until_exit(graph)
    finally:
        gc.enable()
    assert gc.get_freeze_count() >= 1000 and [(graph, True)] == commands._KEPT
    commands._let_go()
    assert gc.get_freeze_count() == 0 and commands._KEPT == []


def test_an_in_process_command_keeps_nothing():
    """Only the console script keeps its graph; tests and other callers of the click
    command free it as before."""
    p = CliRunner().invoke(commands_cli(), ["grad", "sum(x*2)", "x=1,2"])
    assert p.exit_code == 0 and commands._KEPT == []


def commands_cli():
    from gradcli.cli import main

    return main


# ---- the collector ----------------------------------------------------------------------


class Collections:
    """The collections while in the block, with the size of the young generation at each
    start (the objects that collection walks)."""

    def __enter__(self):
        self.young = []
        gc.enable()
        gc.callbacks.append(self._callback)
        return self

    def _callback(self, phase, info):
        if phase == "start":
            self.young.append(len(gc.get_objects(0)))

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)


def test_evaluate_does_not_walk_its_parse(monkeypatch):
    """api.evaluate parses and runs in one pause of the collector: no collection between
    them walks the parsed program (about 20,000 young objects here)."""
    from gradcli import api

    events = []
    parse, run = api.parse, api.run

    def parsed(*args, **kwargs):
        program = parse(*args, **kwargs)
        events.append("parsed")
        return program

    def running(*args, **kwargs):
        events.append("run")
        return run(*args, **kwargs)

    monkeypatch.setattr(api, "parse", parsed)
    monkeypatch.setattr(api, "run", running)
    text = big_program(3000)
    gc.collect()
    with Collections():
        gc.callbacks.append(lambda phase, info: phase == "start" and events.append("gc"))
        try:
            result = api.evaluate(text, {"x": 1.5})
        finally:
            gc.callbacks.pop()
    assert len(result.nodes) > 6000
    assert events.index("run") == events.index("parsed") + 1, events[:5]


def test_grad_command_runs_without_collections_until_written(monkeypatch):
    """The whole grad command (parse, evaluation, the answer's writing) runs with the
    collector paused: no collection walks the graph while it is alive."""
    events = []
    emit, job = commands._emit, commands.Job

    def marked(*args, **kwargs):
        emit(*args, **kwargs)
        events.append("written")

    class Job(job):
        def __init__(self, *args, **kwargs):
            events.append("start")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(commands, "_emit", marked)
    monkeypatch.setattr(commands, "Job", Job)
    with Collections() as seen:
        gc.callbacks.append(lambda phase, info: phase == "start" and events.append("gc"))
        try:
            p = CliRunner().invoke(commands_cli(), ["grad", big_program(3000), "x=1.5"])
        finally:
            gc.callbacks.pop()
    assert p.exit_code == 0 and events.count("start") == events.count("written") == 1
    assert "gc" not in events[events.index("start") : events.index("written")]
    assert all(n < 5000 for n in seen.young), seen.young


BATCH_PROBE = """
import gc, sys
young = []
gc.callbacks.append(lambda phase, info: phase == "start" and young.append(len(gc.get_objects(0))))
from gradcli.commands import main
try:
    main(["batch", "-f", "big.txt", "one.jsonl", "-o", "answers.jsonl"])
except SystemExit as e:
    assert not e.code
print(max(young, default=0), file=sys.stderr)
"""


def test_batch_default_program_is_not_walked(files):
    """batch -f's program, parsed once for every record, is frozen out of the collector's
    walks as it is parsed: no collection walks its 20,000 objects (a fresh process)."""
    p = subprocess.run(
        [sys.executable, "-c", BATCH_PROBE], capture_output=True, text=True, cwd=files
    )
    assert p.returncode == 0, p.stderr
    assert (files / "answers.jsonl").read_text().startswith('{"id": 1, ')
    assert int(p.stderr.split()[-1]) < 5000, p.stderr
