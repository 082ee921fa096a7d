"""gradcli batch under faults, each reproduced as it happens to a user: a FIFO and /dev/stdin
with the progress bar on a pseudo-terminal, huge lines with --jobs, a worker killed with
kill -9, a full disk (/dev/full, a file size limit, a small tmpfs), SIGTERM/SIGHUP/SIGKILL,
closed and unreadable streams, slow pipes, Ctrl-C, `| head -1`, /dev/zero. The guarantee
checked throughout: every line answered exactly once, in order, written whole, or the run
says how many answers were complete."""

import io
import json
import os
import pty
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from gradcli import batch

EXPR = "mean(2*(x+2)^2)"
GRADCLI = shutil.which("gradcli", path=str(Path(sys.executable).parent)) or shutil.which("gradcli")
pytestmark = pytest.mark.skipif(
    GRADCLI is None or not sys.platform.startswith("linux"),
    reason="needs the installed console script and Linux (/proc, /dev/full)",
)


def records(n, start=0):
    return "".join(
        json.dumps({"inputs": {"x": [i * 0.001, 0.2, 0.3]}}) + "\n" for i in range(start, n)
    )


def default_signals():
    """The child starts with SIGINT/SIGTERM/SIGHUP at their defaults (not as inherited:
    under nohup or in a background job they may be ignored, and gradcli keeps them so)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def gradcli(*args, **kw):
    """The console script as a process; unbuffered pipes, so that readline() then
    communicate() loses nothing."""
    kw.setdefault("preexec_fn", default_signals)
    kw.setdefault("bufsize", 0)
    return subprocess.Popen([GRADCLI, "batch", "--expr", EXPR, *args], **kw)


def readline(p, timeout=30.0):
    """One line of the child's (unbuffered) stdout, or a failure after ``timeout`` seconds
    instead of a hang when the answer never comes."""
    import select

    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        if not select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
            p.kill()
            pytest.fail(f"no answer within {timeout} s (got {line!r})")
        byte = p.stdout.read(1)
        if not byte:
            break
        line += byte
    return line


def ids(out):
    return [json.loads(line)["id"] for line in out.splitlines()]


def children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def gone(pid):
    """Exited: no such process, or a zombie nobody reaped yet (a container's init may not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pids, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not gone(p)]


def workers_of(p, n, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kids = children(p.pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.02)
    pytest.fail(f"no {n} worker processes appeared")


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(records(30000))
    return path


# ---- item 3: a pipe, FIFO or /dev/stdin, with the progress bar on a terminal ----------------


def pty_stderr():
    """A pseudo-terminal for the child's stderr, 100 columns wide; a thread collects what
    is drawn on it."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    drawn = []

    def collect():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child and every copy of the slave are gone
                return
            if not data:
                return
            drawn.append(data)

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    return master, slave, drawn, thread


TERMINAL_ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")},
    "TERM": "xterm-256color",
}


@pytest.mark.parametrize("kind", ["file", "fifo", "dev-stdin"])
def test_progress_bar_on_a_terminal_with_any_input(tmp_path, kind):
    """The bar counted bytes with tell(), which a pipe cannot do: 'Illegal seek' after 512
    records. Now: every answer, and the bar drawn (a percentage where the size is known)."""
    n = 1500
    data = records(n).encode()
    source = tmp_path / "r.jsonl"
    if kind == "file":
        source.write_bytes(data)
    elif kind == "fifo":
        os.mkfifo(source)
    else:
        source = Path("/dev/stdin")
    master, slave, drawn, collector = pty_stderr()
    p = gradcli(
        str(source),
        stdin=subprocess.PIPE if kind == "dev-stdin" else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=TERMINAL_ENV,
    )
    os.close(slave)
    if kind == "fifo":
        with open(source, "wb") as fifo:
            fifo.write(data)
        out, _ = p.communicate(timeout=60)
    else:
        out, _ = p.communicate(data if kind == "dev-stdin" else None, timeout=60)
    collector.join(timeout=10)
    os.close(master)
    screen = b"".join(drawn).decode(errors="replace")
    assert p.returncode == 0, screen
    assert ids(out) == list(range(1, n + 1))
    assert "Illegal seek" not in screen and "Traceback" not in screen
    assert re.search(r"batch .*\d+ answered", screen), screen
    if kind == "file":
        assert "%" in screen


# ---- item 4: memory flat in the input size with --jobs, huge lines cost only themselves ----


def peak_kib(args, stdout=subprocess.DEVNULL):
    """The largest resident size of gradcli or any of its workers, in KiB."""
    code = (
        "import resource, subprocess, sys\n"
        f"r = subprocess.run({[GRADCLI, 'batch', '--expr', EXPR, *args]!r},"
        " stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.buffer.write(r.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    rc, kib = p.stdout.split()
    return int(rc), int(kib), p.stderr


def test_jobs_memory_flat_with_huge_lines(tmp_path):
    """Huge lines between good records: the old pool held whole chunks in flight (all 16
    huge lines at once here) and ran out of memory, losing the records after them."""
    good = records(10)
    huge = "x" * (6 << 20) + "\n"

    def make(n_huge):
        path = tmp_path / f"h{n_huge}.jsonl"
        with open(path, "w") as f:
            for _ in range(n_huge):
                f.write(good + huge)
            f.write(records(300))
        return path

    small, large = make(2), make(16)
    rc, small_kib, err = peak_kib(["--jobs", "2", str(small)])
    assert rc == 1 and err == "2 of 322 records failed\n"
    out = subprocess.run(
        [GRADCLI, "batch", "--expr", EXPR, "--jobs", "2", str(large)], capture_output=True
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 16 * 11 + 300 and [r["id"] for r in rows] == list(range(1, 477))
    assert sum("error" in r for r in rows) == 16 and all("grad" in r for r in rows[-300:])
    rc, large_kib, err = peak_kib(["--jobs", "2", str(large)])
    assert rc == 1 and err == "16 of 476 records failed\n"
    # 8 times the huge lines, about the same memory: all 16 at once would be 84 MiB more
    # (16 - 2 lines of 6 MiB); the margin, half that, leaves room for where glibc's heap
    # happens to put a freed 6 MiB line (it measured +31 MB once on CPython 3.10)
    assert large_kib < small_kib + 48_000


def test_huge_line_with_jobs_costs_only_itself(monkeypatch):
    monkeypatch.setattr(batch, "MAX_LINE", 1000)
    good = json.dumps({"id": "g", "inputs": {"x": [1.0, 2.0]}}).encode()
    data = b"\n".join([good, b"[" + b"1," * 3000 + b"1]", good, b"z" * 5000, good]) + b"\n"
    out = io.StringIO()
    summary = batch.run(io.BytesIO(data), out, batch.Defaults(EXPR), jobs=2)
    rows = [json.loads(r) for r in out.getvalue().splitlines()]
    assert summary == (5, 2, None)
    assert [r["id"] for r in rows] == ["g", 2, "g", 4, "g"]
    assert "longer than 1000 bytes" in rows[1]["error"]["message"]


# ---- item 5: a worker killed mid-run -----------------------------------------------------


def test_killed_worker_is_replaced_and_no_line_lost(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(records(12000))
    p = gradcli("--jobs", "2", str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = readline(p)  # answers are flowing: the workers are busy
    victim = workers_of(p, 2)[0]
    os.kill(victim, signal.SIGKILL)
    rest, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert b"Traceback" not in err and err == b""
    assert ids(first + rest) == list(range(1, 12001))  # every line once, in order
    assert victim not in children(p.pid)


def test_a_record_that_kills_its_worker_is_an_error_answer(monkeypatch, tmp_path):
    """The record itself kills the worker every time (as one that makes the OOM killer
    strike would): it is tried again alone, then answered with an error; the others are
    answered as always."""
    real = batch.answer

    def deadly(line_no, raw, defaults, cache=None):
        if b"poison" in raw:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(line_no, raw, defaults, cache)

    monkeypatch.setattr(batch, "answer", deadly)  # the forked workers see it too
    lines = records(600).splitlines()
    lines[99] = json.dumps({"id": "poison", "inputs": {"x": [1.0]}})
    out_path = tmp_path / "out.jsonl"
    with open(out_path, "w") as out:
        summary = batch.run(
            io.BytesIO("\n".join(lines).encode()), out, batch.Defaults(EXPR), jobs=2
        )
    rows = [json.loads(r) for r in out_path.read_text().splitlines()]
    assert summary == (600, 1, None)
    assert [r["id"] for r in rows] == [*range(1, 100), "poison", *range(101, 601)]
    message = rows[99]["error"]["message"]
    assert "died (killed by SIGKILL" in message and "twice" in message
    assert all("grad" in r for k, r in enumerate(rows) if k != 99)


def test_units_queued_behind_a_dying_one_are_not_blamed(monkeypatch, tmp_path):
    """Each worker holds the unit it is on and the next one: when it dies, only the first
    unit's records are tried again alone (each one's death counted), the next goes back as
    it was; with two deadly records among many units only those two are error answers."""
    real = batch.answer

    def deadly(line_no, raw, defaults, cache=None):
        if b"poison" in raw:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(line_no, raw, defaults, cache)

    monkeypatch.setattr(batch, "answer", deadly)
    monkeypatch.setattr(batch, "CHUNK", 50)  # many units, two to a worker
    lines = records(1500).splitlines()
    for k in (120, 121):  # (the same unit: retried alone, each queued behind the other)
        lines[k] = json.dumps({"id": f"poison{k}", "inputs": {"x": [1.0]}})
    lines[777] = json.dumps({"id": "poison777", "inputs": {"x": [1.0]}})
    out_path = tmp_path / "out.jsonl"
    with open(out_path, "w") as out:
        summary = batch.run(
            io.BytesIO("\n".join(lines).encode()), out, batch.Defaults(EXPR), jobs=2
        )
    rows = [json.loads(r) for r in out_path.read_text().splitlines()]
    assert summary == (1500, 3, None)
    bad = [k for k, r in enumerate(rows) if "error" in r]
    assert bad == [120, 121, 777]
    assert [r["id"] for r in rows] == [f"poison{k}" if k in bad else k + 1 for k in range(1500)]


def test_first_programs_parsed_once_before_the_workers_fork(monkeypatch, tmp_path):
    """The programs of the first records are parsed in this process before the fork, so
    the workers find them in the cache they inherit instead of each parsing them (and
    importing their operators) at its first unit; later programs are the workers' own."""
    log = tmp_path / "parsed"
    real = batch._parse

    def logged(text):
        with open(log, "a") as f:
            f.write(json.dumps([os.getpid(), text]) + "\n")
        return real(text)

    monkeypatch.setattr(batch, "_parse", logged)
    monkeypatch.setattr(batch, "_CACHE", batch.ProgramCache())
    early = ["sum(sin(x))", "mean(x * x)"]
    lines = [{"id": k, "expr": early[k % 2], "inputs": {"x": [k, 2.0]}} for k in range(50)]
    lines.append({"id": "late", "expr": "sum(exp(x))", "inputs": {"x": [1.0]}})
    data = "".join(json.dumps(r) + "\n" for r in lines).encode()
    monkeypatch.setattr(batch, "BLOCK", data.index(b'{"id": "late"'))  # the first read's end
    out = io.StringIO()
    summary = batch.run(io.BytesIO(data), out, batch.Defaults(), jobs=2)
    assert summary == (51, 0, None)
    parsed = [tuple(json.loads(r)) for r in log.read_text().splitlines()]
    here = os.getpid()
    assert sorted(t for pid, t in parsed if t in early) == sorted(early)  # each once ...
    assert all(pid == here for pid, t in parsed if t in early)  # ... here, before the fork
    assert [pid != here for pid, t in parsed if t == "sum(exp(x))"] == [True]


@pytest.mark.parametrize("jobs", [1, 2])
def test_first_records_of_any_kind_answered_as_always(jobs):
    """What the parse before the fork reads may be anything: bad JSON, not an object, no
    program, a program that is not text or does not parse, one too long to cache. Nothing
    of it is reported there; each record gets the answer --jobs 1 gives it."""
    long_expr = "+".join(["x"] * 3000)  # past CACHE_TEXT
    lines = [
        b"{not json",
        b"[1, 2]",
        json.dumps({"id": "none", "inputs": {"x": [1.0]}}).encode(),
        json.dumps({"id": "num", "expr": 3, "inputs": {"x": [1.0]}}).encode(),
        json.dumps({"id": "bad", "expr": "sum(x", "inputs": {"x": [1.0]}}).encode(),
        json.dumps({"id": "long", "expr": f"sum({long_expr})", "inputs": {"x": [1.0]}}).encode(),
        json.dumps({"id": "ok", "expr": "sum(x^2)", "inputs": {"x": [1.0, 2.0]}}).encode(),
    ]
    data = b"\n".join(lines) + b"\n"
    outputs = []
    for j in (1, jobs):
        out = io.StringIO()
        summary = batch.run(io.BytesIO(data), out, batch.Defaults(), jobs=j)
        outputs.append((summary, out.getvalue()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == (7, 5, None)


def test_a_unit_fits_in_the_send_buffer_where_the_system_allows():
    """Each end of a worker's connection sends a whole unit without waiting for the other
    side to read: its send buffer is raised from the default (about 200 KB, less than a
    unit) as far as net.core.wmem_max lets it."""
    import socket

    worker = batch._Worker(batch._context(), batch.Defaults(EXPR))
    try:
        with socket.socket(fileno=os.dup(worker.conn.fileno())) as end:
            size = end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    finally:
        worker.stop()
    allowed = int(Path("/proc/sys/net/core/wmem_max").read_text())
    assert size >= min(2 * batch.CHUNK_BYTES, allowed)


# ---- item 6: a full disk -----------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_dev_full(tmp_path, jobs):
    path = tmp_path / "r.jsonl"
    path.write_text(records(3000))
    with open("/dev/full", "w") as full:
        p = subprocess.run(
            [GRADCLI, "batch", "--expr", EXPR, "--jobs", jobs, str(path)],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert p.returncode == 1
    assert p.stderr == (
        b"error: cannot write output: No space left on device (after 0 complete records)\n"
    )


def check_cut_output(out_path, stderr, reason):
    m = re.fullmatch(
        rf"error: cannot write output: {reason} \(after (\d+) complete records?\)\n", stderr
    )
    assert m, stderr
    n = int(m.group(1))
    text = out_path.read_text()
    assert n > 0 and text.endswith("\n")  # no partial last line
    assert ids(text) == list(range(1, n + 1))


def limit_file_size(limit):
    def set_up():
        default_signals()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return set_up


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_write_failing_mid_line_leaves_whole_lines(tmp_path, jobs):
    """A write cut short part-way through a line (as a filling disk does): the cut line is
    taken back and the error says how many answers are complete."""
    path = tmp_path / "r.jsonl"
    path.write_text(records(3000))
    out_path = tmp_path / "out.jsonl"
    with open(out_path, "w") as out:
        p = subprocess.run(
            [GRADCLI, "batch", "--expr", EXPR, "--jobs", jobs, str(path)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit_file_size(100_001),  # not a line boundary
            timeout=60,
        )
    assert p.returncode == 1
    check_cut_output(out_path, p.stderr, "File too large")


def test_small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = Path(tempfile.mkdtemp(dir=tmp_path))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        path = tmp_path / "r.jsonl"
        path.write_text(records(3000))
        out_path = mount / "out.jsonl"
        with open(out_path, "w") as out:
            p = subprocess.run(
                [GRADCLI, "batch", "--expr", EXPR, str(path)],
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        assert p.returncode == 1
        check_cut_output(out_path, p.stderr, "No space left on device")
    finally:
        subprocess.run(["umount", str(mount)])


# ---- item 7: signals to batch --jobs 2 ------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_signals_take_the_workers_along(big, signum):
    """Workers used to outlive the parent holding stdout, so `| wc -l` never ended: here
    communicate() reading stdout to its end is that wc."""
    p = gradcli("--jobs", "2", str(big), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = readline(p)
    workers = workers_of(p, 2)
    p.send_signal(signum)
    rest, err = p.communicate(timeout=20)  # stdout reaches its end: nobody holds it
    assert wait_gone(workers) == []
    out = first + rest
    if signum == signal.SIGKILL:
        assert p.returncode == -signal.SIGKILL
        return
    assert p.returncode == 128 + signum and b"Traceback" not in err
    n = len(out.splitlines())
    assert err == f"stopped by {signal.Signals(signum).name} after {n} records\n".encode()
    assert out.endswith(b"\n") and ids(out) == list(range(1, n + 1))


# ---- item 11: closed and unreadable streams ----------------------------------------------


@pytest.mark.parametrize(
    "shell,code,fragment",
    [
        ("<&-", 2, "stdin is closed"),
        ("/proc/self/mem", 2, "cannot read '/proc/self/mem': Input/output error"),
        (">&- < {path}", 1, "cannot write output"),
    ],
)
def test_closed_and_unreadable_streams(tmp_path, shell, code, fragment):
    path = tmp_path / "r.jsonl"
    path.write_text(records(3))
    command = f"{GRADCLI} batch --expr '{EXPR}' " + shell.format(path=path)
    p = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
    assert p.returncode == code and p.stderr.startswith("error: ") and fragment in p.stderr
    assert "Traceback" not in p.stderr


# ---- item 13: slow pipes, Ctrl-C, | head, the --jobs clamp ---------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_slow_pipe_answers_each_line_at_once(jobs):
    """`tail -f log | gradcli batch --jobs 2`: each answer comes while its line is the last
    one written (the old pool waited for 8 chunks in flight)."""
    p = gradcli("--jobs", jobs, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for i in range(4):
            p.stdin.write(json.dumps({"id": i, "inputs": {"x": [1.0, 2.0]}}).encode() + b"\n")
            p.stdin.flush()
            assert json.loads(readline(p))["id"] == i
    finally:
        p.stdin.close()
        assert p.wait(timeout=30) == 0


def test_ctrl_c_with_jobs_stops_at_once(big):
    p = gradcli("--jobs", "2", str(big), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = readline(p)
    workers = workers_of(p, 2)
    p.send_signal(signal.SIGINT)
    start = time.monotonic()
    rest, err = p.communicate(timeout=30)
    assert time.monotonic() - start < 5  # it took 27-291 s: now well under a second here
    assert p.returncode == 130 and b"Traceback" not in err
    out = first + rest
    n = len(out.splitlines())
    assert err == f"interrupted after {n} records\n".encode() and 0 < n < 30000
    assert ids(out) == list(range(1, n + 1)) and wait_gone(workers) == []


def test_second_ctrl_c_is_never_ignored(big):
    """Blocked writing to a reader that does not read: the first Ctrl-C waits for the write
    (no half line), the second stops at once."""
    p = gradcli("--jobs", "2", str(big), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    readline(p)
    workers = workers_of(p, 2)
    time.sleep(0.5)  # the pipe fills up: gradcli waits in write()
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    start = time.monotonic()
    while p.poll() is None and time.monotonic() - start < 10:
        time.sleep(0.05)
    assert p.returncode == 130
    p.communicate(timeout=10)
    assert wait_gone(workers) == []


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_head_stops_promptly(big, jobs):
    p = subprocess.run(
        f"{GRADCLI} batch --expr '{EXPR}' --jobs {jobs} {big} | head -1",
        shell=True,
        capture_output=True,
        timeout=30,  # it kept both cores busy for up to 82 s
    )
    assert p.stderr == b"" and len(p.stdout.splitlines()) == 1


def test_jobs_clamped_to_four_per_core():
    p = gradcli("--jobs", "1000", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        p.stdin.write(b'{"inputs": {"x": 1}}\n')
        p.stdin.flush()
        assert json.loads(readline(p))["id"] == 1
        assert 2 <= len(children(p.pid)) <= 4 * batch.cores()
    finally:
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    help_text = subprocess.run([GRADCLI, "batch", "--help"], capture_output=True, text=True)
    assert "at most 4 per core" in help_text.stdout


# ---- item 15: an endless line ------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_dev_zero_ends_in_bounded_memory(jobs):
    rc, kib, err = peak_kib(["--jobs", jobs, "/dev/zero"])
    assert rc == 2 and kib < 300_000
    assert re.fullmatch(  # (#10 item 15: the message names the option that raises the limit)
        r"error: line 1 has no line end in its first [\d,]+ bytes: '/dev/zero' is not JSON "
        r"Lines \(after 1 complete record\)\nhint: --max-line-bytes N raises the limits.*\n",
        err,
    ), err
    p = subprocess.run(
        [GRADCLI, "batch", "--expr", EXPR, "--jobs", jobs, "/dev/zero"],
        capture_output=True,
        timeout=60,
    )
    (row,) = [json.loads(line) for line in p.stdout.splitlines()]
    assert row["id"] == 1 and "line longer than" in row["error"]["message"]


def test_endless_line_skip_is_bounded(monkeypatch):
    """In-process: a line over MAX_LINE is answered at once, the rest skipped in pieces; a
    line that never ends stops the run after MAX_SKIP bytes with an error that counts."""
    monkeypatch.setattr(batch, "MAX_LINE", 100)
    monkeypatch.setattr(batch, "MAX_SKIP", 10_000)
    monkeypatch.setattr(batch, "BLOCK", 1000)
    good = b'{"inputs": {"x": 1}}\n'
    out = io.StringIO()
    summary = batch.run(io.BytesIO(good + b"a" * 5000 + b"\n" + good), out, batch.Defaults(EXPR))
    assert summary == (3, 1, None) and ids(out.getvalue()) == [1, 2, 3]
    out = io.StringIO()
    with pytest.raises(batch.InputError, match=r"line 2 has no line end .*after 2 complete"):
        batch.run(io.BytesIO(good + b"a" * 50_000), out, batch.Defaults(EXPR))
    assert ids(out.getvalue()) == [1, 2]
