"""Lean evaluation writes results into buffers nothing reads any more, and recycles them:
a buffer still read through a view, by a later node, by the reverse pass, as the output or
as an input must never be overwritten. Each program here is built so that a wrong reuse
changes its numbers; the engine must not rely on reference counts to know."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import sample, table_examples

import gradcli
import gradcli.api
from gradcli import engine
from gradcli.parser import parse

X = (12, 10)  # 960 bytes in float64: small, so the tests lower the thresholds to 0

PROGRAMS = [
    # y dies after z, but the view v still reads its buffer: z must go elsewhere
    "y = x * 2; v = y.reshape(-1); z = y + 1; sum(z * v.reshape(12, 10))",
    # views of views: a transpose of a reshape, then a slice of that
    "y = x * 2; v = y.reshape(10, 12).t(); w = v[1:3]; z = y + 1; sum(z) + sum(w * w)",
    # a view made and used after its base's last direct use
    "y = x + 3; w = y.t(); z = y * y; u = z - 1; sum(u) + sum(w * 5)",
    # a broadcast view (expand) of a dying value
    "y = x.sum(dim=0) * 2; e = y.expand(12, 10); z = y + 1; sum(e * x) + sum(z)",
    # a value the reverse pass reads (tanh keeps its output): never a home for later results
    "y = tanh(x); z = y * 3; u = z + 1; sum(u * 2)",
    "y = x * 2; z = y * y; u = z * 3; v = u + y; sum(v * v)",
    # the same value twice, and adjoints that alias each other (add passes g to both sides)
    "y = x + 1; z = y + y; w = z + x; sum(w * w)",
    "y = x * 2; z = y + y; sum(z * y)",
    # z's adjoint reaches y and w as one array; y's next contribution must not be summed
    # into it in place (w's adjoint would change)
    "y = x * 2; w = x * 3; u = y * w; z = y + w; sum(z * z) + sum(u)",
    # a chain of dying temporaries: each result may take the previous one's buffer
    "mean(2 * (x + 2) ^ 2)",
    "sum(tanh(x) * sigmoid(x))",
    "sum(((x - 1) * 3 + x) * 0.5 - x * x)",
    # calls that return several results: their elements are made later, from other nodes
    "a, b = x.split(6); y = a * 2; sum(y * b) + sum(a)",
    "y = x * 2; m = y.max(dim=1); z = y + 1; sum(m.values * 3) + sum(z * z)",
    # calls lowered to several nodes, around dying temporaries
    "y = x * 2; s = softmax(y, dim=1); z = s * 3 + y; sum(z * z)",
    "y = x + 1; z = float_power(y, 2); u = z * 2; sum(u * y)",
    "y = (x * 2).double(); z = y + 1; sum(z * z)",
    # a value no later node reads, and a slice of a value that dies before the slice
    "y = x * 2; w = y + 1; u = x - 1; sum(u * u)",
    "y = x * 2; i = y[0:2, 1]; z = y + 1; sum(i * 3) + sum(z)",
]

OUTPUT_VIEWS = [
    # the output itself is a view of an intermediate's buffer; later nodes die around it
    ("y = sigmoid(x); z = tanh(y) * y; y.t()", (10, 12)),
    ("y = tanh(x * 2); z = sigmoid(y); y.reshape(-1)", (120,)),
    ("y = x * 3; q = y + 1; r = q * q; y.reshape(-1)", (120,)),
    ("y = x + 1; v = y.t(); z = y * 2; v", (10, 12)),
]


@pytest.fixture
def lean_everything(monkeypatch):
    """Drop and recycle even tiny tensors, so that small programs exercise every path."""
    monkeypatch.setattr(engine, "LEAN_BYTES", 0)
    monkeypatch.setattr(engine._POOL, "min_bytes", 0)


def _inputs(seed=0, shape=X):
    return {"x": np.random.default_rng(seed).standard_normal(shape)}


def _reference(program, inputs, seed=None):
    """The program evaluated afresh with no buffer of the engine's and no sum in place: a
    fresh parse has no plan, and a reverse pass watched step by step (as gradcli explain
    watches it) sums adjoints into new arrays. (value, gradient of x)"""
    p = parse(program)
    with gradcli.api.quietly():
        nodes, out = engine.forward(p, inputs, {"x"}, "float64")
        seed = engine.make_seed(nodes[out], None if seed is None else np.asarray(seed), "float64")
        engine.backward(nodes, out, seed, "float64", on_step=lambda *step: None)
    return nodes[out].value, next(n for n in nodes if n.op == "input").grad


def _same(result, want):
    np.testing.assert_array_equal(result.value, want[0])
    np.testing.assert_array_equal(result.grad["x"], want[1])


@pytest.mark.parametrize("program", PROGRAMS)
def test_lean_replays_give_the_first_evaluations_numbers(program, lean_everything):
    p = parse(program)
    gradcli.evaluate(p, _inputs(), dtype="float64")  # records the plan
    for seed in range(4):  # replays: drops, in-place writes, pooled buffers from the last
        inputs = _inputs(seed)
        x = inputs["x"].copy()
        _same(
            gradcli.evaluate(p, inputs, dtype="float64", keep="inputs"), _reference(program, inputs)
        )
        np.testing.assert_array_equal(inputs["x"], x)  # the input is never written


@pytest.mark.parametrize("program,shape", [(p, ()) for p in PROGRAMS] + OUTPUT_VIEWS)
def test_a_lean_first_evaluation(program, shape, lean_everything):
    """The evaluation that records the plan computes every value, then hands the engine
    those it may recycle (views of them included) and drops what backward will not read."""
    seed = np.random.default_rng(7).standard_normal(shape) if shape else None
    p = parse(program)
    for s in range(3):  # the first records the plan; the others replay it
        inputs = _inputs(s)
        r = gradcli.evaluate(p, inputs, dtype="float64", seed_vector=seed, keep="inputs")
        _same(r, _reference(program, inputs, seed))


@pytest.mark.parametrize("program,shape", OUTPUT_VIEWS)
def test_an_output_that_is_a_view_survives(program, shape, lean_everything):
    p = parse(program)
    seed = np.random.default_rng(7).standard_normal(shape)
    gradcli.evaluate(p, _inputs(), dtype="float64", seed_vector=seed)
    results = []
    for s in range(3):
        inputs = _inputs(s)
        r = gradcli.evaluate(p, inputs, dtype="float64", seed_vector=seed, keep="inputs")
        _same(r, _reference(program, inputs, seed))
        results.append((r, _reference(program, inputs, seed)))
        assert r.grad["x"] is not None
    for r, want in results:  # later evaluations did not write into earlier outputs
        _same(r, want)


@pytest.mark.parametrize("program", PROGRAMS[:4])
def test_large_tensors_at_the_default_thresholds(program):
    """The same at sizes the thresholds (LEAN_BYTES, the pool's min_bytes) let through."""
    shape = (240, 200)  # 384 KB in float64
    p = parse(program.replace("12, 10", "240, 200").replace("10, 12", "200, 240"))
    gradcli.evaluate(p, _inputs(0, shape), dtype="float64")
    for seed in range(3):
        inputs = _inputs(seed, shape)
        _same(
            gradcli.evaluate(p, inputs, dtype="float64", keep="inputs"), _reference(p.text, inputs)
        )


def test_a_view_keeps_its_buffer_from_a_later_result(lean_everything):
    """z = y + 1 comes after y's last direct use, but v = y.reshape(-1) still reads y's
    memory: z must not be written there."""
    p = parse("y = x * 2; v = y.reshape(-1); z = y + 1; sum(z * v.reshape(12, 10))")
    inputs = _inputs()
    with gradcli.api.quietly():
        engine.forward(p, inputs, {"x"}, "float64")
        nodes, _ = engine.forward(p, inputs, {"x"}, "float64", lean=True)
    v = [n for n in nodes if n.op == "reshape_view"][-1]  # the view z * v reads
    z = next(n for n in nodes if n.op == "add")
    np.testing.assert_array_equal(v.value, inputs["x"] * 2)
    np.testing.assert_array_equal(z.value, inputs["x"] * 2 + 1)
    assert not np.shares_memory(z.value, v.value)


def test_dying_temporaries_are_written_over(lean_everything, monkeypatch):
    """The other side: a temporary that nothing reads any more takes the next result, so
    the tests above exercise reuse. (x + 2) * 3 goes into x + 2's buffer; u * u and w * w
    do not go into u's or w's, which their mul's rule reads."""
    reused = []
    dying = engine._dying
    monkeypatch.setattr(
        engine, "_dying", lambda *a: reused.append(dying(*a) is not None) or dying(*a)
    )
    p = parse("u = (x + 2) * 3; w = u * u; sum(w * w)")
    inputs = _inputs()
    gradcli.evaluate(p, inputs, dtype="float64")
    _same(gradcli.evaluate(p, inputs, dtype="float64", keep="inputs"), _reference(p.text, inputs))
    assert reused == [False, True, False, False]  # x + 2, (x + 2) * 3, u * u, w * w


@pytest.mark.parametrize("program,specs", table_examples())
def test_every_operator_example_lean_gives_the_same_bits(program, specs, lean_everything):
    """Every operator's examples (lowered calls, several results, views, in-place rules),
    kept lean from the evaluation that records the plan on and through replays, give the
    bits of an evaluation that keeps every value."""
    rng = np.random.default_rng(1)
    inputs = {k: sample(shape, domain, rng) for k, (shape, domain) in specs.items()}
    with gradcli.api.quietly():
        nodes, out = engine.forward(parse(program), inputs, set(), "float64")
    shape = np.shape(nodes[out].value)
    seed = None if shape == () else np.random.default_rng(2).standard_normal(shape)
    whole = gradcli.evaluate(program, inputs, dtype="float64", seed_vector=seed)
    p = parse(program)
    for _ in range(3):  # the first records the plan
        r = gradcli.evaluate(p, inputs, dtype="float64", seed_vector=seed, keep="inputs")
        assert np.asarray(r.value).tobytes() == np.asarray(whole.value).tobytes()
        for k, g in whole.grad.items():
            assert (g is None) == (r.grad[k] is None), k
            if g is not None:
                assert np.asarray(r.grad[k]).tobytes() == np.asarray(g).tobytes(), k


def test_the_recording_evaluation_writes_over_dying_temporaries(lean_everything, monkeypatch):
    """The first evaluation (the one that records the plan) writes into dying temporaries
    as a replay does: (x + 2) * 3 into x + 2's buffer, u * u and w * w elsewhere."""
    reused = []
    dying = engine._dying
    monkeypatch.setattr(
        engine, "_dying", lambda *a: reused.append(dying(*a) is not None) or dying(*a)
    )
    p = parse("u = (x + 2) * 3; w = u * u; sum(w * w)")
    inputs = _inputs()
    _same(gradcli.evaluate(p, inputs, dtype="float64", keep="inputs"), _reference(p.text, inputs))
    assert reused == [False, True, False, False]  # x + 2, (x + 2) * 3, u * u, w * w


def test_the_recording_evaluation_keeps_no_value_nobody_reads():
    """mean(2 * (x + 2) ^ 2) needs two tensors the size of x at a time (x + 2, which pow's
    rule reads, and the square, doubled in place, whose buffer takes the gradient), on the
    first evaluation as on the later ones; keeping every value until the plan is recorded
    took three, and computing 2 * square in float64 five."""
    import tracemalloc

    x = np.random.default_rng(3).standard_normal(200_003).astype(np.float32)
    p = parse("mean(2 * (x + 2) ^ 2)")
    peaks = []
    tracemalloc.start()
    try:
        for _ in range(2):  # the first records the plan, the second replays it
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            r = gradcli.evaluate(p, {"x": x}, keep="inputs")
            peaks.append((tracemalloc.get_traced_memory()[1] - base) / x.nbytes)
            np.testing.assert_allclose(r.grad["x"], 4 * (x + 2) / x.size, rtol=1e-6)
            del r
    finally:
        tracemalloc.stop()
    assert max(peaks) < 2.1, peaks


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_integer_literals_compute_in_the_tensors_dtype(dtype):
    """x * 3 + 2 computes in float32 on float32 (numpy takes the float subclass an integer
    literal is for a float64): the same bits as 3.0 and 2.0, which are the bits of the
    double computation rounded; beyond 2**24 a literal keeps that double computation."""
    x = np.random.default_rng(4).standard_normal(50_000).astype(dtype) * 1e3
    x[:4] = [np.nan, np.inf, -0.0, 3e38 if dtype == "float32" else 1e308]
    wide = x.astype(np.float64)
    for whole, written in [
        ("sum(x * 3 + 2 - 7 * x)", "sum(x * 3.0 + 2.0 - 7.0 * x)"),
        ("mean(2 * (x + 2) ^ 2)", "mean(2.0 * (x + 2.0) ^ 2.0)"),
    ]:
        a = gradcli.evaluate(whole, {"x": x}, dtype=dtype, keep="inputs")
        b = gradcli.evaluate(written, {"x": x}, dtype=dtype, keep="inputs")
        assert a.value.tobytes() == b.value.tobytes()
        assert a.grad["x"].tobytes() == b.grad["x"].tobytes()
        assert a.grad["x"].dtype == dtype
    for k in (3, 16777216, 16777217, 123456789):
        ones = np.ones_like(x)
        got = gradcli.evaluate(f"x * {k}", {"x": x}, dtype=dtype, seed_vector=ones).value
        assert got.dtype == dtype
        with np.errstate(over="ignore"):
            want = (wide * k).astype(dtype)
        assert got.tobytes() == want.tobytes(), k


@pytest.mark.parametrize("n", [5000, 300_000])
def test_the_benchmarks_mean_has_pytorchs_bits(n):
    """mean(2*(x+2)^2) on the fast paths (a broadcast mean gradient, pow's 2·a·g in a pooled
    buffer, in place and a block at a time) gives PyTorch's bits, nan, ±inf, -0 and the
    overflow of 2a (inf where a·2g would be finite) included; first evaluation and replay."""
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(5).standard_normal(n) * 10).astype(np.float32)
    x[:6] = [np.nan, np.inf, -np.inf, -0.0, 3e38, -3e38]
    t = torch.tensor(x, requires_grad=True)
    want = (2 * (t + 2) ** 2).mean()
    want.backward()
    assert t.grad is not None
    p = parse("mean(2*(x+2)^2)")
    for _ in range(2):
        r = gradcli.evaluate(p, {"x": x}, keep="inputs")
        assert np.asarray(r.value).tobytes() == want.detach().numpy().tobytes()
        assert r.grad["x"].tobytes() == t.grad.numpy().tobytes()


@pytest.mark.parametrize("count", [1, 2, 10**6])
def test_reference_counts_are_not_consulted(count, lean_everything, monkeypatch):
    """Whatever sys.getrefcount reports (CPython promises no exact value), the same
    numbers: a pool guarded by counts would reuse the view's buffer when they read low."""
    monkeypatch.setattr(sys, "getrefcount", lambda obj: count)
    for program in PROGRAMS[:3]:
        p = parse(program)
        gradcli.evaluate(p, _inputs(), dtype="float64")
        for seed in range(2):
            inputs = _inputs(seed)
            _same(
                gradcli.evaluate(p, inputs, dtype="float64", keep="inputs"),
                _reference(program, inputs),
            )


def test_the_pool_never_holds_memory_a_result_reads(lean_everything):
    for program, shape in [(p, ()) for p in PROGRAMS] + OUTPUT_VIEWS:
        p = parse(program)
        inputs = _inputs()
        seed = np.ones(shape) if shape else None
        gradcli.evaluate(p, inputs, dtype="float64", seed_vector=seed)
        r = gradcli.evaluate(p, inputs, dtype="float64", seed_vector=seed, keep="inputs")
        kept = [r.value, inputs["x"], *(g for g in r.grad.values() if g is not None)]
        for b in engine._POOL.buffers:
            assert not any(np.may_share_memory(b, k) for k in kept), program


def test_explain_sees_each_contribution_unchanged(lean_everything):
    """With on_step (gradcli explain) adjoints are summed into new arrays: a contribution
    it was shown is never overwritten by a later sum."""
    p = parse("y = x * 2; z = y * 3; sum(z * y)")
    inputs = _inputs()
    with gradcli.api.quietly():
        engine.forward(p, inputs, {"x"}, "float64")
        nodes, out = engine.forward(p, inputs, {"x"}, "float64", lean=True)
        seen = []
        engine.backward(
            nodes,
            out,
            np.ones(()),
            "float64",
            on_step=lambda node, g, sent: seen.extend((a, ga, ga.copy()) for a, ga in sent),
        )
    assert seen
    for _, ga, copy in seen:
        np.testing.assert_array_equal(ga, copy)


def test_the_pool_keeps_a_buffer_only_while_evaluations_take_it():
    """A buffer freed in one evaluation waits through the next; one that a whole later
    evaluation did not take goes, and one taken and freed again each time stays."""
    pool = engine._Pool()
    idle, busy = np.empty(1 << 14), np.empty((64, 256), np.float32)
    pool.evaluation()
    pool.keep(idle)
    pool.keep(busy)
    pool.evaluation()  # (the next evaluation: both may still be asked for)
    assert [b is idle for b in pool.buffers] == [True, False]
    for _ in range(4):
        taken = pool.take((64, 256), np.dtype(np.float32))
        assert taken is busy
        pool.keep(taken)
        pool.evaluation()
    assert pool.buffers == [busy]
    assert pool.take((1 << 14,), np.dtype(np.float64)) is None
    assert len(pool.kept) == len(pool.buffers)


def test_the_cnn_leaves_no_pooled_buffer_its_steps_do_not_use(monkeypatch):
    """The recording evaluation frees convolution results that the replays, which compute
    them afresh, never ask the pool for: after two replays the pool holds none of them
    (unless a replay took it), and every replay gives the first evaluation's bits."""
    rng = np.random.default_rng(3)
    shapes = {"x": (4, 3, 20, 20), "w1": (16, 3, 3, 3), "w2": (8, 16, 3, 3), "W": (10, 8)}
    data = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    data["y"] = np.array([1, 0, 9, 3], dtype=np.float32)
    p = parse(
        "h = relu(conv2d(x, w1)); h = max_pool2d(h, 2); h = relu(conv2d(h, w2)); "
        "h = flatten(adaptive_avg_pool2d(h, 1), 1); cross_entropy(h @ W.T, y)"
    )
    first = gradcli.evaluate(p, data, wrt=list(shapes), keep="inputs")
    left = list(engine._POOL.buffers)
    assert any(b.shape == (4, 16, 18, 18) for b in left)  # (the recording's conv result)
    taken, take = [], engine._POOL.take
    monkeypatch.setattr(engine._POOL, "take", lambda *a: taken.append(take(*a)) or taken[-1])
    for _ in range(3):
        r = gradcli.evaluate(p, data, wrt=list(shapes), keep="inputs")
        assert np.asarray(r.value).tobytes() == np.asarray(first.value).tobytes()
        for name in shapes:
            assert r.grad[name].tobytes() == first.grad[name].tobytes(), name
    for b in left:
        assert any(t is b for t in taken) or not any(k is b for k in engine._POOL.buffers)


# Runs of elementwise nodes computed a block at a time (engine._blocks): each built so that
# a block read after it was overwritten, a buffer let go too early, or a run that went on
# across a view, a broadcast or a dtype change would change the numbers
RUNS = [
    # a run whose first value a view reads after it; the view is not part of the run
    "y = x * 2; z = y + 1; v = y.reshape(-1); w = z * 3; sum(w * v.reshape(12, 10))",
    # a value of the run read by a later node that is no elementwise ufunc (sum(dim=)),
    # then broadcast against the run's last value (the blocks would not line up)
    "y = x * 2; z = y + 1; u = z * z; s = sum(y, dim=0); sum(u + s)",
    "y = x - 1; z = y * y; b = sum(x, dim=1, keepdim=True); w = z * b; sum(w + y)",
    # dtype mixes: a float32 copy and a float64 value meet (promotion, not a plain run)
    "y = x * 2; z = y.float(); u = z * z; w = u + 1; sum(w + y)",
    # number literals (0-d operands) and a div, which is no ufunc row, inside a chain
    "y = x * 2 + 1; z = y * y - 3; sum(z / 2 + y)",
    # dying operands written over within the run, and one value read again after it
    "a = x + 1; b = a * 2; c = b - 3; d = c * c; e = d + c; sum(e * b)",
    "sum(tanh(x) * sigmoid(x) + tanh(x * 2) - sigmoid(x) * x)",
]


@pytest.fixture
def small_blocks(lean_everything, monkeypatch):
    """Blocks of 7 elements: the 120 of X go in 17 full blocks and a short last one; and
    every multi-node run is counted, so that the tests see the path taken."""
    monkeypatch.setattr(engine, "RUN_BLOCK", 7)
    runs = []
    blocks = engine._blocks

    def counted(run):
        runs.append(len(run))
        return blocks(run)

    monkeypatch.setattr(engine, "_blocks", counted)
    return runs


@pytest.mark.parametrize("program", RUNS + PROGRAMS)
def test_runs_computed_a_block_at_a_time(program, small_blocks):
    p = parse(program)
    gradcli.evaluate(p, _inputs(), dtype="float64")  # records the plan
    for seed in range(3):
        inputs = _inputs(seed)
        x = inputs["x"].copy()
        _same(
            gradcli.evaluate(p, inputs, dtype="float64", keep="inputs"), _reference(program, inputs)
        )
        np.testing.assert_array_equal(inputs["x"], x)


def test_the_runs_are_the_ones_expected(small_blocks):
    """Where the chains break: a view, a reduction, a broadcast (computed on the whole
    arrays), a dtype other than the evaluation's, a div (no ufunc row)."""
    want = {
        RUNS[0]: [2, 1, 1],  # x * 2, y + 1 | reshape | z * 3 | reshape | w * v
        RUNS[1]: [3],  # x * 2, y + 1, z * z | sum(dim=) | u + s broadcast, whole
        RUNS[2]: [2, 1],  # x - 1, y * y | sum(dim=) | z * b broadcast, whole | w + y
        RUNS[3]: [1],  # x * 2 | float() | float32 nodes, whole (not the evaluation's dtype)
        RUNS[4]: [4, 1],  # x * 2, + 1, y * y, - 3 | div | + y
        RUNS[5]: [6],  # the whole chain, sum aside
        RUNS[6]: [9],
        "sum(tanh(x) * sigmoid(x))": [3],
        "mean(2 * (x + 2) ^ 2)": [3],
    }
    for program, runs in want.items():
        p = parse(program)
        gradcli.evaluate(p, _inputs(), dtype="float64")
        del small_blocks[:]
        gradcli.evaluate(p, _inputs(1), dtype="float64", keep="inputs")
        assert small_blocks == runs, program


def test_a_pending_run_lends_nothing_to_the_pool(small_blocks, monkeypatch):
    """What a run drops goes to the (process-wide, thread-shared) pool only after the run
    is computed: while its blocks are pending, no pooled buffer is memory they read or
    write."""
    pending = []
    blocks = engine._blocks

    def watched(run):
        for _, operands, out in run:
            for b in engine._POOL.buffers:
                for a in [out, *operands]:
                    assert not (isinstance(a, np.ndarray) and np.may_share_memory(a, b))
        pending.append(len(run))
        return blocks(run)

    monkeypatch.setattr(engine, "_blocks", watched)
    for program in RUNS:
        p = parse(program)
        gradcli.evaluate(p, _inputs(), dtype="float64")
        for seed in range(2):
            inputs = _inputs(seed)
            _same(
                gradcli.evaluate(p, inputs, dtype="float64", keep="inputs"),
                _reference(program, inputs),
            )
    assert max(pending) > 1


@pytest.mark.parametrize("program", ["sum(tanh(x) * sigmoid(x))", "mean(2 * (x + 2) ^ 2)"])
def test_blocks_give_the_whole_arrays_bits(program):
    """float32 at the default thresholds, a size that is no multiple of the block, nan,
    ±inf, ±0 and values where tanh and σ saturate: the replay (a block at a time) gives
    the bits of an evaluation on whole arrays with nothing kept lean."""
    n = 3 * engine.RUN_BLOCK + 5
    x = (np.random.default_rng(8).standard_normal(n) * 8).astype(np.float32)
    x[:8] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 90.0, -90.0, 1e-30]
    whole = gradcli.evaluate(program, {"x": x})
    p = parse(program)
    for _ in range(3):  # the first records the plan; the others replay it in blocks
        r = gradcli.evaluate(p, {"x": x}, keep="inputs")
        assert np.asarray(r.value).tobytes() == np.asarray(whole.value).tobytes()
        assert r.grad["x"].tobytes() == whole.grad["x"].tobytes()


def test_a_value_is_handed_to_its_rule_only_when_nothing_else_reads_it():
    """_into gives a unary node's rule the node's own value to write over only when the pass
    frees it after this step, only the node reads its buffer (no view, no adjoint) and
    only this step reads g; then the node no longer reads that buffer."""
    rng = np.random.default_rng(11)
    x, o, g = (rng.standard_normal(8) for _ in range(3))
    arg = engine.Node(0, "input", (), None, 0, x, True)
    node = engine.Node(1, "sigmoid", (0,), None, 1, o, True)
    ob, gb = engine._Buffer(o), engine._Buffer(g)
    node.bufs = (ob,)
    ob.readers.update({1, 2})  # node 2, a view of o, still reads it
    gb.readers.add(~1)
    assert engine._into(g, (gb,), ~1, node, arg, [x], True) is g
    ob.readers.discard(2)
    gb.readers.add(~3)  # another adjoint aliases g
    assert engine._into(g, (gb,), ~1, node, arg, [x], True) is not o
    gb.readers.discard(~3)
    assert engine._into(g, (gb,), ~1, node, arg, [x], False) is not o  # (not freed)
    assert node.bufs == (ob,) and ob.readers == {1}
    assert engine._into(g, (gb,), ~1, node, arg, [x], True) is o
    assert node.bufs == () and not ob.readers


def test_the_benchmarks_tanh_hands_both_values_to_their_rules(monkeypatch):
    """sum(tanh(x) * sigmoid(x)) at the default thresholds: σ's and tanh's rules each get
    their node's value (dying with the step) to write over, in the recording evaluation and
    in replays, and the bits are those of an evaluation that keeps every value."""
    given = []
    into = engine._into
    monkeypatch.setattr(
        engine,
        "_into",
        lambda g, b, r, node, *a: (
            given.append((node.op, (got := into(g, b, r, node, *a)) is node.value)) or got
        ),
    )
    x = (np.random.default_rng(12).standard_normal(300_001) * 4).astype(np.float32)
    x[:5] = [np.nan, np.inf, -np.inf, -0.0, 1e-30]
    whole = gradcli.evaluate("sum(tanh(x) * sigmoid(x))", {"x": x})
    p = parse("sum(tanh(x) * sigmoid(x))")
    for _ in range(3):
        del given[:]
        r = gradcli.evaluate(p, {"x": x}, keep="inputs")
        assert np.asarray(r.value).tobytes() == np.asarray(whole.value).tobytes()
        assert r.grad["x"].tobytes() == whole.grad["x"].tobytes()
        assert ("sigmoid", True) in given and ("tanh", True) in given, given


@pytest.mark.parametrize("rule", ["tanh", "sigmoid"])
@pytest.mark.parametrize("n", [5, 256, 257, 3 * 65536 + 7])
def test_the_fused_rules_into_the_output_give_the_expressions_bits(rule, n):
    """into is o (the reverse pass hands o and g over, both dying): g · d into g, d in o's
    own block (tanh) or in o's blocks already consumed (sigmoid: after a first block of
    FIRST elements, then blocks as long as what is consumed), with no scratch; the bits of
    the whole-tensor expression, nan and ±inf included, for sizes around the first block."""
    from gradcli.ops import elementwise as ew

    rng = np.random.default_rng(10)
    o = np.tanh(rng.standard_normal(n) * 3).astype(np.float32)
    g = (rng.standard_normal(n) * 5).astype(np.float32)
    o[:3], g[-3:] = [np.nan, 1.0, -0.0], [np.nan, np.inf, -np.inf]
    fn = ew._tanh_grad if rule == "tanh" else ew._sigmoid_grad
    with np.errstate(all="ignore"):
        want = fn(g, o, None)
        got = fn(dying := g.copy(), into := o.copy(), None, into=into)
    assert got is dying
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("rule", ["tanh", "sigmoid"])
@pytest.mark.parametrize("where", ["apart", "into g", "constant g"])
def test_the_fused_rules_give_the_expressions_bits(rule, where):
    """_times_local's three ways (the local derivative in the destination block, in a
    scratch block when the destination is g, a broadcast constant g) against the
    whole-tensor expression, nan and ±inf included."""
    from gradcli.ops import elementwise as ew

    rng = np.random.default_rng(9)
    n = 2 * ew.BLOCK + 3
    o = np.tanh(rng.standard_normal(n) * 3).astype(np.float32)
    g = (rng.standard_normal(n) * 5).astype(np.float32)
    o[:3], g[3:6] = [np.nan, 1.0, -0.0], [np.nan, np.inf, -np.inf]
    if where == "constant g":
        g = np.broadcast_to(np.float32(0.25), (n,))
    fn = ew._tanh_grad if rule == "tanh" else ew._sigmoid_grad
    with np.errstate(all="ignore"):
        want = fn(g, o, None)
        into = g.copy() if where == "into g" else np.full(n, 7.0, np.float32)
        got = fn(into if where == "into g" else g, o, None, into=into)
    assert got is into
    assert got.tobytes() == want.tobytes()


STEADY = r"""
import ctypes
import numpy as np
import gradcli


class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
x = np.ones(1 << 15, dtype=np.float32)  # 128 KiB: its temporaries reach the engine's pool
program = gradcli.parse("sum(exp(x) * 2 + x)")
for _ in range(3):  # recorded, then replayed with the engine's buffers
    gradcli.evaluate(program, {"x": x}, wrt=["x"], keep="inputs")
big = np.empty(4 << 20, dtype=np.float32)  # 16 MiB: mapped, under either setting
del big  # glibc's own setting now raises its mmap threshold to 16 MiB; a fixed one stays
before = libc.mallinfo2().hblks
a = np.empty(6 << 18, dtype=np.float32)  # 6 MiB
print(libc.mallinfo2().hblks - before)  # 1: a block of its own (mmap); 0: the heap's
"""


def _glibc_mallinfo2():
    import ctypes

    try:
        return sys.platform.startswith("linux") and bool(ctypes.CDLL(None).mallinfo2)
    except (AttributeError, OSError):
        return False


@pytest.mark.skipif(not _glibc_mallinfo2(), reason="glibc's malloc (mallinfo2, glibc 2.33+)")
def test_malloc_thresholds_are_fixed():
    """At its first large free the engine fixes glibc's malloc thresholds (_steady_heap), so
    where a block comes from no longer depends on what was freed before: a 6 MiB block is
    mapped (over the fixed 4 MiB) even after a 16 MiB one was freed, which glibc's own
    moving threshold may have risen to. (Under GRADCLI_MALLOC=default where it goes
    depends on the process's history, so only the fixed setting is asserted.)"""
    env = dict(os.environ, GRADCLI_MALLOC="")
    out = subprocess.run(
        [sys.executable, "-c", STEADY], env=env, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == 1


def test_gradcli_malloc_default_leaves_glibc_alone(monkeypatch):
    """GRADCLI_MALLOC=default: _steady_heap returns before it touches the C library."""
    import ctypes

    monkeypatch.setenv("GRADCLI_MALLOC", "default")
    monkeypatch.setattr(ctypes, "pythonapi", None)  # (indexing it would raise TypeError)
    engine._steady_heap()
