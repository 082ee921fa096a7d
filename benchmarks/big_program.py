"""Big programs and the one-liner's start, whole process, in one run: medians and ratios.

    python benchmarks/big_program.py            # 50k, 200k and 800k terms; the one-liner
    python benchmarks/big_program.py --quick    # fewer repetitions, no 800k

(a) `gradcli grad -f PROGRAM x=1.5` on `c_0*sin(x) + c_1*sin(x) + ...` (the c_i are numbers in
    the program text, x the one input) with 50,000, 200,000 and 800,000 terms: wall time and
    peak RSS of the whole process (the text answer goes to a pipe that is read and dropped);
    goals: 200,000 terms in <= 6 s and <= 700 MB, and 4x the terms in <= 4.5x the time;
(b) `gradcli batch -f PROGRAM` with 200,000 terms and one record (the program parsed once);
    goal: <= 4 s;
(c) the one-liner `gradcli grad 'mean(2*(x+2)^2)' x=...` against `python -c "import numpy"`,
    interleaved; goal: <= 1.4x.

    python benchmarks/big_program.py --stages 200000   # where the time and memory go

prints, in process, each stage's CPU time (per term) and its tracemalloc peak above what was
alive when it started: parse, forward, backward, the text table, the JSON answer.

    python benchmarks/big_program.py --stages 50000 --against ../main --reps 3

runs the stages in fresh processes of this checkout and of another one (its gradcli put first
on PYTHONPATH), interleaved, and prints each stage's median CPU time side by side.
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

PY = sys.executable
ONE_LINER = ["grad", "mean(2*(x+2)^2)", "x=-1.0475,0.2038,0.2971"]
# As an installed package runs: from compiled bytecode (PYTHONDONTWRITEBYTECODE would have
# every start compile gradcli's sources again), and with the per-user grammar cache warm (the
# warm-up runs write both).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def gradcli_cmd():
    exe = shutil.which("gradcli", path=os.path.dirname(PY)) or shutil.which("gradcli")
    return [exe] if exe else [PY, "-m", "gradcli"]


def program(terms):
    """The program text: one term per c_i, the c_i cycling through 0.01 ... 10."""
    return " + ".join(f"{(i % 1000 + 1) / 100:g}*sin(x)" for i in range(terms)) + "\n"


def run(cmd):
    """(wall seconds, CPU seconds, peak RSS in MB) of one whole process, its output read and
    dropped. On a machine others share, CPU time (user + system) is the steadier measure."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit status {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def interleaved(cmds, reps):
    """Median wall time of each command, the runs interleaved so that load hits all alike."""
    times = {k: [] for k in cmds}
    for cmd in cmds.values():
        run(cmd)  # warm-up
    for _ in range(reps):
        for k, cmd in cmds.items():
            times[k].append(run(cmd)[0])
    return {k: statistics.median(v) for k, v in times.items()}


def stages(terms):
    """(stage, CPU seconds, tracemalloc peak in MB above the start of the stage) for
    ``grad -f`` on ``terms`` terms, in this process: the CPU times from a run without
    tracemalloc (which slows allocation), the peaks from a second run with it."""
    import tracemalloc

    from gradcli import api, engine, parser, render

    text = program(terms)
    parser.parse("x")  # (the grammar's tables loaded)

    def one(traced):
        out = []

        def stage(name, fn):
            if traced:
                tracemalloc.start()
            t = time.process_time()
            value = fn()
            cpu = time.process_time() - t
            peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else 0.0
            tracemalloc.stop()
            out.append((name, cpu, peak))
            return value

        with parser.paused_gc():
            prog = stage("parse", lambda: parser.parse(text))
            with api.quietly():
                prog, arrays, wrt, cap, rng = api.prepare(prog, {"x": "1.5"}, None, "float32")
                prog.once = True  # (as grad evaluates it)
                nodes, out_id = stage(
                    "forward", lambda: engine.forward(prog, arrays, set(wrt), "float32", cap)
                )
                seed = engine.make_seed(nodes[out_id], None, "float32")
                stage("backward", lambda: engine.backward(nodes, out_id, seed, "float32"))
            result = api.Result(prog, nodes, out_id, wrt, "float32")
            stage("text", lambda: sum(map(len, render.plain_pieces(result))))
            stage("JSON", lambda: sum(map(len, render.json_pieces(render.result_json(result)))))
        return out

    timed, traced = one(False), one(True)
    return [(name, cpu, peak) for (name, cpu, _), (_, _, peak) in zip(timed, traced, strict=True)]


def compare(terms, other, reps):
    """--stages in fresh processes of this checkout and of ``other``, interleaved."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"this": here, "other": os.path.abspath(other)}
    runs: dict = {k: [] for k in trees}
    for _ in range(reps):
        for k, tree in trees.items():
            env = {**ENV, "PYTHONPATH": tree}
            cmd = [PY, os.path.abspath(__file__), "--stages", str(terms), "--json-out"]
            out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{tree}: {out.stderr.strip()}")
            runs[k].append(json.loads(out.stdout))
    print(f"grad -f stages, {terms:,} terms, µs per term (median CPU of {reps}, interleaved)")
    print(f"this: {trees['this']}; other: {trees['other']}; load {os.getloadavg()[0]:.1f}")
    print()
    print("| stage | this | other | this/other | peak this | peak other |")
    print("|---|---|---|---|---|---|")
    for i, (name, _, _) in enumerate(runs["this"][0]):
        cpu = {k: statistics.median(r[i][1] for r in v) / terms * 1e6 for k, v in runs.items()}
        peak = {k: statistics.median(r[i][2] for r in v) for k, v in runs.items()}
        print(
            f"| {name} | {cpu['this']:.1f} | {cpu['other']:.1f} | "
            f"{cpu['this'] / cpu['other']:.2f} | {peak['this']:.0f} MB | {peak['other']:.0f} MB |"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, no 800k terms")
    ap.add_argument("--stages", type=int, metavar="TERMS", help="the per-stage profile only")
    ap.add_argument("--against", metavar="DIR", help="with --stages: compare with a checkout")
    ap.add_argument("--reps", type=int, default=3, help="with --against: runs of each")
    ap.add_argument("--json-out", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stages and args.json_out:  # (one run of --against's)
        print(json.dumps(stages(args.stages)))
        return
    if args.stages and args.against:
        compare(args.stages, args.against, args.reps)
        return
    if args.stages:
        print(f"grad -f stages, {args.stages:,} terms (CPU time; tracemalloc peak of the stage)")
        print()
        print("| stage | CPU | per term | peak |")
        print("|---|---|---|---|")
        for name, cpu, peak in stages(args.stages):
            print(f"| {name} | {cpu:.2f} s | {cpu / args.stages * 1e6:.1f} µs | {peak:.0f} MB |")
        return
    gc = gradcli_cmd()
    sizes = (50_000, 200_000) if args.quick else (50_000, 200_000, 800_000)
    reps = 1 if args.quick else 3
    big = {}
    run(gc + ONE_LINER)  # warm-up: bytecode and the grammar cache
    with tempfile.TemporaryDirectory() as tmp:
        for terms in sizes:
            path = os.path.join(tmp, f"p{terms}.gc")
            with open(path, "w") as f:
                f.write(program(terms))
            runs = [run(gc + ["grad", "-f", path, "x=1.5"]) for _ in range(reps)]
            big[terms] = tuple(statistics.median(r[k] for r in runs) for k in range(3))
            if terms == 200_000:
                record = os.path.join(tmp, "record.jsonl")
                with open(record, "w") as f:
                    f.write('{"inputs": {"x": 1.5}}\n')
                cmd = gc + ["batch", "-f", path, record]
                runs = [run(cmd) for _ in range(reps)]
                batch = tuple(statistics.median(r[k] for r in runs) for k in range(3))
    one = interleaved(
        {"gradcli": gc + ONE_LINER, "numpy": [PY, "-c", "import numpy"]}, 7 if args.quick else 21
    )

    print(
        f"gradcli big programs — {time.strftime('%Y-%m-%d')}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores; medians"
    )
    print()
    print("| case | measured | goal |")
    print("|---|---|---|")
    for terms, (wall, cpu, peak) in big.items():
        goal = "≤ 6 s, ≤ 700 MB" if terms == 200_000 else ""
        print(
            f"| grad -f, {terms:,} terms | {wall:.2f} s ({cpu:.2f} s CPU), {peak:.0f} MB peak "
            f"RSS | {goal} |"
        )
    if 200_000 in big:
        wall, cpu, peak = batch
        print(
            f"| batch -f, 200,000 terms, one record | {wall:.2f} s ({cpu:.2f} s CPU), "
            f"{peak:.0f} MB peak RSS | ≤ 4 s |"
        )
    for small, large in ((50_000, 200_000), (200_000, 800_000)):
        if small in big and large in big:
            print(
                f"| {large:,} vs {small:,} terms | {big[large][0] / big[small][0]:.2f}× the time "
                f"({big[large][1] / big[small][1]:.2f}× the CPU time) for 4× the terms | ≤ 4.5× |"
            )
    print(
        f'| one-liner vs `python -c "import numpy"` | {one["gradcli"] * 1e3:.1f} ms vs '
        f"{one['numpy'] * 1e3:.1f} ms: {one['gradcli'] / one['numpy']:.2f}× | ≤ 1.4× |"
    )


if __name__ == "__main__":
    main()
