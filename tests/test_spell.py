"""The rest of PyTorch's spelling: the keyword names of tensor arguments (every row against
PyTorch's signature), boolean lists and x[True] as indices, quantile with a tensor q,
.view(dtype), and pow's and flatten's edges, with PyTorch 2.13 as the oracle: value, dtype,
gradient of every input and every label."""

import math

import numpy as np
import pytest
from conftest import our_labels, run_torch, torch_labels

import gradcli
from gradcli import signatures
from gradcli.errors import GradcliError
from gradcli.ops import TABLE

NAN, INF = math.nan, math.inf


def check(torch, program, inputs, dtype="float64", wrt=None):
    shape = np.shape(values(program, inputs, dtype))
    seed = None if shape == () else np.random.default_rng(1).standard_normal(shape)
    ours = gradcli.evaluate(program, inputs, dtype=dtype, wrt=wrt, seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, wrt=wrt, dtype=dtype, seed=seed)
    theirs = out.detach().numpy()
    rtol = 1e-9 if dtype == "float64" else 2e-5
    assert ours.value.shape == theirs.shape
    assert str(ours.value.dtype) == str(out.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.value, theirs, rtol=rtol, atol=1e-12, equal_nan=True)
    assert set(ours.grad) == set(grads)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None, name
        else:
            np.testing.assert_allclose(
                ours.grad[name], g, rtol=rtol, atol=1e-12, equal_nan=True, err_msg=name
            )
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)
    return ours


def values(program, inputs, dtype="float64"):
    """The output of a program, which nothing differentiates."""
    from gradcli import engine
    from gradcli.api import quietly
    from gradcli.parser import parse

    arrays = {
        k: np.asarray(v, dtype=None if np.asarray(v).dtype.kind in "iub" else dtype)
        for k, v in inputs.items()
    }
    with quietly():
        nodes, out = engine.forward(parse(program), arrays, set(), dtype)
    return nodes[out].value


def refuses(program, inputs, expect, **kw):
    with pytest.raises(GradcliError) as ours:
        gradcli.evaluate(program, inputs, **kw)
    assert expect in str(ours.value)
    return ours.value


# ---- 1. PyTorch's keyword names for tensor arguments -------------------------------------


def _tensor_names(op):
    """(our names of the tensor arguments a program may pass by keyword, PyTorch's names at
    the same places), from the row and from its PyTorch signature: PyTorch's parameters that
    are not the row's constant parameters are its tensors, in order; a Tensor method's
    receiver (self) has no name."""
    qualified, params = signatures.parse(signatures.load()[op.name])
    theirs = [
        name
        for name, _, _, varargs in params
        if name not in op.params and name not in op.keywords.values() and not varargs
    ]
    ours = list(op.inputs[: max(op.arity, 1)])
    if qualified.startswith("Tensor."):
        ours.pop(op.receiver)
    return ours, theirs[: len(ours)]


KEYWORDED = [
    op
    for op in TABLE
    if op.public
    and op.arity > 0
    and op.name in signatures.load()
    # (einsum's *operands, meshgrid's *tensors: PyTorch takes them by position only)
    and not any(
        v and n not in op.params for n, _, _, v in signatures.parse(signatures.load()[op.name])[1]
    )
]


def test_the_walk_covers_the_table():
    assert len(KEYWORDED) > 250
    names = {op.name for op in KEYWORDED}
    assert {"conv2d", "addmm", "lerp", "polygamma", "tensordot", "cdist", "addr"} <= names


@pytest.mark.parametrize("op", KEYWORDED, ids=lambda op: op.name)
def test_tensor_keywords_are_pytorchs(op):
    ours, theirs = _tensor_names(op)
    assert ours == theirs, f"{op.name}: {signatures.load()[op.name]}"
    # and none of PyTorch's required arguments is positional only
    assert signatures.not_taken(op)[1] == []


A = np.arange(6.0).reshape(2, 3) / 4 - 0.5
B3 = np.arange(12.0).reshape(2, 3, 2) / 5 - 1


@pytest.mark.parametrize(
    "program, inputs",
    [
        ("F.conv1d(x, weight=w, bias=b)", {"x": B3, "w": np.ones((4, 3, 2)), "b": np.ones(4)}),
        ("F.conv1d(input=x, weight=w)", {"x": B3, "w": np.ones((1, 3, 2)) / 3}),
        ("F.conv2d(x, weight=w, bias=b, padding=1)", {"x": B3[None], "w": B3[None], "b": [2.0]}),
        ("torch.conv2d(x, weight=w)", {"x": B3[None], "w": B3[None]}),
        ("F.conv3d(x, weight=w)", {"x": B3[None, None], "w": B3[None, None, :, :2]}),
        (
            "F.conv_transpose1d(x, weight=w, bias=b)",
            {"x": B3, "w": B3.reshape(3, 2, 2), "b": [1.0, -1]},
        ),
        ("F.conv_transpose2d(x, weight=w)", {"x": B3[None], "w": B3[:, :, None]}),
        ("F.conv_transpose3d(x, weight=w)", {"x": B3[None, None], "w": B3[None, None]}),
        ("torch.addmm(s, mat1=A, mat2=A.T)", {"s": [1.0, 2.0], "A": A}),
        ("torch.addmm(input=s, mat1=A, mat2=A.T, beta=2)", {"s": [1.0, 2.0], "A": A}),
        ("torch.mm(A, mat2=A.T)", {"A": A}),
        ("torch.matmul(A, other=A.T)", {"A": A}),
        ("A.matmul(other=A.T)", {"A": A}),
        ("torch.bmm(b, mat2=b.transpose(1, 2))", {"b": B3}),
        ("b.bmm(mat2=b.transpose(1, 2))", {"b": B3}),
        ("torch.baddbmm(s, batch1=b, batch2=b.transpose(1, 2), alpha=3)", {"s": [1.0], "b": B3}),
        ("torch.addmv(s, mat=A, vec=v)", {"s": [1.0, 2.0], "A": A, "v": [1.0, -2, 3]}),
        ("s.addmv(mat=A, vec=v)", {"s": [1.0, 2.0], "A": A, "v": [1.0, -2, 3]}),
        ("torch.addr(S, vec1=u, vec2=v)", {"S": A, "u": [1.0, 2], "v": [1.0, -2, 3]}),
        ("torch.addr(s, u, v, beta=0.5, alpha=-2)", {"s": [3.0], "u": [1.0, 2], "v": [1.0, -2]}),
        ("S.addr(u, vec2=v, beta=0)", {"S": A, "u": [1.0, 2], "v": [1.0, -2, 3]}),
        ("torch.lerp(x, end=y, weight=0.25)", {"x": [1.0, 2], "y": [3.0, -4]}),
        ("torch.lerp(x, y, weight=w)", {"x": [1.0, 2], "y": [3.0, -4], "w": [0.5, 2]}),
        ("x.lerp(end=y, weight=w)", {"x": [1.0, 2], "y": [3.0, -4], "w": [0.5, 2]}),
        (
            "x * torch.heaviside(y, values=v)",
            {"x": [1.0, 2, 3], "y": [-1.0, 0, 2], "v": [0.5, 0.2, 3]},
        ),
        ("torch.polygamma(n=1, input=x)", {"x": [0.5, 2.0]}),
        ("torch.special.polygamma(2, input=x)", {"x": [0.5, 2.0]}),
        ("x.polygamma(1)", {"x": [0.5, 2.0]}),
        ("x.polygamma(n=3)", {"x": [0.5, 2.0]}),
        ("torch.tensordot(a=A, b=A, dims=([0, 1], [0, 1]))", {"A": A}),
        ("torch.tensordot(A, b=A.T, dims=1)", {"A": A}),
        ("torch.cdist(x1=A, x2=A + 1)", {"A": A}),
        ("torch.cdist(A, x2=A * 2, p=1)", {"A": A}),
        ("x.where(condition=x > 0, other=y)", {"x": [1.0, -2], "y": [5.0, 6]}),
        ("torch.dot(x, tensor=y)", {"x": [1.0, -2], "y": [5.0, 6]}),
        ("torch.outer(x, vec2=y)", {"x": [1.0, -2], "y": [5.0, 6, 7]}),
        ("torch.mv(A, vec=v)", {"A": A, "v": [1.0, -2, 3]}),
    ],
)
def test_tensor_arguments_by_pytorchs_names(torch, program, inputs):
    wrt = None if "heaviside" not in program else ["x"]  # (its backward is not implemented)
    check(torch, program, {k: np.asarray(v) for k, v in inputs.items()}, wrt=wrt)


@pytest.mark.parametrize(
    "program, expect",
    [
        ("F.conv1d(x, weight=x, input=x)", "got argument 'input' twice"),
        ("torch.addmm(x, mat2=x)", "'mat2' given by name, but an argument before it is missing"),
        ("torch.addmm(x, other=x, mat2=x)", "unexpected keyword argument 'other'"),
        ("torch.lerp(x, x, third=x)", "unexpected keyword argument 'third'"),
        ("x.polygamma(n=1, input=x)", "twice"),
        ("torch.polygamma(x)", "polygamma() takes 2 tensor arguments, got 1"),
    ],
)
def test_tensor_keyword_mistakes(program, expect):
    refuses(program, {"x": np.ones((1, 1, 1))}, expect)


@pytest.mark.parametrize(
    "program, inputs",
    [
        ("torch.tensordot(A, A)", {"A": A}),
        ("torch.tensordot(u, u, dims=1)", {"u": [1.0, -2, 3]}),
        ("torch.tensordot(s, s, dims=0)", {"s": 2.0}),
        ("torch.tensordot(w, w, dims=0)", {"w": [2.0]}),
        ("torch.tensordot(r, r, dims=([1], [1]))", {"r": [[1.0, -2, 3]]}),
        ("torch.tensordot(c, w, dims=([1], [0]))", {"c": [[3.0]], "w": [2.0]}),
        ("torch.tensordot(A, b, dims=2)", {"A": A, "b": B3.reshape(2, 3, 2)}),
    ],
)
def test_tensordot_to_one_number_is_a_dot(torch, program, inputs):
    check(torch, program, {k: np.asarray(v) for k, v in inputs.items()})


# ---- 2. lists of booleans, True and False as indices -------------------------------------

X = np.array([1.0, -2.0, 3.0])
A2 = np.arange(6.0).reshape(2, 3) - 2.5
B4 = np.arange(24.0).reshape(2, 3, 4) / 7 - 1


@pytest.mark.parametrize(
    "program",
    [
        "x[[True, False, True]]",
        "x[[False, False, False]]",
        "x[[True, True, True]] * 2",
        "A[[True, False]]",
        "A[:, [True, False, True]]",
        "A[[False, True], 1:]",
        "A[[True, False], [0]]",
        "A[[True, False], 1]",
        "A[[True, False], [True, False, True]]",
        "B[..., [True, False, True, True]]",
        "B[[True, False], None, [True, True, False]]",
        "x[[True, 1]]",
        "x[[1, True, False]]",
        "x[True]",
        "x[False]",
        "A[True]",
        "A[False]",
        "A[True, 0]",
        "A[0, True]",
        "A[True, True]",
        "A[None, True]",
        "A[True, ...]",
        "A[..., True]",
        "A[..., False]",
        "A[True, :, 1:]",
        "A[False, 0]",
        "A[True, [1, 0]]",
        "A[[1, 0], True]",
        "A[True, [1, 0], True]",
        "A[[True, False], True]",
        "A[True, [True, False]]",
        "A[[1, 0], True, [0, 2]]",
        "x[0][True]",
        "x[0][False]",
        "x[True][0]",
        "(x * 2)[True].sum()",
        # a list holding lists or None is a tuple of indices (PyTorch's treatSequenceAsTuple)
        "A[[[1, 0], [0, 2]]]",
        "A[[[1], [0]]]",
        "x[[[True, False, True]]]",
        "x[[[0, 1]]]",
        "A[[None, 0]]",
        "A[[0, 1, 0] * 11]",
        "x[[]]",
        "A[[1, 0, 1]]",
    ],
)
def test_boolean_and_list_indices(torch, program):
    if "* 11" in program:  # (Python repeats the list; gradcli's lists have no *)
        program = program.replace("[0, 1, 0] * 11", str([0, 1, 0] * 11))
    check(torch, program, {"x": X, "A": A2, "B": B4})


@pytest.mark.parametrize(
    "program, expect",
    [
        (
            "x[[True]]",
            "The shape of the mask [1] at index 0 does not match the shape of the "
            "indexed tensor [3] at index 0",
        ),
        ("A[[True], [0]]", "The shape of the mask [1] at index 0 does not match"),
        (
            "A[False, [0, 1]]",
            "shape mismatch: indexing tensors could not be broadcast together with shapes [0], [2]",
        ),
        ("x[0][[True]]", "too many indices for tensor of dimension 0"),
        ("A[[[True, False, True], [False, True, False]]]", "The shape of the mask [3] at index 0"),
    ],
)
def test_boolean_index_errors_are_pytorchs(torch, program, expect):
    refuses(program, {"x": X, "A": A2}, expect)
    with pytest.raises(IndexError, match=r"mask|mismatch|too many"):
        run_torch(torch, program, {"x": X, "A": A2})


def test_a_list_index_holds_numbers_and_booleans():
    # (a list holding a tensor is a tuple of indices: x[True, x], and x is no index)
    refuses("x[[True, x]]", {"x": X}, "tensors used as indices must be long, int, byte or bool")
    refuses("x[[True, 'a']]", {"x": X}, "a list literal holds numbers only")


def test_a_zero_dim_boolean_tensor_indexes_as_true_does(torch):
    for m in (True, False):
        ours = gradcli.evaluate("x[m].sum()", {"x": X, "m": {"dtype": "bool", "data": m}})
        x = torch.tensor(X, dtype=torch.float32, requires_grad=True)
        out = x[torch.tensor(m)].sum()
        out.backward()
        assert ours.value == pytest.approx(out.item())
        np.testing.assert_array_equal(ours.grad["x"], x.grad.numpy())
        assert our_labels(ours) == torch_labels(out)
    r = gradcli.jvp("x[True].sum()", {"x": X}, {"x": [1.0, 2.0, 3.0]})
    assert float(r["jvp"]) == 6.0


# ---- 5. pow at its edges, flatten's dims ---------------------------------------------------

EDGE = np.array([-INF, -0.0, 0.0, INF, -2.0, NAN, 0.5, 4.0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("e", ["0.5", "-0.5", "1.5", "0.25", "2", "3", "-1", "-2", "0", "1", "2.5"])
@pytest.mark.parametrize("spelling", ["x ** {e}", "torch.pow(x, {e})", "x.pow({e})"])
def test_pow_by_a_number_at_the_edges(torch, spelling, e, dtype):
    program = spelling.format(e=e)
    ours = check(torch, program, {"x": EDGE}, dtype=dtype)
    x = torch.tensor(EDGE, dtype=getattr(torch, dtype), requires_grad=True)
    out = eval(program, {"torch": torch, "x": x})  # noqa: S307
    out.backward(torch.tensor(np.random.default_rng(1).standard_normal(EDGE.shape), dtype=x.dtype))
    # the signs of the zeros and infinities too (-0 ** -0.5 is -inf: PyTorch's 1/sqrt)
    for a, b in ((ours.value, out.detach().numpy()), (ours.grad["x"], x.grad.numpy())):
        np.testing.assert_array_equal(np.signbit(a)[~np.isnan(b)], np.signbit(b)[~np.isnan(b)])


@pytest.mark.parametrize(
    "program",
    [
        "s.flatten(1)",
        "s.flatten(-2)",
        "s.flatten(0, 1)",
        "x.flatten(2)",
        "x.flatten(0, 2)",
        "x.flatten(-3)",
        "A.flatten(3)",
        "A.flatten(0, -3)",
        "torch.flatten(x, 2)",
    ],
)
def test_flatten_dims_out_of_range_are_pytorchs_error(torch, program):
    inputs = {"s": np.asarray(2.0), "x": X, "A": A2}
    used = {k: v for k, v in inputs.items() if f"{k}." in program or f"({k}," in program}
    with pytest.raises(IndexError) as theirs:
        eval(program, {"torch": torch}, {k: torch.tensor(v) for k, v in used.items()})  # noqa: S307
    error = refuses(program, used, str(theirs.value))
    assert error.exit_code == 1


def test_flatten_of_a_number_in_range(torch):
    for program in ("s.flatten()", "s.flatten(-1, 0)", "torch.flatten(s, 0, -1)"):
        check(torch, program, {"s": np.asarray(2.0)})


# ---- 4. .view(dtype): the same bits as another dtype ---------------------------------------

BITS = np.array([[1.0, -2.0, 3.5, 0.0], [-0.0, INF, NAN, 1e-40]])


@pytest.mark.parametrize(
    "source", ["float32", "float64", "int32", "int64", "int8", "uint8", "bool"]
)
@pytest.mark.parametrize(
    "target", ["float32", "float64", "int32", "int64", "int16", "int8", "uint8", "bool"]
)
def test_view_as_another_dtype_reads_the_same_bits(torch, source, target):
    data = {"bool": BITS != 0, "uint8": np.arange(8, dtype=np.uint8).reshape(2, 4) * 37}.get(
        source, BITS
    )
    t = torch.tensor(data).to(getattr(torch, source))
    program = f"x.view(torch.{target})"
    try:
        theirs = t.view(getattr(torch, target))
    except RuntimeError as e:
        refuses(program, {"x": {"dtype": source, "data": t.tolist()}}, str(e))
        return
    ours = values(program, {"x": t.numpy()}, dtype=source if "float" in source else "float64")
    assert str(ours.dtype) == target and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours, theirs.numpy())


@pytest.mark.parametrize(
    "program",
    [
        "x * x.view(torch.int32)",
        "x.double().view(torch.int64) * x",
        "(x + 1).view(torch.float32) * x",  # the same dtype: still no gradient through it
        "x * x.view(torch.int8)[..., ::4]",
        "x * x.view(torch.uint8).view(torch.int32)",
    ],
)
def test_a_dtype_view_cuts_the_graph(torch, program):
    check(torch, program, {"x": BITS[0]}, dtype="float32")


@pytest.mark.parametrize(
    "program",
    [
        "s.view(torch.int8)",
        "s.view(torch.int64)",
        "A.T.view(torch.int8)",
        "A.view(torch.int64)",
        "A[:, :3].view(torch.int64)",
    ],
)
def test_dtype_view_errors(torch, program):
    inputs = {"s": np.asarray(2.0, np.float32), "A": np.ascontiguousarray(BITS[:, :3], np.float32)}
    used = {k: v for k, v in inputs.items() if f"{k}." in program or f"{k}[" in program}
    env = {k: torch.tensor(v) for k, v in used.items()}
    with pytest.raises((RuntimeError, TypeError)) as theirs:
        eval(program, {"torch": torch}, env)  # noqa: S307
    refuses(program, used, str(theirs.value))


def test_dtype_view_of_a_number_and_its_shape_arguments(torch):
    s = torch.tensor(2.0)
    ours = values("s.view(torch.int32)", {"s": 2.0}, dtype="float32")
    assert ours == s.view(torch.int32).item() and ours.shape == () and ours.dtype == np.int32
    refuses("x.view(torch.float16)", {"x": X}, "view(): torch.float16 is not supported")
    for bad in ("x.view(1.5)", "x.view(True)", "x.view('a')"):
        assert refuses(bad, {"x": X}, "view(): shape must be an integer").exit_code == 2


# ---- 3. quantile and nanquantile with a tensor q -------------------------------------------

QA = np.array([[3.0, 1, 4, 1.5], [9, 2, 6, 5], [5, 3, 5, 8]])
QN = np.array([[3.0, NAN, 4, 1.5], [NAN, NAN, NAN, NAN], [5, 3, 5, 8]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("q", [[0.2, 0.7], 0.3, [0.5, 0.5, 1.0, 0.0], [0.25]])
@pytest.mark.parametrize(
    "program",
    [
        "torch.quantile(A, q)",
        "torch.quantile(A, q, dim=1)",
        "A.quantile(q, dim=0, keepdim=True)",
        "torch.quantile(A, q, -1, True)",
        "torch.quantile(A, q, interpolation='midpoint')",
        "torch.quantile(A, q, 1, interpolation='lower')",
        "torch.quantile(A, q, 0, interpolation='higher')",
        "torch.quantile(A, q, interpolation='nearest')",
        "torch.nanquantile(A, q)",
        "torch.nanquantile(A, q, 1)",
        "N.nanquantile(q, dim=1)",
        "torch.quantile(N, q, dim=1)",
        "torch.nanquantile(N, q, 0, keepdim=True)",
        "torch.quantile(v, q)",
        "torch.quantile(s, q)",
    ],
)
def test_quantile_with_a_tensor_q(torch, program, q, dtype):
    inputs = {"A": QA, "N": QN, "v": QA[0], "s": np.asarray(2.0), "q": np.asarray(q)}
    used = {k: v for k, v in inputs.items() if k in program.replace("quantile", "")}
    check(torch, program, used, dtype=dtype)  # q requires grad: it gets one, as in PyTorch
    check(torch, program, used, dtype=dtype, wrt=[k for k in used if k != "q"])


def test_quantile_with_a_constant_tensor_q(torch):
    check(
        torch, "torch.quantile(A, torch.tensor([0.1, 0.9], dtype=torch.float64), dim=0)", {"A": QA}
    )
    check(torch, "A.nanquantile(torch.tensor(0.5, dtype=torch.float64))", {"A": QN})


@pytest.mark.parametrize(
    "program, expect",
    [
        ("torch.quantile(A, Q)", "quantile() q must be a scalar or 1D tensor"),
        ("torch.quantile(A, q.float())", "quantile() q tensor must be same dtype as the input"),
        ("torch.quantile(A, q * 2)", "quantile() q values must be in the range [0, 1]"),
        ("torch.nanquantile(A, q - 1)", "nanquantile() q values must be in the range [0, 1]"),
    ],
)
def test_quantile_q_errors(torch, program, expect):
    inputs = {"A": QA, "q": np.asarray([0.2, 0.7]), "Q": np.asarray([[0.2, 0.7]])}
    used = {k: v for k, v in inputs.items() if k in program.replace("quantile", "")}
    refuses(program, used, expect, dtype="float64")
    with pytest.raises((RuntimeError, TypeError)):
        run_torch(torch, program, used)


def test_a_list_q_is_read_as_a_tensor(torch):
    # (PyTorch's binding wants a float or a Tensor; gradcli reads the list as torch.tensor)
    ours = gradcli.evaluate(
        "torch.quantile(A, [0.5, 0.2], dim=1)", {"A": QA}, seed_vector=np.ones((2, 3))
    )
    theirs = torch.quantile(torch.tensor(QA, dtype=torch.float32), torch.tensor([0.5, 0.2]), dim=1)
    np.testing.assert_allclose(ours.value, theirs.numpy())
