"""torch.nn.functional's activations, normalisation, layers and losses against PyTorch 2.13 at
their edges (nan, ±inf, ties at kinks, empty batches), with weights and class indices the
table's examples cannot spell, and PyTorch's errors for bad shapes and arguments."""

import collections

import numpy as np
import pytest
from conftest import our_labels, pool_indices_match_pytorch, run_torch, torch_labels

import gradcli

EDGES = [-4.0, -3.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 3.0, 6.0, "nan", "inf", "-inf"]


def check(torch, program, inputs, *, wrt=None, dtype="float64", seed=None):
    ours = gradcli.evaluate(program, inputs, wrt=wrt, dtype=dtype, seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, wrt=wrt, dtype=dtype, seed=seed)
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-9, atol=1e-12)
    for name, g in grads.items():
        if g is None:
            assert ours.grad[name] is None, name
        else:
            np.testing.assert_allclose(ours.grad[name], g, rtol=1e-9, atol=1e-12, err_msg=name)
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)


@pytest.mark.parametrize(
    "program",
    [
        "F.celu(x).sum()",
        "F.selu(x).sum()",
        "F.mish(x).sum()",
        "F.hardswish(x).sum()",
        "F.hardsigmoid(x).sum()",
        "F.hardshrink(x, 0.5).sum()",
        "F.softshrink(x, 0.5).sum()",
        "F.tanhshrink(x).sum()",
        "F.softsign(x).sum()",
        "F.logsigmoid(x).sum()",
        "F.relu6(x).sum()",
        "F.rrelu(x).sum()",
        "F.threshold(x, 1.0, -2.0).sum()",
        "F.leaky_relu(x).sum()",
        "F.silu(x).sum()",
        "F.softplus(x).sum()",
        "F.elu(x).sum()",
        "F.hardtanh(x).sum()",
    ],
)
def test_activations_at_kinks_and_non_finite_values(torch, program):
    check(torch, program, {"x": EDGES})


@pytest.mark.parametrize(
    "program",
    ["F.celu(x).sum()", "F.hardswish(x).sum()", "F.mish(x).sum()", "F.logsigmoid(x).sum()"],
)
def test_activations_far_out(torch, program):
    check(torch, program, {"x": [-1000.0, -50.0, 50.0, 1000.0]})


def test_activations_are_reachable_in_every_spelling(torch):
    inputs = {"x": [-1.5, -0.2, 0.3, 2.0]}
    for name in ("leaky_relu", "elu", "gelu", "silu", "softplus", "hardtanh", "celu"):
        for spelled in (f"F.{name}", f"torch.nn.functional.{name}", f"nn.functional.{name}"):
            check(torch, f"{spelled}(x).sum()", inputs)
    check(torch, "torch.celu(x).sum() + torch.selu(x).sum() + x.hardshrink().sum()", inputs)


@pytest.mark.parametrize(
    "program,inputs",
    [
        ("F.prelu(A, w).sum()", {"A": [[-1.0, 0.0, 2.0], [3.0, -4.0, "nan"]], "w": [0.25]}),
        ("F.prelu(a, w).sum()", {"a": [-1.0, 0.0, "nan"], "w": [0.1]}),
        ("F.glu(a, 0).sum()", {"a": [1.0, "inf", -1000.0, 0.0]}),
        ("F.softmin(a, 0).sum() + F.softmin(a, 0)[0]", {"a": [1000.0, -1000.0, 0.0]}),
        ("F.normalize(A, dim=1).sum()", {"A": [[0.0, 0.0], [3.0, 4.0]]}),
        (
            "F.cosine_similarity(A, B).sum()",
            {"A": [[0.0, 0.0], [1.0, 2.0]], "B": [[1.0, 1.0], [2.0, 4.0]]},
        ),
        ("F.pdist(A).sum()", {"A": [[1.0, 2.0], [1.0, 2.0], [0.0, -1.0]]}),
        (
            "F.scaled_dot_product_attention(q, k, v, attn_mask=m).sum()",
            {
                "q": [[1.0, 2.0], [3.0, 4.0]],
                "k": [[1.0, 0.0], [0.0, 1.0]],
                "v": [[1.0, 2.0], [3.0, 4.0]],
                "m": [[0.0, "-inf"], ["-inf", "-inf"]],
            },
        ),
        (
            "F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=-0.5).sum()",
            {
                "q": [[1.0, 2.0], [3.0, 4.0]],
                "k": [[1.0, 0.0], [0.0, 1.0]],
                "v": [[1.0, 2.0], [3.0, 4.0]],
            },
        ),
        ("F.pdist(A, p=inf).sum()", {"A": [[1.0, 2.0], [2.0, 3.0], [0.0, -1.0]]}),
        (
            "F.pairwise_distance(A, B).sum()",
            {"A": [[1.0, 2.0], [0.0, 0.0]], "B": [[1.0, 2.0], [3.0, 4.0]]},
        ),
        (
            "F.layer_norm(A, (2,)).sum() + F.layer_norm(A, (2,))[0, 0]",
            {"A": [[1.0, 1.0], [3.0, 4.0]]},
        ),
    ],
)
def test_edges(torch, program, inputs):
    check(torch, program, inputs)


# -- losses with class weights, ignore_index and K dimensions -----------------------------


def _torch_loss(torch, fn, x, target, wrt_target=False, **kw):
    xt = torch.tensor(np.asarray(x, dtype="float64"), requires_grad=True)
    out = fn(xt, target, **kw)
    out.backward(torch.ones_like(out))
    return out, xt.grad.numpy()


@pytest.mark.parametrize(
    "args,kw",
    [
        ("weight=w", {"weight": [0.2, 1.0, 3.0]}),
        ("ignore_index=2", {"ignore_index": 2}),
        (
            "weight=w, ignore_index=0, reduction='sum'",
            {"weight": [0.2, 1.0, 3.0], "ignore_index": 0},
        ),
        ("weight=w, reduction='none'", {"weight": [0.2, 1.0, 3.0]}),
    ],
)
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_class_weights_and_ignore_index(torch, fn, args, kw):
    x = np.random.default_rng(0).standard_normal((4, 3))
    t = [0.0, 2.0, 1.0, 2.0]
    program = f"F.{fn}(x, t, {args}).sum()"
    ours = gradcli.evaluate(
        program, {"x": x, "t": t, "w": kw.get("weight", [1.0])}, wrt=["x"], dtype="float64"
    )
    reduction = "sum" if "'sum'" in args else "none" if "'none'" in args else "mean"
    torch_kw = {k: v for k, v in kw.items() if k != "weight"}
    if "weight" in kw:
        torch_kw["weight"] = torch.tensor(kw["weight"], dtype=torch.float64)
    out, grad = _torch_loss(
        torch,
        lambda a, tt, **k: getattr(torch.nn.functional, fn)(a, tt, **k).sum(),
        x,
        torch.tensor(t).long(),
        reduction=reduction,
        **torch_kw,
    )
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad["x"], grad, rtol=1e-12, atol=1e-15)
    assert our_labels(ours) == torch_labels(out)


def test_cross_entropy_of_k_dimensional_inputs(torch):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    t = np.array([[0, 1, 2, 1], [2, 2, 0, 1]], dtype=float)
    for reduction in ("mean", "sum"):
        ours = gradcli.evaluate(
            f"F.cross_entropy(x, t, reduction='{reduction}')",
            {"x": x, "t": t},
            wrt=["x"],
            dtype="float64",
        )
        out, grad = _torch_loss(
            torch,
            torch.nn.functional.cross_entropy,
            x,
            torch.tensor(t).long(),
            reduction=reduction,
        )
        np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.grad["x"], grad, rtol=1e-12, atol=1e-15)
        assert our_labels(ours) == torch_labels(out)


def test_every_target_ignored_is_nan_as_in_pytorch():
    r = gradcli.evaluate(
        "F.nll_loss(x, t, ignore_index=1)",
        {"x": [[0.1, 0.2]], "t": [1.0]},
        wrt=["x"],
        dtype="float64",
    )
    assert np.isnan(r.value)


def test_logit_weights(torch):
    rng = np.random.default_rng(2)
    z, t = rng.standard_normal((2, 3)), rng.uniform(0, 1, (2, 3))
    w, pw = rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 3)
    F = torch.nn.functional
    for args, kw in [
        ("weight=w", {"weight": w}),
        ("pos_weight=p", {"pos_weight": pw}),
        ("weight=w, pos_weight=p, reduction='sum'", {"weight": w, "pos_weight": pw}),
    ]:
        ours = gradcli.evaluate(
            f"F.binary_cross_entropy_with_logits(z, t, {args})",
            {"z": z, "t": t, "w": w, "p": pw},
            wrt=["z", "t"],
            dtype="float64",
        )
        zt = torch.tensor(z, requires_grad=True)
        tt = torch.tensor(t, requires_grad=True)
        out = F.binary_cross_entropy_with_logits(
            zt,
            tt,
            reduction="sum" if "sum" in args else "mean",
            **{k: torch.tensor(v) for k, v in kw.items()},
        )
        out.backward()
        np.testing.assert_allclose(ours.value, out.item(), rtol=1e-12)
        np.testing.assert_allclose(ours.grad["z"], zt.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.grad["t"], tt.grad.numpy(), rtol=1e-10)
    p = rng.uniform(0.1, 0.9, (2, 3))
    ours = gradcli.evaluate(
        "F.binary_cross_entropy(p, t, weight=w)",
        {"p": p, "t": t, "w": w},
        wrt=["p", "t"],
        dtype="float64",
    )
    pt, tt = torch.tensor(p, requires_grad=True), torch.tensor(t, requires_grad=True)
    out = F.binary_cross_entropy(pt, tt, weight=torch.tensor(w))
    out.backward()
    np.testing.assert_allclose(ours.value, out.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad["p"], pt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.grad["t"], tt.grad.numpy(), rtol=1e-10)


def test_batch_norm_in_evaluation_mode(torch):
    rng = np.random.default_rng(3)
    inputs = {
        "x": rng.standard_normal((4, 3, 2)),
        "m": rng.standard_normal(3),
        "v": rng.uniform(0.5, 2, 3),
        "w": rng.standard_normal(3),
        "b": rng.standard_normal(3),
    }
    check(torch, "F.batch_norm(x, m, v, w, b, eps=0.01).sum()", inputs, wrt=["x", "w", "b"])
    check(torch, "F.batch_norm(x, m, v).sum()", inputs, wrt=["x"])


def test_losses_at_the_edges(torch):
    a = [0.0, 1.0, -1.0, 2.0, "nan", "inf"]
    b = [0.0, 0.0, 0.5, -2.0, 1.0, 1.0]
    check(torch, "F.smooth_l1_loss(a, b)", {"a": a[:4], "b": b[:4]})  # |d| = beta: a tie
    check(torch, "F.huber_loss(a, b, reduction='sum')", {"a": a[:4], "b": b[:4]})
    check(torch, "F.smooth_l1_loss(a, b, beta=0.0)", {"a": [0.5, 1.0], "b": [0.0, 2.0]})
    check(torch, "F.kl_div(a, b, reduction='sum')", {"a": [0.1, -0.2], "b": [0.0, 0.5]})
    check(torch, "F.hinge_embedding_loss(a, (b > 0) * 2.0 - 1)", {"a": a, "b": b})


# -- errors: PyTorch's, for bad shapes and arguments ---------------------------------------

ERRORS = [
    ("F.glu(a)", {"a": [1.0, 2.0, 3.0]}, "Halving dimension must be even"),
    ("F.pdist(a)", {"a": [1.0, 2.0, 3.0]}, "pdist only supports 2D tensors, got: 1D"),
    (
        "F.bilinear(a, b, W)",
        {"a": [[1.0, 2.0]], "b": [1.0], "W": [[[1.0]]]},
        "bilinear(): input dimensions do not match: got 2 and 1",
    ),
    (
        "F.bilinear(a, b, W)",
        {"a": [[1.0, 2.0]], "b": [[1.0]], "W": [[[1.0]]]},
        "input1 size does not match weight size: got 2 but expected 1",
    ),
    ("F.prelu(A, w)", {"A": [[1.0, 2.0]], "w": [1.0, 2.0, 3.0]}, "Mismatch of parameter numbers"),
    ("F.prelu(a, w)", {"a": [1.0, 2.0, 3.0], "w": [1.0, 2.0, 3.0]}, "and channel size = 1."),
    ("F.rrelu(a, training=True)", {"a": [1.0]}, "rrelu(training=True)"),
    ("F.softshrink(a, -1.0)", {"a": [1.0]}, "lambda must be greater or equal to 0"),
    (
        "F.layer_norm(A, (4,))",
        {"A": [[1.0, 2.0, 3.0]]},
        "Given normalized_shape=[4], expected input with shape [*, 4]",
    ),
    (
        "F.layer_norm(A, (3,), w)",
        {"A": [[1.0, 2.0, 3.0]], "w": [1.0, 2.0]},
        "Expected weight to be of same shape as normalized_shape",
    ),
    ("F.layer_norm(A, 3)", {"A": [[1.0, 2.0, 3.0]]}, "must be tuple of ints, not int"),
    (
        "F.linear(A, W)",
        {"A": [[1.0, 2.0, 3.0]], "W": [[1.0, 2.0]]},
        "mat1 and mat2 shapes cannot be multiplied (1x3 and 2x1)",
    ),
    (
        "F.group_norm(A, 3)",
        {"A": [[1.0, 2.0, 3.0, 4.0]]},
        "Expected number of channels in input to be divisible by num_groups",
    ),
    ("F.batch_norm(A, None, None)", {"A": [[1.0, 2.0]]}, "running_mean must be defined"),
    (
        "F.batch_norm(A, None, None, training=True)",
        {"A": [[1.0, 2.0]]},
        "Expected more than 1 value per channel when training",
    ),
    ("F.mse_loss(a, b, reduction='batchmean')", {"a": [1.0], "b": [1.0]}, "not a valid value"),
    ("F.smooth_l1_loss(a, b, beta=-1.0)", {"a": [1.0], "b": [1.0]}, "negative values for beta"),
    ("F.huber_loss(a, b, delta=0.0)", {"a": [1.0], "b": [1.0]}, "non-positive values for delta"),
    (
        "F.nll_loss(A, t)",
        {"A": [[1.0, 2.0]], "t": [0.0, 1.0]},
        "Expected input batch_size (1) to match target batch_size (2).",
    ),
    ("F.nll_loss(A, t)", {"A": [[1.0, 2.0]], "t": [5.0]}, "Target 5 is out of bounds."),
    (
        "F.cross_entropy(A, t, weight=w)",
        {"A": [[1.0, 2.0]], "t": [0.0], "w": [1.0]},
        "weight tensor should be defined either for all 2 classes",
    ),
    (
        "F.margin_ranking_loss(a, b, c)",
        {"a": [[1.0]], "b": [1.0], "c": [1.0]},
        "All input tensors should have same dimension",
    ),
]


@pytest.mark.parametrize("program,inputs,message", ERRORS)
def test_pytorch_errors(program, inputs, message):
    with pytest.raises(gradcli.GradcliError) as e:
        gradcli.evaluate(program, inputs, wrt=[n for n in inputs if n != "w"])
    assert message in e.value.message


@pytest.mark.parametrize(
    "program,inputs,what",
    [
        (
            "F.cross_entropy(A, t, weight=w)",
            {"A": [[1.0, 2.0]], "t": [0.0], "w": [1.0, 2.0]},
            "weight",
        ),
        ("F.binary_cross_entropy(p, t, weight=w)", {"p": [0.5], "t": [0.5], "w": [1.0]}, "weight"),
        ("F.soft_margin_loss(a, t)", {"a": [0.5], "t": [1.0]}, "target"),
        (
            "F.batch_norm(A, m, v).sum()",
            {"A": [[1.0], [2.0]], "m": [0.0], "v": [1.0]},
            "running_mean",
        ),
    ],
)
def test_weights_that_require_grad_are_refused_as_in_pytorch(torch, program, inputs, what):
    with pytest.raises(gradcli.EvaluationError, match="is not differentiable with respect to"):
        gradcli.evaluate(program, inputs)
    with pytest.raises(RuntimeError, match=f"argument '{what}'"):
        run_torch(torch, program, inputs)  # float targets: PyTorch refuses the weight first
    r = gradcli.evaluate(
        program, inputs, wrt=[n for n in inputs if n not in (what[0], "w", "t", "m", "v")]
    )
    assert r.grad_fn


def test_empty_batch(torch):
    check(
        torch,
        "F.layer_norm(A, (3,)).sum() + F.linear(A, W).sum()",
        {"A": np.zeros((0, 3)), "W": np.ones((2, 3))},
    )
    r = gradcli.evaluate("F.smooth_l1_loss(a, b)", {"a": np.zeros(0), "b": np.zeros(0)})
    assert np.isnan(r.value)


def test_labels_are_pytorchs():
    """The label multiset of a few decompositions, as PyTorch 2.13 records them on CPU."""
    r = gradcli.evaluate(
        "F.linear(A, W, b)",
        {"A": np.ones((2, 4, 3)), "W": np.ones((2, 3)), "b": np.ones(2)},
        seed_vector=np.ones((2, 4, 2)),
    )
    assert our_labels(r) == collections.Counter(
        {"AccumulateGrad": 3, "ViewBackward0": 2, "AddmmBackward0": 1, "TBackward0": 1}
    )


def test_where_pytorch_has_no_second_derivative_finite_differences_decide():
    """PyTorch cannot take a second derivative of hardsigmoid, and its double backward of
    layer_norm with a bias but no weight fails: jvp, Jacobians and Hessians are checked
    against finite differences here instead."""
    from gradcli import derivatives as D

    rng = np.random.default_rng(5)
    cases = [
        ("F.hardsigmoid(a * 3).sum()", {"a": rng.standard_normal((2, 3))}),
        ("F.pdist(A).sin().sum()", {"A": rng.standard_normal((4, 3))}),
        ("F.pdist(A, p=1.0).sin().sum()", {"A": rng.standard_normal((3, 2))}),
        ("F.pdist(A, 3.0).sin().sum()", {"A": rng.standard_normal((3, 2))}),
        (
            "F.layer_norm(A, (3,), bias=b).sin().sum()",
            {"A": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)},
        ),
    ]
    for program, inputs in cases:
        assert D.check(program, inputs)["ok"], program
    h = D.hessian(cases[0][0], cases[0][1], dtype="float64")["hessian"]["a"]["a"]
    np.testing.assert_array_equal(h, np.zeros((2, 3, 2, 3)))
    program, inputs = cases[-1]
    h = D.hessian(program, inputs, dtype="float64")["hessian"]
    step = 1e-6
    for name in inputs:  # each Hessian row: the gradient's central difference
        for idx in np.ndindex(inputs[name].shape):
            up, down = dict(inputs), dict(inputs)
            up[name], down[name] = inputs[name].copy(), inputs[name].copy()
            up[name][idx] += step
            down[name][idx] -= step
            gu = gradcli.evaluate(program, up, dtype="float64").grad
            gd = gradcli.evaluate(program, down, dtype="float64").grad
            for other in inputs:
                np.testing.assert_allclose(
                    h[other][name][(Ellipsis, *idx)],
                    (gu[other] - gd[other]) / (2 * step),
                    rtol=1e-5,
                    atol=1e-6,
                )


def test_layer_norm_with_a_bias_alone(torch):
    rng = np.random.default_rng(6)
    check(
        torch,
        "F.layer_norm(A, (3,), bias=b).sin().sum()",
        {"A": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)},
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "program,shape",
    [("F.pdist(A)", (4, 3)), ("F.pdist(A, p=1.0)", (3, 2)), ("F.pdist(A, 3.0)", (3, 2))],
)
def test_pdist(torch, program, shape, dtype):
    A = np.random.default_rng(7).standard_normal(shape)
    n = shape[0] * (shape[0] - 1) // 2
    seed = np.random.default_rng(8).standard_normal(n)
    ours = gradcli.evaluate(program, {"A": A}, dtype=dtype, seed_vector=seed)
    out, grads = run_torch(torch, program, {"A": A}, dtype=dtype, seed=seed)
    rtol = 1e-9 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.grad["A"], grads["A"], rtol=rtol, atol=rtol)
    assert our_labels(ours) == torch_labels(out)


@pytest.mark.parametrize(
    "args,kw",
    [
        ("label_smoothing=0.2", {}),
        ("label_smoothing=0.1, ignore_index=2, reduction='sum'", {"ignore_index": 2}),
        ("label_smoothing=0.3, weight=w", {"weight": [0.2, 1.0, 3.0]}),
        (
            "label_smoothing=0.3, weight=w, ignore_index=0",
            {"weight": [0.2, 1.0, 3.0], "ignore_index": 0},
        ),
        ("label_smoothing=0.3, weight=w, reduction='none'", {"weight": [0.2, 1.0, 3.0]}),
    ],
)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2)])
def test_label_smoothing(torch, args, kw, shape):
    x = np.random.default_rng(9).standard_normal(shape)
    t = np.array([0.0, 2.0, 1.0, 2.0]).reshape((shape[0],) + shape[2:])
    ours = gradcli.evaluate(
        f"F.cross_entropy(x, t, {args}).sum()",
        {"x": x, "t": t, "w": kw.get("weight", [1.0])},
        wrt=["x"],
        dtype="float64",
    )
    reduction = "sum" if "'sum'" in args else "none" if "'none'" in args else "mean"
    smoothing = float(args.split("label_smoothing=")[1].split(",")[0])
    torch_kw = {k: v for k, v in kw.items() if k != "weight"}
    if "weight" in kw:
        torch_kw["weight"] = torch.tensor(kw["weight"], dtype=torch.float64)
    out, grad = _torch_loss(
        torch,
        lambda a, tt, **k: torch.nn.functional.cross_entropy(a, tt, **k).sum(),
        x,
        torch.tensor(t).long(),
        reduction=reduction,
        label_smoothing=smoothing,
        **torch_kw,
    )
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad["x"], grad, rtol=1e-12, atol=1e-15)
    assert our_labels(ours) == torch_labels(out)


# -- margin losses over class indices -------------------------------------------------------

NAN, INF = float("nan"), float("inf")
MARGIN = [
    ("F.multi_margin_loss(x, t)", (3, 4), [0, 3, 1], {}),
    ("F.multi_margin_loss(x, t, p=2, margin=0.7, reduction='sum')", (3, 4), [2, 2, 0], {}),
    ("F.multi_margin_loss(x, t, weight=w, reduction='none')", (3, 4), [1, 0, 3], {"w": 4}),
    ("F.multi_margin_loss(x, t, 2, 1.5, w)", (2, 3), [2, 0], {"w": 3}),
    ("F.multi_margin_loss(x, t, reduction='none')", (4,), 2, {}),
    ("F.multi_margin_loss(x, t, reduction='none')", (4,), [2], {}),
    ("F.multilabel_margin_loss(x, t)", (3, 4), [[3, 0, -1, 1], [1, 2, 3, -1], [-1, 0, 0, 0]], {}),
    ("F.multilabel_margin_loss(x, t, reduction='none')", (2, 3), [[1, 1, -1], [0, 1, 2]], {}),
    ("F.multilabel_margin_loss(x, t, reduction='sum')", (4,), [2, -1, 0, 0], {}),
]


def _margin_case(torch, program, shape, target, extra, dtype, x=None):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape) if x is None else np.asarray(x, dtype=float)
    t = np.asarray(target, dtype=np.int64)
    inputs = {"x": x, "t": t, **{k: rng.uniform(0.5, 2.0, n) for k, n in extra.items()}}
    ours = gradcli.evaluate(f"({program}).sum()", inputs, wrt=["x"], dtype=dtype)
    tdtype = getattr(torch, dtype)
    xt = torch.tensor(x, dtype=tdtype, requires_grad=True)
    ns = {"F": torch.nn.functional, "x": xt, "t": torch.tensor(t)}
    ns.update({k: torch.tensor(inputs[k], dtype=tdtype) for k in extra})
    out = eval(f"({program}).sum()", ns)
    out.backward()
    rtol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(ours.value, out.item(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.grad["x"], xt.grad.numpy(), rtol=rtol, atol=rtol)
    assert our_labels(ours) == torch_labels(out)
    assert ours.grad["t"] is None if "t" in ours.grad else True
    return ours


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,shape,target,extra", MARGIN)
def test_margin_losses_against_pytorch(torch, program, shape, target, extra, dtype):
    _margin_case(torch, program, shape, target, extra, dtype)


@pytest.mark.parametrize("program,shape,target,extra", MARGIN)
def test_margin_losses_take_float_class_indices_too(program, shape, target, extra):
    """Today's convention for class indices (cross_entropy's): a float tensor of whole
    numbers is the same target as an int64 one."""
    rng = np.random.default_rng(12)
    inputs = {"x": rng.standard_normal(shape), **{k: np.ones(n) for k, n in extra.items()}}
    wrt = ["x", "t"]  # a float target may require grad: none flows to it
    a = gradcli.evaluate(
        f"({program}).sum()",
        {**inputs, "t": np.asarray(target, np.int64)},
        dtype="float64",
        wrt=["x"],
    )
    b = gradcli.evaluate(
        f"({program}).sum()", {**inputs, "t": np.asarray(target, float)}, dtype="float64", wrt=wrt
    )
    assert a.value == b.value and b.grad["t"] is None
    np.testing.assert_array_equal(a.grad["x"], b.grad["x"])


@pytest.mark.parametrize(
    "program,x,target",
    [
        # ties at the hinge (z = 0 exactly: no gradient), NaN and ±inf scores
        ("F.multi_margin_loss(x, t)", [[0.0, 1.0, 0.0, 2.0]], [1]),
        ("F.multi_margin_loss(x, t, p=2)", [[0.0, NAN, 1.0, INF]], [2]),
        ("F.multi_margin_loss(x, t)", [[-INF, 0.5, 1.0]], [0]),
        ("F.multilabel_margin_loss(x, t)", [[0.0, 1.0, 0.0, 2.0]], [[1, -1, 0, 0]]),
        ("F.multilabel_margin_loss(x, t)", [[0.0, NAN, 1.0, -INF]], [[2, 0, -1, 0]]),
        ("F.multilabel_margin_loss(x, t)", [[0.0, 1.0, -0.0]], [[-1, 1, 1]]),  # no targets
        ("F.multi_margin_loss(x, t)", 2.0, 0),  # a number is one sample of one class
    ],
)
def test_margin_losses_at_the_edges(torch, program, x, target):
    _margin_case(torch, program, np.shape(x), target, {}, "float64", x=x)


def test_margin_losses_of_an_empty_batch_are_zero():
    for program, t in (
        ("F.multi_margin_loss(x, t)", np.zeros(0)),
        ("F.multilabel_margin_loss(x, t)", np.zeros((0, 3))),
    ):
        r = gradcli.evaluate(program, {"x": np.zeros((0, 3)), "t": t}, wrt=["x"])
        assert r.value == 0 and r.grad["x"].shape == (0, 3)


def test_margin_losses_have_jvp_and_hessian():
    from gradcli import derivatives as D

    x = np.random.default_rng(13).standard_normal((3, 4))
    for program, t in (
        ("F.multi_margin_loss(x * x, t, p=2)", np.array([0.0, 3.0, 1.0])),
        ("F.multilabel_margin_loss(x.sin(), t)", np.array([[3, 0, -1, 1]] * 3, dtype=float)),
    ):
        assert D.check(program, {"x": x, "t": t}, wrt=["x"])["ok"], program


MARGIN_ERRORS = [
    ("F.multi_margin_loss(x, t, p=3)", (3, 4), [0, 1, 2], "only p == 1 and p == 2 supported"),
    ("F.multi_margin_loss(x, t)", (3, 4), [0, 1], "Expected target size [3], but got [2]"),
    ("F.multi_margin_loss(x, t)", (3, 4), [0, 1, 4], "target out of range"),
    ("F.multi_margin_loss(x, t)", (3, 4), [0, 1, -1], "target out of range"),
    ("F.multi_margin_loss(x, t)", (2, 3, 4), [0, 1], "Expected non-empty vector or matrix"),
    ("F.multi_margin_loss(x, t)", (2, 0), [0, 0], "Expected non-empty vector or matrix"),
    ("F.multilabel_margin_loss(x, t)", (3, 4), [[0, 1, 2, 3]] * 2, "inconsistent target size"),
    ("F.multilabel_margin_loss(x, t)", (3, 4), [[0, 1, 2, 4]] * 3, "'target' is out of range"),
    ("F.multilabel_margin_loss(x, t)", (3, 4), [[0, 1, 2, -2]] * 3, "'target' is out of range"),
]


@pytest.mark.parametrize("program,shape,target,message", MARGIN_ERRORS)
def test_margin_loss_errors_are_pytorchs(torch, program, shape, target, message):
    x, t = np.ones(shape), np.asarray(target, dtype=np.int64)
    with pytest.raises((RuntimeError, ValueError)) as theirs:
        eval(program, {"F": torch.nn.functional, "x": torch.tensor(x), "t": torch.tensor(t)})
    assert message in str(theirs.value)
    with pytest.raises(gradcli.GradcliError) as ours:
        gradcli.evaluate(program, {"x": x, "t": t}, wrt=["x"])
    assert message in ours.value.message


def test_margin_loss_weights_are_refused_as_in_pytorch():
    with pytest.raises(gradcli.EvaluationError, match="with respect to argument 'weight'"):
        gradcli.evaluate(
            "F.multi_margin_loss(x, t, weight=w)",
            {"x": np.ones((2, 3)), "t": np.zeros(2), "w": np.ones(3)},
        )
    with pytest.raises(gradcli.EvaluationError, match="weight must be one-dimensional"):
        gradcli.evaluate(
            "F.multi_margin_loss(x, t, weight=w)",
            {"x": np.ones((2, 3)), "t": np.zeros(2), "w": np.ones((3, 1))},
            wrt=["x"],
        )


def test_triplet_margin_with_distance_loss_errors_are_pytorchs():
    a = np.ones((3, 4))
    for program, message in (
        ("F.triplet_margin_with_distance_loss(a, a, b)", "anchor 2D, positive 2D, and negative 1D"),
        ("F.triplet_margin_with_distance_loss(a, a, a, margin=0.0)", "margin must be greater"),
        ("F.triplet_margin_with_distance_loss(a, a, a, reduction='x')", "reduction must be one of"),
    ):
        with pytest.raises(gradcli.GradcliError) as e:
            gradcli.evaluate(program, {"a": a, "b": a[0]})
        assert message in e.value.message


# -- scaled_dot_product_attention: batches, boolean masks, grouped-query attention ----------

SDPA = [
    ("F.scaled_dot_product_attention(q, k, v)", (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 2), None),
    (
        "F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)",
        (2, 3, 4),
        (2, 5, 4),
        (2, 5, 2),
        None,
    ),
    (
        "F.scaled_dot_product_attention(q, k, v, m)",
        (2, 2, 3, 4),
        (2, 2, 5, 4),
        (2, 2, 5, 2),
        (3, 5),
    ),
    # boolean masks, broadcast over the heads; a row masked everywhere gives zeros
    (
        "F.scaled_dot_product_attention(q, k, v, attn_mask=m > 0)",
        (2, 2, 3, 4),
        (2, 2, 5, 4),
        (2, 2, 5, 2),
        (2, 1, 3, 5),
    ),
    (
        "F.scaled_dot_product_attention(q, k, v, attn_mask=(m > 0) & (m < 9))",
        (3, 4),
        (5, 4),
        (5, 2),
        [[1, -1, 1, 1, 1], [-1, -1, -1, -1, -1], [1, 1, 1, 1, -1]],
    ),
    # grouped-query attention: key and value heads repeated to the query's
    (
        "F.scaled_dot_product_attention(q, k, v, enable_gqa=True)",
        (1, 4, 3, 4),
        (1, 2, 5, 4),
        (1, 2, 5, 2),
        None,
    ),
    (
        "F.scaled_dot_product_attention(q, k, v, enable_gqa=True)",
        (1, 4, 3, 4),
        (1, 2, 5, 4),
        (1, 1, 5, 2),
        None,
    ),
    (
        "F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True, scale=-0.2)",
        (4, 3, 4),
        (2, 5, 4),
        (2, 5, 2),
        None,
    ),
    (
        "F.scaled_dot_product_attention(q, k, v, enable_gqa=True)",
        (2, 4, 3, 4),
        (2, 4, 5, 4),
        (2, 4, 5, 2),
        None,
    ),
    ("F.scaled_dot_product_attention(q, k, v)", (2, 1, 3, 4), (1, 3, 5, 4), (1, 3, 5, 2), None),
    # PyTorch's CPU flash kernel: 4-D, equal batch, heads and head size, a constant mask of
    # shape (L, S) or (1|B, 1|H, L, S): one ScaledDotProductFlashAttentionForCpuBackward0
    ("F.scaled_dot_product_attention(q, k, v)", (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), None),
    (
        "F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=-0.3)",
        (1, 2, 4, 3),
        (1, 2, 4, 3),
        (1, 2, 4, 3),
        None,
    ),
    (
        "F.scaled_dot_product_attention(q, k, v, attn_mask=m > 0, enable_gqa=True)",
        (2, 2, 3, 4),
        (2, 2, 5, 4),
        (2, 2, 5, 4),
        (2, 1, 3, 5),
    ),
    (
        "F.scaled_dot_product_attention(q, k, v, m)",
        (1, 2, 3, 4),
        (1, 2, 5, 4),
        (1, 2, 5, 4),
        (3, 5),
    ),
    (  # a mask of 3 dimensions, or a batch that only broadcasts: the math kernel
        "F.scaled_dot_product_attention(q, k, v, attn_mask=m > 0)",
        (1, 2, 3, 4),
        (1, 2, 5, 4),
        (1, 2, 5, 4),
        (1, 3, 5),
    ),
    ("F.scaled_dot_product_attention(q, k, v)", (2, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4), None),
    (
        "F.scaled_dot_product_attention(q.transpose(2, 3), k.transpose(2, 3), v)",
        (1, 2, 4, 3),
        (1, 2, 4, 3),
        (1, 2, 3, 4),
        None,
    ),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program,sq,sk,sv,mask", SDPA)
def test_attention_against_pytorch(torch, program, sq, sk, sv, mask, dtype):
    rng = np.random.default_rng(14)
    inputs = {"q": rng.standard_normal(sq), "k": rng.standard_normal(sk)}
    inputs["v"] = rng.standard_normal(sv)
    if mask is not None:
        inputs["m"] = (
            np.asarray(mask, float) if isinstance(mask, list) else rng.standard_normal(mask)
        )
    wrt = ["q", "k", "v"]
    with np.errstate(all="ignore"):  # (the shape probe runs the engine bare)
        shape = _shape_of(program, inputs)
    seed = np.random.default_rng(15).standard_normal(shape)
    ours = gradcli.evaluate(program, inputs, wrt=wrt, dtype=dtype, seed_vector=seed)
    out, grads = run_torch(torch, program, inputs, wrt=wrt, dtype=dtype, seed=seed)
    rtol = 1e-10 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, out.detach().numpy(), rtol=rtol, atol=rtol)
    for name in wrt:
        np.testing.assert_allclose(ours.grad[name], grads[name], rtol=rtol, atol=rtol)
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)


def _shape_of(program, inputs):
    from gradcli import engine
    from gradcli.parser import parse

    arrays = {k: np.asarray(v, dtype="float64") for k, v in inputs.items()}
    nodes, out = engine.forward(parse(program), arrays, set(), "float64")
    return nodes[out].shape


def test_attention_forward_mode_and_hessian():
    from gradcli import derivatives as D

    rng = np.random.default_rng(16)
    inputs = {"q": rng.standard_normal((1, 4, 3, 2)), "k": rng.standard_normal((1, 2, 3, 2))}
    inputs["v"] = rng.standard_normal((1, 2, 3, 2))
    program = "F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).sum()"
    assert D.check(program, inputs)["ok"]


@pytest.mark.parametrize(
    "program,shapes,message",
    [
        (
            "F.scaled_dot_product_attention(q, k, v, enable_gqa=True)",
            ((1, 4, 3, 4), (1, 3, 5, 4), (1, 3, 5, 2)),
            "Number of heads in key and value must divide the number of heads in",
        ),
        (
            "F.scaled_dot_product_attention(q, k, v, enable_gqa=True)",
            ((3, 4), (5, 4), (5, 2)),
            "Dimension out of range (expected to be in range of [-2, 1], but got -3)",
        ),
        (
            "F.scaled_dot_product_attention(q, k, v)",
            ((4,), (5, 4), (5, 2)),
            "Expected query, key, and value to all be  at least 2 dimensional",
        ),
        (
            "F.scaled_dot_product_attention(q, k, v)",
            ((3, 4), (5, 3), (5, 2)),
            "mat1 and mat2 shapes cannot be multiplied",
        ),
    ],
)
def test_attention_errors_are_pytorchs(torch, program, shapes, message):
    inputs = {n: np.ones(s) for n, s in zip("qkv", shapes, strict=True)}
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        run_torch(torch, program, inputs)
    assert message in str(theirs.value)
    with pytest.raises(gradcli.GradcliError) as ours:
        gradcli.evaluate(program, inputs)
    assert message in ours.value.message


# ---- embedding ----------------------------------------------------------------------------


def _typed(arrays):
    """Integer and bool arrays as typed inputs (plain arrays are taken in the run's dtype)."""
    return {
        k: {"dtype": str(v.dtype), "data": v.tolist()} if v.dtype.kind in "biu" else v
        for k, v in arrays.items()
    }


def _torch_eval(torch, program, arrays, wrt):
    env = {"F": torch.nn.functional, "torch": torch}
    for k, v in arrays.items():
        env[k] = torch.tensor(v, requires_grad=k in wrt)
    out = eval(program, env)
    out.backward()
    return out, {k: env[k].grad for k in wrt}


def _embedding_inputs(dtype, index_shape=(2, 3), rows=5, dim=4, index_dtype=np.int64):
    rng = np.random.default_rng(7)
    i = rng.integers(0, rows, size=index_shape).astype(index_dtype)
    w = rng.normal(size=(rows, dim)).astype(dtype)
    c = rng.normal(size=index_shape + (dim,)).astype(dtype)
    return {"i": i, "w": w, "c": c}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "call,index_shape",
    [
        ("F.embedding(i, w)", (2, 3)),
        ("F.embedding(i, w)", ()),
        ("F.embedding(i, w)", (7,)),
        ("F.embedding(i, w)", (3, 0)),
        ("F.embedding(i, w, padding_idx=2)", (3, 4)),
        ("F.embedding(i, w, padding_idx=-1)", (3, 4)),
        ("F.embedding(i, w, 0, None, 2.0, True)", (4, 3)),
        ("F.embedding(i, w, padding_idx=-5, scale_grad_by_freq=True)", (6,)),
        ("F.embedding(input=i, weight=w, sparse=True)", (2, 3)),
        ("torch.nn.functional.embedding(i, w, max_norm=None)", (2, 2, 2)),
    ],
)
def test_embedding_matches_pytorch(torch, call, index_shape, dtype):
    arrays = _embedding_inputs(dtype, index_shape)
    program = f"({call} * c).sum()"
    ours = gradcli.evaluate(program, _typed(arrays), wrt=["w"], dtype=dtype)
    out, grads = _torch_eval(torch, program, arrays, ["w"])
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(ours.value, out.detach().numpy(), **tol)
    g = grads["w"].to_dense().numpy()
    assert ours.grad["w"].dtype == g.dtype
    np.testing.assert_allclose(ours.grad["w"], g, **tol)
    assert our_labels(ours) == torch_labels(out)


def test_embedding_rows_keep_int32_indices_and_the_weight_dtype(torch):
    arrays = _embedding_inputs("float64", (3,), index_dtype=np.int32)
    ours = gradcli.evaluate("F.embedding(i, w).sum()", _typed(arrays), wrt=["w"], dtype="float64")
    theirs = torch.nn.functional.embedding(torch.tensor(arrays["i"]), torch.tensor(arrays["w"]))
    np.testing.assert_allclose(ours.value, theirs.sum().numpy(), rtol=1e-12)
    assert ours.value.dtype == np.float64


def test_embedding_padding_row_gets_no_gradient_and_nan_passes(torch):
    w = np.array([[1.0, np.nan], [np.inf, -0.0], [3.0, 4.0]])
    i = np.array([[0, 1], [1, 2]])
    program = "(F.embedding(i, w, padding_idx=1) * 2).sum()"
    ours = gradcli.evaluate(program, _typed({"i": i, "w": w}), wrt=["w"])
    out, grads = _torch_eval(torch, program, {"i": i, "w": w}, ["w"])
    np.testing.assert_array_equal(ours.value, out.detach().numpy())
    np.testing.assert_array_equal(ours.grad["w"], grads["w"].numpy())
    assert not ours.grad["w"][1].any()


def test_embedding_forward_mode_and_finite_differences():
    from gradcli import derivatives as D

    raw = _embedding_inputs("float64", (2, 3))
    program = "(F.embedding(i, w) * c).sum()"
    grad = gradcli.evaluate(program, _typed(raw), wrt=["w"], dtype="float64").grad["w"]
    fd, h = np.zeros_like(raw["w"]), 1e-6
    for k in np.ndindex(fd.shape):
        up, down = raw["w"].copy(), raw["w"].copy()
        up[k] += h
        down[k] -= h
        plus = gradcli.evaluate(program, _typed({**raw, "w": up}), wrt=["w"], dtype="float64")
        minus = gradcli.evaluate(program, _typed({**raw, "w": down}), wrt=["w"], dtype="float64")
        fd[k] = (plus.value - minus.value) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    t = np.random.default_rng(3).standard_normal((5, 4))
    out = D.jvp(program, _typed(raw), {"w": t}, wrt=["w"], dtype="float64")
    np.testing.assert_allclose(out["jvp"], np.sum(grad * t), rtol=1e-12)


@pytest.mark.parametrize(
    "program,i,w_shape",
    [
        ("F.embedding(i, w)", np.array([0, -1]), (5, 3)),
        ("F.embedding(i, w)", np.array([0, 5]), (5, 3)),
        ("F.embedding(i, w)", np.array([0.0, 1.0]), (5, 3)),
        ("F.embedding(i, w)", np.array([True]), (5, 3)),
        ("F.embedding(i, w)", np.array([0, 1]), (5,)),
        ("F.embedding(i, w, padding_idx=5)", np.array([0, 1]), (5, 3)),
        ("F.embedding(i, w, padding_idx=-6)", np.array([0, 1]), (5, 3)),
        ("F.embedding(i, w, padding_idx=1.5)", np.array([0, 1]), (5, 3)),
    ],
)
def test_embedding_errors_are_pytorchs(torch, program, i, w_shape):
    w = np.ones(w_shape)
    with pytest.raises((RuntimeError, IndexError, AssertionError, TypeError)) as theirs:
        eval(program, {"F": torch.nn.functional, "i": torch.tensor(i), "w": torch.tensor(w)})
    with pytest.raises(gradcli.GradcliError) as ours:
        gradcli.evaluate(program, _typed({"i": i, "w": w}), wrt=["w"], dtype="float64")
    assert str(theirs.value) in ours.value.message
    assert ours.value.exit_code in (1, 2)


def test_embedding_refuses_max_norm():
    with pytest.raises(gradcli.EvaluationError, match="max_norm") as e:
        gradcli.evaluate(
            "F.embedding(i, w, max_norm=1.0)", _typed({"i": np.array([0]), "w": np.ones((2, 2))})
        )
    assert "max_norm=None" in e.value.hint


# ---- max_poolNd(return_indices=True) ---------------------------------------------------------

POOL_INDICES = [
    ("F.max_pool1d(x, 2, return_indices=True)", (2, 3, 7)),
    ("F.max_pool1d(x, 3, 2, 1, 2, True, True)", (3, 9)),
    ("F.max_pool2d(x, 2, return_indices=True)", (2, 3, 5, 6)),
    ("F.max_pool2d(x, (3, 2), stride=(2, 1), padding=1, return_indices=True)", (2, 5, 4)),
    ("F.max_pool2d(x, 2, 1, 0, (2, 1), ceil_mode=True, return_indices=True)", (1, 2, 6, 5)),
    ("torch.nn.functional.max_pool3d(x, 2, return_indices=True)", (1, 2, 4, 5, 4)),
    ("F.max_pool3d(x, (2, 3, 2), 1, 1, ceil_mode=True, return_indices=True)", (2, 3, 4, 3)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("call,shape", POOL_INDICES)
def test_max_pool_indices_match_pytorch(torch, call, shape, dtype):
    pool_indices_match_pytorch(torch, call, shape, dtype, seed=5)


def test_max_pool_indices_unpack_and_index_like_a_tuple():
    x = np.arange(16.0).reshape(1, 4, 4)
    for program in (
        "F.max_pool2d(x, 2, return_indices=True)[0].sum()",
        "v, i = F.max_pool2d(x, 2, return_indices=True)\nv.sum()",
        "F.max_pool2d(x, 2, return_indices=True)[-2].sum()",
    ):
        r = gradcli.evaluate(program, {"x": x}, dtype="float64")
        assert r.value == 5 + 7 + 13 + 15
    with pytest.raises(gradcli.GradcliError, match="not enough values to unpack"):
        gradcli.evaluate("a, b, c = F.max_pool2d(x, 2, return_indices=True)\na.sum()", {"x": x})


# ---- max_unpoolNd ---------------------------------------------------------------------------

UNPOOL = [
    ("F.max_pool1d(x, 2, return_indices=True)", "F.max_unpool1d(v * c, i, 2)", (2, 3, 7)),
    ("F.max_pool1d(x, 3, 2, 1, return_indices=True)", "F.max_unpool1d(v * c, i, 3, 2, 1)", (3, 9)),
    ("F.max_pool2d(x, 2, return_indices=True)", "F.max_unpool2d(v * c, i, 2)", (2, 3, 5, 6)),
    (
        "F.max_pool2d(x, 2, return_indices=True)",
        "F.max_unpool2d(v * c, i, 2, output_size=(5, 7))",
        (3, 5, 7),
    ),
    (
        "F.max_pool2d(x, (3, 2), stride=(2, 1), padding=1, return_indices=True)",
        "F.max_unpool2d(v * c, i, (3, 2), (2, 1), 1, [1, 2, 5, 4])",
        (1, 2, 5, 4),
    ),
    ("F.max_pool3d(x, 2, return_indices=True)", "F.max_unpool3d(v * c, i, 2)", (1, 2, 4, 4, 6)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("pool,unpool,shape", UNPOOL)
def test_max_unpool_matches_pytorch(torch, pool, unpool, shape, dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    env = {"F": torch.nn.functional, "x": torch.tensor(x, requires_grad=True)}
    v, i = eval(pool, env)
    c = rng.standard_normal(v.shape).astype(dtype)
    env.update(v=v, i=i, c=torch.tensor(c, requires_grad=True))
    u = eval(unpool, env)
    d = rng.standard_normal(u.shape).astype(dtype)
    theirs = (u * torch.tensor(d)).sum()
    theirs.backward()
    program = f"v, i = {pool}\n({unpool} * d).sum()"
    ours = gradcli.evaluate(program, {"x": x, "c": c, "d": d}, wrt=["x", "c"], dtype=dtype)
    np.testing.assert_allclose(ours.value, theirs.detach().numpy(), rtol=1e-6)
    for name in ("x", "c"):
        want = env[name].grad
        np.testing.assert_allclose(ours.grad[name], want.numpy(), rtol=1e-6, atol=1e-7)
    assert our_labels(ours) == torch_labels(theirs)


@pytest.mark.parametrize(
    "unpool,indices",
    [
        ("F.max_unpool2d(v, i, 2)", [[[[0, 1], [2, 30]]]]),
        ("F.max_unpool2d(v, i, 2, output_size=(9, 4))", [[[[0, 1], [2, 3]]]]),
        ("F.max_unpool2d(v, i, 2, output_size=(4, 4, 4))", [[[[0, 1], [2, 3]]]]),
        ("F.max_unpool2d(v, i, 2)", [[[0, 1], [2, 3]]]),
    ],
)
def test_max_unpool_errors_are_pytorchs(torch, unpool, indices):
    v = np.ones((1, 1, 2, 2))
    i = np.asarray(indices, dtype=np.int64)
    env = {"F": torch.nn.functional, "v": torch.tensor(v), "i": torch.tensor(i)}
    with pytest.raises((RuntimeError, ValueError)) as theirs:
        eval(unpool, env)
    with pytest.raises(gradcli.GradcliError) as ours:
        gradcli.evaluate(
            f"{unpool}.sum()",
            {"v": v, "i": {"dtype": "int64", "data": i.tolist()}},
            wrt=["v"],
            dtype="float64",
        )
    assert str(theirs.value).splitlines()[0] in ours.value.message


def _readme_block():
    """The README's transformer program and the command line that runs it."""
    import pathlib
    import re
    import shlex

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Neural networks")[1].split("\n## ")[0]
    block = re.findall(r"```text\n(.*?)```", section, flags=re.S)[1]
    command = section.split(block)[1].split("```sh\n")[1].split("```")[0]
    printed = re.search(r"gives `(tensor\(.*?\))`", section.split(command)[1]).group(1)
    return block, shlex.split(command.replace("\\\n", " "))[1:], printed


def _torch_block(torch, program, leaves):
    """The program run by PyTorch on ``leaves``, drawing dropout's mask from torch's
    generator as it stands; backward from the loss."""
    ns = {"F": torch.nn.functional, "torch": torch, **leaves}
    lines = program.strip().splitlines()
    exec("\n".join(lines[:-1]), ns)
    out = eval(lines[-1], ns)
    out.backward()
    return out


def test_readme_transformer_command_is_pytorchs(torch, tmp_path, monkeypatch):
    """The README's command line prints the loss it says, and PyTorch, seeded alike and
    drawing the randn() inputs in the order the program uses them, gives the same value,
    gradients and labels."""
    import json
    import re

    from click.testing import CliRunner

    from gradcli.cli import main

    program, argv, printed = _readme_block()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "block.grad").write_text(program, encoding="utf-8")
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == printed
    values = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    seed = int(argv[argv.index("--random-seed") + 1])
    ours = gradcli.evaluate(program, values, random_seed=seed)
    torch.manual_seed(seed)
    leaves = {}
    for name in dict.fromkeys(n for n in re.findall(r"[A-Za-z_]\w*", program) if n in values):
        kind, _, rest = values[name].partition(":")
        if kind == "int64":  # token ids and targets
            leaves[name] = torch.tensor(json.loads(rest if "[" in rest else f"[{rest}]"))
        else:  # randn(11,8), ones(8), ...: drawn now, in the order of use
            call, size = values[name].rstrip(")").split("(")
            leaves[name] = getattr(torch, call)(*map(int, size.split(","))).requires_grad_()
    out = _torch_block(torch, program, leaves)
    assert f"tensor({out.item():.4f}" in printed
    np.testing.assert_allclose(ours.value, out.item(), rtol=1e-5)
    for name, leaf in leaves.items():
        if leaf.requires_grad:
            theirs = leaf.grad.numpy()
            scale = float(np.abs(theirs).max())
            np.testing.assert_allclose(ours.grad[name], theirs, rtol=1e-4, atol=1e-5 * scale)
    assert our_labels(ours) == torch_labels(out)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_readme_transformer_in_float64_is_pytorchs(torch, seed):
    """The same block in float64 at small weights, dropout's mask drawn as PyTorch draws it:
    value and every gradient to 1e-10."""
    program = _readme_block()[0]
    rng = np.random.default_rng(seed)
    shapes = {"E": (11, 8), "P": (5, 8), "g1": (8,), "c1": (8,), "Wq": (8, 8), "Wk": (8, 8)}
    shapes |= {"Wv": (8, 8), "Wo": (8, 8), "W1": (16, 8), "W2": (8, 16)}
    inputs = {k: rng.standard_normal(s) * 0.5 for k, s in shapes.items()}
    t = rng.integers(0, 11, (2, 5))
    y = rng.integers(0, 11, 10)
    ids = {"t": {"dtype": "int64", "data": t.tolist()}, "y": {"dtype": "int64", "data": y.tolist()}}
    ours = gradcli.evaluate(program, {**inputs, **ids}, dtype="float64", random_seed=seed)
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    torch.manual_seed(seed)
    out = _torch_block(torch, program, {**leaves, "t": torch.tensor(t), "y": torch.tensor(y)})
    np.testing.assert_allclose(ours.value, out.item(), rtol=1e-10)
    for k, leaf in leaves.items():
        np.testing.assert_allclose(ours.grad[k], leaf.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert our_labels(ours) == torch_labels(out)


@pytest.mark.parametrize(
    "call",
    [
        "F.relu(x, inplace=False)",
        "F.leaky_relu(x, 0.2, inplace=False)",
        "F.elu(x, inplace=False)",
        "F.hardtanh(x, inplace=False)",
        "F.threshold(x, 0.5, 2.0, inplace=False)",
    ],
)
def test_inplace_false_is_the_same_call(call):
    """PyTorch's activations take inplace=False: the same numbers and labels as without it."""
    x = {"x": np.array([-1.5, 0.25, 2.0], np.float32)}
    plain = call.replace(", inplace=False", "")
    a, b = gradcli.evaluate(f"({call}).sum()", x), gradcli.evaluate(f"({plain}).sum()", x)
    assert np.array_equal(a.grad["x"], b.grad["x"]) and our_labels(a) == our_labels(b)


def test_inplace_true_is_refused_naming_the_way_out():
    with pytest.raises(gradcli.EvaluationError, match=r"leaky_relu\(inplace=True\)") as e:
        gradcli.evaluate("F.leaky_relu(x, 0.2, inplace=True).sum()", {"x": np.ones(2)})
    assert "inplace=False" in e.value.hint
    with pytest.raises(gradcli.ParseError, match="inplace must be True or False"):
        gradcli.evaluate("F.elu(x, inplace=1).sum()", {"x": np.ones(2)})
    with pytest.raises(gradcli.UnknownNameError, match="unexpected keyword argument 'inplace'"):
        gradcli.evaluate("F.gelu(x, inplace=False).sum()", {"x": np.ones(2)})  # PyTorch's too
