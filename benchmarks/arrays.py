"""Large arrays: gradcli's forward and backward against numpy written by hand, in one process.

    python benchmarks/arrays.py               # 10^6 and 10^7 float32: 7 rounds of 7 runs a side
    python benchmarks/arrays.py --rounds 15   # more rounds on a busy machine

Both programs, mean(2*(x+2)^2) and sum(tanh(x)*sigmoid(x)), go through gradcli.evaluate (the
API `grad` calls) with keep="inputs" (only what backward needs is kept, as in PyTorch), the
program parsed once, as a program evaluated again for new inputs is. The baseline is the
forward and the backward each written out by hand in numpy, reusing a dead temporary with out=
or an in-place operator where a person would. Single thread (the thread variables are set
before numpy is imported); time is CPU time (user + system, so page faults count; on a
machine shared with other work wall time mostly measures the others; the wall ratio is
printed beside it), the median of all runs, made in rounds that alternate a
process of one side with a process of the other (so drift hits both alike, and neither
side's allocator state -- glibc's heap and mmap threshold -- is the other's; a second
table has both sides in this one process, run by run, as a cross-check); extra peak
memory is tracemalloc's peak above what the input takes, each side in a fresh process, so
that anything gradcli keeps between evaluations (its buffer pool) counts against it: for
the evaluations after the first (as timed) and, apart, for the first (which records the
plan, as every `gradcli grad` process does). A last table gives the first evaluation's
time at the size apart (each side's fresh pages; for gradcli the recording of the plan).
Goals: time <= 1.0x numpy by hand, extra peak <= numpy by hand's.
"""

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from argparse import SUPPRESS  # noqa: E402

import numpy as np  # noqa: E402

PROGRAMS = {"mean": "mean(2*(x+2)^2)", "tanh": "sum(tanh(x)*sigmoid(x))"}


def by_hand_mean(x):
    """mean(2*(x+2)^2) and its gradient 4(x+2)/n."""
    y = x + 2
    t = np.square(y)
    t *= 2
    value = t.mean()
    grad = np.multiply(y, 4.0 / x.size, out=t)  # t is dead: the gradient goes in it
    return value, grad


def by_hand_tanh(x):
    """sum(tanh(x)·σ(x)) and its gradient (1 - tanh²)·σ + tanh·σ(1 - σ)."""
    t = np.tanh(x)
    s = np.negative(x)
    np.exp(s, out=s)
    s += 1
    np.divide(1, s, out=s)  # σ(x) = 1 / (1 + e^-x)
    p = t * s
    value = p.sum()
    grad = np.square(t)
    np.subtract(1, grad, out=grad)
    grad *= s  # (1 - tanh²)·σ
    np.subtract(1, s, out=p)  # p is dead: σ(1 - σ)·tanh goes in it
    p *= s
    p *= t
    grad += p
    return value, grad


BY_HAND = {"mean": by_hand_mean, "tanh": by_hand_tanh}


def runner(side, which):
    if side == "numpy":
        return BY_HAND[which]
    import gradcli
    from gradcli.parser import parse

    program = parse(PROGRAMS[which])

    def run(x):
        r = gradcli.evaluate(program, {"x": x}, keep="inputs")
        return r.value, r.grad["x"]

    return run


def data(n):
    return np.random.default_rng(0).standard_normal(n, dtype=np.float32)


def peak(side, which, n, reps):
    """Extra peak bytes, in this (fresh) process, of the first evaluation (for gradcli the
    one that records the plan, as every `gradcli grad` process does) and of ``reps`` more
    (replays of the plan, as in batch or a program evaluated again)."""
    import tracemalloc

    x = data(n)
    run = runner(side, which)
    run(data(3))  # imports done: their modules are not memory an evaluation takes
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    peaks = []
    for _ in range(1 + reps):
        tracemalloc.reset_peak()
        out = run(x)
        del out
        peaks.append(tracemalloc.get_traced_memory()[1] - base)
    tracemalloc.stop()
    return peaks[0], max(peaks[1:])


def timed(side, which, n, reps):
    """(CPU seconds, wall seconds) of the first evaluation at this size (for gradcli the
    one that records the plan, as every `gradcli grad` process does; imports done before)
    and of each of ``reps`` evaluations after a warm-up (plan recorded, pages touched), in
    this (fresh) process."""
    x = data(n)
    run = runner(side, which)
    run(data(3))  # imports done: they are not an evaluation's time
    c, t = time.process_time(), time.perf_counter()
    run(x)
    first = (time.process_time() - c, time.perf_counter() - t)
    for _ in range(2):
        run(x)
    times = []
    for _ in range(reps):
        c, t = time.process_time(), time.perf_counter()
        out = run(x)
        times.append((time.process_time() - c, time.perf_counter() - t))
        del out
    return first, times


def child(mode, side, which, n, reps):
    """Run ``--time`` or ``--peak`` in a fresh process: each side with its own allocator
    state (glibc's heap and mmap threshold move with what a process freed last)."""
    return json.loads(
        subprocess.run(
            [sys.executable, __file__, mode, side, which, str(n), str(reps)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def _medians(pairs):
    """(median CPU, median wall) of (CPU, wall) pairs."""
    return tuple(statistics.median(p[k] for p in pairs) for k in (0, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds of processes")
    ap.add_argument("--reps", type=int, default=7, help="timed evaluations per round")
    ap.add_argument("--sizes", default="1000000,10000000", help="comma-separated sizes")
    ap.add_argument("--programs", default="mean,tanh", help="comma-separated: mean, tanh")
    for mode in ("--time", "--peak"):
        ap.add_argument(mode, nargs=4, metavar=("SIDE", "PROGRAM", "N", "REPS"), help=SUPPRESS)
    args = ap.parse_args()
    if args.peak or args.time:
        side, which, n, reps = args.peak or args.time
        print(json.dumps((peak if args.peak else timed)(side, which, int(n), int(reps))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    programs = args.programs.split(",")
    rows = []
    sides = ("gradcli", "numpy")
    for which in programs:
        runs = {side: runner(side, which) for side in sides}
        for n in sizes:
            x = data(n)
            want = runs["numpy"](x)
            got = runs["gradcli"](x)
            # the same numbers, to float32 rounding (the hand-written order of operations
            # differs from the rules')
            np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-4)
            times = {side: [] for side in sides}
            firsts = {side: [] for side in sides}
            for _ in range(args.rounds):  # interleaved rounds: drift hits both sides alike
                for side in sides:
                    first, later = child("--time", side, which, n, args.reps)
                    firsts[side].append(first)
                    times[side] += later
            # (CPU, wall) medians
            med = {side: _medians(v) for side, v in times.items()}
            med_first = {side: _medians(v) for side, v in firsts.items()}
            mem = {side: child("--peak", side, which, n, 3) for side in sides}
            # the same, both sides in this one process, run by run (each side's memory then
            # comes from the heap the other left: numpy's fresh tensors fault less or more)
            together = {side: [] for side in sides}
            for _ in range(args.rounds * args.reps):
                for side in sides:
                    t = time.process_time()
                    out = runs[side](x)
                    together[side].append(time.process_time() - t)
                    del out
            same = {side: statistics.median(v) for side, v in together.items()}
            rows.append((PROGRAMS[which], n, med, mem, same, med_first))
    print(
        f"large arrays — {time.strftime('%Y-%m-%d')}, python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, 1 thread; medians of {args.rounds} interleaved rounds of "
        f"{args.reps} runs, each side in its own processes; CPU time (the wall-time ratio beside)"
    )
    print()
    print(
        "| program | n | gradcli | numpy by hand | time ratio (goal ≤ 1.0) | wall ratio "
        "| extra peak gradcli | numpy by hand | peak ratio (goal ≤ 1.0) "
        "| first evaluation: extra peak gradcli | numpy by hand | peak ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for expr, n, med, mem, _, _ in rows:
        (first, later), (nfirst, nlater) = mem["gradcli"], mem["numpy"]
        (cpu, wall), (ncpu, nwall) = med["gradcli"], med["numpy"]
        print(
            f"| `{expr}` | {n:.0e} | {cpu * 1e3:.2f} ms | {ncpu * 1e3:.2f} ms "
            f"| {cpu / ncpu:.2f} | {wall / nwall:.2f} | {later / 2**20:.1f} MiB "
            f"| {nlater / 2**20:.1f} MiB | {later / nlater:.2f} | {first / 2**20:.1f} MiB "
            f"| {nfirst / 2**20:.1f} MiB | {first / nfirst:.2f} |"
        )
    print()
    print("Both sides in one process, interleaved run by run (allocator state shared):")
    print()
    print("| program | n | gradcli | numpy by hand | time ratio |")
    print("|---|---|---|---|---|")
    for expr, n, _, _, same, _ in rows:
        print(
            f"| `{expr}` | {n:.0e} | {same['gradcli'] * 1e3:.2f} ms | "
            f"{same['numpy'] * 1e3:.2f} ms | {same['gradcli'] / same['numpy']:.2f} |"
        )
    print()
    print("The first evaluation at the size (fresh pages; gradcli records the plan), medians:")
    print()
    print("| program | n | gradcli CPU | numpy by hand CPU | CPU ratio | wall ratio |")
    print("|---|---|---|---|---|---|")
    for expr, n, _, _, _, first in rows:
        (cpu, wall), (ncpu, nwall) = first["gradcli"], first["numpy"]
        print(
            f"| `{expr}` | {n:.0e} | {cpu * 1e3:.2f} ms | {ncpu * 1e3:.2f} ms "
            f"| {cpu / ncpu:.2f} | {wall / nwall:.2f} |"
        )
    print()
    print(
        json.dumps(
            [
                {
                    "expr": e,
                    "n": n,
                    "cpu_s": {side: v[0] for side, v in t.items()},
                    "wall_s": {side: v[1] for side, v in t.items()},
                    "peak_bytes": m,
                    "one_process_cpu_s": o,
                    "first_cpu_s": {side: v[0] for side, v in f.items()},
                    "first_wall_s": {side: v[1] for side, v in f.items()},
                }
                for e, n, t, m, o, f in rows
            ]
        )
    )


if __name__ == "__main__":
    main()
