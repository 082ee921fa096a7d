"""gradcli batch --engine dask on a local Dask cluster (2 worker processes, loopback only):
each output byte-identical to single-process `gradcli batch FILE`, whatever the blocks, and
every line exactly once when a worker is killed mid-run."""

import contextlib
import gzip
import json
import os
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from test_batch_files import EXPR, extra, mixed

from gradcli.cli import main


@pytest.fixture(scope="session")
def cluster():
    import logging

    extra("dask.distributed")  # (a skip, or a failure with GRADCLI_REQUIRE_EXTRAS=1)
    dd = sys.modules["dask.distributed"]
    with dd.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as c:
        yield c


def invoke(*args, data=None):
    return CliRunner().invoke(
        main, ["batch", "--expr", EXPR, "--random-seed", "5", *args], input=data
    )


@pytest.fixture
def three(tmp_path):
    """Three inputs: one big enough for many blocks (with a byte-order mark), a small one,
    and one that ends without a newline."""
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"\xef\xbb\xbf" + mixed(400))
    small = tmp_path / "small.jsonl"
    small.write_bytes(mixed(9, seed=3))
    last = tmp_path / "last.jsonl"
    last.write_bytes(mixed(20, seed=5) + b'{"inputs": {"x": "randn(3)"}}')
    return [big, small, last]


def test_outputs_are_byte_identical_to_one_process(cluster, three, tmp_path):
    local = [invoke(str(p)) for p in three]
    for blocksize in ("1KiB", "3000", "64MiB"):
        out = tmp_path / f"out-{blocksize}"
        r = invoke(
            "--engine", "dask", "--scheduler", cluster.scheduler_address,
            "--blocksize", blocksize, *map(str, three), "-o", f"{out}/",
        )  # fmt: skip
        assert r.exit_code == 1, r.output
        for p, alone in zip(three, local, strict=True):
            assert (out / p.name).read_bytes() == alone.stdout_bytes, (blocksize, p.name)
    failed = sum(a.stdout.count('"error"') for a in local)
    total = sum(len(a.stdout.splitlines()) for a in local)
    assert f"{failed} of {total} records failed" in r.stderr
    assert total > 300 and failed > 100


def test_one_stream_gzip_stdin_and_first_line(cluster, three, tmp_path):
    gz = tmp_path / "big.jsonl.gz"
    gz.write_bytes(gzip.compress(three[0].read_bytes()))
    dask = ("--engine", "dask", "--scheduler", cluster.scheduler_address, "--blocksize", "2KiB")
    r = invoke(*dask, str(gz), str(three[1]))  # gz: read here, shipped in blocks
    assert r.stdout_bytes == invoke(str(three[0]), str(three[1])).stdout_bytes
    data = three[2].read_bytes()
    r = invoke(*dask, "--first-line", "40", data=data)  # stdin
    assert r.stdout_bytes == invoke("--first-line", "40", data=data).stdout_bytes
    r = invoke(*dask, "--first-line", "40", str(three[2]))
    assert r.stdout_bytes == invoke("--first-line", "40", data=data).stdout_bytes


def test_fsspec_url_read_by_the_workers(cluster, three, tmp_path):
    extra("fsspec")
    invoke(
        "--engine", "dask", "--scheduler", cluster.scheduler_address, "--blocksize", "1KiB",
        f"file://{three[0]}", "-o", f"file://{tmp_path}/o.jsonl.gz",
    )  # fmt: skip
    assert (
        gzip.decompress((tmp_path / "o.jsonl.gz").read_bytes())
        == invoke(str(three[0])).stdout_bytes
    )


# slow, and without matrix products: BLAS sums in an order that depends on its thread count,
# and Dask's workers run it on one thread (OMP_NUM_THREADS=1)
SLOW = json.dumps(
    {"expr": "sum(tanh(x) * exp(-x^2) + sin(x)*cos(x))", "inputs": {"x": "randn(100000)"}}
)


def test_a_worker_killed_mid_run_loses_and_repeats_no_line(cluster, tmp_path):
    from dask.distributed import Client

    from gradcli import batch, dask_engine

    source = tmp_path / "slow.jsonl"
    source.write_text(
        "".join(f"{SLOW}\n" if k % 2 else '{"inputs": {"x": [1]}}\n' for k in range(40))
    )
    target = tmp_path / "out.jsonl"
    defaults = batch.Defaults(EXPR, random_seed=9)
    plan = [(str(target), [str(source)])]
    result = {}

    def go():
        result["summary"] = dask_engine.run_all(
            plan, defaults, scheduler=cluster.scheduler_address, blocksize="600"
        )

    with Client(cluster.scheduler_address) as client:
        thread = threading.Thread(target=go)
        thread.start()
        killed = None
        deadline = time.monotonic() + 30
        while killed is None and time.monotonic() < deadline and thread.is_alive():
            for address, keys in client.processing().items():
                if any("_answer_range" in str(k) for k in keys):
                    killed = client.run(os.getpid, workers=[address])[address]
                    os.kill(killed, 9)
                    break
            time.sleep(0.01)
        thread.join(60)
    assert killed is not None and "summary" in result
    expected = invoke("--random-seed", "9", str(source)).stdout_bytes
    assert target.read_bytes() == expected
    assert result["summary"].records == 40 and result["summary"].failed == 0


def test_workers_start_a_local_cluster(tmp_path):
    extra("dask.distributed")
    path = tmp_path / "r.jsonl"
    path.write_bytes(mixed(30))
    r = invoke("--engine", "dask", "--workers", "2", "--blocksize", "500", str(path))
    assert r.stdout_bytes == invoke(str(path)).stdout_bytes and r.exit_code == 1


def test_local_workers_start_warm_and_a_killed_one_is_replaced(tmp_path, monkeypatch):
    """--workers: the workers are forked from a server that has imported gradcli.batch (where
    the platform has a fork server), and one killed mid-run is started again the same way:
    every line is answered once, as one process answers it."""
    import multiprocessing

    extra("dask.distributed")
    from gradcli import dask_engine

    source = tmp_path / "slow.jsonl"
    source.write_text(
        "".join(f"{SLOW}\n" if k % 2 else '{"inputs": {"x": [1]}}\n' for k in range(40))
    )
    started = threading.Event()
    state = {}
    real = dask_engine.client_for

    @contextlib.contextmanager
    def watched(scheduler, workers):
        with real(scheduler, workers) as client:
            state["client"] = client
            # (eval: a builtin, which pickles by name, so no test module goes to the workers)
            state["warm"] = client.run(eval, "'gradcli.batch' in __import__('sys').modules")
            state["profile"] = client.run(
                eval, "__import__('dask').config.get('distributed.worker.profile.enabled')"
            )
            state["direct"] = client.direct_to_workers
            started.set()
            yield client

    monkeypatch.setattr(dask_engine, "client_for", watched)
    result = {}
    thread = threading.Thread(target=lambda: result.update(r=invoke(
        "--engine", "dask", "--workers", "2", "--blocksize", "600", str(source)
    )))  # fmt: skip
    thread.start()
    assert started.wait(60)
    client, killed = state["client"], None
    deadline = time.monotonic() + 30
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        for address, keys in client.processing().items():
            if any("_answer_range" in str(k) for k in keys):
                killed = client.run(os.getpid, workers=[address])[address]
                os.kill(killed, 9)
                break
        time.sleep(0.01)
    thread.join(120)
    assert killed is not None and "r" in result, result
    if "forkserver" in multiprocessing.get_all_start_methods():
        assert len(state["warm"]) == 2 and all(state["warm"].values()), state["warm"]
    alone = invoke(str(source))
    assert result["r"].stdout_bytes == alone.stdout_bytes and result["r"].exit_code == 0
    # our own cluster's settings reached the workers (no stack sampling of the evaluation),
    # and the answers come to this process once, from the workers
    assert list(state["profile"].values()) == [False, False] and state["direct"] is True


def test_usage_errors():
    for args, message in [
        (["--blocksize", "1MiB"], "--blocksize is for --engine dask"),
        (["--workers", "2"], "--workers is for --engine dask"),
        (["--engine", "dask", "--workers", "2", "--scheduler", "tcp://x:1"], "not both"),
        (["--engine", "dask", "--jobs", "2"], "--jobs is for --engine local"),
        (["--engine", "dask", "--workers", "0"], "--workers"),
    ]:
        r = invoke(*args, data=b"{}\n")
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)


def test_bad_blocksize(cluster):
    r = invoke(
        "--engine", "dask", "--scheduler", cluster.scheduler_address, "--blocksize", "lots",
        data=b"{}\n",
    )  # fmt: skip
    assert r.exit_code == 2 and "--blocksize" in r.stderr


def test_without_dask_the_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    r = invoke("--engine", "dask", "--workers", "2", data=b"{}\n")
    assert r.exit_code == 2 and "pip install 'gradcli[dask]'" in r.stderr


def test_max_line_bytes_reaches_the_workers(cluster, tmp_path):
    """--max-line-bytes on the Dask engine: the workers that read byte ranges and the blocks
    shipped from here apply it, as one process does."""
    source = tmp_path / "long.jsonl"
    long_line = json.dumps({"inputs": {"x": list(range(400))}})  # about 2 KB
    source.write_text("\n".join([json.dumps({"inputs": {"x": [1, 2]}}), long_line]) + "\n")
    dask = ("--engine", "dask", "--scheduler", cluster.scheduler_address, "--blocksize", "1KiB")
    for limit in ("1000", "5000"):
        alone = invoke("--max-line-bytes", limit, str(source))
        assert ("longer than 1000 bytes" in alone.stdout) == (limit == "1000")
        r = invoke(*dask, "--max-line-bytes", limit, str(source))  # byte ranges
        assert r.stdout_bytes == alone.stdout_bytes
        r = invoke(*dask, "--max-line-bytes", limit, data=source.read_bytes())  # shipped
        assert r.stdout_bytes == alone.stdout_bytes


def test_records_on_the_workers_are_evaluated_together(cluster, tmp_path, monkeypatch):
    """A block's records go through batch.answers (stacked where they can be), with the
    answers that each record gives alone, in this process and on the workers."""
    import random

    from gradcli import batch, dask_engine
    from gradcli.api import quietly

    rng = random.Random(3)
    lines = []
    for k in range(600):
        if k % 2:
            inputs = {"x": [rng.gauss(0, 1) for _ in range(3)]}
            lines.append(json.dumps({"id": k, "expr": "mean(2*(x+2)^2)", "inputs": inputs}))
        else:
            inputs = {"x": [rng.gauss(0, 1) for _ in range(4)], "b": rng.gauss(0, 1)}
            lines.append(json.dumps({"id": k, "expr": "sum(tanh(x) * b)", "inputs": inputs}))
    lines[11] = '{"inputs": '
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    settings = batch.Defaults()
    with quietly():
        want = [batch.answer(k + 1, line.encode(), settings) for k, line in enumerate(lines)]
    calls = []
    monkeypatch.setattr(batch, "answers", lambda block, d: calls.append(len(block)) or want[:0])
    pairs = [(k + 1, line.encode()) for k, line in enumerate(lines)]
    dask_engine._answer_pairs(pairs, 0, settings)
    assert calls and max(calls) > 100  # whole blocks, not record by record
    monkeypatch.undo()
    r = CliRunner().invoke(
        main,
        ["batch", "--engine", "dask", "--scheduler", cluster.scheduler_address,
         "--blocksize", "16KiB", str(path)],
    )  # fmt: skip
    assert r.exit_code == 1, r.output
    assert r.stdout == "".join(text + "\n" for text, _ in want)
    assert "1 of 600 records failed" in r.stderr
