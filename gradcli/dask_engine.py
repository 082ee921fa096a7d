"""gradcli batch --engine dask: the inputs cut into blocks, each block answered on a Dask
worker with the batch module's own per-line function, the answers written in order.

A plain file (a path or an fsspec URL the workers can read) is cut into byte ranges at line
boundaries, as dask.bag.read_text does, and each worker reads its own range. A first, cheap
pass of tasks counts the newlines in each range, so every block knows the file line number
of its first line: ids and per-record random seeds come out exactly as `gradcli batch FILE`
gives them. Compressed inputs, stdin and memory:// (which only this process sees) cannot be
cut by bytes: this process reads them and ships blocks of lines to the workers.

Every task is a pure function of its arguments (the file, the range, the first line
number, the defaults), so when a worker is lost Dask runs its tasks again elsewhere, and no
line is lost or answered twice. At most a few blocks per worker are in flight: memory stays
bounded whatever the input size. Imported only by --engine dask."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

from . import batch as b
from .errors import EvaluationError, InputError

INSTALL = "install the extra: pip install 'gradcli[dask]'"
# The default block size: BLOCKS blocks per worker thread, within these bounds. Many small
# blocks rather than a few large ones, so that the workers end together: a block is a few
# tenths of a second of work at the low bound, and a worker that falls behind (this
# process's work shares its core) takes fewer of them.
BLOCKS = 16
MIN_BLOCK = 64 * 1024
MAX_BLOCK = 64 * 1024 * 1024
SHIP_BLOCK = 1024 * 1024  # the default size of the blocks of lines shipped from here
AHEAD = 3  # blocks in flight per worker thread, beyond the one being written
SCAN = 1 << 16  # bytes per read when looking for a line end


def _distributed():
    try:
        import dask.distributed
    except ImportError:
        raise InputError("--engine dask needs Dask (dask.distributed)", hint=INSTALL) from None
    return dask.distributed


def parse_blocksize(text: str | None) -> int | None:
    """--blocksize in bytes: '1048576', '256KiB', '64MiB', '1 GB' (Dask's size strings)."""
    if text is None:
        return None
    from dask.utils import parse_bytes

    try:
        size = parse_bytes(text)
    except (ValueError, TypeError):
        size = 0
    if not isinstance(size, int) or size < 1:
        raise InputError(f"--blocksize: '{text}' is not a size", hint="e.g. 1048576, 256KiB, 64MiB")
    return size


@contextlib.contextmanager
def client_for(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A Dask client: of the scheduler at ``scheduler``, or of a local cluster of ``workers``
    processes (every core when neither is given), loopback only, closed on the way out."""
    dd = _distributed()
    if scheduler is not None:
        try:
            client = dd.Client(scheduler, timeout="10s")
        except (OSError, ValueError, TypeError) as e:  # (TimeoutError is an OSError)
            raise InputError(f"cannot reach the Dask scheduler at '{scheduler}': {e}") from None
        with client:
            yield client
        return
    n = workers if workers is not None else min(b.cores(), 8)
    with _local_client(dd, n) as client:
        yield client


# What the fork server imports once for every local worker: Dask, and gradcli's evaluation
# (otherwise each worker's first block imports it, some 0.2 s of CPU).
WARM = ["distributed", "gradcli.batch", "gradcli.api", "gradcli.engine", "gradcli.stacked"]


@contextlib.contextmanager
def _forkserver() -> Iterator[None]:
    """Local workers forked from one warm server process, where the platform has one: a
    spawned worker imports Dask and gradcli itself (about a second of CPU each, on every
    start), and exits more slowly. The server is started here, before this process imports
    dask.distributed, so that the two imports run side by side."""
    import importlib.util
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods() or not all(
        importlib.util.find_spec(m) for m in ("dask", "distributed")
    ):
        yield
        return
    import multiprocessing.forkserver

    import dask.config

    multiprocessing.get_context("forkserver").set_forkserver_preload(WARM)
    multiprocessing.forkserver.ensure_running()  # (no effect if it runs: a second cluster)
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        yield


# Our own local cluster's settings (its nannies pass them on to the workers): Dask's periodic
# work, which on a loaded core competes with the evaluation (a worker's event loop wants the
# GIL from the evaluating thread for each of these, and the scheduler and the nannies run in
# this process, which reads and writes).
LOCAL_CONFIG = {
    # a sample of the evaluating thread's stack every 10 ms, for the dashboard's profile
    "distributed.worker.profile.enabled": False,
    # each server's check that its event loop is not blocked, every 20 ms (warns after 3 s)
    "distributed.admin.tick.interval": "1s",
    # each server's CPU, memory, disk and network counters, every 0.5 s, for the dashboard
    "distributed.admin.system-monitor.interval": "5s",
}


@contextlib.contextmanager
def _local_client(dd, n: int) -> Iterator[Any]:
    """A client of a new local cluster of ``n`` worker processes, closed on the way out. The
    client takes answers from the workers directly (not through the scheduler: both run in
    this process, which would receive each answer twice)."""
    import logging
    import warnings

    import dask.config

    try:
        with warnings.catch_warnings(), dask.config.set(LOCAL_CONFIG):
            # ("Port 8787 is already in use": it takes another)
            warnings.simplefilter("ignore")
            cluster = dd.LocalCluster(
                n_workers=n,
                processes=True,
                threads_per_worker=1,
                host="127.0.0.1",
                # None (no dashboard) is documented; the annotation says str only
                dashboard_address=None,  # pyright: ignore[reportArgumentType]
                silence_logs=logging.ERROR,
            )
    except OSError as e:
        raise EvaluationError(f"cannot start a local Dask cluster: {e}") from None
    with cluster, dd.Client(cluster, direct_to_workers=True) as client:
        yield client


def run_all(
    plan: list[tuple[str | None, list[str]]],
    defaults: b.Defaults,
    *,
    first_line: int = 1,
    progress: Callable[..., None] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    blocksize: str | None = None,
) -> b.Summary:
    """batch.run_all() on a Dask cluster: the same outputs, byte for byte, and Summary."""
    with _forkserver() if scheduler is None else contextlib.nullcontext():
        return _run_all(plan, defaults, first_line, progress, scheduler, workers, blocksize)


def _run_all(plan, defaults, first_line, progress, scheduler, workers, blocksize):
    import sys

    from .api import quietly

    _distributed()
    size = parse_blocksize(blocksize)
    settings = dataclasses.replace(defaults)  # (without the parsed program: workers parse it)
    totals = [0, 0, 0]  # bytes, answers, failures
    stopped = None
    with client_for(scheduler, workers) as client, b._Signals() as signals, quietly():
        threads = max(1, sum(client.nthreads().values()))
        try:
            for target, names in plan:
                out = sys.stdout if target is None else b.open_output(target)
                try:
                    output = b._Output(out, signals)
                    try:
                        for name in names:
                            _one_input(
                                client,
                                name,
                                settings,
                                first_line,
                                size,
                                threads,
                                output,
                                totals,
                                progress,
                                scheduler is None,
                            )
                    finally:
                        output.flush()
                finally:
                    if target is not None:
                        b.close_output(out, target)
        except b._Stopped as s:
            stopped = s.signum
    if progress is not None:
        progress(totals[0], totals[1], True, totals[2])
    return b.Summary(totals[1], totals[2], stopped)


def _one_input(client, name, settings, first_line, size, threads, output, totals, progress, settle):
    """Every block of one input through the cluster, the answers to ``output`` in order;
    ``settle``: the workers are this run's own (see _settle)."""
    dd = _distributed()
    length = _splittable_size(name)
    if length is not None:
        blocksize = size or min(MAX_BLOCK, max(MIN_BLOCK, -(-length // (BLOCKS * threads))))
        tasks = _range_tasks(client, name, length, blocksize, first_line, settings, settle)
    else:
        tasks = _shipped_tasks(name, size or SHIP_BLOCK, first_line, settings, settle)
    window: collections.deque[Any] = collections.deque()

    def write(future):
        try:
            data, count, failed, nbytes = future.result()
        except dd.KilledWorker as e:
            raise EvaluationError(
                f"the Dask workers answering a block of '{name}' kept dying ({e})",
                hint="try smaller inputs, or --engine local",
            ) from None
        except (OSError, ImportError) as e:  # (ImportError: a worker without fsspec, s3fs, ...)
            raise InputError(f"a Dask worker cannot read '{name}': {e}") from None
        output.add_lines(data, count)
        totals[0] += nbytes
        totals[1] += count
        totals[2] += failed
        if progress is not None:
            progress(totals[0], totals[1], False, totals[2])

    try:
        for fn, args in tasks:
            window.append(client.submit(fn, *args))
            while len(window) > AHEAD * threads:
                write(window.popleft())
        while window:
            write(window.popleft())
    finally:
        for future in window:
            future.cancel()


def _splittable_size(name):
    """The size of an input the workers can read by byte ranges, else None."""
    if name == "-" or name.endswith(".gz"):
        return None
    if b.is_url(name):
        if name.startswith("memory://"):
            return None
        try:
            fs, path = b.fsspec_module().core.url_to_fs(name)
            return int(fs.size(path))
        except (OSError, ValueError, ImportError) as e:
            raise InputError(f"cannot read '{name}': {e}") from None
    try:
        return os.path.getsize(name)
    except OSError as e:
        raise InputError(f"cannot read '{name}': {e.strerror}") from None


def _range_tasks(client, name, length, blocksize, first_line, settings, settle):
    """(function, args) of each byte-range block, after the pass that counts newlines."""
    where = name if b.is_url(name) else os.path.abspath(name)
    starts = list(range(0, length, blocksize))
    counts = client.gather(
        client.map(
            _bounds,
            [where] * len(starts),
            starts,
            [blocksize] * len(starts),
            [length] * len(starts),
        )
    )
    line = first_line
    for start, end, newlines in counts:
        if start < end:
            yield _answer_range, (where, start, end, line, settings, settle)
        line += newlines


def _shipped_tasks(name, blocksize, first_line, settings, settle):
    """(function, args) of blocks of lines read here, about ``blocksize`` bytes each."""
    stream = b.open_input(name)
    try:
        block: list[tuple[int, bytes | None]] = []
        held = 0
        for line_no, raw in b.lines(stream, first_line, max_line=settings.max_line_bytes):
            block.append((line_no, raw))
            held += len(raw or b"") + 1
            if held >= blocksize:
                yield _answer_pairs, (block, held, settings, settle)
                block, held = [], 0
        if block:
            yield _answer_pairs, (block, held, settings, settle)
    finally:
        if name != "-":
            stream.close()


# ---- on the workers: pure functions of their arguments ---------------------------------


def _open(where):
    if b.is_url(where):
        # fsspec.open of one URL gives an OpenFile, not OpenFiles
        return b.fsspec_module().open(where, "rb").open()  # pyright: ignore[reportAttributeAccessIssue]
    return open(where, "rb")  # noqa: SIM115 - closed by the callers


def _line_start(f, p, length):
    """The offset of the first line that starts at or after byte ``p``."""
    if p <= 0:
        return 0
    if p >= length:
        return length
    f.seek(p - 1)
    while True:
        data = f.read(SCAN)
        if not data:
            return length
        k = data.find(b"\n")
        if k >= 0:
            return p - 1 + k + 1
        p += len(data)


def _bounds(where, start, blocksize, length):
    """(first byte, end byte, newlines) of the block whose lines start in
    [start, start + blocksize)."""
    with _open(where) as f:
        begin = _line_start(f, start, length)
        end = _line_start(f, start + blocksize, length)
        f.seek(begin)
        newlines, left = 0, end - begin
        while left > 0:
            data = f.read(min(left, b.BLOCK))
            if not data:
                break
            newlines += data.count(b"\n")
            left -= len(data)
    return begin, end, newlines


class _Range:
    """``size`` bytes of a file from where it stands, as batch.lines() reads a stream."""

    def __init__(self, f, size):
        self.f, self.left, self.name = f, size, getattr(f, "name", "input")

    def read1(self, n):
        data = self.f.read(min(n, self.left)) if self.left > 0 else b""
        self.left -= len(data)
        return data


def _answer_range(where, start, end, first_line, settings, settle=False):
    """The answers of the lines in bytes [start, end) of a file, numbered from first_line."""
    with _open(where) as f:
        f.seek(start)
        pairs = b.lines(
            _Range(f, end - start),  # type: ignore[arg-type]
            first_line,
            bom=start == 0,
            max_line=settings.max_line_bytes,
        )
        data, count, failed, _ = _answer_pairs(pairs, 0, settings, settle)
    return data, count, failed, end - start


def _answer_pairs(pairs, nbytes, settings, settle=False):
    """(the answer lines as they are written, how many, how many failed, ``nbytes``)."""
    from .api import quietly

    if settle:
        _settle(settings)
    lines, failed = [], 0
    with quietly():
        for block in b.blocks(pairs):  # (evaluated together where they can be: b.answers)
            for text, ok in b.answers(block, settings):
                lines.append(text + "\n")
                failed += not ok
    return "".join(lines).encode(), len(lines), failed, nbytes


_SETTLED = False


def _settle(settings):
    """On a worker of a local cluster this run started, before its first block: what --jobs
    does before it forks its workers. The parser's tables and the default program loaded,
    then everything alive (Dask's worker and gradcli's modules) frozen out of the cyclic
    garbage collector's walks (batch._settle). Not on someone else's cluster: anything frozen
    in a long-lived worker is never collected."""
    global _SETTLED
    if not _SETTLED:
        b._warm((), settings)
        b._settle()
        _SETTLED = True
