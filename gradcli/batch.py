"""JSON Lines in, JSON Lines out: one answer per non-blank line, in order; a bad line costs
only itself. The work per line is one pure function (bytes -> answer line), so running it on
N processes gives byte-identical output.

What a run guarantees, whatever happens to it: every line is answered exactly once and in
order, written whole (never half a line), or the run stops and says how many answers were
complete. Memory stays flat in the size of the input: a line costs only itself, and a line
longer than MAX_LINE (or --max-line-bytes) is answered with an error without being held."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import io
import math
import os
import signal
import stat
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TextIO

from .errors import EvaluationError, GradcliError, InputError, OutputError

if TYPE_CHECKING:
    from rich.progress import Progress

    from .parser import Program

COMMON = ("id", "task", "expr", "inputs", "wrt", "dtype")
TASKS = {  # a record's "task" and the fields that task adds (its command's options)
    "grad": ("seed_vector",),
    "jvp": ("tangents",),
    "jacobian": ("mode",),
    "hessian": (),
    "check": ("eps", "atol", "rtol"),
}
FIELDS = COMMON + tuple(f for extra in TASKS.values() for f in extra)
MAX_LINE = 64 * 1024 * 1024  # a longer line is answered with an error, not read into memory
MAX_SKIP = 1 << 30  # a line still without a newline after this is not JSON Lines: stop
SKIP_FACTOR = 16  # --max-line-bytes N: a line with no end stops after max(MAX_SKIP, 16 N)
BLOCK = 1 << 18  # bytes per read
CHUNK = 256  # --jobs: at most this many lines go to a worker at once ...
CHUNK_BYTES = 1 << 20  # ... and at most about this many bytes
HELD_BYTES = 32 << 20  # --jobs: at most about this many bytes of records read, not yet written
CACHE_SIZE = 64  # parsed programs kept, most recently used ...
CACHE_TEXT = 4096  # ... of at most this many characters each (see ProgramCache)


@dataclasses.dataclass
class Defaults:
    """What the command line supplies for records that do not say."""

    expr: str | None = None
    dtype: str = "float32"
    wrt: str | list[str] | None = None
    nodes: bool = False
    random_seed: int | None = None
    max_elements: int | None = None
    detect_anomaly: bool = False
    max_line_bytes: int | None = None  # None: MAX_LINE
    _program: Program | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    def program(self) -> Program:
        """``expr`` parsed once, whatever its size (it is every record's program)."""
        if self.expr is None:
            raise InputError('no program: give "expr" in the record, or --expr/-f')
        if self._program is None:
            self._program = _parse_default(self.expr)
        return self._program


@functools.lru_cache(maxsize=1)
def _parse_default(text: str) -> Program:
    """The default program, parsed once per process: a Dask task gets a copy of Defaults
    without the parsed program, and its worker parses it at most once for all its blocks."""
    return _parse(text)


def _parse(text: str) -> Program:
    from .parser import parse

    return parse(text)


class ProgramCache:
    """Parsed programs by text: a program seen before is not parsed again.

    functools.lru_cache bounds the count; a parsed program takes about 100 times its text
    in memory, so programs over CACHE_TEXT characters are parsed per record instead of
    cached, which bounds the cache to about CACHE_SIZE * CACHE_TEXT * 100 bytes (26 MB)
    per process. (A long default program, --expr or -f, is parsed once: Defaults.program.)"""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._cached = functools.lru_cache(maxsize=size)(_parse)

    def get(self, text: str) -> Program:
        return self._cached(text) if len(text) <= CACHE_TEXT else _parse(text)


_CACHE = ProgramCache()


class _Lazy:
    """The modules every record needs, imported at the first record (not at import: a usage
    error stays instant) and then looked up once per record, not imported again."""

    run: Callable[..., Any]
    dumps: Callable[[Any], str]
    load_record: Callable[[bytes], dict[str, Any]]
    answer_many: Callable[..., list[tuple[str, bool]]]
    paused_gc: Callable[..., contextlib.AbstractContextManager[Any]]
    ready = False

    @classmethod
    def bind(cls) -> type[_Lazy]:
        if not cls.ready:
            from . import api, jsonio, parser, stacked

            cls.run, cls.dumps, cls.load_record = api.run, jsonio.dumps, jsonio.load_record
            cls.paused_gc = parser.paused_gc
            cls.answer_many = stacked.answer_many
            cls.ready = True
        return cls


def _settle() -> None:
    """After the first answer of a run (the modules, the grammar and its first program
    loaded): what is alive now lives as long as the process, so the cyclic garbage collector
    stops walking it at every collection (about a tenth of the time per record; the
    records themselves are freed by reference counting). Once per process: anything frozen
    is never collected. Only gradcli's own runs do this, not answer_lines() in someone
    else's process."""
    global _SETTLED
    if not _SETTLED:
        import gc

        gc.freeze()
        _SETTLED = True


_SETTLED = False


def _keep(value):
    return value  # arrays stay arrays: jsonio.dumps formats them


def answer(
    line_no: int, raw: bytes | None, defaults: Defaults, cache: ProgramCache | None = None
) -> tuple[str, bool]:
    """One input line -> (answer line, ok). ``raw`` is None for a line over the line limit
    (see lines()). Never raises for anything the line holds. Without cyclic garbage
    collection: the record's objects (10^6 nodes for a long program) are freed by reference
    counting before it resumes, instead of walked by a collection first."""
    lazy = _Lazy.bind()
    with lazy.paused_gc():
        return _answer(line_no, raw, defaults, cache, lazy)


def _answer(line_no, raw, defaults, cache, lazy):
    record_id: object = line_no
    try:
        record = _record(raw, defaults.max_line_bytes)
        record_id = _check_id(record.get("id", line_no))
        result, ok = _evaluate(record, line_no, defaults, _CACHE if cache is None else cache)
        return lazy.dumps({"id": record_id, **result}), ok
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


def _record(raw, limit=None):
    limit = MAX_LINE if limit is None else limit
    if raw is None or len(raw) > limit:
        raise InputError(
            f"line longer than {limit} bytes",
            hint="raise the limit with --max-line-bytes, give large inputs as generators "
            "(randn(n), zeros(n), ...) or split the record",
        )
    record = _Lazy.bind().load_record(raw)
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
    """A record's answer (its task's JSON object, without "id") and whether it succeeded."""
    task = record.get("task", "grad")
    if task not in TASKS:
        raise InputError(f'"task" must be one of {", ".join(TASKS)}')
    stray = [k for k in record if k not in COMMON and k not in TASKS[task]]
    if stray:
        takes = ", ".join(COMMON + TASKS[task])
        raise InputError(f"'{stray[0]}' is not a field of task {task}, which has {takes}")
    if "expr" in record:
        expr = record["expr"]
        if not isinstance(expr, str):
            raise InputError('"expr" must be a string')
        program = cache.get(expr)
    else:
        program = defaults.program()
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
    if task != "grad":
        return _derivative(task, record, program, inputs, wrt, dtype, seed, defaults)
    first = _first_use(program)
    if first:  # no evaluation plan for a program evaluated once (batch -f, one record)
        program.once = True
    try:
        result = _Lazy.run(
            program,
            inputs,
            seed_vector=record.get("seed_vector"),
            wrt=wrt,
            dtype=dtype,
            random_seed=seed,
            max_elements=defaults.max_elements,
            detect_anomaly=defaults.detect_anomaly,
            keep="all" if defaults.nodes else "inputs",
        )
    finally:
        if first:
            program.once = False
    return result.to_dict(nodes=defaults.nodes, encode=_keep), True


_USED: weakref.WeakSet[Program] = weakref.WeakSet()  # programs a record was evaluated with


def _first_use(program: Program) -> bool:
    """Whether no record was evaluated with ``program`` before (and it has no plan): the
    engine's plan (engine.forward) costs about a fifth of an evaluation to record and pays
    only from the next record of the same shapes, so the first record goes without one and
    the second records it (a program parsed per record, over CACHE_TEXT, never records
    one). Either way the values are the same; only the work differs. Weak: a program
    dropped from the cache is not kept alive here."""
    if program.plans or program in _USED:
        return False
    _USED.add(program)
    return True


def _derivative(task, record, program, inputs, wrt, dtype, seed, defaults):
    """jvp, jacobian, hessian or check on one record: the command's own function and its
    own JSON (what `gradcli TASK --json` prints)."""
    import types

    from . import derivatives, render
    from .inputs import check_dtype

    check_dtype(dtype)
    job = types.SimpleNamespace(text=program.text, dtype=dtype)
    common = {"wrt": wrt, "random_seed": seed, "max_elements": defaults.max_elements}
    if task == "jvp":
        tangents = record.get("tangents")
        if tangents is None:  # as `gradcli jvp` without --tangent: no direction, no answer
            raise InputError('a "jvp" record needs "tangents": {NAME: VALUE}')
        if not isinstance(tangents, dict):
            raise InputError('"tangents" must be a JSON object of NAME: VALUE')
        out = derivatives.jvp(program, inputs, tangents, dtype=dtype, **common)
        return render.jvp_json(out, job), True
    if task == "jacobian":
        mode = record.get("mode", "auto")
        if mode not in ("auto", "forward", "reverse"):
            raise InputError('"mode" must be "auto", "forward" or "reverse"')
        out = derivatives.jacobian(
            program, inputs, dtype=dtype, mode=None if mode == "auto" else mode, **common
        )
        return render.jacobian_json(out, job), True
    if task == "hessian":
        out = derivatives.hessian(program, inputs, dtype=dtype, **common)
        return render.hessian_json(out, job), True
    tolerances = {
        k: _number(record, k, v) for k, v in (("eps", 1e-6), ("atol", 1e-5), ("rtol", 1e-3))
    }
    out = derivatives.check(program, inputs, **tolerances, **common)  # (always in float64)
    return render.check_json(out, job), out["ok"]  # a check that fails is a failed record


def _number(record, key, default):
    value = record.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f'"{key}" must be a number')
    if key == "eps" and not 0 < value < math.inf:
        raise InputError('"eps" must be a positive finite number')
    if not value >= 0:
        raise InputError(f'"{key}" must be at least 0')
    return float(value)


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


class _Reader:
    """The non-blank lines of a binary stream as (line number, bytes), in bounded memory: a
    line over ``max_line`` bytes (default MAX_LINE) comes as (line number, None) and the rest
    of it is skipped unread into memory; a line with no end after MAX_SKIP bytes (or
    SKIP_FACTOR times ``max_line``, if more) stops the reading with an error. Reads the
    stream's descriptor directly where it has one, so that a pipe can be waited on (select)
    together with the workers, and counts the bytes read (the progress bar needs no seek)."""

    def __init__(
        self,
        stream: BinaryIO,
        first_line: int = 1,
        bom: bool = True,
        max_line: int | None = None,
    ) -> None:
        self.max_line = MAX_LINE if max_line is None else max_line
        self.max_skip = MAX_SKIP if max_line is None else max(MAX_SKIP, SKIP_FACTOR * max_line)
        self.name = str(getattr(stream, "name", "input"))
        try:
            fd = stream.fileno()
            mode = os.fstat(fd).st_mode
        except (OSError, ValueError, AttributeError):
            fd, mode = None, stat.S_IFREG  # an in-memory stream: always ready, never waits
        self.fd = fd
        self.pollable = not stat.S_ISREG(mode)  # a pipe, terminal or socket: may have to wait
        self._read = functools.partial(os.read, fd) if fd is not None else _reader_of(stream)
        self.bytes_read = 0
        self.first_line = first_line if bom else None  # (a block from inside a file: no BOM)
        self.line_no = first_line - 1
        self.eof = False
        self.error: str | None = None
        self.hint: str | None = None  # (how to get past the error, where there is a way)
        self._pieces: list[bytes] = []  # the line being read, so far
        self._pending = 0
        self._skipped: int | None = None  # bytes skipped of an over-long line

    def fill(self) -> list[tuple[int, bytes | None]]:
        """One read (it waits only if nothing is ready); the lines it completed."""
        try:
            data = self._read(BLOCK)
        except BlockingIOError:  # a descriptor left non-blocking by whoever passed it on
            if self.fd is not None:
                import select

                select.select([self.fd], [], [])
            return []
        except OSError as e:
            self.eof, self.error = True, f"cannot read '{self.name}': {e.strerror or e}"
            data = b""
        self.bytes_read += len(data)
        if not data:
            self.eof = True
            items: list[tuple[int, bytes | None]] = []
            if self._pieces and self._skipped is None:
                self._line(b"".join(self._pieces), items)
            self._pieces = []
            return items
        return self._feed(data)

    def _feed(self, data):
        items: list[tuple[int, bytes | None]] = []
        if self._skipped is not None:
            end = data.find(b"\n")
            if end < 0:
                self._skipped += len(data)
                if self._skipped > self.max_skip:
                    self.eof = True
                    self.error = (
                        f"line {self.line_no} has no line end in its first {self.max_skip:,} "
                        f"bytes: '{self.name}' is not JSON Lines"
                    )
                    self.hint = LINE_HINT
                return items
            data, self._skipped = data[end + 1 :], None
        parts = data.split(b"\n")
        if len(parts) > 1:
            self._pieces.append(parts[0])
            self._line(b"".join(self._pieces), items)
            middle = parts[1:-1]
            if len(data) <= self.max_line:  # (none of them over the limit, nor the first)
                n = self.line_no
                items += [
                    (n + k, p.rstrip(b"\r"))
                    for k, p in enumerate(middle, 1)
                    if p and not p.isspace()
                ]
                self.line_no = n + len(middle)
            else:
                for part in middle:
                    self._line(part, items)
            self._pieces, self._pending = [], 0
        tail = parts[-1]
        if tail:
            self._pieces.append(tail)
            self._pending += len(tail)
            if self._pending > self.max_line:
                self.line_no += 1
                items.append((self.line_no, None))
                self._skipped, self._pieces, self._pending = self._pending, [], 0
        return items

    def _line(self, raw, items):
        self.line_no += 1
        if self.line_no == self.first_line and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 byte-order mark, as some editors write
        if len(raw) > self.max_line:
            items.append((self.line_no, None))
        elif raw and not raw.isspace():
            items.append((self.line_no, raw.rstrip(b"\r")))


def _reader_of(stream):
    return getattr(stream, "read1", None) or stream.read


def lines(
    stream: BinaryIO, first_line: int = 1, *, bom: bool = True, max_line: int | None = None
) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each non-blank line of a binary stream, without its line
    end, numbered from ``first_line``; None instead of the bytes for a line over
    ``max_line`` bytes (default MAX_LINE), whose rest is skipped unread. A byte-order mark
    before the first line is dropped, unless ``bom`` is false (a block from inside a file).
    Raises InputError when the stream cannot be read on."""
    reader = _Reader(stream, first_line, bom, max_line)
    while not reader.eof:
        yield from reader.fill()
    if reader.error:
        raise InputError(reader.error, hint=reader.hint)


LINE_HINT = (
    f"--max-line-bytes N raises the limits: a line may then have N bytes, and one with no "
    f"end stops the run after {SKIP_FACTOR} N bytes (at least {MAX_SKIP:,})"
)
AUTO_BYTES = 256 * 1024  # --jobs auto spreads a file this big over every core


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def max_jobs() -> int:
    """--jobs is clamped to this: more processes than 4 per core only cost memory."""
    return 4 * cores()


def auto_jobs(stream: BinaryIO) -> int:
    """Every core for a regular file big enough to repay the workers' start; one process
    for pipes and terminals (answers come as lines arrive) and for small files."""
    size = input_size(stream)
    if size is None or size < AUTO_BYTES:
        return 1
    return max(1, min(cores(), 8))


def input_size(stream: BinaryIO) -> int | None:
    """The bytes of a regular file (on disk, for a compressed or remote one), else None."""
    size = getattr(stream, "size", None)
    if isinstance(size, int) and not isinstance(stream, io.IOBase):
        return size  # (an open_input() wrapper)
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


# ---- writing ------------------------------------------------------------------------------


class _Output:
    """Answer lines, whole: buffered as complete lines and written with os.write, so a
    failed write (a full disk) is known to the byte. A line cut by a failed write is cut
    off again (truncate) where the output is a regular file; the error says how many
    answers were complete."""

    def __init__(self, out, signals):
        self.signals = signals
        self.stream = out
        self.fd = None
        if out is None:
            raise OutputError("cannot write output: stdout is closed (after 0 complete records)")
        try:
            self.fd = out.fileno()
            out.flush()  # anything written before us goes first
        except (AttributeError, io.UnsupportedOperation):
            self.fd = None  # an in-memory stream (tests, embedding): its own write()
        except (OSError, ValueError) as e:
            raise OutputError(
                f"cannot write output: {getattr(e, 'strerror', None) or e} "
                "(after 0 complete records)"
            ) from None
        self.lines: list[bytes] = []  # whole answer lines, one or more to an item
        self.pending = 0  # answers in ``lines``
        self.size = 0
        self.complete = 0  # answers written whole
        self.broken = False

    def add(self, text: str) -> None:
        self.add_lines(text.encode() + b"\n", 1)  # ASCII: render.dumps escapes the rest

    def add_lines(self, data: bytes, count: int) -> None:
        """``count`` whole answer lines, each ending in a newline."""
        self.lines.append(data)
        self.pending += count
        self.size += len(data)
        if self.size >= 1 << 16:
            self.flush()

    def flush(self) -> None:
        if not self.lines or self.broken:
            return
        data = b"".join(self.lines)
        written = 0
        self.signals.in_write = True
        try:
            if self.fd is None:
                self.stream.write(data.decode())
                self.stream.flush()
            else:
                view = memoryview(data)
                while written < len(data):
                    written += os.write(self.fd, view[written:])
        except BaseException as e:  # a full disk, a reader gone, a second signal
            self.broken = True  # nothing more is written: no line twice, none cut
            n = self._cut(data, written)
            if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):
                raise OutputError(
                    f"cannot write output: {e.strerror or e} "
                    f"(after {n} complete record{'s' if n != 1 else ''})"
                ) from None
            raise
        finally:
            self.signals.in_write = False
        self.complete += self.pending
        self.lines, self.pending, self.size = [], 0, 0
        self.signals.deferred()

    def _cut(self, data, written):
        """After a failed write of the first ``written`` bytes of ``data``: count the
        answers written whole, and take back a cut line where the output is a regular
        file."""
        whole = data.rfind(b"\n", 0, written) + 1  # (the bytes of the whole lines written)
        self.complete += data.count(b"\n", 0, whole)
        cut = written - whole
        if cut and self.fd is not None:
            try:
                if stat.S_ISREG(os.fstat(self.fd).st_mode):
                    os.ftruncate(self.fd, os.lseek(self.fd, 0, os.SEEK_CUR) - cut)
            except OSError:
                pass
        self.lines, self.pending = [], 0
        return self.complete


# ---- signals ------------------------------------------------------------------------------


class _Stopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: the run stops (BaseException: answer() catches
    Exception, and a stop is not a bad record)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT, SIGTERM and SIGHUP stop the run at once, except in the middle of writing
    answers, where the first one waits for the write to end (no half-written line); a
    second signal never waits. Signals that were ignored (nohup, a background job) stay
    ignored."""

    STOP = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP"))

    def __init__(self):
        self.previous = {}
        self.in_write = False
        self.pending = None
        self.stopping = False

    def __enter__(self):
        try:
            for signum in self.STOP:
                if signal.getsignal(signum) != signal.SIG_IGN:
                    self.previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread (embedded use): leave signals alone
            pass
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame):
        if self.in_write and not self.stopping:
            self.pending, self.stopping = signum, True
            return
        self.stopping = True
        raise _Stopped(signum)

    def deferred(self):
        """Stop now for a signal that came in the middle of a write."""
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise _Stopped(signum)


# ---- running ------------------------------------------------------------------------------


class Summary(NamedTuple):
    """What a run did: answers written, how many of them were errors, and the signal that
    stopped it (None when it read to the end)."""

    records: int
    failed: int
    stopped_by: int | None


def run(
    stream: BinaryIO,
    out: TextIO | None,
    defaults: Defaults,
    *,
    jobs: int = 1,
    first_line: int = 1,
    progress: Callable[[int, int, bool, int], None] | None = None,
) -> Summary:
    """Answer every line of ``stream`` (binary) on ``out`` (a text stream; written through
    its file descriptor where it has one), on ``jobs`` processes (at most max_jobs()).
    ``progress(bytes done, answers, last, failed)`` is called after each answer, and with
    ``last`` true at the end. Raises OutputError when the answers cannot be written and InputError
    when the input cannot be read on, each saying how many answers were complete;
    BrokenPipeError when the reader went away."""
    from .api import quietly

    reader = _Reader(stream, first_line, max_line=defaults.max_line_bytes)
    failed = done = 0
    stopped = None
    with _Signals() as signals, quietly():
        output = _Output(out, signals)

        def emit(text, ok, raw):
            emit_lines(text.encode() + b"\n", 1, not ok, len(raw or b"") + 1)

        def emit_lines(data, count, bad, nbytes):
            """``count`` answer lines, ``bad`` of them errors, for ``nbytes`` of input
            (blank lines and line ends aside)."""
            nonlocal failed, done
            _settle()
            output.add_lines(data, count)
            failed += bad
            done += nbytes
            if progress is not None:
                progress(done, output.complete + output.pending, False, failed)

        try:
            try:
                if jobs <= 1:
                    _serial(reader, defaults, emit, output)
                else:
                    _parallel(reader, defaults, min(jobs, max_jobs()), emit_lines, output)
            finally:
                output.flush()
        except _Stopped as s:
            stopped = s.signum
            with contextlib.suppress(_Stopped):  # a second signal: stop now
                output.flush()
    if progress is not None:
        progress(done, output.complete, True, failed)
    if reader.error and stopped is None:
        n = output.complete
        raise InputError(
            f"{reader.error} (after {n} complete record{'s' if n != 1 else ''})", hint=reader.hint
        )
    return Summary(output.complete, failed, stopped)


def answer_lines(
    lines: Iterable[str | bytes], *, first_line: int = 1, **defaults: Any
) -> Iterator[str]:
    """The answers to one block of batch lines, as `gradcli batch --first-line N` writes
    them (each without its newline), for any engine that maps over blocks of a file (Ray,
    Spark, Dask): ``lines`` are the block's lines in order (with or without line ends),
    ``first_line`` the file line number of the first, so that ids and per-record random
    seeds come out as for the whole file; ``defaults`` are Defaults' fields (expr, dtype,
    wrt, nodes, random_seed, max_elements, detect_anomaly, max_line_bytes). A blank line is
    numbered but not answered. Records are answered in blocks (blocks()), evaluated together
    where they share a program and shapes, as batch does: the first answer comes once a
    block of lines is read."""
    from .api import quietly

    settings = Defaults(**defaults)
    for block in blocks(_numbered(lines, first_line)):
        with quietly():
            done = answers(block, settings)
        for text, _ in done:
            yield text


def _numbered(lines, first_line):
    for k, line in enumerate(lines):
        raw = line.encode() if isinstance(line, str) else bytes(line)
        raw = raw.rstrip(b"\r\n")
        if raw and not raw.isspace():
            yield first_line + k, raw


def blocks(
    pairs: Iterable[tuple[int, bytes | None]],
) -> Iterator[list[tuple[int, bytes | None]]]:
    """(line number, bytes) pairs in lists of at most CHUNK lines and about CHUNK_BYTES
    bytes: the units answers() evaluates together, memory bounded whatever the input."""
    block: list[tuple[int, bytes | None]] = []
    size = 0
    for pair in pairs:
        block.append(pair)
        size += len(pair[1] or b"")
        if len(block) >= CHUNK or size >= CHUNK_BYTES:
            yield block
            block, size = [], 0
    if block:
        yield block


def _serial(reader, defaults, emit, output):
    while not reader.eof:
        if reader.pollable:
            output.flush()  # about to wait for input: the answers so far go out now
        items = reader.fill()
        for (_, raw), (text, ok) in zip(items, answers(items, defaults), strict=True):
            emit(text, ok, raw)


def answers(items: list[tuple[int, bytes | None]], defaults: Defaults) -> list[tuple[str, bool]]:
    """answer() for each (line number, bytes), in order: records that share a program and
    input shapes are evaluated together (gradcli.stacked), with the same answers."""
    return _Lazy.bind().answer_many(items, defaults)


class _Unit:
    """Records that go to a worker together: ``pairs`` (line number, bytes) in input order,
    of ``size`` bytes; once answered, ``answer`` their answer lines (each ending in a
    newline, as the worker wrote them) and ``failed`` how many are errors. ``deaths``: the
    dying workers the (single) record of a retried unit was in."""

    __slots__ = ("pairs", "size", "answer", "failed", "deaths")

    def __init__(self, pairs: list[tuple[int, bytes | None]], size: int, deaths: int = 0) -> None:
        self.pairs, self.size, self.deaths = pairs, size, deaths
        self.answer: bytes | None = None
        self.failed = 0


DEPTH = 2  # units sent to a worker at once: the next one is there when it ends one


class _Worker:
    """One worker process and the connection to it; ``units`` are the units sent to it and
    not yet answered, in the order it answers them (the first is the one it is on)."""

    def __init__(self, context, defaults):
        self.conn, child = context.Pipe()
        for end in (self.conn, child):
            _roomy(end)
        self.process = context.Process(
            target=_work, args=(child, self.conn, defaults, os.getpid()), daemon=True
        )
        self.process.start()
        child.close()
        self.units: collections.deque[_Unit] = collections.deque()

    def stop(self):
        self.process.kill()
        self.conn.close()
        self.process.join()


def _roomy(conn):
    """A unit (or its answers) fits in the socket's send buffer, so its sender goes on
    at once: the default, about 200 KB, is less than a unit, and the parent would wait
    on the worker's reader thread (which needs the worker's GIL, every few ms a turn)
    while the other workers' answers wait to go out. As large as the system allows."""
    import socket

    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as end:
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * CHUNK_BYTES)
    except (OSError, ValueError):
        pass


def _die_with_parent(parent):
    """Linux: the kernel kills this process when its parent dies, however it dies (even
    SIGKILL), so no worker outlives gradcli holding its stdout open."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _work(conn, parent_end, defaults, parent):
    """A worker: answer units of records until told to stop or the parent goes. A thread
    takes the units off the pipe as they come (the parent sends the next one while this
    one is answered, and must never wait on a worker that is itself waiting to send); each
    unit's answers go back as one block of bytes, the lines as they are written."""
    import gc
    import queue
    import threading

    from .api import quietly

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: parent decides
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)  # (a fork inherits the parent's handlers)
    parent_end.close()
    _die_with_parent(parent)
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def take():
        while True:
            try:
                pairs = conn.recv()
            except (EOFError, OSError):
                pairs = None
            inbox.put(pairs)
            if pairs is None:
                return

    threading.Thread(target=take, daemon=True).start()
    first = True
    with quietly():
        while (pairs := inbox.get()) is not None:
            done = answers(pairs, defaults)
            data = "\n".join([line for line, _ in done] + [""]).encode()  # (a newline each)
            try:  # (not serialized: the bytes as they are, copied once in each process)
                conn.send_bytes(b"%d" % sum(not ok for _, ok in done))
                conn.send_bytes(data)
            except OSError:
                return
            if first:  # its programs parsed, its caches warm: see _settle
                gc.freeze()
                first = False


def _context():
    import multiprocessing

    # fork: workers start in milliseconds with everything imported (the parent runs no
    # threads to make that unsafe); spawn where there is no fork
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _parallel(reader, defaults, jobs, emit_lines, output):
    """Units of records on ``jobs`` worker processes, answers written in input order.

    One loop waits on the workers and (for a pipe) the input together, so an answer goes
    out as soon as it and every answer before it are done, and lines are handed out as
    soon as they arrive; each worker has the next unit before it ends one. At most about
    HELD_BYTES of input (and its answers) wait in this process, however long the input. A
    worker that dies (kill -9, the OOM killer) is replaced and the records of the unit it
    was on answered again, each alone; a record whose worker dies twice gets an error
    answer. Workers are killed on the way out, whatever the way."""
    from multiprocessing.connection import wait

    context = _context()
    workers: list[_Worker] = []
    order: collections.deque[_Unit] = collections.deque()  # read, not yet written, in order
    todo: collections.deque[_Unit] = collections.deque()  # units waiting for a worker
    held = [0]  # bytes of the records in ``order``
    idle_deaths = 0
    try:
        first = [] if reader.pollable else reader.fill()  # (a pipe: lines as they come)
        _warm(first, defaults)
        _settle()  # before the fork: the workers' collector does not walk (and copy) it all
        workers += [_start(context, defaults) for _ in range(jobs)]
        _queue(first, order, todo, held, defaults)
        while True:
            while order and (unit := order[0]).answer is not None:
                order.popleft()
                held[0] -= unit.size
                emit_lines(unit.answer, len(unit.pairs), unit.failed, unit.size + len(unit.pairs))
            if reader.eof and not order:
                return
            want_input = not reader.eof and (
                not order or (len(order) < 4 * DEPTH * jobs and held[0] < HELD_BYTES)
            )
            if want_input and not reader.pollable:
                _queue(reader.fill(), order, todo, held, defaults)
            _hand_out(workers, todo)
            waiting = [w.conn for w in workers if w.units]
            waiting += [w.process.sentinel for w in workers]
            if want_input and reader.pollable:
                waiting.append(reader.fd)
            if want_input and not reader.pollable:
                timeout = 0  # more of the file is there to read
            else:
                output.flush()  # about to wait: the answers so far go out now
                timeout = None
            ready = wait(waiting, timeout)
            if want_input and reader.pollable and reader.fd in ready:
                _queue(reader.fill(), order, todo, held, defaults)
            for k, w in enumerate(workers):
                if w.units and w.conn in ready:
                    _receive(w)
                if w.process.sentinel in ready:
                    _receive(w)  # (what it sent before it died)
                    w.stop()
                    if w.units:
                        _lost(w, order, todo)
                    else:
                        idle_deaths += 1
                        if idle_deaths > 8 * jobs:
                            raise EvaluationError("batch worker processes keep dying")
                    workers[k] = _start(context, defaults)
    finally:
        for w in workers:
            w.stop()


def _hand_out(workers, todo):
    """Units to the workers: first one to each worker that has none, then the next ones."""
    for depth in range(1, DEPTH + 1):
        for w in workers:
            if len(w.units) < depth and todo:
                unit = todo.popleft()
                try:
                    w.conn.send(unit.pairs)
                except OSError:  # it died: the unit never reached it
                    todo.appendleft(unit)
                    continue
                w.units.append(unit)


def _receive(worker):
    """The answers the worker has sent, each to its unit."""
    try:
        while worker.units and worker.conn.poll():
            failed = int(worker.conn.recv_bytes())
            data = worker.conn.recv_bytes()  # (sent right after, or the worker died)
            unit = worker.units.popleft()
            unit.answer, unit.failed = data, failed
    except (EOFError, OSError):
        pass  # it died: its sentinel says so


def _warm(items=(), defaults=None):
    """What every worker needs loaded (numpy, gradcli's modules, the grammar), loaded once
    here before the workers fork, not once in each of them; and the programs of ``items``
    (the first records) parsed into the cache, with the operator families they import:
    otherwise every worker parses them and imports those at its first unit, at once. Only
    parsing, never evaluating: a record that kills its process does so in a worker."""
    import ctypes  # noqa: F401 - (for _die_with_parent)
    import queue  # noqa: F401 - (for _work)
    import threading  # noqa: F401

    lazy = _Lazy.bind()
    with contextlib.suppress(GradcliError):
        _parse("x")  # (the parser's tables: a first parse loads them)
    texts: set[str] = set()
    if defaults is not None and defaults.expr is not None:
        with contextlib.suppress(GradcliError):
            defaults.program()
    for _, raw in items:
        if raw is None or len(raw) > CHUNK_BYTES or len(texts) >= CACHE_SIZE:
            continue
        try:  # a warm-up only: what goes wrong here, the worker answers in its own words
            record = lazy.load_record(raw)
            text = record.get("expr") if isinstance(record, dict) else None
            if isinstance(text, str) and len(text) <= CACHE_TEXT and text not in texts:
                texts.add(text)
                _CACHE.get(text)
        except Exception:  # noqa: BLE001, S112
            continue


def _start(context, defaults):
    try:
        return _Worker(context, defaults)
    except OSError as e:  # no more processes or memory
        raise EvaluationError(
            f"cannot start a worker process: {e.strerror or e}", hint="use fewer --jobs"
        ) from None


def _queue(items, order, todo, held, defaults):
    """New records into ``order`` and ``todo``, in units of CHUNK lines or CHUNK_BYTES
    bytes (a line too long to read is answered here, a unit of its own)."""
    pairs: list[tuple[int, bytes | None]] = []
    size = 0
    for line_no, raw in items:
        if raw is None:
            _push(pairs, size, order, todo, held)
            pairs, size = [], 0
            unit = _Unit([(line_no, None)], 0)
            text, ok = answer(line_no, None, defaults)
            unit.answer, unit.failed = text.encode() + b"\n", int(not ok)
            order.append(unit)
            continue
        pairs.append((line_no, raw))
        size += len(raw)
        if len(pairs) >= CHUNK or size >= CHUNK_BYTES:
            _push(pairs, size, order, todo, held)
            pairs, size = [], 0
    _push(pairs, size, order, todo, held)


def _push(pairs, size, order, todo, held):
    if pairs:
        unit = _Unit(pairs, size)
        order.append(unit)
        todo.append(unit)
        held[0] += size


def _lost(worker, order, todo):
    """A worker died answering ``worker.units[0]``: each of its records is tried again
    alone, first in line so the output moves on; one that was in a dying worker twice gets
    an error answer instead. The units queued behind it go back as they were."""
    code = worker.process.exitcode
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
        if code == -signal.SIGKILL:
            how += ", perhaps by the out-of-memory killer"
    else:
        how = f"exit status {code}"
    dead, *queued = worker.units
    worker.units.clear()
    again = queued
    if dead.deaths:  # a record tried again alone, and its worker died again
        line_no, raw = dead.pairs[0]
        message = (
            f"the worker process answering this record died ({how}), twice; the record "
            "is skipped (try it with --jobs 1, or with smaller inputs)"
        )
        text = _error(_known_id(line_no, raw), "EvaluationError", message, line_no)
        dead.answer, dead.failed = text.encode() + b"\n", 1
    else:
        alone = [_Unit([pair], len(pair[1] or b""), deaths=1) for pair in dead.pairs]
        at = order.index(dead)  # (the unit in input order is replaced by its records)
        del order[at]
        for k, unit in enumerate(alone):
            order.insert(at + k, unit)
        again = alone + queued
    todo.extendleft(reversed(again))


def _known_id(line_no, raw):
    """The record's own id where it can be read cheaply (the record itself may be what kills
    a worker, so a large one is not parsed here), else its line number."""
    if len(raw) <= 1 << 20:
        try:
            return _check_id(_record(raw, len(raw)).get("id", line_no))
        except (GradcliError, RecursionError, MemoryError):
            pass
    return line_no


# ---- progress -----------------------------------------------------------------------------


def progress_bar(
    stream: BinaryIO | None = None, *, size: int | None = None
) -> tuple[Progress, Callable[..., None]]:
    """A rich progress bar on stderr (for a terminal): the answers so far, answers per
    second and failures, and the share done where the input's size is known (``size``
    bytes, or a regular file ``stream``). Returns (bar, update) for run(progress=update)."""
    import time

    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    if stream is not None:
        size = input_size(stream) or None
    columns = [TextColumn("batch"), BarColumn()]
    if size:
        columns += [TaskProgressColumn(), TimeRemainingColumn()]
    columns.append(
        TextColumn(
            "{task.fields[records]} answered, {task.fields[rate]}/s, {task.fields[failed]} failed"
        )
    )
    # No refresh thread (auto_refresh=False): the workers are forked from this process.
    bar = Progress(
        *columns,
        console=_stderr_console(),
        transient=True,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = bar.add_task("batch", total=size or None, records=0, rate=0, failed=0)
    start = time.monotonic()
    last = [0.0]

    def update(done: int, records: int, final: bool, failed: int = 0) -> None:
        now = time.monotonic()
        if final or now - last[0] >= 0.1:
            last[0] = now
            rate = round(records / (now - start)) if now > start else 0
            completed = size if final and size else min(done, size or done)  # (blank lines)
            bar.update(task, completed=completed, records=records, rate=rate, failed=failed)
            bar.refresh()

    return bar, update


def run_all(
    plan: list[tuple[str | None, list[str]]],
    defaults: Defaults,
    *,
    jobs: int | None = None,
    first_line: int = 1,
    progress: Callable[..., None] | None = None,
) -> Summary:
    """run() over every input of plan_outputs(): each input answered alone (its own line
    numbers from ``first_line``, so each output is what `gradcli batch INPUT` writes), the
    outputs opened one by one; the Summary totals every input. ``jobs`` None: auto_jobs()
    of each input. ``progress`` gets the totals over all inputs."""
    total = [0, 0, 0]  # bytes, answers, failures of the inputs done
    stopped = None

    def each(done, records, final, failed=0):
        last[:] = done, records, failed
        if progress is not None:
            progress(total[0] + done, total[1] + records, False, total[2] + failed)

    for target, names in plan:
        out = sys.stdout if target is None else open_output(target)
        try:
            for name in names:
                last = [0, 0, 0]
                stream = open_input(name)
                try:
                    n = auto_jobs(stream) if jobs is None else jobs
                    summary = run(
                        stream, out, defaults, jobs=n, first_line=first_line, progress=each
                    )
                finally:
                    if name != "-":
                        stream.close()
                total[:] = total[0] + last[0], total[1] + summary.records, total[2] + summary.failed
                if summary.stopped_by is not None:
                    stopped = summary.stopped_by
                    break
        finally:
            if target is not None:
                close_output(out, target)
        if stopped is not None:
            break
    if progress is not None:
        progress(total[0], total[1], True, total[2])
    return Summary(total[1], total[2], stopped)


def close_output(out: TextIO, target: str) -> None:
    try:
        out.close()
    except OSError as e:
        raise OutputError(f"cannot write '{target}': {e.strerror or e}") from None


def inputs_size(names: list[str]) -> int | None:
    """The bytes of every input, for the progress bar: None unless every input is an
    uncompressed local file."""
    size = 0
    for name in names:
        if name == "-" and sys.stdin is not None:
            size += input_size(sys.stdin.buffer) or 0  # (< file)
            continue
        if is_url(name) or name.endswith(".gz"):
            return None
        try:
            size += os.path.getsize(name)
        except OSError:
            return None
    return size


def _stderr_console():
    from rich.console import Console

    from .commands import styled  # --color, NO_COLOR, FORCE_COLOR: as every command's output

    on = styled(sys.stderr)
    return Console(file=sys.stderr, color_system="auto" if on else None, no_color=not on)


# ---- many inputs, many outputs ------------------------------------------------------------

CLOUD_HINT = "install the extra: pip install 'gradcli[cloud]' (fsspec)"


def is_url(name: str) -> bool:
    """An fsspec URL (s3://, gs://, memory://, file://, ...), not a local path."""
    head, sep, _ = name.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").isalnum()


def fsspec_module():
    try:
        import fsspec  # type: ignore[import-untyped]  # fsspec ships no type information
    except ImportError:
        raise InputError("reading and writing URLs needs fsspec", hint=CLOUD_HINT) from None
    return fsspec


def _has_magic(name: str) -> bool:
    return any(c in name for c in "*?[")


def expand_inputs(sources: Iterable[str]) -> list[str]:
    """The inputs named on the command line, in order: '-' (stdin), paths, URLs, and globs
    ('data/*.jsonl', 's3://bucket/*.jsonl.gz') expanded in sorted order where the shell did
    not. A name that is neither a file nor a glob with matches is an InputError."""
    import glob

    names: list[str] = []
    for source in sources:
        if source == "-":
            names.append(source)
        elif is_url(source):
            names += _expand_url(source)
        elif os.path.isdir(source):
            raise InputError(f"cannot read '{source}': it is a directory", hint="give FILE...")
        elif os.path.exists(source):
            names.append(source)
        elif not _has_magic(source):
            raise InputError(f"cannot read '{source}': No such file or directory")
        else:
            found = sorted(p for p in glob.glob(source, recursive=True) if os.path.isfile(p))
            if not found:
                raise InputError(f"no file matches '{source}'")
            names += found
    return names


def _expand_url(url: str) -> list[str]:
    fsspec = fsspec_module()
    if not _has_magic(url):
        return [url]
    try:
        files = fsspec.open_files(url, mode="rb")
    except (OSError, ValueError, ImportError) as e:  # (ImportError: s3fs, gcsfs, ...)
        raise InputError(f"cannot list '{url}': {e}") from None
    found = [f.full_name for f in files]
    if not found:
        raise InputError(f"nothing matches '{url}'")
    return found


class _Binary:
    """A decompressing or remote stream, as run() reads it: read1() and a name, and no
    fileno() (a GzipFile's fileno() is the compressed file's). ``size`` is the bytes on disk,
    for --jobs auto and the progress bar."""

    def __init__(self, stream, name, size=None, closing=()):
        self.stream, self.name, self.size, self._closing = stream, name, size, closing
        self.read1 = getattr(stream, "read1", None) or stream.read

    def close(self):
        for s in (self.stream, *self._closing):
            with contextlib.suppress(OSError):
                s.close()


def open_input(name: str) -> BinaryIO:
    """A binary stream of one input: stdin for '-', a path or an fsspec URL; a name ending
    in .gz is decompressed. Raises InputError when it cannot be opened."""
    import gzip

    if name == "-":
        if sys.stdin is None:
            raise InputError("cannot read the records: stdin is closed", hint="give a FILE")
        return sys.stdin.buffer
    try:
        if is_url(name):
            # fsspec.open of one URL gives an OpenFile, not OpenFiles
            raw = fsspec_module().open(name, "rb").open()  # pyright: ignore[reportAttributeAccessIssue]
            size = getattr(raw, "size", None)
        else:
            raw = open(name, "rb")  # noqa: SIM115 - closed by the caller
            size = os.fstat(raw.fileno()).st_size
    except (OSError, ValueError, ImportError) as e:
        raise InputError(f"cannot read '{name}': {getattr(e, 'strerror', None) or e}") from None
    if name.endswith(".gz"):
        return _Binary(gzip.GzipFile(fileobj=raw, mode="rb"), name, size, (raw,))  # type: ignore[return-value]
    if is_url(name):
        return _Binary(raw, name, size)  # type: ignore[return-value]
    return raw


class _Text:
    """A compressing or remote output, as _Output writes it: write(str) and no fileno()."""

    def __init__(self, stream, closing=()):
        self.stream, self._closing = stream, closing

    def write(self, text):
        self.stream.write(text.encode())

    def flush(self):
        pass  # (a gzip flush would cost compression; it all goes out at close)

    def close(self):
        for s in (self.stream, *self._closing):
            s.close()


def open_output(name: str) -> TextIO:
    """A text stream to write one output to: a path or an fsspec URL, gzip-compressed when
    the name ends in .gz. Raises OutputError when it cannot be opened."""
    import gzip

    try:
        if is_url(name):
            # fsspec.open of one URL gives an OpenFile, not OpenFiles
            raw = fsspec_module().open(name, "wb").open()  # pyright: ignore[reportAttributeAccessIssue]
        elif not name.endswith(".gz"):
            return open(name, "w", encoding="ascii")  # noqa: SIM115 - closed by the caller
        else:
            raw = open(name, "wb")  # noqa: SIM115
    except (OSError, ValueError, ImportError) as e:
        raise OutputError(f"cannot write '{name}': {getattr(e, 'strerror', None) or e}") from None
    if name.endswith(".gz"):
        return _Text(gzip.GzipFile(fileobj=raw, mode="wb", mtime=0), (raw,))  # type: ignore[return-value]
    return _Text(raw)  # type: ignore[return-value]


def plan_outputs(inputs: list[str], output: str | None) -> list[tuple[str | None, list[str]]]:
    """(output, its inputs) pairs: without -o one stream (None: stdout) for every input in
    order; -o a directory (one that exists, or a name ending in '/') one output per input
    with the input's name; -o a file every answer in that file, in input order."""
    if output is None:
        return [(None, inputs)]
    if not _is_directory(output):
        _not_an_input(output, inputs)
        return [(output, inputs)]
    if "-" in inputs:
        raise InputError("stdin has no name to give its output in a directory", hint="-o FILE")
    plan: list[tuple[str | None, list[str]]] = []
    seen: dict[str, str] = {}
    for name in inputs:
        base = name.rstrip("/").rsplit("/", 1)[-1]
        target = output.rstrip("/") + "/" + base if is_url(output) else os.path.join(output, base)
        if target in seen:
            raise InputError(
                f"'{seen[target]}' and '{name}' would both be written to '{target}'",
                hint="give inputs with different names, or -o FILE",
            )
        seen[target] = name
        _not_an_input(target, inputs)
        plan.append((target, [name]))
    if not is_url(output):
        try:
            os.makedirs(output, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot make the directory '{output}': {e.strerror}") from None
    return plan


def _is_directory(name: str) -> bool:
    if name.endswith("/"):
        return True
    if is_url(name):
        try:
            fs, path = fsspec_module().core.url_to_fs(name)
            return bool(fs.isdir(path))
        except (OSError, ValueError, ImportError) as e:
            raise OutputError(f"cannot write '{name}': {e}") from None
    return os.path.isdir(name)


def _not_an_input(target, inputs):
    for name in inputs:
        same = target == name
        if not same and not is_url(name) and name != "-" and not is_url(target):
            with contextlib.suppress(OSError):
                same = os.path.samefile(target, name)
        if same:
            raise InputError(f"the output '{target}' is also an input", hint="give another -o")
