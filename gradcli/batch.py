"""JSON Lines in, JSON Lines out: one answer per non-blank line, in order; a bad line costs
only itself. The work per line is one pure function (bytes -> answer line), so running it on
N processes gives byte-identical output."""

import collections
import io
import math
import os
import signal
import stat
import sys

from .errors import GradcliError, InputError
from .inputs import load_object

FIELDS = ("id", "expr", "inputs", "seed_vector", "wrt", "dtype")
MAX_LINE = 64 * 1024 * 1024  # a longer line is answered with an error, not read into memory
CHUNK = 256  # lines per task with --jobs
CACHE_SIZE = 256  # parsed programs kept, most recently used


class Defaults:
    """What the command line supplies for records that do not say."""

    def __init__(
        self,
        expr=None,
        dtype="float32",
        wrt=None,
        nodes=False,
        random_seed=None,
        max_elements=None,
        detect_anomaly=False,
    ):
        self.expr, self.dtype, self.wrt = expr, dtype, wrt
        self.nodes, self.random_seed = nodes, random_seed
        self.max_elements, self.detect_anomaly = max_elements, detect_anomaly


class ProgramCache:
    """Parsed programs by text: a program seen before is not parsed again."""

    def __init__(self, size=CACHE_SIZE):
        self.size = size
        self.programs = collections.OrderedDict()

    def get(self, text):
        from .parser import parse

        program = self.programs.get(text)
        if program is None:
            program = parse(text)
            self.programs[text] = program
            if len(self.programs) > self.size:
                self.programs.popitem(last=False)
        else:
            self.programs.move_to_end(text)
        return program


def answer(line_no, raw, defaults, cache):
    """One input line -> (answer line, ok). Never raises for anything the line holds."""
    from .render import dumps

    record_id = line_no
    try:
        record = _record(raw)
        record_id = _check_id(record.get("id", line_no))
        result = _evaluate(record, line_no, defaults, cache)
        out = {"id": record_id}
        out.update(result.to_dict(nodes=defaults.nodes))
        return dumps(out), True
    except GradcliError as e:
        return _error(record_id, e.type, _message(e), line_no), False
    except MemoryError:
        return _error(
            record_id, "EvaluationError", "out of memory evaluating this record", line_no
        ), False
    except RecursionError:
        return _error(record_id, "InputError", "input nested too deeply", line_no), False
    except Exception as e:  # noqa: BLE001 - a bug must not cost the other records their answers
        return _error(
            record_id,
            "InternalError",
            f"{type(e).__name__}: {e} (please report this as a gradcli bug)",
            line_no,
        ), False


def _record(raw):
    if len(raw) > MAX_LINE:
        raise InputError(f"line longer than {MAX_LINE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"line is not valid UTF-8 (byte {e.start})") from None
    record = load_object(text, "record")
    unknown = [k for k in record if k not in FIELDS]
    if unknown:
        raise InputError(f"unknown field '{unknown[0]}'; a record has {', '.join(FIELDS)}")
    return record


def _check_id(value):
    """An id is echoed in every answer: a string or a finite number."""
    if isinstance(value, str) or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ):
        return value
    raise InputError('"id" must be a string or a finite number')


def _evaluate(record, line_no, defaults, cache):
    from .api import run

    expr = record.get("expr", defaults.expr)
    if expr is None:
        raise InputError('no program: give "expr" in the record, or --expr/-f')
    if not isinstance(expr, str):
        raise InputError('"expr" must be a string')
    inputs = record.get("inputs", {})
    if not isinstance(inputs, dict):
        raise InputError('"inputs" must be a JSON object of NAME: VALUE')
    dtype = record.get("dtype", defaults.dtype)
    if not isinstance(dtype, str):
        raise InputError('"dtype" must be "float32" or "float64"')
    wrt = record.get("wrt", defaults.wrt)
    if wrt is not None and not (
        isinstance(wrt, str) or (isinstance(wrt, list) and all(isinstance(w, str) for w in wrt))
    ):
        raise InputError('"wrt" must be a list of names or a comma-separated string')
    seed = None if defaults.random_seed is None else [defaults.random_seed, line_no]
    return run(
        cache.get(expr),
        inputs,
        seed_vector=record.get("seed_vector"),
        wrt=wrt,
        dtype=dtype,
        random_seed=seed,
        max_elements=defaults.max_elements,
        detect_anomaly=defaults.detect_anomaly,
        keep="all" if defaults.nodes else "inputs",
    )


def _message(e):
    msg = e.message
    if e.position is not None:
        msg += f" (at line {e.position[0]}, column {e.position[1]} of the program)"
    if e.hint:
        msg += f"; {e.hint}"
    return msg


def _error(record_id, kind, message, line_no):
    from .render import dumps

    return dumps({"id": record_id, "error": {"type": kind, "message": message, "line": line_no}})


# ---- reading ------------------------------------------------------------------------------


def lines(stream):
    """(line number, bytes) for each non-blank line; an over-long line is cut at MAX_LINE + 1
    bytes (so it is answered with an error) and the rest of it skipped, unread into memory."""
    line_no = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while True:  # skip the rest of the long line
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
        if raw.strip():
            yield line_no, raw.rstrip(b"\r\n")


AUTO_BYTES = 256 * 1024  # --jobs auto spreads a file this big over every core


def auto_jobs(stream):
    """Every core for a regular file big enough to repay the workers' start; one process
    for pipes and terminals (answers come as lines arrive) and for small files."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return 1
    if not stat.S_ISREG(st.st_mode) or st.st_size < AUTO_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def is_interactive(stream):
    """A pipe, terminal or socket: answer each line as soon as it is read."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False  # an in-memory stream (tests, embedding): no waiting reader
    return not stat.S_ISREG(mode)


# ---- running ------------------------------------------------------------------------------


class _Interrupt:
    """Ctrl-C stops at a line boundary: while a line is being answered and written, SIGINT
    only sets a flag; while waiting for input it interrupts the read at once."""

    def __init__(self):
        self.requested = False
        self.reading = False
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (embedded use): leave signals alone
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame):
        self.requested = True
        if self.reading:
            raise KeyboardInterrupt


def run(stream, out, defaults, *, jobs=1, interactive=False, progress=None):
    """Answer every line of ``stream`` (binary) on ``out`` (text). Returns (records, failed,
    interrupted)."""
    from .api import quietly

    total = failed = 0
    with _Interrupt() as interrupt, quietly():
        source = _guarded(lines(stream), interrupt)
        # On an interactive input a chunk is one line, so each answer still comes as soon as
        # its line (and every line before it) is done; files go in chunks, for throughput.
        answers = (
            _answers_serial(source, defaults)
            if jobs <= 1
            else _answers_parallel(source, defaults, jobs, interrupt, 1 if interactive else CHUNK)
        )
        try:
            for text, ok, _line in answers:
                out.write(text + "\n")
                total += 1
                failed += not ok
                if interactive:
                    out.flush()
                if progress is not None:
                    progress(stream)
                if interrupt.requested:
                    break
        except KeyboardInterrupt:
            interrupt.requested = True
        out.flush()
    return total, failed, interrupt.requested


def _guarded(source, interrupt):
    """The line iterator, with SIGINT allowed to interrupt only the wait for input."""
    while True:
        interrupt.reading = True
        try:
            item = next(source, None)
        finally:
            interrupt.reading = False
        if item is None or interrupt.requested:
            return
        yield item


def _answers_serial(source, defaults):
    cache = ProgramCache()
    for line_no, raw in source:
        text, ok = answer(line_no, raw, defaults, cache)
        yield text, ok, line_no


_worker_cache = None


def _worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop


def _answer_chunk(chunk, defaults):
    from .api import quietly

    global _worker_cache
    if _worker_cache is None:
        _worker_cache = ProgramCache()
    with quietly():
        return [answer(n, raw, defaults, _worker_cache) + (n,) for n, raw in chunk]


def _answers_parallel(source, defaults, jobs, interrupt, chunk_size):
    """Chunks of lines on ``jobs`` processes; answers come back in input order, and at most
    a few chunks per process are in flight, so memory stays flat on any input size."""
    from concurrent.futures import ProcessPoolExecutor

    pending = collections.deque()
    with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init) as pool:
        try:
            chunk = []
            for item in source:
                chunk.append(item)
                if len(chunk) >= chunk_size:
                    pending.append(pool.submit(_answer_chunk, chunk, defaults))
                    chunk = []
                    while len(pending) >= 4 * jobs:
                        yield from pending.popleft().result()
                        if interrupt.requested:
                            return
            if chunk:
                pending.append(pool.submit(_answer_chunk, chunk, defaults))
            while pending and not interrupt.requested:
                yield from pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def progress_bar(path):
    """A rich progress bar over the bytes of an input file (stderr must be a terminal)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    size = os.path.getsize(path)
    bar = Progress(
        "batch",
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=_stderr_console(),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = bar.add_task("batch", total=size or 1)
    state = {"n": 0}

    def update(stream):
        state["n"] += 1
        if state["n"] % 512 == 0:
            bar.update(task, completed=stream.tell())

    return bar, update


def _stderr_console():
    from rich.console import Console

    return Console(file=sys.stderr)
