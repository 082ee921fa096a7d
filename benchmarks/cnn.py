"""A small CNN, forward and backward in process: gradcli against PyTorch eager.

    python benchmarks/cnn.py                       # 3 rounds of 50 steps a side
    python benchmarks/cnn.py --reps 200 --rounds 5

Batch 8 of 3×32×32 → conv 16 3×3 → relu → max_pool 2 → conv 32 3×3 → relu →
adaptive_avg_pool 1 → linear 10 (h @ W.T + b) → cross_entropy, gradients of every weight and
bias and of the input. Each side runs in its own process: gradcli through gradcli.evaluate
with a parsed program and keep="inputs", as a script calling the API would, with numpy's
BLAS on one thread and on its default threads (and once without the engine's buffer pool,
to show what the pool holds); PyTorch with torch.set_num_threads(1) and with its default.
Every side's process starts, warms up (5 steps) and waits; then the sides take turns of 5
timed steps each, the order rotated every turn, until each has run --reps steps, --rounds
times over, so a busy moment of a shared machine hits the sides alike instead of whichever
ran in it. Times are the median and the best of all timed steps, and the median CPU time
of a step (which other work disturbs less than the wall clock; it counts every thread, so
only the one-thread rows compare), as ratios to PyTorch on one thread. Memory: "extra
peak" is the largest rise of the resident size within a turn (VmHWM, reset at the turn's
start, minus the resident size then), the memory a step takes beyond what the process
already holds; "held" is the resident size at the end over the one before the warm-up:
what the steps leave resident (gradcli's buffer pool and convolution work arrays, the heap
either side keeps, code pages faulted in on first use).
"""

import argparse
import json
import os
import subprocess
import sys
import time

PROGRAM = """h = relu(conv2d(x, w1, b1))
h = max_pool2d(h, 2)
h = relu(conv2d(h, w2, b2))
h = adaptive_avg_pool2d(h, 1)
h = flatten(h, 1)
z = h @ W.T + b
cross_entropy(z, y)"""

SIDE = r"""
import json, statistics, sys, time
import numpy as np

which, reps = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
shapes = {"x": (8, 3, 32, 32), "w1": (16, 3, 3, 3), "b1": (16,), "w2": (32, 16, 3, 3),
          "b2": (32,), "W": (10, 32), "b": (10,)}
inputs = {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in shapes.items()}
labels = rng.integers(0, 10, 8)
program = sys.argv[3]


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024


if which.startswith("gradcli"):
    import gradcli
    from gradcli.parser import parse

    if which.endswith("nopool"):
        from gradcli import engine

        engine._POOL.max_bytes = 0
    p = parse(program)
    data = dict(inputs, y=labels.astype(np.float32))
    wrt = list(shapes)

    def step():
        r = gradcli.evaluate(p, data, wrt=wrt, keep="inputs")
        return float(r.value), r.grad
else:
    import torch
    import torch.nn.functional as F

    if which == "torch1":
        torch.set_num_threads(1)
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    y = torch.tensor(labels)

    def step():
        for t in leaves.values():
            t.grad = None
        t = leaves
        h = F.relu(F.conv2d(t["x"], t["w1"], t["b1"]))
        h = F.max_pool2d(h, 2)
        h = F.relu(F.conv2d(h, t["w2"], t["b2"]))
        h = F.adaptive_avg_pool2d(h, 1)
        h = torch.flatten(h, 1)
        z = h @ t["W"].T + t["b"]
        loss = F.cross_entropy(z, y)
        loss.backward()
        return loss.item(), {k: v.grad for k, v in t.items()}

def reset_peak():
    # VmHWM starts afresh at the current resident size (Linux's clear_refs "5"), so the peak
    # of a turn counts that turn alone, not an import's or the warm-up's; False where the
    # kernel does not allow it (the peak then covers everything before the turn too)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


rss0 = status("VmRSS:")
for _ in range(5):
    value, grads = step()
grads = None
print(json.dumps({"ready": True}), flush=True)
times, cpu, extra, resets = [], [], 0, True
for line in sys.stdin:  # "run N": a turn of N timed steps; "end": the totals
    if line.strip() == "end":
        break
    resets = reset_peak() and resets
    rss = status("VmRSS:")
    for _ in range(int(line.split()[1])):
        t0, c0 = time.perf_counter(), time.process_time()
        value, grads = step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    grads_sum = float(np.asarray(grads["w1"]).sum())
    grads = None
    extra = max(extra, status("VmHWM:") - rss)
    print(json.dumps({"done": True}), flush=True)
print(json.dumps({"time": statistics.median(times), "best": min(times), "extra": extra,
                  "held": max(status("VmRSS:") - rss0, 0), "resets": resets,
                  "cpu": statistics.median(cpu), "value": value, "gw1": grads_sum}))
"""


TURN = 5  # steps a side runs before the next side's turn
ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def start(which, reps):
    """A side's process, warmed up and waiting for its first turn; None without PyTorch."""
    env = dict(os.environ, **(ONE_THREAD if which.startswith("gradcli1") else {}))
    proc = subprocess.Popen(
        [sys.executable, "-c", SIDE, which, str(reps), PROGRAM],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if which.startswith("torch") else None,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    if not proc.stdout.readline():  # (it died: the import of torch failed)
        proc.wait()
        return None
    return proc


def ask(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument(
        "--rounds", type=int, default=3, help="rounds of --reps steps a side, interleaved"
    )
    args = ap.parse_args()
    order = ["gradcli1", "gradcli", "gradcli1-nopool", "torch1", "torch"]
    procs = {}
    for which in order:
        proc = start(which, args.reps)
        if proc is None:
            print(f"({which} skipped: PyTorch is not installed)")
        else:
            procs[which] = proc
    # Each round runs --reps steps a side in turns of a few steps, the order rotated every
    # turn, so a busy moment of the machine hits every side alike.
    turn, k = list(procs), 0
    for _ in range(args.rounds):
        left = args.reps
        while left:
            n = min(TURN, left)
            for which in turn[k % len(turn) :] + turn[: k % len(turn)]:
                ask(procs[which], f"run {n}")
                if which in ("gradcli", "torch"):
                    time.sleep(0.2)  # (its threads spin a while after it: not into the next)
            left -= n
            k += 1
    sides = {which: ask(proc, "end") for which, proc in procs.items()}
    for proc in procs.values():
        proc.wait()
    base = sides.get("torch1")
    print(
        f"small CNN, batch 8×3×32×32, forward + backward: median and best of "
        f"{args.rounds}×{args.reps} steps a side, interleaved {TURN} at a time"
    )
    head = ("side", "median", "ratio", "best", "ratio", "cpu", "ratio", "extra peak", "ratio")
    head += ("held",)
    widths = ("<26", ">10", ">8", ">10", ">8", ">10", ">8", ">13", ">8", ">10")
    print("".join(f"{h:{w}}" for h, w in zip(head, widths, strict=True)))
    names = {
        "gradcli1": "gradcli, 1 thread",
        "gradcli": "gradcli, default",
        "gradcli1-nopool": "gradcli, 1 thread, no pool",
        "torch1": "PyTorch, 1 thread",
        "torch": "PyTorch, default",
    }
    for which, r in sides.items():
        ratio = f"{r['time'] / base['time']:.2f}×" if base else "-"
        best = f"{r['best'] / base['best']:.2f}×" if base else "-"
        mem = f"{r['extra'] / max(base['extra'], 1):.2f}×" if base else "-"
        cpu = f"{r['cpu'] / base['cpu']:.2f}×" if base else "-"
        print(
            f"{names[which]:<26}{r['time'] * 1e3:>8.2f}ms{ratio:>8}{r['best'] * 1e3:>8.2f}ms"
            f"{best:>8}{r['cpu'] * 1e3:>8.2f}ms{cpu:>8}{r['extra'] / 2**20:>10.1f}MiB{mem:>8}"
            f"{r['held'] / 2**20:>7.1f}MiB"
        )
    if not all(r["resets"] for r in sides.values()):
        print("(VmHWM could not be reset here: the extra peak covers the warm-up and imports)")
    if base:
        # the same numbers on both sides, or the comparison means nothing
        ours, theirs = sides["gradcli1"], base
        assert abs(ours["value"] - theirs["value"]) < 1e-4 * max(1, abs(theirs["value"]))
        assert abs(ours["gw1"] - theirs["gw1"]) < 1e-3 * max(1, abs(theirs["gw1"]))


if __name__ == "__main__":
    main()
