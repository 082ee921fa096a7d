"""F.multi_head_attention_forward, as torch/nn/functional.py writes it: one row whose nodes
are the calls that function makes (linear, unflatten, transpose, view, bmm or baddbmm,
softmax, scaled_dot_product_attention, ...), each emitted through its own row, so that the
values, gradients and grad_fn labels are the ones those rows give PyTorch's calls."""

import math

from ..errors import EvaluationError, ShapeError
from .core import REQUIRED, Op, lazy_numpy
from .nn import _dropout_core, scalar
from .results import TUPLES, Results
from .shape import _cat_grads, _cat_shape

np = lazy_numpy(globals())

# the parameters after query, key and value, in PyTorch's order
_PARAMS = {
    "embed_dim_to_check": REQUIRED,
    "num_heads": REQUIRED,
    "in_proj_weight": REQUIRED,
    "in_proj_bias": REQUIRED,
    "bias_k": REQUIRED,
    "bias_v": REQUIRED,
    "add_zero_attn": REQUIRED,
    "dropout_p": REQUIRED,
    "out_proj_weight": REQUIRED,
    "out_proj_bias": REQUIRED,
    "training": True,
    "key_padding_mask": None,
    "need_weights": True,
    "attn_mask": None,
    "use_separate_proj_weight": False,
    "q_proj_weight": None,
    "k_proj_weight": None,
    "v_proj_weight": None,
    "static_k": None,
    "static_v": None,
    "average_attn_weights": True,
    "is_causal": False,
}
_TENSORS = (
    "in_proj_weight",
    "in_proj_bias",
    "bias_k",
    "bias_v",
    "out_proj_weight",
    "out_proj_bias",
    "key_padding_mask",
    "attn_mask",
    "q_proj_weight",
    "k_proj_weight",
    "v_proj_weight",
    "static_k",
    "static_v",
)
_NAME = "multi_head_attention_forward"
TUPLES[_NAME] = ("tuple", ())


def _call(emit, node, name, *args, **attrs):
    """A PyTorch call through its row, as a program's call would go: defaults filled in,
    an optional tensor given as a keyword (bias=b) passed as a further argument."""
    from . import OPS

    op = OPS[name]
    full = dict(op.params)
    tensors = []
    for k in op.params:
        if k not in attrs:
            continue
        if k in op.tensor_params:
            v = attrs.pop(k)
            full[k] = None if v is None else True
            tensors += [] if v is None else [v]
    full.update(attrs)
    operands = [*args, *tensors]
    if op.lower is not None:
        return op.lower(emit, node, operands, full)
    return emit(name, tuple(operands), full)


def _whole(value, name):
    if not (isinstance(value, (int, float)) and float(value).is_integer()):
        raise EvaluationError(f"{_NAME}(): {name} must be an integer, got {value!r}")
    return int(value)


def _flag(value, name):
    if not isinstance(value, bool):
        raise EvaluationError(f"{_NAME}(): {name} must be True or False, got {value!r}")
    return value


def _canonical_mask(emit, node, mask, name):
    """F._canonical_mask: a boolean mask becomes 0 where False and -inf where True (a
    constant); a floating mask is used as it is (and may require grad)."""
    if mask is None:
        return None
    kind = np.asarray(node(mask).value).dtype.kind
    if kind == "b":
        return emit("nn_bool_mask", (emit("logical_not", (mask,)),))  # True: -inf
    if kind not in "fc":
        raise EvaluationError(f"only bool and floating types of {name} are supported")
    return mask


def _in_projection_packed(emit, node, q, k, v, w, b, embed):
    """F._in_projection_packed: one linear for self-attention (q is k is v), two for
    encoder-decoder attention (k is v), else three over the weight's chunks."""
    if k == v:
        if q == k:
            proj = _call(emit, node, "linear", q, w, bias=b)
            parts = 3
            outs = []
        else:
            ws = _call(
                emit, node, "split", w, split_size_or_sections=[float(embed), float(2 * embed)]
            )
            bs = None
            if b is not None:
                bs = _call(
                    emit, node, "split", b, split_size_or_sections=[float(embed), float(2 * embed)]
                )
            qp = _call(emit, node, "linear", q, ws.item(0), bias=bs and bs.item(0))
            proj = _call(emit, node, "linear", k, ws.item(1), bias=bs and bs.item(1))
            parts = 2
            outs = [qp]
        proj = _call(emit, node, "unflatten", proj, dim=-1, sizes=(parts, embed))
        proj = _call(emit, node, "unsqueeze", proj, dim=0)
        proj = _call(emit, node, "transpose", proj, dim0=0, dim1=-2)
        proj = _call(emit, node, "squeeze", proj, dim=-2)
        proj = _call(emit, node, "contiguous", proj)
        return outs + [emit("select", (proj,), {"dim": 0, "index": i}) for i in range(parts)]
    ws = _call(emit, node, "chunk", w, chunks=3.0)
    bs = None if b is None else _call(emit, node, "chunk", b, chunks=3.0)
    return [
        _call(emit, node, "linear", x, ws.item(i), bias=bs and bs.item(i))
        for i, x in enumerate((q, k, v))
    ]


def _in_projection(emit, node, q, k, v, weights, b, embed):
    """F._in_projection, for use_separate_proj_weight: three linears."""
    for x, w, what in zip((q, k, v), weights, ("query", "key", "value"), strict=True):
        sw, sx = node(w).shape, node(x).shape
        want = (embed, sx[-1])
        if sw != want:
            raise ShapeError(f"expecting {what} weights shape of {want}, but got {_size(sw)}")
    bs = None if b is None else _call(emit, node, "chunk", b, chunks=3.0)
    return [
        _call(emit, node, "linear", x, w, bias=bs and bs.item(i))
        for i, (x, w) in enumerate(zip((q, k, v), weights, strict=True))
    ]


def _mha_lower(emit, node, args, attrs):
    a = dict(attrs)
    given = iter(args[3:])
    t = {k: (next(given) if a[k] is True else None) for k in _TENSORS}
    for k in _TENSORS:
        if a[k] is not True and a[k] is not None:
            raise EvaluationError(f"{_NAME}(): {k} must be a tensor or None, got {a[k]!r}")
    query, key, value = args[:3]
    heads = _whole(a["num_heads"], "num_heads")
    if heads <= 0:  # (PyTorch's Python divides by it: ZeroDivisionError, or a shape error)
        raise EvaluationError(f"{_NAME}(): num_heads must be positive, got {heads}")
    embed_check = _whole(a["embed_dim_to_check"], "embed_dim_to_check")
    for k in ("add_zero_attn", "training", "need_weights", "use_separate_proj_weight"):
        _flag(a[k], k)
    for k in ("average_attn_weights", "is_causal"):
        _flag(a[k], k)
    dropout = a["dropout_p"]
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool):
        raise EvaluationError(f"{_NAME}(): dropout_p must be a number, got {dropout!r}")
    if not a["training"]:
        dropout = 0.0
    dropout = float(dropout)
    sq, sk, sv = (node(x).shape for x in (query, key, value))
    batched = _shape_check(node, sq, sk, sv, t, heads)
    if not batched:
        query, key, value = (_call(emit, node, "unsqueeze", x, dim=1) for x in (query, key, value))
        if t["key_padding_mask"] is not None:
            t["key_padding_mask"] = _call(emit, node, "unsqueeze", t["key_padding_mask"], dim=0)
    tgt, bsz, embed = node(query).shape
    src = node(key).shape[0]
    kpm = _canonical_mask(emit, node, t["key_padding_mask"], "key_padding_mask")
    attn_mask, is_causal = t["attn_mask"], a["is_causal"]
    need_weights = a["need_weights"]
    if is_causal and attn_mask is None:
        raise EvaluationError(
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
            "module method `generate_square_subsequent_mask` to create this mask."
        )
    if is_causal and kpm is None and not need_weights:
        attn_mask = None
    else:
        attn_mask = _canonical_mask(emit, node, attn_mask, "attn_mask")
        if kpm is not None:
            is_causal = False
    if embed != embed_check:
        raise EvaluationError(
            f"was expecting embedding dimension of {embed_check}, but got {embed}"
        )
    head = embed // heads
    if head * heads != embed:
        raise EvaluationError(f"embed_dim {embed} not divisible by num_heads {heads}")
    if a["use_separate_proj_weight"]:
        if node(key).shape[:2] != node(value).shape[:2]:
            raise EvaluationError(
                f"key's sequence and batch dims {_size(node(key).shape[:2])} do not match "
                f"value's {_size(node(value).shape[:2])}"
            )
        projections = [t[f"{x}_proj_weight"] for x in "qkv"]
        for x, w in zip("qkv", projections, strict=True):
            if w is None:
                raise EvaluationError(
                    f"use_separate_proj_weight is True but {x}_proj_weight is None"
                )
        q, k, v = _in_projection(
            emit, node, query, key, value, projections, t["in_proj_bias"], embed
        )
    else:
        if node(key).shape != node(value).shape:
            raise EvaluationError(
                f"key shape {_size(node(key).shape)} does not match value shape "
                f"{_size(node(value).shape)}"
            )
        if t["in_proj_weight"] is None:
            raise EvaluationError("use_separate_proj_weight is False but in_proj_weight is None")
        q, k, v = _in_projection_packed(
            emit, node, query, key, value, t["in_proj_weight"], t["in_proj_bias"], embed
        )
    if attn_mask is not None:
        shape = node(attn_mask).shape
        if len(shape) == 2:
            if shape != (tgt, src):
                raise EvaluationError(
                    f"The shape of the 2D attn_mask is {_size(shape)}, but should be {(tgt, src)}."
                )
            attn_mask = _call(emit, node, "unsqueeze", attn_mask, dim=0)
        elif len(shape) == 3:
            if shape != (bsz * heads, tgt, src):
                raise EvaluationError(
                    f"The shape of the 3D attn_mask is {_size(shape)}, but should be "
                    f"{(bsz * heads, tgt, src)}."
                )
        else:
            raise EvaluationError(f"attn_mask's dimension {len(shape)} is not supported")
    bias_k, bias_v = t["bias_k"], t["bias_v"]
    if bias_k is not None and bias_v is not None:  # one more key and value, for every batch
        for name in ("static_k", "static_v"):
            if t[name] is not None:
                raise EvaluationError(f"bias cannot be added to {_STATIC[name]}.")
        k = emit("mha_cat", (k, _call(emit, node, "repeat", bias_k, sizes=(1, bsz, 1))), {"dim": 0})
        v = emit("mha_cat", (v, _call(emit, node, "repeat", bias_v, sizes=(1, bsz, 1))), {"dim": 0})
        attn_mask, kpm = _pad_masks(emit, node, attn_mask, kpm)
    elif bias_k is not None or bias_v is not None:
        given, missing = ("bias_k", "bias_v") if bias_k is not None else ("bias_v", "bias_k")
        raise EvaluationError(f"{given} is set but {missing} is None")
    q = _call(emit, node, "view", q, shape=(tgt, bsz * heads, head))
    q = _call(emit, node, "transpose", q, dim0=0, dim1=1)
    k = _heads(emit, node, k, t["static_k"], bsz * heads, head, "static_k")
    v = _heads(emit, node, v, t["static_v"], bsz * heads, head, "static_v")
    if a["add_zero_attn"]:  # and one more of zeros
        zeros = {"size": (bsz * heads, 1, head), "dtype": None}
        k = emit("mha_cat", (k, emit("zeros", (), zeros)), {"dim": 1})
        v = emit("mha_cat", (v, emit("zeros", (), zeros)), {"dim": 1})
        attn_mask, kpm = _pad_masks(emit, node, attn_mask, kpm)
    src = node(k).shape[1]
    if kpm is not None:
        for d, want in enumerate((bsz, src)):
            if node(kpm).shape[d] != want:
                raise EvaluationError(
                    f"Expected key_padded_mask.shape[{d}] to be {want}, but got "
                    f"{node(kpm).shape[d]}"
                )
        kpm = _call(emit, node, "view", kpm, shape=(bsz, 1, 1, src))
        kpm = _call(emit, node, "expand", kpm, size=(-1, heads, -1, -1))
        kpm = _call(emit, node, "reshape", kpm, shape=(bsz * heads, 1, src))
        attn_mask = kpm if attn_mask is None else emit("add", (attn_mask, kpm))

    def out_proj(out):
        out = _call(emit, node, "linear", out, t["out_proj_weight"], bias=t["out_proj_bias"])
        out = _call(emit, node, "view", out, shape=(tgt, bsz, node(out).shape[1]))
        return out if batched else _call(emit, node, "squeeze", out, dim=1)

    if need_weights:
        scaled = scalar(emit, "mul", q, math.sqrt(1.0 / float(head)), "MulBackward0")
        kt = _call(emit, node, "transpose", k, dim0=-2, dim1=-1)
        if attn_mask is not None:
            w = _call(emit, node, "baddbmm", attn_mask, scaled, kt)
        else:
            w = _call(emit, node, "bmm", scaled, kt)
        w = _call(emit, node, "softmax", w, dim=-1)
        if dropout > 0.0:  # F.dropout(w, p=dropout_p): the weights returned are dropped too
            if dropout > 1.0:
                raise ShapeError(
                    f"dropout probability has to be between 0 and 1, but got {dropout}"
                )
            w = _dropout_core(emit, node, w, dropout, True, False, False, _NAME)

        def output():
            out = _call(emit, node, "bmm", w, v)
            out = _call(emit, node, "transpose", out, dim0=0, dim1=1)
            return out_proj(_call(emit, node, "reshape", out, shape=(tgt * bsz, embed)))

        def weights():
            avg = _call(emit, node, "view", w, shape=(bsz, heads, tgt, src))
            if a["average_attn_weights"]:
                avg = _call(emit, node, "mean", avg, dim=1)
            return avg if batched else _call(emit, node, "squeeze", avg, dim=0)

        return Results("tuple", [output, weights])
    if attn_mask is not None:
        shape = node(attn_mask).shape
        if shape[0] == 1 and len(shape) == 3:
            attn_mask = _call(emit, node, "unsqueeze", attn_mask, dim=0)
        else:
            attn_mask = _call(emit, node, "view", attn_mask, shape=(bsz, heads, -1, src))
    q = _call(emit, node, "view", q, shape=(bsz, heads, tgt, head))
    k = _call(emit, node, "view", k, shape=(bsz, heads, src, head))
    v = _call(emit, node, "view", v, shape=(bsz, heads, src, head))
    out = _call(
        emit,
        node,
        "scaled_dot_product_attention",
        q,
        k,
        v,
        attn_mask=attn_mask,
        dropout_p=dropout,
        is_causal=is_causal,
    )
    out = _call(emit, node, "permute", out, dims=(2, 0, 1, 3))
    # (PyTorch's flash kernel lays its output out as the query, (L, N, H, E): a view here)
    out = _call(emit, node, "reshape", out, shape=(bsz * tgt, embed))
    out = out_proj(out)

    def no_weights():
        raise EvaluationError(
            f"{_NAME}() returns None for the attention weights when need_weights=False",
            hint=f"take the output alone: {_NAME}(...)[0]",
        )

    return Results("tuple", [lambda: out, no_weights])


_STATIC = {"static_k": "static key", "static_v": "static value"}


def _pad_masks(emit, node, attn_mask, kpm):
    """F.pad(mask, (0, 1)) of each mask given: a column for the key added."""
    return [
        None if m is None else _call(emit, node, "pad", m, pad=(0, 1)) for m in (attn_mask, kpm)
    ]


def _heads(emit, node, x, static, rows, head, name):
    """k or v as (N·H, S, head_dim): the projection's view and transpose, or static_k/v."""
    if static is None:
        x = _call(emit, node, "view", x, shape=(node(x).shape[0], rows, head))
        return _call(emit, node, "transpose", x, dim0=0, dim1=1)
    shape = node(static).shape
    for d, want in ((0, rows), (2, head)):
        if len(shape) != 3 or shape[d] != want:
            raise EvaluationError(
                f"expecting {name}.size({d}) of {want}, but got "
                f"{shape[d] if len(shape) > d else shape}"
            )
    return static


def _size(shape):
    return f"torch.Size([{', '.join(map(str, shape))}])"


def _shape_check(node, sq, sk, sv, t, heads):
    """F._mha_shape_check: batched (3-D) or unbatched (2-D) inputs and masks."""
    kpm, mask = t["key_padding_mask"], t["attn_mask"]
    if len(sq) == 3:
        if len(sk) != 3 or len(sv) != 3:
            raise EvaluationError(
                f"For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                f"{len(sk)}-D and {len(sv)}-D tensors respectively"
            )
        if kpm is not None and len(node(kpm).shape) != 2:
            raise EvaluationError(
                f"For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D "
                f"but found {len(node(kpm).shape)}-D tensor instead"
            )
        if mask is not None and len(node(mask).shape) not in (2, 3):
            raise EvaluationError(
                f"For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                f"found {len(node(mask).shape)}-D tensor instead"
            )
        return True
    if len(sq) == 2:
        if len(sk) != 2 or len(sv) != 2:
            raise EvaluationError(
                f"For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                f"{len(sk)}-D and {len(sv)}-D tensors respectively"
            )
        if kpm is not None and len(node(kpm).shape) != 1:
            raise EvaluationError(
                f"For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D "
                f"but found {len(node(kpm).shape)}-D tensor instead"
            )
        if mask is not None:
            ms = node(mask).shape
            if len(ms) not in (2, 3):
                raise EvaluationError(
                    f"For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or "
                    f"3-D but found {len(ms)}-D tensor instead"
                )
            want = (heads, sq[0], sk[0])
            if len(ms) == 3 and ms != want:
                raise EvaluationError(
                    f"Expected `attn_mask` shape to be {want} but got {_size(ms)}"
                )
        return False
    raise EvaluationError(
        f"query should be unbatched 2D or batched 3D tensor but received {len(sq)}-D query tensor"
    )


ROWS = [
    Op(
        _NAME,
        None,
        (),
        "the nodes of the calls it makes: TBackward0 and AddmmBackward0 (MmBackward0 without "
        "a bias) per linear, ViewBackward0, UnsqueezeBackward0, TransposeBackward0, "
        "SqueezeBackward1, CloneBackward0, SelectBackward0 (or SplitWithSizesBackward0 / "
        "SplitBackward0 of the weights), MulBackward0, BmmBackward0 or BaddbmmBackward0, "
        "SoftmaxBackward0, MeanBackward1; with need_weights=False "
        "scaled_dot_product_attention's nodes and PermuteBackward0",
        None,
        arity=3,
        params=_PARAMS,
        tensor_params=_TENSORS,
        free=tuple(k for k, v in _PARAMS.items() if v is REQUIRED),
        lower=_mha_lower,
        call=f"{_NAME}(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, "
        "in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, "
        "...)",
        mirror="F.multi_head_attention_forward(query, key, value, embed_dim_to_check, "
        "num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, "
        "out_proj_weight, out_proj_bias, ...)",
        rule="(attn_output, attn_weights): softmax(q kᵀ/√d + mask) v per head, projected; "
        "the weights dropped for dropout_p > 0 and training=True",
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("query", "key", "value"),
    ),
    Op(  # torch.cat of two 3-D tensors: PyTorch's result is contiguous whatever theirs are
        "mha_cat",
        lambda a, b, dim: np.ascontiguousarray(np.concatenate((a, b), axis=dim)),
        _cat_grads,
        "CatBackward0",
        _cat_shape,
        params={"dim": 0},
        saves="none",
        public=False,
    ),
]
