"""gradcli and PyTorch side by side, in one run: interleaved repetitions, medians, ratios.

    python benchmarks/bench.py            # everything (PyTorch optional: skipped if absent)
    python benchmarks/bench.py --quick    # fewer repetitions
    python benchmarks/bench.py --startup  # only the one-liner's start, and where it goes

(a) the one-liner `gradcli grad 'mean(2*(x+2)^2)' x=...`, whole process, against
    `python -c 'import torch ...'`;
(b) 10,000 JSON Lines records of mean(2*(x+2)^2), whole process: `gradcli batch` against a
    PyTorch loop reading the same file and writing the same answers;
(c) forward+backward of mean(2*(x+2)^2) on 10^6 and 10^7 float32 elements, in process,
    against PyTorch eager and against hand-written numpy (the floor for a numpy engine);
(d) programs of 50,000 and 200,000 terms read with -f (time should grow linearly);
(e) peak memory of (c) at 10^7 elements, above what the inputs take, against PyTorch's.

--startup: the one-liner against `python -c "import numpy"` (goal <= 1.4x), interleaved, wall and
CPU (user + system) medians, run from compiled bytecode with the per-user caches warm (as an
installed package starts); then, from one `python -X importtime` run, the import time of each
top-level package the one-liner imports and `import numpy` does not.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
X = "x=-1.0475,0.2038,0.2971"
EXPR = "mean(2*(x+2)^2)"


def gradcli_cmd():
    exe = shutil.which("gradcli", path=os.path.dirname(PY)) or shutil.which("gradcli")
    return [exe] if exe else [PY, "-m", "gradcli"]


def have_torch():
    return subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0


# As an installed package runs: from compiled bytecode (PYTHONDONTWRITEBYTECODE would have
# every start compile gradcli's sources again).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV, **kw)
    return time.perf_counter() - t


def interleaved(cmds, reps):
    """Median wall time of each command, runs interleaved so drift hits all alike."""
    times = {k: [] for k in cmds}
    for _ in range(reps):
        for k, (cmd, kw) in cmds.items():
            times[k].append(timed(cmd, **kw))
    return {k: statistics.median(v) for k, v in times.items()}


TORCH_ONE_LINER = """
import torch
x = torch.tensor([-1.0475, 0.2038, 0.2971], requires_grad=True)
y = (2 * (x + 2) ** 2).mean()
y.backward()
print(y)
print(x.grad)
"""

TORCH_BATCH = """
import json, sys, torch
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    rec = json.loads(line)
    x = torch.tensor(rec["inputs"]["x"], requires_grad=True)
    y = (2 * (x + 2) ** 2).mean()
    y.backward()
    print(json.dumps({"id": rec.get("id"), "value": y.item(), "grad": {"x": x.grad.tolist()}}))
"""

IN_PROCESS = r"""
import json, resource, sys, time
import numpy as np
which, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
data = rng.standard_normal(n, dtype=np.float32)  # no float64 temporary in the baseline
if which == "gradcli":
    import gradcli
    from gradcli.parser import parse
    program = parse("mean(2*(x+2)^2)")
    def run():
        r = gradcli.evaluate(program, {"x": data}, keep="inputs")
        return r.grad["x"]
elif which == "torch":
    import torch  # with its default threads, as a user runs it
    def run():
        x = torch.from_numpy(data).requires_grad_()
        y = (2 * (x + 2) ** 2).mean()
        y.backward()
        return x.grad
else:
    def run():  # forward and the backward written out by hand
        y = data + 2
        out = np.mean(2 * y * y)
        return (4.0 / y.size) * y
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(reps):
    t = time.perf_counter()
    g = run()
    times.append(time.perf_counter() - t)
    del g
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"times": times, "extra_peak_kib": peak - base}))
"""


def in_process(which, n, reps):
    p = subprocess.run(
        [PY, "-c", IN_PROCESS, which, str(n), str(reps)], capture_output=True, text=True, check=True
    )
    return json.loads(p.stdout)


def rusage_run(cmd):
    """(wall, CPU) seconds of one whole process, its output dropped."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def import_times(cmd):
    """{module: self microseconds} from one `python -X importtime` run of ``cmd``."""
    p = subprocess.run(
        [PY, "-X", "importtime", *cmd], capture_output=True, text=True, env=ENV, check=True
    )
    out = {}
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line.split(":", 1)[1].split("|")
            out[name.strip()] = int(own)
    return out


def startup(reps):
    """The one-liner's whole process against numpy's import, and what its extra time is."""
    subprocess.run([PY, "-m", "compileall", "-q", os.path.dirname(HERE) + "/gradcli"], env=ENV)
    one = gradcli_cmd() + ["grad", EXPR, X]
    cmds = {"gradcli": one, "numpy": [PY, "-c", "import numpy"]}
    for cmd in cmds.values():
        rusage_run(cmd)  # warm-up: the per-user caches, the page cache
    runs = {k: [] for k in cmds}
    for _ in range(reps):
        for k, cmd in cmds.items():
            runs[k].append(rusage_run(cmd))
    wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
    print(f"one-liner start — {reps} interleaved runs each, load {os.getloadavg()[0]:.2f}; medians")
    print()
    print('| | gradcli one-liner | `python -c "import numpy"` | ratio | goal |')
    print("|---|---|---|---|---|")
    for what, m in (("wall", wall), ("CPU", cpu)):
        g, n = m["gradcli"], m["numpy"]
        print(f"| {what} | {g * 1e3:.1f} ms | {n * 1e3:.1f} ms | {g / n:.2f}× | ≤ 1.4× |")
    # the console script is a Python file: run it with -X importtime too
    ours = import_times(one[1:] if one[0] == PY else one)
    numpy_only = import_times(cmds["numpy"][1:])
    extra: dict[str, int] = {}
    for name, us in ours.items():
        if name not in numpy_only:
            top = name.split(".")[0] if not name.startswith("gradcli.") else name
            extra[top] = extra.get(top, 0) + us
    print()
    print(f"imports beyond numpy's (one run, self time): {sum(extra.values()) / 1e3:.1f} ms")
    for name, us in sorted(extra.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {us / 1e3:6.2f} ms  {name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--startup", action="store_true", help="only the one-liner's start")
    args = ap.parse_args()
    if args.startup:
        startup(7 if args.quick else 21)
        return
    reps = 5 if args.quick else 11
    torch_ok = have_torch()
    gc = gradcli_cmd()
    rows = []
    skipped = [] if torch_ok else ["PyTorch is not installed: its columns are skipped"]

    # (a) one-liner, whole process
    cmds = {"gradcli": (gc + ["grad", EXPR, X], {})}
    if torch_ok:
        cmds["torch"] = ([PY, "-c", TORCH_ONE_LINER], {})
    t = interleaved(cmds, reps)
    rows.append(("(a) one-liner, whole process", t["gradcli"], t.get("torch"), None, 0.10))

    # (b) 10,000 records, whole process
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "records.jsonl")
        with open(path, "w") as f:
            for i in range(10_000):
                f.write(json.dumps({"id": i, "inputs": {"x": [i * 1e-3, 0.2038, 0.2971]}}) + "\n")
        cmds = {"gradcli": (gc + ["batch", "--expr", EXPR, path], {})}
        if torch_ok:
            cmds["torch"] = ([PY, "-c", TORCH_BATCH, path], {})
        t = interleaved(cmds, max(3, reps // 2))
        rows.append(
            ("(b) 10,000 JSONL records, whole process", t["gradcli"], t.get("torch"), None, 0.33)
        )

        # (d) long programs, read with -f
        sizes = {}
        for terms in (50_000, 200_000):
            prog = os.path.join(tmp, f"p{terms}.gc")
            with open(prog, "w") as f:
                f.write(" + ".join(f"x*{i % 7 + 1}" for i in range(terms)) + "\n")
            sizes[terms] = statistics.median(
                timed(gc + ["batch", "-f", prog], input=b'{"inputs": {"x": 1.5}}\n')
                for _ in range(3)
            )

    # (c) and (e) in process
    big = {}
    for n in (10**6, 10**7):
        r = {
            w: in_process(w, n, max(5, reps))
            for w in (["gradcli", "numpy"] + (["torch"] if torch_ok else []))
        }
        big[n] = r
        med = {w: statistics.median(v["times"][1:]) for w, v in r.items()}
        rows.append(
            (
                f"(c) forward+backward, {n:.0e} float32, in process",
                med["gradcli"],
                med.get("torch"),
                med["numpy"],
                1.0,
            )
        )

    print(
        f"gradcli benchmarks — {time.strftime('%Y-%m-%d')}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores; medians of interleaved runs"
    )
    print()
    print(
        "| case | gradcli | PyTorch | gradcli / PyTorch | numpy by hand | gradcli / numpy | goal |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, ours, torch_t, numpy_t, goal in rows:
        tr = f"{ours / torch_t:.3f}" if torch_t else "—"
        nr = f"{ours / numpy_t:.2f}" if numpy_t else "—"
        goal_text = f"≤ {goal}" + (" (≤ 1.3 vs numpy)" if numpy_t else "")
        print(
            f"| {name} | {ours * 1e3:.1f} ms | {torch_t * 1e3:.1f} ms | {tr} | "
            f"{'%.1f ms' % (numpy_t * 1e3) if numpy_t else '—'} | {nr} | {goal_text} |"
            if torch_t
            else f"| {name} | {ours * 1e3:.1f} ms | — | — | "
            f"{'%.1f ms' % (numpy_t * 1e3) if numpy_t else '—'} | {nr} | {goal_text} |"
        )
    ratio = sizes[200_000] / sizes[50_000]
    print(
        f"| (d) 200,000 vs 50,000 terms with -f | {sizes[200_000]:.2f} s vs "
        f"{sizes[50_000]:.2f} s | | | | {ratio:.2f}× for 4× the terms | ≤ 5× |"
    )
    mem = big[10**7]
    ours_mb = mem["gradcli"]["extra_peak_kib"] / 1024
    if torch_ok:
        torch_mb = mem["torch"]["extra_peak_kib"] / 1024
        print(
            f"| (e) extra peak memory, 1e+07 float32 | {ours_mb:.0f} MiB | {torch_mb:.0f} MiB | "
            f"{ours_mb / torch_mb:.2f} | {mem['numpy']['extra_peak_kib'] / 1024:.0f} MiB | "
            "| ≤ 1.0 |"
        )
    for s in skipped:
        print(f"\nskipped: {s}")


if __name__ == "__main__":
    main()
