"""Every operator in the table: finite differences and the PyTorch oracle, generated from
the table's own examples. Adding an operator adds its rows here automatically."""

import numpy as np
import pytest
from conftest import our_labels, run_torch, sample, table_examples, torch_labels

import gradcli


def _inputs(specs, seed):
    rng = np.random.default_rng(seed)
    return {k: sample(shape, domain, rng) for k, (shape, domain) in specs.items()}


def _value(program, inputs):
    from gradcli import engine
    from gradcli.parser import parse

    p = parse(program)
    arrays = {k: np.asarray(v, dtype="float64") for k, v in inputs.items()}
    nodes, out = engine.forward(p, arrays, set(), "float64")
    return np.asarray(nodes[out].value, dtype=np.float64)


@pytest.mark.parametrize("program,specs", table_examples())
def test_finite_differences(program, specs):
    inputs = _inputs(specs, 1)
    shape = _value(program, inputs).shape
    seed = None if shape == () else np.random.default_rng(2).standard_normal(shape)
    result = gradcli.evaluate(program, inputs, dtype="float64", seed_vector=seed)
    weights = 1.0 if seed is None else seed
    h = 1e-6
    for name, x in inputs.items():
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            up, down = dict(inputs), dict(inputs)
            up[name], down[name] = x.copy(), x.copy()
            up[name][idx] += h
            down[name][idx] -= h
            numeric[idx] = np.sum(weights * (_value(program, up) - _value(program, down))) / (2 * h)
        ours = result.grad[name]  # None: no gradient flows (a comparison, a class index)
        np.testing.assert_allclose(
            np.zeros_like(x) if ours is None else ours,
            numeric,
            rtol=1e-5,
            atol=1e-6,
            err_msg=f"d/d{name} of {program}",
        )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,specs", table_examples())
def test_pytorch_oracle(torch, program, specs, dtype):
    inputs = _inputs(specs, 3)
    shape = _value(program, inputs).shape
    seed = None if shape == () else np.random.default_rng(4).standard_normal(shape)
    ours = gradcli.evaluate(program, inputs, dtype=dtype, seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, dtype=dtype, seed=seed)
    rtol = 1e-9 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=rtol, atol=rtol)
    for name in inputs:
        if grads[name] is None:
            assert ours.grad[name] is None, f"d/d{name}"
            continue
        np.testing.assert_allclose(
            ours.grad[name], grads[name], rtol=rtol, atol=rtol, err_msg=f"d/d{name}"
        )
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)
    assert str(ours.value.dtype) == str(out.dtype).removeprefix("torch.")  # float_power: f64


@pytest.fixture
def lean_everything(monkeypatch):
    """Drop and recycle even tiny tensors, so small examples exercise lean replay."""
    from gradcli import engine

    monkeypatch.setattr(engine, "LEAN_BYTES", 0)
    monkeypatch.setattr(engine._POOL, "min_bytes", 0)


@pytest.mark.parametrize("program,specs", table_examples())
def test_lean_replay_matches(program, specs, lean_everything):
    """A replayed plan in lean mode drops the values each op's `saves` says its rules never
    read, and writes results into dying or pooled buffers: a wrong declaration or a reused
    buffer still in use would change these numbers."""
    from gradcli.parser import parse

    inputs = _inputs(specs, 8)
    p = parse(program)
    shape = _value(program, inputs).shape
    seed = None if shape == () else np.random.default_rng(9).standard_normal(shape)
    full = gradcli.evaluate(p, inputs, dtype="float64", seed_vector=seed)  # records the plan
    for _ in range(2):
        lean = gradcli.evaluate(p, inputs, dtype="float64", seed_vector=seed, keep="inputs")
        np.testing.assert_array_equal(lean.value, full.value)
        for name in inputs:
            if full.grad[name] is None:
                assert lean.grad[name] is None
            else:
                np.testing.assert_array_equal(lean.grad[name], full.grad[name])
