"""gradcli batch against the I/O floor, in one run: interleaved repetitions, medians, ratios.

    python benchmarks/batch_floor.py              # 10,000 records, 7 repetitions
    python benchmarks/batch_floor.py --reps 3 -n 3000

The records are a third each (mixed, in turn, random inputs from a fixed seed):
  mean(2*(x+2)^2)                                  x of 3 elements
  binary_cross_entropy_with_logits(X @ w + b, t)   X 4x8, w 8, b a number, t 4 in [0, 1]
  sum(tanh(W @ x + b))                             W 16x8, x 8, b 16

Each is timed as a whole process on the same file, written to /dev/null (wall time, and
the CPU time of the process and its workers):
  floor      a script that only json.loads each record and json.dumps an answer of the same
             size (the inputs echoed as gradients): what reading and writing JSON Lines cost
  orjson     the same floor with orjson, where it is installed (for reference)
  numpy      hand-written numpy per record: the forward and backward of each program
  jobs 1     gradcli batch --jobs 1
  jobs auto  gradcli batch (the default --jobs: every core for a file this size)
and the goals printed with their ratios: --jobs 1 <= 1.5x the floor, the default --jobs on
2 cores <= 0.6x --jobs 1.

    python benchmarks/batch_floor.py --baseline /tmp/old   # also an older gradcli's source tree

adds "old jobs 1" and "old jobs auto": the same runs of the gradcli package in that
directory (e.g. `git archive COMMIT | tar -x -C /tmp/old`), interleaved with the others.

    python benchmarks/batch_floor.py --timeline      # where the wall time of one run goes

runs `gradcli batch` (the default --jobs) once more, with gradcli.batch.answers (each
unit of records a process answers) and os.write timed in every process of the run, and
prints, from the process's start, when its imports end, when each process starts its
first unit and ends its last, and when the last byte is written.
"""

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
PROGRAMS = (
    "mean(2*(x+2)^2)",
    "binary_cross_entropy_with_logits(X @ w + b, t)",
    "sum(tanh(W @ x + b))",
)


def gradcli_cmd():
    exe = shutil.which("gradcli", path=os.path.dirname(PY)) or shutil.which("gradcli")
    return [exe] if exe else [PY, "-m", "gradcli"]


def records(n, seed=0):
    """n records, the three programs in turn, inputs drawn from ``seed``."""
    rng = random.Random(seed)

    def vec(k):  # full precision, as json.dumps writes a tensor's tolist()
        return [rng.gauss(0, 1) for _ in range(k)]

    for i in range(n):
        kind = i % 3
        if kind == 0:
            inputs = {"x": vec(3)}
        elif kind == 1:
            inputs = {
                "X": [vec(8) for _ in range(4)],
                "w": vec(8),
                "b": rng.gauss(0, 1),
                "t": [rng.random() for _ in range(4)],
            }
        else:
            inputs = {"W": [vec(8) for _ in range(16)], "x": vec(8), "b": vec(16)}
        yield {"id": i, "expr": PROGRAMS[kind], "inputs": inputs}


FLOOR = r"""
import json, sys
GRAD_FN = {"mean(2*(x+2)^2)": "MeanBackward0",
           "sum(tanh(W @ x + b))": "SumBackward0"}
out = sys.stdout
for line in open(sys.argv[1], "rb"):
    if not line.strip():
        continue
    rec = json.loads(line)
    inputs = rec["inputs"]
    answer = {"id": rec["id"], "expr": rec["expr"], "dtype": "float32",
              "value": 0.12345678901234567, "shape": [],
              "grad_fn": GRAD_FN.get(rec["expr"], "BinaryCrossEntropyWithLogitsBackward0"),
              "grad": inputs}
    out.write(json.dumps(answer) + "\n")
"""

FLOOR_ORJSON = r"""
import orjson, sys
GRAD_FN = {"mean(2*(x+2)^2)": "MeanBackward0",
           "sum(tanh(W @ x + b))": "SumBackward0"}
out = sys.stdout.buffer
for line in open(sys.argv[1], "rb"):
    if not line.strip():
        continue
    rec = orjson.loads(line)
    inputs = rec["inputs"]
    answer = {"id": rec["id"], "expr": rec["expr"], "dtype": "float32",
              "value": 0.12345678901234567, "shape": [],
              "grad_fn": GRAD_FN.get(rec["expr"], "BinaryCrossEntropyWithLogitsBackward0"),
              "grad": inputs}
    out.write(orjson.dumps(answer) + b"\n")
"""

NUMPY = r"""
import json, sys
import numpy as np

f32 = np.float32

def seed(rec):
    x = np.array(rec["inputs"]["x"], dtype=f32)
    y = x + f32(2)
    value = np.mean(f32(2) * y * y, dtype=f32)
    return value, "MeanBackward0", {"x": (f32(4.0 / x.size) * y)}

def bce(rec):
    i = rec["inputs"]
    X, w = np.array(i["X"], dtype=f32), np.array(i["w"], dtype=f32)
    b, t = f32(i["b"]), np.array(i["t"], dtype=f32)
    z = X @ w + b
    # max(z, 0) - z t + log(1 + exp(-|z|)), as PyTorch computes it
    loss = np.maximum(z, f32(0)) - z * t + np.log1p(np.exp(-np.abs(z)))
    value = loss.mean(dtype=f32)
    gz = (f32(1) / (f32(1) + np.exp(-z)) - t) / f32(z.size)
    grads = {"X": np.outer(gz, w), "w": X.T @ gz, "b": gz.sum(dtype=f32), "t": -z / f32(z.size)}
    return value, "BinaryCrossEntropyWithLogitsBackward0", grads

def mlp(rec):
    i = rec["inputs"]
    W, x, b = (np.array(i[k], dtype=f32) for k in ("W", "x", "b"))
    h = np.tanh(W @ x + b)
    g = f32(1) - h * h
    return h.sum(dtype=f32), "SumBackward0", {"W": np.outer(g, x), "x": W.T @ g, "b": g}

PROGRAMS = {"mean(2*(x+2)^2)": seed, "binary_cross_entropy_with_logits(X @ w + b, t)": bce,
            "sum(tanh(W @ x + b))": mlp}
out = sys.stdout
with np.errstate(all="ignore"):
    for line in open(sys.argv[1], "rb"):
        if not line.strip():
            continue
        rec = json.loads(line)
        value, grad_fn, grads = PROGRAMS[rec["expr"]](rec)
        answer = {"id": rec["id"], "expr": rec["expr"], "dtype": "float32",
                  "value": float(value), "shape": [], "grad_fn": grad_fn,
                  "grad": {k: np.asarray(v).tolist() for k, v in grads.items()}}
        out.write(json.dumps(answer) + "\n")
"""


TIMELINE = r"""
import os, sys, time
log = os.open(os.environ["TIMELINE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

def event(what):
    os.write(log, f"{os.getpid()} {time.time():.6f} {time.process_time():.6f} {what}\n".encode())

event("python up")
from gradcli import batch, commands
event("imports")
real_answers, real_write = batch.answers, os.write

def answers(items, defaults):
    event(f"unit {len(items)}")
    try:
        return real_answers(items, defaults)
    finally:
        event("unit end")

def write(fd, data):
    n = real_write(fd, data)
    if fd == 1:
        event(f"write {n}")
    return n

def timed(name):
    real = getattr(batch, name)

    def call(*args, **kwargs):
        event(f"{name}")
        try:
            return real(*args, **kwargs)
        finally:
            event(f"{name} end")

    setattr(batch, name, call)

for name in ("_warm", "_start"):
    if hasattr(batch, name):
        timed(name)
batch.answers, os.write = answers, write
sys.argv[0] = "gradcli"
try:
    commands.main()
finally:
    event("exit")
"""


def timeline(path, args):
    """One run with its events timed in every process (TIMELINE), summed up per process."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "events")
        env = dict(os.environ, TIMELINE_LOG=log)
        start = time.time()
        subprocess.run(
            [PY, "-c", TIMELINE, "batch", *args, path],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        end = time.time()
        with open(log) as f:
            events = [line.split(" ", 3) for line in f.read().splitlines()]
    parent = events[0][0]
    print(
        f"timeline of `gradcli batch {' '.join(args)}`, ms from the process's start "
        f"(exit seen at {(end - start) * 1e3:.0f} ms)"
    )
    pids = list(dict.fromkeys(pid for pid, _, _, _ in events))
    for pid in pids:
        mine = [(float(t) - start, what) for p, t, _, what in events if p == pid]
        cpu = [float(c) for p, _, c, _ in events if p == pid]
        cpu_at = {what: float(c) for p, _, c, what in events if p == pid}
        units = [t for t, what in mine if what.startswith("unit ") and what != "unit end"]
        ends = [t for t, what in mine if what == "unit end"]
        writes = [t for t, what in mine if what.startswith("write")]
        busy = sum(b - a for a, b in zip(units, ends, strict=False))
        parts = [("parent" if pid == parent else "worker") + f" {pid}:"]
        for t, what in mine:
            if what in ("python up", "imports", "exit"):
                parts.append(f"{what} {t * 1e3:.0f}")
            elif what.startswith("_"):  # (a function of gradcli.batch's, timed)
                parts.append(f"{what} {t * 1e3:.0f} (CPU {cpu_at[what] * 1e3:.0f})")
        if units:
            parts.append(
                f"{len(units)} units {units[0] * 1e3:.0f}-{ends[-1] * 1e3:.0f} "
                f"(busy {busy * 1e3:.0f})"
            )
        if writes:
            parts.append(
                f"{len(writes)} writes, first {writes[0] * 1e3:.0f} last {writes[-1] * 1e3:.0f}"
            )
        parts.append(f"CPU {cpu[-1] * 1e3:.0f} at its last event")
        print("  " + ", ".join(parts))


def cpu_of_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd):
    """(wall seconds, CPU seconds of the process and its workers)."""
    c, t = cpu_of_children(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t, cpu_of_children() - c


def have(module):
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def check_answers(gc, path, n):
    """Every record answered, none an error (else the timings mean nothing); the bytes of
    gradcli's answers and of the floor's."""
    p = subprocess.run(gc + ["batch", "--jobs", "1", path], capture_output=True, text=True)
    got = [json.loads(line) for line in p.stdout.splitlines()]
    bad = [a for a in got if "error" in a]
    if p.returncode != 0 or len(got) != n or bad:
        sys.exit(f"gradcli batch did not answer every record: {p.stderr.strip()} {bad[:1]}")
    floor = subprocess.run([PY, "-c", FLOOR, path], capture_output=True, check=True).stdout
    return len(p.stdout), len(floor)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10_000, help="records (default 10,000)")
    ap.add_argument("--reps", type=int, default=7, help="repetitions (default 7)")
    ap.add_argument("--baseline", metavar="DIR", help="also time the gradcli source in DIR")
    ap.add_argument(
        "--timeline", action="store_true", help="only print where one run's wall time goes"
    )
    ap.add_argument("--jobs", default=None, help="with --timeline: this --jobs (default: auto)")
    args = ap.parse_args()
    gc = gradcli_cmd()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "records.jsonl")
        with open(path, "w") as f:
            for rec in records(args.n):
                f.write(json.dumps(rec) + "\n")
        if args.timeline:
            timeline(path, [] if args.jobs is None else ["--jobs", args.jobs])
            return
        sizes = check_answers(gc, path, args.n)
        cmds = {
            "floor": [PY, "-c", FLOOR, path],
            "numpy": [PY, "-c", NUMPY, path],
            "jobs 1": gc + ["batch", "--jobs", "1", path],
            "jobs auto": gc + ["batch", path],
        }
        if have("orjson"):
            cmds["orjson"] = [PY, "-c", FLOOR_ORJSON, path]
        if args.baseline:
            old = [
                PY,
                "-c",
                f"import sys; sys.path.insert(0, {args.baseline!r}); "
                "from gradcli.commands import main; sys.argv[0] = 'gradcli'; main()",
            ]
            cmds["old jobs 1"] = old + ["batch", "--jobs", "1", path]
            cmds["old jobs auto"] = old + ["batch", path]
        times = {k: [] for k in cmds}
        cpu = {k: [] for k in cmds}
        for _ in range(args.reps):
            for k, cmd in cmds.items():
                wall, used = timed(cmd)
                times[k].append(wall)
                cpu[k].append(used)
        size = os.path.getsize(path)
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    print(
        f"gradcli batch vs the I/O floor — {time.strftime('%Y-%m-%d')}, python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores; {args.n:,} mixed records "
        f"({size / 1e6:.1f} MB), medians of {args.reps} interleaved runs, whole processes"
    )
    print(f"answers: gradcli {sizes[0] / 1e6:.1f} MB, the floor's {sizes[1] / 1e6:.1f} MB")
    print()
    print("| run | wall | / floor | CPU | / floor |")
    print("|---|---|---|---|---|")
    for k in ("floor", "orjson", "numpy", "jobs 1", "jobs auto", "old jobs 1", "old jobs auto"):
        if k in med:
            print(
                f"| {k} | {med[k]:.3f} s | {med[k] / med['floor']:.2f} | {cpu_med[k]:.3f} s | "
                f"{cpu_med[k] / cpu_med['floor']:.2f} |"
            )
    print()
    print(f"load average {os.getloadavg()[0]:.1f}: on a busy machine the CPU columns are the")
    print("steadier measure of work; the --jobs goal needs idle cores to be seen in wall time.")
    r1 = med["jobs 1"] / med["floor"]
    r2 = med["jobs auto"] / med["jobs 1"]
    print(f"goal: --jobs 1 <= 1.5x the floor: {r1:.2f}x {'met' if r1 <= 1.5 else 'NOT met'}")
    print(
        f"goal: default --jobs <= 0.6x --jobs 1 (2 cores): {r2:.2f}x "
        f"{'met' if r2 <= 0.6 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
