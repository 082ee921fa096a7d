"""Normalisation functions of torch.nn.functional (softmax and friends)."""

from .core import (
    M,
    Op,
    V,
    _dim_shape,
    _one_dim,
    lazy_numpy,
)

np = lazy_numpy(globals())


def _softmax_dim(a, dim):
    if a.ndim == 0:
        return None
    if dim is None:  # PyTorch's implicit choice (_get_softmax_dim)
        return 0 if a.ndim in (0, 1, 3) else 1
    return _one_dim(dim, a.ndim)


def _softmax(a, dim=None):
    d = _softmax_dim(a, dim)
    if d is None:
        return np.ones_like(a)
    if a.size == 0:  # an empty softmax is empty (numpy's amax has no identity)
        return a.copy()
    e = np.exp(a - np.amax(a, axis=d, keepdims=True))
    return e / np.sum(e, axis=d, keepdims=True)


def _log_softmax(a, dim=None):
    d = _softmax_dim(a, dim)
    if d is None or a.size == 0:
        return np.zeros_like(a)
    shifted = a - np.amax(a, axis=d, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=d, keepdims=True))


def _softmax_grad(g, o, a, dim=None):
    d = _softmax_dim(a, dim)
    return np.zeros_like(g) if d is None else (g - np.sum(g * o, axis=d, keepdims=True)) * o


def _log_softmax_grad(g, o, a, dim=None):
    d = _softmax_dim(a, dim)
    return np.zeros_like(g) if d is None else g - np.exp(o) * np.sum(g, axis=d, keepdims=True)


def _softmax_shape(shapes, attrs):
    if attrs.get("dim") is not None:
        return _dim_shape(shapes, attrs)
    return shapes[0]


ROWS = [
    Op(
        "softmax",
        _softmax,
        (_softmax_grad,),
        "SoftmaxBackward0",
        _softmax_shape,
        params={"dim": None},
        mirror="F.softmax(a, dim)",
        rule="∂s/∂a = s ⊙ (g - Σ g s)",
        examples=(("softmax(A, dim=1)", M), ("softmax(a, 0)", V), ("softmax(A)", M)),
        namespaces=("torch", "torch.nn.functional", "torch.special"),
    ),
    Op(
        "log_softmax",
        _log_softmax,
        (_log_softmax_grad,),
        "LogSoftmaxBackward0",
        _softmax_shape,
        params={"dim": None},
        mirror="F.log_softmax(a, dim)",
        rule="∂/∂a = g - softmax(a)·Σg",
        examples=(("log_softmax(A, dim=1)", M), ("log_softmax(a, 0)", V)),
        namespaces=("torch", "torch.nn.functional", "torch.special"),
    ),
]
