"""A small CNN, forward and backward in process: gradcli against PyTorch eager.

    python benchmarks/cnn.py                       # 50 timed repetitions, 3 rounds
    python benchmarks/cnn.py --reps 200 --rounds 5

Batch 8 of 3×32×32 → conv 16 3×3 → relu → max_pool 2 → conv 32 3×3 → relu →
adaptive_avg_pool 1 → linear 10 (h @ W.T + b) → cross_entropy, gradients of every weight and
bias and of the input. Each side runs in its own process: gradcli through gradcli.evaluate
with a parsed program and keep="inputs", as a script calling the API would, with numpy's
BLAS on one thread and on its default threads (and once without the engine's buffer pool,
to show what the pool holds); PyTorch with torch.set_num_threads(1) and with its default.
Times are the median and the best of the timed repetitions after warm-up runs, and the
median CPU time of the process (which a machine shared with other work disturbs less than
the wall clock; it counts every thread, so only the one-thread rows compare), sides
interleaved over rounds (the round with the lowest median is kept), as ratios to PyTorch on
one thread. Memory is the extra peak resident size of the timed loop (VmHWM minus the
resident size just before it), so imports and inputs count for neither side; "held" is what
the warm-up runs left resident (caches: gradcli's buffer pool and the convolutions' work
arrays, PyTorch's allocator), which the extra peak does not count.
"""

import argparse
import json
import os
import subprocess
import sys

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

grads = None
rss0 = status("VmRSS:")
for _ in range(5):
    value, grads = step()
grads = None
rss = status("VmRSS:")
times, cpu = [], []
for _ in range(reps):
    t0, c0 = time.perf_counter(), time.process_time()
    value, grads = step()
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
extra = status("VmHWM:") - rss
print(json.dumps({"time": statistics.median(times), "best": min(times), "extra": max(extra, 0),
                  "held": max(rss - rss0, 0),
                  "cpu": statistics.median(cpu),
                  "value": value,
                  "gw1": float(np.asarray(grads["w1"]).sum())}))
"""


ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def run(which, reps):
    env = dict(os.environ, **(ONE_THREAD if which.startswith("gradcli1") else {}))
    out = subprocess.run(
        [sys.executable, "-c", SIDE, which, str(reps), PROGRAM],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best is kept)")
    args = ap.parse_args()
    order = ["gradcli1", "gradcli", "gradcli1-nopool", "torch1", "torch"]
    sides = {}
    for _ in range(args.rounds):  # interleaved, so a busy moment hits every side alike
        for which in list(order):
            try:
                r = run(which, args.reps)
            except subprocess.CalledProcessError:
                print(f"({which} skipped: PyTorch is not installed)")
                order.remove(which)
                continue
            if which not in sides or r["time"] < sides[which]["time"]:
                sides[which] = r
    base = sides.get("torch1")
    print(
        f"small CNN, batch 8×3×32×32, forward + backward: median and best of {args.reps}, "
        f"best of {args.rounds} rounds"
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
    if base:
        # the same numbers on both sides, or the comparison means nothing
        ours, theirs = sides["gradcli1"], base
        assert abs(ours["value"] - theirs["value"]) < 1e-4 * max(1, abs(theirs["value"]))
        assert abs(ours["gw1"] - theirs["gw1"]) < 1e-3 * max(1, abs(theirs["gw1"]))


if __name__ == "__main__":
    main()
