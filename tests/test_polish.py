"""PyTorch spellings that were missing or too lenient, checked against torch 2.13 itself
(skipped without torch unless GRADCLI_REQUIRE_TORCH=1): index_reduce (values, dtypes,
gradients, labels and error texts, with ties, zeros in prod, repeated and empty indices and
include_self both ways, plus finite differences); torch.where's condition= by name; a call's
several results among other index items (x[t, 0]); inplace= only where PyTorch's function has
it; Tensor.unfold's int size; adaptive pooling to an output size of 0."""

import re
import warnings

import numpy as np
import pytest
from conftest import NamedInputs, our_labels, torch_labels

import gradcli
from gradcli import engine
from gradcli.api import prepare
from gradcli.errors import GradcliError

RNG = np.random.default_rng(12)
FLOATS = {
    "A": RNG.standard_normal((3, 4)),
    "S": RNG.standard_normal((2, 4)),
    "C": RNG.standard_normal((3, 3)),
    "x": np.array([1.0, 2.0, 3.0, 2.0, 1.0]),  # ties with y at the places p sends y to
    "y": np.array([2.0, 2.0, 3.0, 0.0, 1.0]),
    "z": np.array([1.0, 0.0, 3.0, 2.0, 1.0]),  # zeros, for prod
    "w": np.array([0.0, 2.0, 0.0, 0.0, 5.0]),
    "n": np.array([np.nan, 2.0, -1.0, 0.5, np.inf]),
}
INTS = {
    "p": np.array([1, 1, 2, 0, 4]),
    "q": np.array([0, 0, 0, 0, 0]),
    "e": np.zeros((0,), dtype=np.int64),
    "j": np.array([2, 0]),
    "r": np.array([1, 1]),
    "h": np.array([3, 0, 3], dtype=np.int32),
    "J": np.array([1, 1, 3, 0, 3]),
    "I": np.array([4, -3, 7, 0, 2]),
    "i": np.array([2, 0]),
    "k": np.array([2, 0], dtype=np.int32),
    "l": np.array([2, 0, 1]),
    "i0": np.array(1),
    "i1": np.array(0),
    "i2": np.array(2, dtype=np.int32),
}
MASKS = {
    "m": np.array([True, False, True, True, False]),
    "b": np.array([True, False, True]),
    "M": np.array([[False, False, True, False], [False, False, False, False], [False] * 4]),
    "N": np.array([[False, True, True, False], [False, False, False, False], [False] * 4]),
    "u": np.array([False, True, False, False]),
}

INDEX_REDUCES = ("prod", "mean", "amax", "amin")
CASES = [
    *(f"x.index_reduce(0, p, y, '{r}')" for r in INDEX_REDUCES),
    *(f"x.index_reduce(0, p, y, '{r}', include_self=False)" for r in INDEX_REDUCES),
    *(f"A.index_reduce(0, j, S, '{r}')" for r in INDEX_REDUCES),
    *(f"A.index_reduce(0, r, S, '{r}', include_self=False)" for r in INDEX_REDUCES),
    *(f"torch.index_reduce(A, 1, h, C, '{r}')" for r in INDEX_REDUCES),
    *(f"A.index_reduce(-1, h.long(), C, reduce='{r}', include_self=False)" for r in INDEX_REDUCES),
    *(f"x.index_reduce(0, p, n, '{r}')" for r in INDEX_REDUCES),  # nan and inf
    "z.index_reduce(0, p, w, 'prod')",  # one zero in source at a place, one in self
    "z.index_reduce(0, p, w, 'prod', include_self=False)",
    "z.index_reduce(0, q, w, 'prod')",  # three zeros in source at one place
    "z.index_reduce(0, q, w, 'prod', include_self=False)",
    "z.index_reduce(0, J, y, 'prod')",  # a zero in self, one in source
    "z.index_reduce(0, q, w, 'amax', include_self=False)",  # ties among source
    "A.index_reduce(0, e, S[:0], 'prod')",  # an empty index changes nothing
    "A.index_reduce(0, e, S[:0], 'mean', include_self=False)",
    "x.sum().index_reduce(0, torch.tensor([0]), y[1], 'prod')",  # 0-dim self and source
    "x.index_reduce(0, torch.tensor(3), y[2:3], 'amin')",  # a 0-dim index
    "(torch.index_reduce(J, 0, p, I, 'mean') * x).sum()",  # integer mean: floor division
    "(torch.index_reduce(J, 0, p, I, 'mean', include_self=False) * x).sum()",
    "(torch.index_reduce(J, 0, p, I, 'amax', include_self=False) * x).sum()",
    "(torch.index_reduce(J, 0, p, I, 'prod') * x).sum()",
]


CASE = NamedInputs(FLOATS, {**INTS, **MASKS}, quiet=True)
_used, _given, _torch_run, _ours = CASE.used, CASE.given, CASE.torch_run, CASE.ours


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program", CASES)
def test_index_reduce_against_torch(torch, program, dtype):
    CASE.check(torch, program, dtype, RNG)


@pytest.mark.parametrize(
    "program",
    [
        "(z.index_reduce(0, p, w, 'prod') ** 2).sum()",
        "(z.index_reduce(0, J, y, 'prod', include_self=False) ** 2).sum()",
        "(A.index_reduce(0, r, S, 'mean', include_self=False) ** 2).sum()",
        "(torch.index_reduce(A, 1, h, C, 'amax') ** 2).sum()",
        "(A.index_reduce(1, h.long(), C, 'amin', include_self=False) ** 2).sum()",
    ],
)
def test_index_reduce_finite_differences(program):
    """prod is a polynomial, so its gradient at zeros is checked by differences too."""
    CASE.check_differences(program)


@pytest.mark.parametrize(
    "program",
    [
        "A.index_reduce(0, j, S, 'sum')",  # sum is index_add's, not index_reduce's
        "A.index_reduce(0, j, S, 'max')",
        "A.index_reduce(0, j.float(), S, 'prod')",
        "A.index_reduce(0, j, S.double(), 'prod')",
        "A.index_reduce(0, torch.tensor([1, 2, 0]), S, 'mean')",
        "A.index_reduce(0, torch.tensor([[1], [2]]), S, 'mean')",
        "A.index_reduce(2, j, S, 'amax')",
        "A.index_reduce(0, j, C, 'amax')",
        "A.index_reduce(0, torch.tensor([3, 0]), S, 'amin')",
        "A.index_reduce(0, torch.tensor([-1, 0]), S, 'amin')",
        "x.sum().index_reduce(0, torch.tensor([0]), y[:1], 'prod')",
        "x.index_reduce(0, torch.tensor(3), y[2], 'amin')",
        "(x > 1).index_reduce(0, p, y > 1, 'prod')",
    ],
)
def test_index_reduce_errors_as_torch(torch, program):
    used = _used(program)
    with pytest.raises(Exception) as theirs:
        _torch_run(torch, program, used, "float32")
    with pytest.raises(GradcliError) as ours:
        _ours(program, used, "float32")
    assert ours.value.exit_code == 1
    assert str(theirs.value).split("\n")[0] in ours.value.message


@pytest.mark.parametrize(
    "program, message",
    [
        ("A.index_reduce(0, j, 2.0, 'prod')", "argument 'source' (position 3) must be Tensor"),
        ("A.index_reduce(0, 1, S, 'prod')", "argument 'index' (position 2) must be Tensor"),
        ("A.index_reduce(0, j, S, 'prod', include_self=1)", "include_self must be True or False"),
        ("A.index_reduce(0, j, S)", "needs the argument 'reduce'"),
    ],
)
def test_index_reduce_bad_arguments(program, message):
    with pytest.raises(GradcliError, match=re.escape(message)):
        _ours(program, _used(program), "float32")


def test_index_reduce_int32_index_backward_without_self(torch):
    """PyTorch's backward of include_self=False fills with an int32 index and refuses it (the
    forward, and the backward with include_self, take int32)."""
    program = "A.index_reduce(1, h, C, 'amin', include_self=False).sum()"
    used = _used(program)
    theirs, _ = _torch_run(torch, program, used, "float64")
    with pytest.raises(Exception, match="index_fill_") as want:
        theirs.backward()
    with pytest.raises(GradcliError) as ours:
        _ours(program, used, "float64")
    assert ours.value.exit_code == 1
    assert str(want.value) in ours.value.message


# -- torch.where by keyword, and a call's results among other index items ---------------

SPELLED = [
    "torch.where(condition=m, input=x, other=y)",
    "torch.where(m, input=x, other=y)",
    "torch.where(condition=x > 1.5, input=x, other=2.0)",
    "x.where(condition=m, other=y)",
    "x[torch.where(condition=m)]",
    "A[torch.where(condition=A > 0)]",
    "torch.where(condition=A > 0)[1] * A[0, :1]",
    "A[torch.nonzero(M, as_tuple=True), 0]",  # one True: each result one element
    "A[1:, torch.nonzero(M, as_tuple=True)]",
    "A[..., torch.nonzero(u, as_tuple=True)]",
    "A[torch.meshgrid(i[:1], i[1:], indexing='ij'), 1]",  # one-element results of 2 dims
    "A[torch.meshgrid(k[:1], k[1:], indexing='ij'), -1]",  # int32 results
    "A[torch.meshgrid(b[:1], b[1:2], b[2:], indexing='ij'), 0]",  # bool results: a mask
    "A[torch.meshgrid(i[:1], i[1:], indexing='ij'), torch.meshgrid(i[1:], indexing='ij')]",
    "A[(i0, i1), 0]",  # a tuple of tensors among other items: one index of their values
    "A[[i0, i2, i1], 1:]",
    "A[(i0, 2), ...]",
    "A[(i[:1], 2, i1), -1]",
    "A[((i0, i1), 0)]",
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program", SPELLED)
def test_spellings_against_torch(torch, program, dtype):
    used = _used(program)
    theirs, leaves = _torch_run(torch, program, used, dtype)
    seed = RNG.standard_normal(tuple(theirs.shape)).astype(dtype) if theirs.dim() else None
    ours = _ours(program, used, dtype, seed)
    theirs.backward(torch.from_numpy(seed) if seed is not None else None)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.value, theirs.detach().numpy())
    assert ours.grad_fn == type(theirs.grad_fn).__name__
    assert our_labels(ours) == torch_labels(theirs)
    for k, leaf in leaves.items():
        want = np.zeros(used[k].shape) if leaf.grad is None else leaf.grad.numpy()
        got = ours.grad[k] if ours.grad[k] is not None else np.zeros(used[k].shape)
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "named, inline",
    [
        (
            "t = torch.nonzero(M, as_tuple=True); A[t, 0] * 2",
            "A[torch.nonzero(M, as_tuple=True), 0] * 2",
        ),
        ("t = (i0, i1); A[t, 0] * 2", "A[(i0, i1), 0] * 2"),
    ],
)
def test_tuples_held_by_a_name_index_as_written_out(named, inline):
    """A name bound to a call's results, or to a tuple of tensors, indexes as the call or
    the tuple written in the index."""
    used = _used(inline)
    a = _ours(named, used, "float64", [1.0, 2.0])
    b = _ours(inline, used, "float64", [1.0, 2.0])
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.grad["A"], b.grad["A"])


@pytest.mark.parametrize(
    "program",
    [
        "A[torch.nonzero(N, as_tuple=True), 0]",  # two Trues: results of two elements
        "A[torch.meshgrid(i, i[:1], indexing='ij'), 1]",
        "A[torch.meshgrid(x[:1], x[1:2], indexing='ij'), 1]",  # float results
        "A[torch.nonzero(A[0, 0] * 0, as_tuple=True), 1]",  # an empty result
        "A[(i, i0), 0]",
        "A[(i0, x[0]), 0]",
    ],
)
def test_results_index_errors_as_torch(torch, program):
    used = _used(program)
    with pytest.raises(TypeError) as theirs:
        _torch_run(torch, program, used, "float32")
    with pytest.raises(GradcliError) as ours:
        _ours(program, used, "float32")
    assert ours.value.exit_code == 1
    assert str(theirs.value) in ours.value.message


@pytest.mark.parametrize(
    "program, message",
    [
        ("torch.where(input=x)", "'input' given by name, but an argument before it is missing"),
        ("torch.where(cond=m, input=x, other=y)", "unexpected keyword argument 'cond'"),
        ("torch.where(condition=m, input=x)", "where() takes 3 tensor arguments, got 2"),
        ("torch.where(x > 0, self=x, other=y)", "unexpected keyword argument 'self'"),
    ],
)
def test_where_by_name_refused(torch, program, message):
    used = _used(program)
    with pytest.raises(TypeError):
        _torch_run(torch, program, used, "float32")
    with pytest.raises(GradcliError, match=re.escape(message)) as ours:
        _ours(program, used, "float32")
    assert ours.value.exit_code == 2


# -- leniencies closed: inplace= where PyTorch has none, unfold's size as a list --------


@pytest.mark.parametrize(
    "program, word",
    [
        ("torch.relu(x, inplace=False)", "inplace"),
        ("torch.relu(x, inplace=True)", "inplace"),
        ("x.relu(inplace=False)", "inplace"),
        ("torch.selu(x, inplace=False)", "inplace"),
        ("torch.celu(x, inplace=False)", "inplace"),
        ("torch.rrelu(x, inplace=False)", "inplace"),
        ("torch.threshold(x, 1.5, 0.0, inplace=False)", "inplace"),
        ("x.unfold(0, [2], 1)", "size"),
        ("x.unfold(0, (2,), 1)", "size"),
        ("x.unfold(0, 2, [1])", "step"),
        ("x.unfold([0], 2, 1)", "dimension"),
        ("x.unfold(0, True, 1)", "size"),
    ],
)
def test_refused_as_torch_refuses(torch, program, word):
    """PyTorch's TypeError; gradcli's usage error names the argument."""
    used = _used(program)
    with pytest.raises(TypeError):
        _torch_run(torch, program, used, "float32")
    with pytest.raises(GradcliError) as ours:
        _ours(program, used, "float32")
    assert ours.value.exit_code == 2
    assert word in ours.value.message


@pytest.mark.parametrize(
    "program",
    [
        "F.relu(x, inplace=False)",
        "torch.nn.functional.relu(x, inplace=False)",
        "F.selu(x, inplace=False)",
        "F.threshold(x, 1.5, 0.0, inplace=False)",
        "F.leaky_relu(x, 0.2, inplace=False)",
        "x.unfold(0, 2, 1)",
        "x.unfold(dimension=0, size=3, step=2)",
    ],
)
def test_still_taken(torch, program):
    used = _used(program)
    theirs, _ = _torch_run(torch, program, used, "float64")
    ours = _ours(program, used, "float64", np.ones(tuple(theirs.shape)))
    np.testing.assert_allclose(ours.value, theirs.detach().numpy())
    assert ours.grad_fn == type(theirs.grad_fn).__name__


# -- adaptive pooling to an output size of 0 --------------------------------------------

EMPTY_POOLS = [
    "F.adaptive_max_pool1d(A[None], 0)",
    "F.adaptive_max_pool1d(A, 0)",
    "F.adaptive_avg_pool1d(A, 0)",
    "F.adaptive_max_pool1d(A, 0, return_indices=True)[0]",
    "torch.adaptive_max_pool1d(A, [0])[0]",
    "F.adaptive_max_pool2d(A[None], (0, 2))",
    "F.adaptive_avg_pool2d(A[None, None], (2, 0))",
    "F.adaptive_max_pool3d(A[None, None], (1, 0, 2))",
    "F.adaptive_avg_pool3d(A[None, None, None], (1, 2, 0))",
]


@pytest.mark.parametrize("program", EMPTY_POOLS)
def test_adaptive_pool_to_size_zero(torch, program):
    """The forward gives PyTorch's empty result; the backward is PyTorch's error (its
    adaptive_pool_empty_output_check), not a gradient of zeros."""
    used = _used(program)
    theirs, _ = _torch_run(torch, program, used, "float32")
    seed = np.ones(tuple(theirs.shape), dtype=np.float32)
    with pytest.raises(RuntimeError) as want:
        theirs.backward(torch.from_numpy(seed))
    prog, arrays, _, _, _ = prepare(program, _given(used), "", "float32")
    nodes, out = engine.forward(prog, arrays, set(), "float32")
    assert nodes[out].value.shape == tuple(theirs.shape)
    with pytest.raises(GradcliError) as ours:
        _ours(program, used, "float32", seed)
    assert ours.value.exit_code == 1
    assert str(want.value) in ours.value.message


@pytest.mark.parametrize(
    "program",
    [
        "(x.index_reduce(0, r, y[:2], 'prod') ** 2).sum()",
        "(z.index_reduce(0, p, w, 'prod', include_self=False) ** 2).sum()",
        "(x.index_reduce(0, p, y, 'mean') ** 2).sum()",
        "(x.index_reduce(0, p, y, 'amax') ** 2).sum()",
    ],
)
def test_index_reduce_hessian_matches_torch(torch, program):
    """Forward-over-reverse (gradcli) against PyTorch's double backward."""
    from torch.autograd.functional import hessian

    from gradcli import derivatives as D

    used = _used(program)
    floats = [k for k in used if k in FLOATS]
    ours = D.hessian(program, _given(used), dtype="float64", wrt=",".join(floats))["hessian"]

    def f(*args):
        ns = {"torch": torch, **{k: torch.from_numpy(v) for k, v in used.items()}}
        ns.update(zip(floats, args, strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return eval(program, ns)

    theirs = hessian(f, tuple(torch.from_numpy(used[k]) for k in floats))
    for a, row in zip(floats, theirs, strict=True):
        for b, block in zip(floats, row, strict=True):
            np.testing.assert_allclose(ours[a][b], block.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "program, first, second, want",
    [
        (
            "(A[(i0, i1), 0] * 1).sum()",
            {"i0": 1, "i1": 0},
            {"i0": 0, "i1": 0},
            2 * FLOATS["A"][0, 0],
        ),
        (
            "(A[torch.nonzero(M, as_tuple=True), 0] * 1).sum()",
            {"M": MASKS["M"]},
            {"M": np.roll(MASKS["M"], 1, axis=0)},
            FLOATS["A"][1, 0] + FLOATS["A"][2, 0],
        ),
    ],
)
def test_sequence_index_recomputed_on_replay(program, first, second, want):
    """A batch evaluates a program again from its recorded plan: the sequence index is
    computed from the new values, not kept from the first."""
    prog = gradcli.parser.parse(program)
    for values in (first, second):
        arrays = {"A": FLOATS["A"], **{k: np.asarray(v) for k, v in values.items()}}
        with gradcli.api.quietly():
            nodes, out = engine.forward(prog, arrays, {"A"}, "float64")
    assert len(prog.plans) == 1
    np.testing.assert_allclose(nodes[out].value, want)
