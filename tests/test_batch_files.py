"""gradcli batch over many inputs: several files and globs, gzip in and out, -o FILE or DIR,
fsspec URLs ([cloud]); each output is what `gradcli batch INPUT` writes for that input alone."""

import gzip
import json
import os
import sys

import pytest
from click.testing import CliRunner

from gradcli.cli import main

EXPR = "mean(2*(x+2)^2)"


def extra(module):
    """An optional extra's module; a skip without it, unless GRADCLI_REQUIRE_EXTRAS=1 (CI)."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("GRADCLI_REQUIRE_EXTRAS") == "1":
            pytest.fail(f"GRADCLI_REQUIRE_EXTRAS=1 but {module} is not installed")
        pytest.skip(f"{module} is not installed")


def mixed(n, seed=0):
    """Records of every kind: random inputs, blank lines, CRLF, bad JSON, unknown fields."""
    out = []
    for k in range(n):
        kind = (k + seed) % 7
        if kind == 0:
            out.append(json.dumps({"inputs": {"x": "randn(3)"}}) + "\n")
        elif kind == 1:
            out.append("\n")
        elif kind == 2:
            out.append(json.dumps({"inputs": {"x": [k, 1, 2]}}) + "\r\n")
        elif kind == 3:
            out.append('{"inputs": {"x": [1, 2\n')
        elif kind == 4:
            out.append(json.dumps({"bogus": 1}) + "\n")
        elif kind == 5:
            out.append(json.dumps({"task": "jvp", "inputs": {"x": [1, 2]}, "id": f"r{k}"}) + "\n")
        else:
            out.append(json.dumps({"expr": "sum(x*x)", "inputs": {"x": "randn(2)"}}) + "\n")
    return "".join(out).encode()


def invoke(*args, data=None):
    return CliRunner().invoke(
        main, ["batch", "--expr", EXPR, "--random-seed", "5", *args], input=data
    )


def alone(path):
    """What `gradcli batch PATH` writes for one input."""
    r = invoke(str(path))
    assert r.exit_code in (0, 1), r.output
    return r.stdout_bytes


@pytest.fixture
def three(tmp_path):
    paths = []
    for k, n in enumerate((30, 5, 17)):
        p = tmp_path / "in" / f"part{k}.jsonl"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(mixed(n, seed=k))
        paths.append(p)
    return paths


def test_several_files_one_stream_in_input_order(three):
    r = invoke(*map(str, three))
    assert r.exit_code == 1  # (bad lines)
    assert r.stdout_bytes == b"".join(alone(p) for p in three)
    failed = sum(b'"error"' in line for p in three for line in alone(p).splitlines())
    total = sum(len(alone(p).splitlines()) for p in three)
    assert f"{failed} of {total} records failed" in r.stderr


def test_a_glob_is_expanded_when_the_shell_did_not(three, tmp_path):
    r = invoke(str(tmp_path / "in" / "part*.jsonl"))
    assert r.stdout_bytes == b"".join(alone(p) for p in sorted(three))
    r = invoke(str(tmp_path / "in" / "nothing*.jsonl"))
    assert r.exit_code == 2 and "no file matches" in r.stderr


def test_output_directory_gets_one_output_per_input(three, tmp_path):
    out = tmp_path / "out"  # a name ending in '/' is a directory, made if need be
    r = invoke(*map(str, three), "-o", f"{out}/")
    assert r.exit_code == 1 and r.stdout_bytes == b""
    for p in three:
        assert (out / p.name).read_bytes() == alone(p)
    r = invoke(str(three[0]), "-o", str(out))  # an existing directory
    assert (out / three[0].name).read_bytes() == alone(three[0])


def test_output_file_holds_every_answer(three, tmp_path):
    target = tmp_path / "all.jsonl"
    invoke(*map(str, three), "-o", str(target))
    assert target.read_bytes() == b"".join(alone(p) for p in three)


def test_gzip_in_and_out(three, tmp_path):
    gz = tmp_path / "in.jsonl.gz"
    gz.write_bytes(gzip.compress(three[0].read_bytes()))
    r = invoke(str(gz))
    assert r.stdout_bytes == alone(three[0])
    invoke(str(gz), "-o", str(tmp_path / "out.jsonl.gz"))
    assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()) == alone(three[0])
    invoke(str(gz), str(three[1]), "-o", f"{tmp_path}/dir/")  # same name, .gz kept
    assert gzip.decompress((tmp_path / "dir" / "in.jsonl.gz").read_bytes()) == alone(three[0])
    assert (tmp_path / "dir" / three[1].name).read_bytes() == alone(three[1])


def test_bad_inputs_and_outputs_are_usage_errors(three, tmp_path):
    r = invoke(str(tmp_path / "missing.jsonl"))
    assert r.exit_code == 2 and "cannot read" in r.stderr and "missing.jsonl" in r.stderr
    r = invoke(str(three[0]), "-o", str(three[0]))
    assert r.exit_code == 2 and "also an input" in r.stderr
    assert three[0].read_bytes() == mixed(30, seed=0)  # not clobbered
    other = tmp_path / "other"
    other.mkdir()
    (other / three[0].name).write_bytes(b"{}\n")
    r = invoke(str(three[0]), str(other / three[0].name), "-o", f"{tmp_path}/o/")
    assert r.exit_code == 2 and "would both be written" in r.stderr
    r = invoke("-", "-o", f"{tmp_path}/o/", data=b"{}\n")
    assert r.exit_code == 2 and "stdin" in r.stderr
    r = invoke(str(tmp_path))
    assert r.exit_code == 2 and "directory" in r.stderr


def test_fsspec_urls(three, tmp_path):
    fsspec = extra("fsspec")
    fs = fsspec.filesystem("memory")
    for p in three:
        fs.pipe(f"/gradcli-test/{p.name}", p.read_bytes())
    fs.pipe("/gradcli-test/z.jsonl.gz", gzip.compress(three[2].read_bytes()))
    try:
        r = invoke("memory://gradcli-test/part*.jsonl", "-o", "memory://gradcli-out/")
        assert r.exit_code == 1, r.output
        for p in three:
            assert fs.cat(f"/gradcli-out/{p.name}") == alone(p)
        r = invoke("memory://gradcli-test/z.jsonl.gz")
        assert r.stdout_bytes == alone(three[2])
        r = invoke(f"file://{three[1]}", "-o", f"file://{tmp_path}/f.jsonl.gz")
        assert gzip.decompress((tmp_path / "f.jsonl.gz").read_bytes()) == alone(three[1])
        r = invoke("memory://gradcli-test/none*.jsonl")
        assert r.exit_code == 2 and "nothing matches" in r.stderr
    finally:
        fs.rm("/gradcli-test", recursive=True)
        if fs.exists("/gradcli-out"):
            fs.rm("/gradcli-out", recursive=True)


def test_a_url_without_fsspec_names_the_extra(monkeypatch, three):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec -> ImportError
    r = invoke("s3://bucket/records.jsonl")
    assert r.exit_code == 2 and "gradcli[cloud]" in r.stderr
    r = invoke(str(three[0]), "-o", "s3://bucket/out.jsonl")
    assert r.exit_code == 2 and "gradcli[cloud]" in r.stderr


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_progress_counts_every_input(three, tmp_path, monkeypatch, capsys, engine):
    from rich.console import Console

    from gradcli import batch

    monkeypatch.setattr(
        batch, "_stderr_console", lambda: Console(file=sys.stderr, force_terminal=True)
    )
    names = [str(p) for p in three]
    plan = batch.plan_outputs(names, f"{tmp_path}/out/")
    bar, progress = batch.progress_bar(size=batch.inputs_size(names))
    bar.start()
    if engine == "local":
        summary = batch.run_all(plan, batch.Defaults(EXPR, random_seed=5), progress=progress)
    else:
        extra("dask.distributed")
        from gradcli import dask_engine

        summary = dask_engine.run_all(
            plan, batch.Defaults(EXPR, random_seed=5), progress=progress, workers=1
        )
    bar.stop()
    err = capsys.readouterr().err
    answered = sum(len(alone(p).splitlines()) for p in three)
    assert summary.records == answered
    assert f"{answered} answered" in err and f"{summary.failed} failed" in err and "100%" in err
    assert "/s" in err


def test_gnu_parallel_with_first_line_gives_the_bytes_of_one_process(tmp_path):
    """The README's recipe: blank lines made a space first (GNU parallel's -N moves an empty
    line that starts a block into the block before), each block numbered from its place."""
    import shutil
    import subprocess

    parallel = shutil.which("parallel")
    if parallel is None:
        if os.environ.get("GRADCLI_REQUIRE_EXTRAS") == "1":
            pytest.fail("GRADCLI_REQUIRE_EXTRAS=1 but GNU parallel is not installed")
        pytest.skip("GNU parallel is not installed (apt-get install parallel)")
    exe = shutil.which("gradcli", path=os.path.dirname(sys.executable)) or "gradcli"
    path = tmp_path / "r.jsonl"
    path.write_bytes(mixed(95))
    n = 7
    script = (
        f"sed 's/^$/ /' {path} | {parallel} --will-cite --pipe --keep-order -N {n} "
        f"'{exe} batch --expr \"{EXPR}\" --random-seed 5 --first-line $(( ({{#}} - 1) * {n} + 1 ))'"
    )
    r = subprocess.run(["bash", "-c", script], capture_output=True, timeout=120)
    assert r.stdout == alone(path) and len(r.stdout.splitlines()) == 81


def test_first_line_numbers_each_input(three):
    r = invoke("--first-line", "100", str(three[0]), str(three[1]))
    each = [invoke("--first-line", "100", str(p)).stdout_bytes for p in three[:2]]
    assert r.stdout_bytes == b"".join(each)
    assert json.loads(each[1].splitlines()[0])["id"] >= 100
