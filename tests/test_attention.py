"""F.multi_head_attention_forward against PyTorch 2.13: the output and the attention weights,
every gradient (inputs, projection weights and biases, a floating mask), every grad_fn label
of the calls it makes, in each of its projection paths and masks, and its errors."""

import numpy as np
import pytest
from conftest import our_labels, torch_labels

import gradcli
from gradcli import derivatives as D

L, S, N, E = 3, 5, 2, 4


def _inputs():
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((L, N, E)),
        "y": rng.standard_normal((S, N, E)),
        "u": rng.standard_normal((L, E)),
        "W": rng.standard_normal((3 * E, E)),
        "b": rng.standard_normal(3 * E),
        "Wo": rng.standard_normal((E, E)),
        "bo": rng.standard_normal(E),
        "Wq": rng.standard_normal((E, E)),
        "Wk": rng.standard_normal((E, E)),
        "Wv": rng.standard_normal((E, E)),
        "m": rng.standard_normal((L, L)),
        "m3": rng.standard_normal((2 * N, L, S)),
        "fk": rng.standard_normal((N, S)),
        "kpm": np.array([[False, False, True], [False, False, False]]),
        "kp5": np.array([[False, True, False, False, True], [False] * 5]),
        "bm": np.array([[False, True, False], [False, False, True], [True, False, False]]),
        "bk": rng.standard_normal((1, 1, E)),
        "bv": rng.standard_normal((1, 1, E)),
        "sk": rng.standard_normal((2 * N, 6, E // 2)),
        "sv": rng.standard_normal((2 * N, 6, E // 2)),
    }


MHA = "F.multi_head_attention_forward"
SELF = f"{MHA}(x, x, x, 4, 2, W, b, None, None, False, 0.0, Wo, bo"
CROSS = f"{MHA}(x, y, y, 4, 2, W, b, None, None, False, 0.0, Wo, bo"
PROGRAMS = [
    f"o, w = {SELF}); o.sum() + (w * w).sum()",
    f"{SELF})[0].sum()",
    f"{SELF})[1].sum()",
    f"o, w = {SELF}, average_attn_weights=False); (o * o).sum() + (w * w).sum()",
    f"{SELF}, need_weights=False)[0].sum()",
    f"{CROSS})[0].sum()",  # encoder-decoder: one split of the weights and of the biases
    f"o, w = {CROSS}); o.sum() + (w * w).sum()",
    f"{MHA}(x, y, y * 2, 4, 2, W, b, None, None, False, 0.0, Wo, bo)[0].sum()",  # chunks
    f"{MHA}(x, y, y, 4, 2, W, None, None, None, False, 0.0, Wo, None)[0].sum()",
    f"{MHA}(x, x, x, 4, 1, W, b, None, None, False, 0.0, Wo, bo)[0].sum()",
    f"{MHA}(x, x, x, 4, 4, W, b, None, None, False, 0.0, Wo, bo, need_weights=False)[0].sum()",
    f"o, w = {MHA}(u, u, u, 4, 2, W, b, None, None, False, 0.0, Wo, bo); o.sum() + (w * w).sum()",
    f"{MHA}(u, u, u, 4, 2, W, b, None, None, False, 0.0, Wo, bo, need_weights=False)[0].sum()",
    f"{SELF}, attn_mask=m)[0].sum()",
    f"o, w = {SELF}, attn_mask=bm); o.sum() + (w * w).sum()",
    f"{SELF}, key_padding_mask=kpm)[0].sum()",
    f"{SELF}, key_padding_mask=kpm, attn_mask=m)[0].sum()",
    f"{SELF}, key_padding_mask=kpm, need_weights=False)[0].sum()",
    f"{SELF}, attn_mask=m, need_weights=False)[0].sum()",
    f"{SELF}, attn_mask=bm, need_weights=False)[0].sum()",
    f"{SELF}, attn_mask=bm, is_causal=True, need_weights=False)[0].sum()",
    f"{SELF}, attn_mask=m, is_causal=True)[0].sum()",
    f"{CROSS}, attn_mask=m3)[0].sum()",
    f"{CROSS}, key_padding_mask=fk, need_weights=False)[0].sum()",
    f"{CROSS}, key_padding_mask=kp5)[0].sum()",
    f"{MHA}(x, y, y, 4, 2, None, b, None, None, False, 0.0, Wo, bo, "
    "use_separate_proj_weight=True, q_proj_weight=Wq, k_proj_weight=Wk, v_proj_weight=Wv)[0].sum()",
    f"{MHA}(x, y, y, 4, 2, None, None, None, None, False, 0.0, Wo, bo, "
    "use_separate_proj_weight=True, q_proj_weight=Wq, k_proj_weight=Wk, v_proj_weight=Wv, "
    "need_weights=False)[0].sum()",
    f"{SELF.replace('0.0', '0.5')}, training=False)[0].sum()",
    # a learnt key and value appended (bias_k, bias_v), a zero one (add_zero_attn), the masks
    # padded for them; static keys and values in place of the projections
    f"{MHA}(x, x, x, 4, 2, W, b, bk, bv, False, 0.0, Wo, bo)[0].sum()",
    f"o, w = {MHA}(x, x, x, 4, 2, W, b, bk, bv, False, 0.0, Wo, bo, attn_mask=m, "
    "key_padding_mask=kpm); o.sum() + (w * w).sum()",
    f"{MHA}(x, x, x, 4, 2, W, b, None, None, True, 0.0, Wo, bo)[0].sum()",
    f"{MHA}(x, x, x, 4, 2, W, b, bk, bv, True, 0.0, Wo, bo, attn_mask=bm, "
    "key_padding_mask=kpm)[0].sum()",
    f"{MHA}(x, x, x, 4, 2, W, b, bk, bv, True, 0.0, Wo, bo, attn_mask=m, "
    "need_weights=False)[0].sum()",
    f"{MHA}(x, y, y, 4, 2, W, b, None, None, False, 0.0, Wo, bo, static_k=sk, static_v=sv)"
    "[0].sum()",
    f"{MHA}(x, y, y, 4, 2, W, b, None, None, True, 0.0, Wo, bo, static_k=sk, static_v=sv, "
    "need_weights=False)[0].sum()",
    f"{MHA}(u, u, u, 4, 2, W, b, bk, bv, True, 0.0, Wo, bo)[0].sum()",
    f"{MHA}(query=x, key=x, value=x, embed_dim_to_check=4, num_heads=2, in_proj_weight=W, "
    "in_proj_bias=b, bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, "
    "out_proj_weight=Wo, out_proj_bias=bo)[0].sum()",
]


def _used(program, inputs):
    import re

    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", program))
    return {k: v for k, v in inputs.items() if k in names}


def _typed(arrays):
    return {
        k: {"dtype": "bool", "data": v.tolist()} if v.dtype == bool else v
        for k, v in arrays.items()
    }


def _compare(torch, program, dtype, seed=None):
    ins = _used(program, _inputs())
    wrt = [k for k, v in ins.items() if v.dtype != bool]
    ours = gradcli.evaluate(program, _typed(ins), wrt=wrt, dtype=dtype, random_seed=seed)
    tdtype = getattr(torch, dtype)
    leaves = {
        k: torch.tensor(v, dtype=torch.bool if v.dtype == bool else tdtype, requires_grad=k in wrt)
        for k, v in ins.items()
    }
    ns = {"F": torch.nn.functional, **leaves}
    if seed is not None:
        torch.manual_seed(seed)
    *stmts, last = program.split(";")
    for stmt in stmts:
        exec(stmt.strip(), ns)
    out = eval(last.strip(), ns)
    out.backward()
    rtol = 1e-10 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.value, out.item(), rtol=rtol, atol=rtol)
    for k in wrt:
        theirs = leaves[k].grad
        if theirs is None:
            assert ours.grad[k] is None, k
        else:
            np.testing.assert_allclose(
                ours.grad[k], theirs.numpy(), rtol=rtol, atol=rtol * 10, err_msg=k
            )
    assert ours.grad_fn == type(out.grad_fn).__name__
    assert our_labels(ours) == torch_labels(out)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program", PROGRAMS)
def test_multi_head_attention_forward_against_pytorch(torch, program, dtype):
    _compare(torch, program, dtype)


def test_multi_head_attention_outputs_are_pytorchs(torch):
    ins = _used(SELF, _inputs())
    ours_o = gradcli.evaluate(f"{SELF})[0]", ins, seed_vector=np.ones((L, N, E)))
    ours_w = gradcli.evaluate(f"{SELF})[1]", ins, seed_vector=np.ones((N, L, L)))
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in ins.items()}
    o, w = torch.nn.functional.multi_head_attention_forward(
        t["x"], t["x"], t["x"], 4, 2, t["W"], t["b"], None, None, False, 0.0, t["Wo"], t["bo"]
    )
    np.testing.assert_allclose(ours_o.value, o.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_w.value, w.numpy(), rtol=1e-5, atol=1e-6)
    assert ours_w.value.shape == (N, L, L)


def test_multi_head_attention_has_jvp_and_hessian():
    ins = {k: v for k, v in _inputs().items() if k in ("x", "W", "b", "Wo", "bo")}
    program = f"{MHA}(x, x, x, 4, 2, W, b, None, None, False, 0.0, Wo, bo)[0].tanh().sum()"
    assert D.check(program, ins, wrt=["x", "W"])["ok"]


@pytest.mark.parametrize(
    "mask", ["torch.zeros(2, 2, 1, 5)", "torch.zeros(1, 5)", "torch.zeros(2, 1, 3, 1)"]
)
def test_sdpa_flash_kernel_takes_broadcast_masks(torch, mask):
    """PyTorch's CPU flash kernel takes a constant mask broadcast over any of its dimensions
    (the key-padding mask of attention without weights is (N, H, 1, S))."""
    rng = np.random.default_rng(8)
    ins = {"q": rng.standard_normal((2, 2, 3, 4)), "k": rng.standard_normal((2, 2, 5, 4))}
    program = f"(F.scaled_dot_product_attention(q, k, k, attn_mask={mask} - 1) ** 2).sum()"
    ours = gradcli.evaluate(program, ins, dtype="float64")
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in ins.items()}
    torch.set_default_dtype(torch.float64)
    try:
        out = eval(program, {"F": torch.nn.functional, "torch": torch, **leaves})
    finally:
        torch.set_default_dtype(torch.float32)
    out.backward()
    np.testing.assert_allclose(ours.value, out.item(), rtol=1e-10)
    for k, v in leaves.items():
        np.testing.assert_allclose(ours.grad[k], v.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert our_labels(ours) == torch_labels(out)


ERRORS = [
    (
        f"{MHA}(x, x, x, 5, 2, W, b, None, None, False, 0.0, Wo, bo)",
        "was expecting embedding dimension of 5, but got 4",
    ),
    (
        f"{MHA}(x, x, x, 4, 3, W, b, None, None, False, 0.0, Wo, bo)",
        "embed_dim 4 not divisible by num_heads 3",
    ),
    (f"{MHA}(x, y, x, 4, 2, W, b, None, None, False, 0.0, Wo, bo)", "does not match value shape"),
    (
        f"{MHA}(x, x, x, 4, 2, None, b, None, None, False, 0.0, Wo, bo)",
        "use_separate_proj_weight is False but in_proj_weight is None",
    ),
    (
        f"{SELF}, use_separate_proj_weight=True)",
        "use_separate_proj_weight is True but q_proj_weight is None",
    ),
    (
        f"{MHA}(x, u, u, 4, 2, W, b, None, None, False, 0.0, Wo, bo)",
        "expected `key` and `value` to be 3-D",
    ),
    (
        f"{MHA}(u, x, x, 4, 2, W, b, None, None, False, 0.0, Wo, bo)",
        "expected `key` and `value` to be 2-D",
    ),
    (
        f"{MHA}(x[0, 0], x[0, 0], x[0, 0], 4, 2, W, b, None, None, False, 0.0, Wo, bo)",
        "query should be unbatched 2D or batched 3D tensor",
    ),
    (
        f"{SELF}, attn_mask=fk)",
        "The shape of the 2D attn_mask is torch.Size([2, 5]), but should be (3, 3).",
    ),
    (
        f"{SELF}, attn_mask=m3)",
        "The shape of the 3D attn_mask is torch.Size([4, 3, 5]), but should be (4, 3, 3).",
    ),
    (f"{SELF}, is_causal=True)", "Need attn_mask if specifying the is_causal hint"),
    (
        f"{MHA}(x, x, x, 4, 2, W, b, bk, None, False, 0.0, Wo, bo)",
        "bias_k is set but bias_v is None",
    ),
    (
        f"{MHA}(x, x, x, 4, 2, W, b, None, bv, False, 0.0, Wo, bo)",
        "bias_v is set but bias_k is None",
    ),
    (
        f"{MHA}(x, x, x, 4, 2, W, b, bk, bv, False, 0.0, Wo, bo, static_k=sk)",
        "bias cannot be added to static key.",
    ),
    (f"{SELF}, static_k=sk[:2])", "expecting static_k.size(0) of 4, but got 2"),
    (
        f"{MHA}(x, y, y, 4, 2, None, b, None, None, False, 0.0, Wo, bo, "
        "use_separate_proj_weight=True, q_proj_weight=Wq, k_proj_weight=Wk[:, :3], "
        "v_proj_weight=Wv)",
        "expecting key weights shape of (4, 4), but got torch.Size([4, 3])",
    ),
    (f"{SELF}, static_v=x)", "expecting static_v.size(0) of 4, but got 3"),
    (f"{CROSS}, key_padding_mask=kpm)", "Expected key_padded_mask.shape[1] to be 5, but got 3"),
    (f"{SELF}, key_padding_mask=kpm[0])", "expected `key_padding_mask` to be `None` or 2-D"),
]


@pytest.mark.parametrize("program,message", ERRORS)
def test_multi_head_attention_errors_are_pytorchs(torch, program, message):
    ins = _inputs()
    leaves = {k: torch.tensor(v) for k, v in ins.items()}
    leaves = {k: v.float() if v.dtype == torch.float64 else v for k, v in leaves.items()}
    with pytest.raises((RuntimeError, AssertionError, ValueError)) as theirs:
        eval(program, {"F": torch.nn.functional, **leaves})
    assert message in str(theirs.value)
    with pytest.raises(gradcli.GradcliError) as ours:
        gradcli.evaluate(f"{program}[0].sum()", _typed(_used(program, ins)))
    assert message in ours.value.message


@pytest.mark.parametrize(
    "program,message",
    [
        (f"{SELF}, need_weights=False)[1]", "returns None for the attention weights"),
        (f"{MHA}(x, x, x, 4, 0, W, b, None, None, False, 0.0, Wo, bo)[0]", "must be positive"),
        (f"{MHA}(x, x, x, 4, 2.5, W, b, None, None, False, 0.0, Wo, bo)[0]", "num_heads must be"),
    ],
)
def test_multi_head_attention_refusals_are_clear(program, message):
    with pytest.raises(gradcli.GradcliError, match=message):
        gradcli.evaluate(program, _typed(_used(program, _inputs())), seed_vector=1.0)


DROPPED = [
    f"o, w = {SELF.replace('0.0', '0.4')}); (o * o).sum() + (w * w).sum()",
    f"o, w = {SELF.replace('0.0', '0.4')}, average_attn_weights=False); (w * w).sum()",
    f"{SELF.replace('0.0', '0.3')}, need_weights=False)[0].tanh().sum()",
    f"{CROSS.replace('0.0', '0.6')}, key_padding_mask=kp5)[0].sum()",
    f"{CROSS.replace('0.0', '0.6')}, attn_mask=m3, need_weights=False)[0].sum()",
    f"o, w = {MHA}(u, u, u, 4, 2, W, b, bk, bv, True, 0.5, Wo, bo); o.sum() + (w * w).sum()",
    f"{SELF.replace('0.0', '1.0')})[0].sum()",  # all dropped: the output is the bias
    f"{SELF.replace('0.0', '1.0')}, need_weights=False)[0].sum()",
    # scaled_dot_product_attention itself drops, in its math kernel, after the softmax
    "q = x.transpose(0, 1); k = y.transpose(0, 1); "
    "F.scaled_dot_product_attention(q, k, k * 2, dropout_p=0.5).sum()",
    "q = x.transpose(0, 1); k = y.transpose(0, 1); "
    "(F.scaled_dot_product_attention(q, k, k, attn_mask=m3[:2, :, :], dropout_p=0.3) ** 2).sum()",
]


@pytest.mark.parametrize("seed", [0, 7, 123])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program", DROPPED)
def test_multi_head_attention_dropout_draws_pytorchs_mask(torch, program, dtype, seed):
    """dropout_p > 0 with training=True: F.dropout on the softmax's weights, or with
    need_weights=False the dropout of scaled_dot_product_attention's math kernel; under a
    seed the mask is the one PyTorch draws after torch.manual_seed(seed)."""
    _compare(torch, program, dtype, seed)


def test_multi_head_attention_dropout_drops_weights():
    ins = _used(SELF, _inputs())
    program = f"{SELF.replace('0.0', '0.5')})[1]"
    w = gradcli.evaluate(program, ins, seed_vector=np.ones((N, L, L)), random_seed=1).value
    assert (w == 0).any() and not (w == 0).all()
    with pytest.raises(gradcli.GradcliError, match="needs one evaluation") as e:
        D.check(f"{program}.sum()", ins, wrt=["x"])
    assert "training=False" in e.value.hint
    program = "F.scaled_dot_product_attention(x, x, x, dropout_p=0.5).sum()"
    with pytest.raises(gradcli.GradcliError, match="needs one evaluation") as e:
        D.check(program, {"x": np.ones((2, 3))}, wrt=["x"])
    assert "dropout_p=0.0" in e.value.hint


@pytest.mark.parametrize("p", ["1.5", "-0.5"])
def test_sdpa_dropout_probability_is_checked(torch, p):
    program = f"F.scaled_dot_product_attention(x, x, x, dropout_p={p})"
    with pytest.raises(RuntimeError):
        eval(program, {"F": torch.nn.functional, "x": torch.ones(1, 2, 3, 4)})
    with pytest.raises(gradcli.GradcliError, match="has to be between 0 and 1"):
        gradcli.evaluate(f"{program}.sum()", {"x": np.ones((1, 2, 3, 4))}, random_seed=0)


# queries of several layouts: scaled_dot_product_attention's flash kernel lays its output out
# as the query, so what a later view or reshape of it records is PyTorch's
LAYOUTS = {
    "contiguous": ("a", (2, 3, 4, 6)),
    "transposed": ("a.transpose(1, 2)", (2, 4, 3, 6)),
    "permuted": ("a.permute(1, 2, 0, 3)", (4, 2, 3, 6)),
    "sliced": ("a[..., :6]", (2, 3, 4, 12)),
    "transposed slice": ("a[..., :6].transpose(1, 2)", (2, 4, 3, 12)),
    "expanded": ("a.expand(2, 3, 4, 6)", (1, 3, 4, 6)),
    "expanded heads": ("a.expand(2, 3, 4, 6)", (2, 1, 4, 6)),
    "stepped": ("a[:, :, ::2]", (2, 3, 8, 6)),
}
AFTER = [
    "o.view(2, 72)",
    "o.transpose(1, 2).reshape(2, 4, 18)",
    "o.transpose(1, 2).contiguous().view(2, 4, 18)",
    "o.reshape(2, -1)",
    "o.permute(2, 0, 1, 3).reshape(8, 18)",
]


@pytest.mark.parametrize("after", AFTER)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_sdpa_output_is_laid_out_as_the_query(torch, layout, after):
    query, shape = LAYOUTS[layout]
    rng = np.random.default_rng(3)
    ins = {"a": rng.standard_normal(shape), "k": rng.standard_normal((2, 3, 5, 6))}
    program = f"q = {query}; o = F.scaled_dot_product_attention(q, k, k * 2); ({after} ** 2).sum()"
    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in ins.items()}
    ns = {"F": torch.nn.functional, **leaves}
    *stmts, last = program.split(";")
    for stmt in stmts:
        exec(stmt.strip(), ns)
    assert type(ns["o"].grad_fn).__name__ == "ScaledDotProductFlashAttentionForCpuBackward0"
    try:
        out = eval(last.strip(), ns)
    except RuntimeError as e:  # a view of a layout it cannot view
        assert "view size is not compatible" in str(e)
        with pytest.raises(gradcli.GradcliError, match="view size is not compatible"):
            gradcli.evaluate(program, ins, wrt=list(ins))
        return
    out.backward()
    ours = gradcli.evaluate(program, ins, wrt=list(ins), dtype="float64")
    np.testing.assert_allclose(ours.value, out.item(), rtol=1e-10)
    for n, v in leaves.items():
        np.testing.assert_allclose(ours.grad[n], v.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert our_labels(ours) == torch_labels(out)


# (beside attention for this wave: torch.adaptive_max_pool1d, which unlike
# F.adaptive_max_pool1d returns (values, indices) without being asked)
POOLED = [
    "v, i = torch.adaptive_max_pool1d(x, 3); (v * v).sum() + i.sum()",
    "torch.adaptive_max_pool1d(x, 9)[0].sum()",
    "torch.adaptive_max_pool1d(input=x[0], output_size=(2,))[0].sum()",
    "(torch.adaptive_max_pool1d(x, 4)[1] * 1.0 + F.adaptive_max_pool1d(x, 4)).sum()",
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("program", POOLED)
def test_torch_adaptive_max_pool1d_returns_values_and_indices(torch, program, dtype):
    x = np.random.default_rng(5).standard_normal((2, 3, 7))
    ours = gradcli.evaluate(program, {"x": x}, wrt=["x"], dtype=dtype)
    leaf = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    ns = {"F": torch.nn.functional, "torch": torch, "x": leaf}
    *stmts, last = program.split(";")
    for stmt in stmts:
        exec(stmt.strip(), ns)
    out = eval(last.strip(), ns)
    out.backward()
    np.testing.assert_allclose(ours.value, out.item(), rtol=1e-6)
    np.testing.assert_allclose(ours.grad["x"], leaf.grad.numpy(), rtol=1e-6)
    assert our_labels(ours) == torch_labels(out)


def test_torch_adaptive_max_pool1d_indices_are_torchs(torch):
    x = np.random.default_rng(6).standard_normal((3, 8))
    program = "(x[:, :3] * torch.adaptive_max_pool1d(x, 3)[1]).sum()"
    ours = gradcli.evaluate(program, {"x": x}, wrt=["x"])
    theirs = torch.adaptive_max_pool1d(torch.tensor(x), 3)[1]
    assert theirs.dtype == torch.int64
    np.testing.assert_array_equal(ours.grad["x"][:, :3], theirs.numpy())


@pytest.mark.parametrize(
    "program,theirs,ours",
    [
        ("torch.adaptive_max_pool1d(x, 2, True)", "3 were given", "got 3"),
        ("torch.adaptive_max_pool1d(x, 2, return_indices=True)", "'return_indices'", None),
        ("torch.adaptive_max_pool1d(x, -1)", "negative dimension -1", None),
        ("torch.adaptive_max_pool1d(x.view(1, 1, 3, 5), 2)", "Expected 2 to 3 dimensions", None),
    ],
)
def test_torch_adaptive_max_pool1d_errors(torch, program, theirs, ours):
    with pytest.raises((TypeError, RuntimeError)) as e:
        eval(program, {"torch": torch, "x": torch.ones(3, 5)})
    assert theirs in str(e.value)
    with pytest.raises(gradcli.GradcliError, match=ours or theirs):
        gradcli.evaluate(f"{program}[0].sum()", {"x": np.ones((3, 5))})
