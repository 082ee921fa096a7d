"""gradcli batch --engine dask against --jobs, on the same machine, as whole processes.

    python benchmarks/dask_batch.py              # 10^5 mixed records, 2 workers against --jobs 2
    python benchmarks/dask_batch.py -n 1000000 --workers 4 --reps 3
    python benchmarks/dask_batch.py --against ../main   # and the Dask engine of another checkout

Mixed records: several programs (one per record and the --expr default), every task, fixed
and random inputs, and a few bad lines. Prints each command, its median wall time over
interleaved runs, and the ratio dask / local (goal: at most 1.2), and checks that both
outputs are byte-identical. Needs the extra: pip install 'gradcli[dask]'.

On Linux it also prints each side's CPU time (user + system) by process, read from /proc
every 20 ms while the command runs (a process's last 20 ms may be missed): the main process
(for Dask: the client, the scheduler and the nannies), the workers, and the rest (Dask's fork
server and resource tracker); and the core-seconds no process used (cores x wall - CPU),
which is where the wall time waits. On a shared machine wall times need an idle one; the
CPU split moves less with the load.
"""

import argparse
import contextlib
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
TICK = os.sysconf("SC_CLK_TCK") if os.path.isdir("/proc/self/task") else 0
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


def _stat(pid):
    """(parent pid, CPU seconds) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _role(pid, main):
    if pid == main:
        return "main"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            line = f.read()
    except OSError:
        return "other"
    helper = b"multiprocessing.forkserver" in line or b"resource_tracker" in line
    return "other" if helper and _stat(pid)[0] == main else "workers"


def _sample(main, cpu, roles):
    """The CPU time so far of ``main`` and its descendants into ``cpu`` (pid: seconds)."""
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):  # (it ended)
                procs[int(name)] = _stat(name)
    tree, grown = {main}, True
    while grown:
        grown = False
        for pid, (parent, _) in procs.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    for pid in tree & procs.keys():
        cpu[pid] = procs[pid][1]
        if pid not in roles:
            roles[pid] = _role(pid, main)


def run(cmd, out, env=None):
    """(wall seconds, {role: [CPU seconds of each process]}) of one run of ``cmd``."""
    t = time.perf_counter()
    cpu, roles = {}, {}
    with open(out, "wb") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.DEVNULL, env=env, cwd=env and "/")
        while p.poll() is None:
            if TICK:
                _sample(p.pid, cpu, roles)
            time.sleep(0.02)
    assert p.returncode in (0, 1), (cmd, p.returncode)
    split = {}
    for pid, seconds in cpu.items():
        split.setdefault(roles[pid], []).append(seconds)
    return time.perf_counter() - t, split


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="records (default 100000)")
    ap.add_argument("--workers", type=int, default=2, help="dask workers and --jobs (default 2)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved runs of each (default 3)")
    ap.add_argument("--against", metavar="DIR", help="also the Dask engine of this checkout")
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
        envs = dict.fromkeys(cmds)
        if args.against:  # (its gradcli first on the path, from a directory outside both)
            cmds["other"] = cmds["dask"]
            envs["other"] = {**os.environ, "PYTHONPATH": os.path.abspath(args.against)}
        times = {k: [] for k in cmds}
        splits = {k: [] for k in cmds}
        outs = {k: os.path.join(tmp, f"{k}.out") for k in cmds}
        for _ in range(args.reps):
            for k, cmd in cmds.items():
                wall, split = run(cmd, outs[k], envs[k])
                times[k].append(wall)
                splits[k].append(split)
        same = len({digest(out) for out in outs.values()}) == 1
    med = {k: statistics.median(v) for k, v in times.items()}
    cores = os.cpu_count() or 1
    print(
        f"gradcli batch, {args.n:,} mixed records, {cores} cores, "
        f"medians of {args.reps} interleaved runs (load average {os.getloadavg()[0]:.1f})"
    )
    for k, cmd in cmds.items():
        shown = " ".join(c if c != path else "records.jsonl" for c in cmd[len(gc) :])
        print(f"  {med[k]:8.2f} s  {k:5}  gradcli {shown}")
    ratio = med["dask"] / med["local"]
    print(f"  dask / local = {ratio:.2f} (goal <= 1.2); outputs byte-identical: {same}")
    if args.against:
        print(f"  dask / other = {med['dask'] / med['other']:.2f} (other: {args.against})")
    if TICK:
        print("CPU seconds by process, medians (main; workers; other), and idle core-seconds:")
        for k in cmds:
            print(f"  {k:5}  {cpu_line(splits[k], times[k], cores)}")
    return 0 if same else 1


def cpu_line(splits, walls, cores):
    """Medians over the runs: CPU of each role (each worker's, busiest first), the total, and
    the idle core-seconds."""

    def median(values):
        return statistics.median(values)

    def role(name):
        return median(sum(s.get(name, [])) for s in splits)

    totals = [sum(map(sum, s.values())) for s in splits]
    idle = median(cores * w - t for w, t in zip(walls, totals, strict=True))
    ranked = [sorted(s.get("workers", []), reverse=True) for s in splits]
    workers = " + ".join(
        f"{median(r[k] for r in ranked):.2f}" for k in range(min(map(len, ranked)))
    )
    return (
        f"main {role('main'):.2f}; workers {workers}; other {role('other'):.2f}; "
        f"total {median(totals):.2f}; idle {idle:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
