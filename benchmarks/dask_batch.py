"""gradcli batch --engine dask against --jobs, on the same machine, as whole processes.

    python benchmarks/dask_batch.py              # 10^5 mixed records, 2 workers against --jobs 2
    python benchmarks/dask_batch.py -n 1000000 --workers 4 --reps 3

Mixed records: several programs (one per record and the --expr default), every task, fixed
and random inputs, and a few bad lines. Prints each command, its median wall time over
interleaved runs, and the ratio dask / local (goal: at most 1.2), and checks that both
outputs are byte-identical. Needs the extra: pip install 'gradcli[dask]'.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
EXPR = "mean(2*(x+2)^2)"


def gradcli_cmd():
    exe = shutil.which("gradcli", path=os.path.dirname(PY)) or shutil.which("gradcli")
    return [exe] if exe else [PY, "-m", "gradcli"]


def record(k):
    kind = k % 10
    if kind < 4:
        return {"id": k, "inputs": {"x": [k * 1e-3, 0.2038, 0.2971]}}
    if kind == 4:
        return {"inputs": {"x": "randn(8)"}}
    if kind == 5:
        return {"expr": "sum(tanh(W @ x))", "inputs": {"W": "randn(4,3)", "x": [1, 2, 3]}}
    if kind == 6:
        return {"task": "jvp", "inputs": {"x": [1, 2, 3]}, "tangents": {"x": [1, 0, 0]}}
    if kind == 7:
        return {"task": "jacobian", "expr": "x * x.sum()", "inputs": {"x": [1, 2]}}
    if kind == 8:
        return {"expr": "(x.relu() * y).sum()", "inputs": {"x": [-1, 2], "y": [3, 4]}}
    return {"expr": "log(x", "inputs": {"x": 1}}  # a parse error: a failed record


def run(cmd, out):
    t = time.perf_counter()
    with open(out, "wb") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.DEVNULL).returncode
    assert code in (0, 1), (cmd, code)
    return time.perf_counter() - t


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="records (default 100000)")
    ap.add_argument("--workers", type=int, default=2, help="dask workers and --jobs (default 2)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved runs of each (default 3)")
    args = ap.parse_args()
    gc = gradcli_cmd()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "records.jsonl")
        with open(path, "w") as f:
            for k in range(args.n):
                f.write(json.dumps(record(k)) + "\n")
        common = ["batch", "--expr", EXPR, "--random-seed", "1", path]
        cmds = {
            "local": gc + [*common, "--jobs", str(args.workers)],
            "dask": gc + [*common, "--engine", "dask", "--workers", str(args.workers)],
        }
        times = {k: [] for k in cmds}
        outs = {k: os.path.join(tmp, f"{k}.out") for k in cmds}
        for _ in range(args.reps):
            for k, cmd in cmds.items():
                times[k].append(run(cmd, outs[k]))
        same = digest(outs["local"]) == digest(outs["dask"])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"gradcli batch, {args.n:,} mixed records, {os.cpu_count()} cores, "
        f"medians of {args.reps} interleaved runs"
    )
    for k, cmd in cmds.items():
        shown = " ".join(c if c != path else "records.jsonl" for c in cmd[len(gc) :])
        print(f"  {med[k]:8.2f} s  gradcli {shown}")
    ratio = med["dask"] / med["local"]
    print(f"  dask / local = {ratio:.2f} (goal <= 1.2); outputs byte-identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
