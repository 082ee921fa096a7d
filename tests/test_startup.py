"""The one-liner's start: what its process imports, and the per-user operator index that lets
it import only the operator families it uses. Each run is a fresh interpreter with its own
cache directory (XDG_CACHE_HOME), so what is imported is what a user's start imports."""

import json
import os
import subprocess
import sys

import pytest

from gradcli.ops import operator_rows

ONE_LINER = ["grad", "mean(2*(x+2)^2)", "x=-1.0475,0.2038,0.2971"]
EXPECTED = """\
tensor(7.3604, grad_fn=<MeanBackward0>)

id  node             grad_fn         shape  value                        grad
 0  x                AccumulateGrad  [3]    [-1.0475,  0.2038,  0.2971]  [1.2700, 2.9384, 3.0628]
 2  x+2              AddBackward0    [3]    [0.9525, 2.2038, 2.2971]     [1.2700, 2.9384, 3.0628]
 4  (x+2)^2          PowBackward0    [3]    [0.9073, 4.8567, 5.2767]     [0.6667, 0.6667, 0.6667]
 6  2*(x+2)^2        MulBackward0    [3]    [ 1.8145,  9.7135, 10.5533]  [0.3333, 0.3333, 0.3333]
 7  mean(2*(x+2)^2)  MeanBackward0   []     7.3604                       1.

x.grad
tensor([1.2700, 2.9384, 3.0628])
"""

# The console script, which also writes the names of the modules it imported when it exits.
SCRIPT = """
import atexit, os, sys
def modules():
    with open(os.environ["MODULES_FILE"], "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(modules)
from gradcli.commands import main
sys.argv[0] = "gradcli"
main()
"""

# Not needed by `gradcli grad EXPR` with piped output, and each costs its start time.
LAZY = [
    "lark",
    "rich",
    "difflib",
    "shutil",
    "gradcli.batch",
    "gradcli.dask_engine",
    "gradcli.derivatives",
    "gradcli.graphs",
    "gradcli.jsonio",
    "gradcli.plot",
    "gradcli.repl",
    "gradcli.signatures",
    "gradcli.stacked",
    "gradcli.svg",
    "gradcli.ops.pytorch",
    # the families mean(2*(x+2)^2) does not use (arithmetic, reductions and results it does)
    "gradcli.ops.attention",
    "gradcli.ops.conv",
    "gradcli.ops.creation",
    "gradcli.ops.elementwise",
    "gradcli.ops.indexing",
    "gradcli.ops.linalg",
    "gradcli.ops.losses",
    "gradcli.ops.nn",
    "gradcli.ops.shape",
]


def run(cache, *args, script=SCRIPT):
    """(exit status, stdout, stderr, imported modules) of one gradcli process."""
    modules = os.path.join(os.path.dirname(cache), "modules.txt")
    env = {**os.environ, "XDG_CACHE_HOME": cache, "MODULES_FILE": modules, "NO_COLOR": "1"}
    p = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env
    )
    try:
        with open(modules) as f:
            imported = set(f.read().split())
        os.remove(modules)
    except FileNotFoundError:
        imported = set()
    return p.returncode, p.stdout, p.stderr, imported


def index_files(cache):
    """The operator index's cache files (the grammar's tables are the other ones)."""
    directory = os.path.join(cache, "gradcli")
    out = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            if b"gradcli ops index" in f.read():  # the key, kept in the file
                out.append(os.path.join(directory, name))
    return out


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def test_the_one_liner_imports_only_what_it_uses(cache):
    code, out, err, cold = run(cache, *ONE_LINER)  # writes the grammar's tables and the index
    assert (code, out, err) == (0, EXPECTED, "")
    assert "gradcli.ops.nn" in cold  # no index yet: the whole table
    (index,) = index_files(cache)
    before = os.stat(index)
    code, out, err, warm = run(cache, *ONE_LINER)
    after = os.stat(index)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # only read
    assert (code, out, err) == (0, EXPECTED, "")
    assert {"numpy", "click", "gradcli.ops.arithmetic", "gradcli.ops.reductions"} <= warm
    assert sorted(m for m in LAZY if m in warm) == []


def test_errors_that_list_operators_see_the_whole_table(cache):
    run(cache, *ONE_LINER)
    code, out, err, imported = run(cache, "grad", "relux(x)", "x=1")
    assert code == 2 and out == ""
    assert "unknown function 'relux'" in err and "did you mean 'relu'?" in err
    code, out, err, imported = run(cache, "grad", "x.sotfmax(0)", "x=1,2")
    assert code == 2 and "did you mean 'Tensor.softmax'?" in err, err
    code, out, err, imported = run(cache, "ops", "--json")
    rows = [json.loads(line)["name"] for line in out.splitlines()]
    assert code == 0 and rows == [r["name"] for r in operator_rows()]  # the whole table's


REGISTRY = """
import json, sys
import gradcli.ops as ops
for name in sys.argv[1:]:  # looked up first, as a program would
    assert ops.lookup(name) is not None and name in ops.SPELLINGS and ops.OPS.get(name)
    loaded = sorted(m for m in sys.modules if m.startswith("gradcli.ops."))
print(json.dumps({
    "spellings": [[k, v.name] for k, v in ops.SPELLINGS.items()],
    "ops": list(ops.OPS),
    "table": [op.name for op in ops.TABLE],
    "len": [len(ops.OPS), len(ops.SPELLINGS), len(ops.TABLE)],
}))
"""


def test_a_registry_filled_family_by_family_is_the_whole_tables(cache):
    run(cache, *ONE_LINER)  # the index
    code, whole, err, _ = run(cache, script=REGISTRY)
    assert code == 0, err
    code, partial, err, imported = run(cache, "mean", "add", "relu", "conv2d", script=REGISTRY)
    assert code == 0, err
    assert partial == whole  # the same names, ops and order
    counts = json.loads(whole)["len"]
    assert counts[0] == counts[2] > 400 and counts[1] > counts[0]


def test_a_wrong_or_damaged_index_costs_only_time(cache):
    run(cache, *ONE_LINER)
    (index,) = index_files(cache)
    with open(index, "rb") as f:
        header = f.readline()
    # what a stale index could say: names in the wrong family, or in none
    wrong = """
import sys
import gradcli.ops as ops
from gradcli import grammar_cache
index = {"ops": {"add": "nn", "mean": "conv"}, "spellings": {"mean": "losses"}}
grammar_cache.store(ops._index_key(), index)
"""
    assert run(cache, script=wrong)[0] == 0
    code, out, err, imported = run(cache, *ONE_LINER)
    assert (code, out, err) == (0, EXPECTED, "")
    # damaged: the file is not read, and the index is written again
    with open(index, "wb") as f:
        f.write(header + b"not a pickle")
    code, out, err, imported = run(cache, *ONE_LINER)
    assert (code, out, err) == (0, EXPECTED, "")
    assert "gradcli.ops.nn" in imported  # no index: the whole table
    code, out, err, imported = run(cache, *ONE_LINER)
    assert (code, out, err) == (0, EXPECTED, "")
    assert "gradcli.ops.nn" not in imported  # the index, written again


def test_no_usable_cache_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for _ in range(2):  # the cache cannot be made: every start loads the whole table
        code, out, err, imported = run(str(blocker), *ONE_LINER)
        assert (code, out, err) == (0, EXPECTED, "")
        assert "gradcli.ops.nn" in imported
    shared = tmp_path / "shared"
    (shared / "gradcli").mkdir(parents=True)
    os.chmod(shared / "gradcli", 0o777)  # others may write there: not trusted, not used
    for _ in range(2):
        code, out, err, imported = run(str(shared), *ONE_LINER)
        assert (code, out, err) == (0, EXPECTED, "")
    assert os.listdir(shared / "gradcli") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_cache_directory(cache):
    run(cache, *ONE_LINER)
    for name in os.listdir(os.path.join(cache, "gradcli")):
        os.remove(os.path.join(cache, "gradcli", name))
    os.chmod(os.path.join(cache, "gradcli"), 0o500)
    try:
        for _ in range(2):
            code, out, err, imported = run(cache, *ONE_LINER)
            assert (code, out, err) == (0, EXPECTED, "")
        assert os.listdir(os.path.join(cache, "gradcli")) == []
    finally:
        os.chmod(os.path.join(cache, "gradcli"), 0o700)
