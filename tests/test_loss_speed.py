"""nll's cheap path for plain class indices gives the general path's bits, and is taken only
where it may be (the general path checks the targets and raises the errors)."""

import numpy as np
import pytest

from gradcli.ops import losses


@pytest.fixture(autouse=True)
def _quiet():
    with np.errstate(all="ignore"):  # (as gradcli.evaluate runs the kernels)
        yield


def _both(monkeypatch, fn, *args, **kw):
    fast = fn(*args, **kw)
    with monkeypatch.context() as m:
        m.setattr(losses, "_plain_index", lambda *a: None)
        slow = fn(*args, **kw)
    return np.asarray(fast), np.asarray(slow)


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 8, 300])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("tkind", [np.float32, np.float64, np.int64])
def test_the_cheap_path_has_the_general_paths_bits(monkeypatch, dtype, n, reduction, tkind):
    rng = np.random.default_rng(n)
    logp = (rng.standard_normal((n, 10)) * 4).astype(dtype)
    logp[0, :3] = [np.nan, -np.inf, -0.0]
    if n > 2:
        logp[1] = np.inf
    t = rng.integers(0, 10, n).astype(tkind)
    t[0] = 1  # picks the -inf
    assert losses._plain_index(logp, t, None, -100) is not None
    kw = {"reduction": reduction}
    _same_bits(*_both(monkeypatch, losses._nll_loss, logp, t, **kw))
    if reduction == "none":
        gs = [rng.standard_normal(n).astype(d) for d in (np.float32, np.float64)]
    else:
        gs = [np.float32(0.7), np.array(1.3), np.array(0.3, np.float32), 2.5]
    for g in gs:
        _same_bits(*_both(monkeypatch, losses._nll_grad, g, None, logp, t, **kw))


@pytest.mark.parametrize(
    "t, kw",
    [
        ([0, 1, 2], {"weight": True}),  # a weight
        ([0, 1, 2], {"ignore_index": 2}),  # an ignore_index that a target may hit
        ([0, 1, np.nan], {}),
        ([0, 1.5, 2], {}),
        ([0, 1, 3], {}),
        ([-1, 1, 2], {}),
        ([0] * 299 + [3], {}),  # the numpy branch sees the bad target too
        ([0] * 299 + [np.nan], {}),
    ],
)
def test_the_cheap_path_leaves_the_rest_to_the_general_path(t, kw):
    logp = np.zeros((len(t), 3), np.float32)
    args = (kw.get("weight"), kw.get("ignore_index", -100))
    assert losses._plain_index(logp, np.array(t, np.float32), *args) is None


def test_the_cheap_path_is_for_2d_real_inputs_only():
    t = np.array([0, 1], np.float32)
    assert losses._plain_index(np.zeros((2, 3), np.float16), t, None, -100) is None
    assert losses._plain_index(np.zeros((2, 3), np.complex128), t, None, -100) is None
    assert losses._plain_index(np.zeros((2, 3, 1), np.float32), t[:, None], None, -100) is None
    assert losses._plain_index(np.zeros(3, np.float32), np.float32(1), None, -100) is None
    assert losses._plain_index(np.zeros((0, 3), np.float32), t[:0], None, -100) is None
