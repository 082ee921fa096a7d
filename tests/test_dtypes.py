"""dtypes, type promotion, casts, integer arithmetic and integer/bool printing, each checked
against torch 2.13 itself (skipped without torch unless GRADCLI_REQUIRE_TORCH=1)."""

import itertools
import json
import math

import numpy as np
import pytest
from conftest import _compiled, our_labels, torch_labels

import gradcli
from gradcli import api, dtypes, engine, intops
from gradcli.errors import EvaluationError, GradcliError, InputError, UnknownNameError
from gradcli.inputs import parse_value, to_array
from gradcli.torchrepr import tensor_repr

NAMES = list(dtypes.DTYPES)
INTS = [n for n in NAMES if n.startswith(("int", "uint"))]
TENSORS = [(n, k) for n in NAMES for k in ("tensor", "zerodim")]
SCALARS = [True, 3, 2.5, 2**63]  # PyTorch reads 2**63 as uint64
OPERANDS = TENSORS + SCALARS


def _t(torch, op):
    """A torch operand for one of ours: a tensor of two elements or zero dims, or the scalar."""
    if not isinstance(op, tuple):
        return op
    name, kind = op
    return torch.ones(() if kind == "zerodim" else (2,), dtype=getattr(torch, name))


def _torch_error(f):
    try:
        f()
    except Exception as e:  # the oracle's own exception: compare the text only
        return str(e)
    return None


# --- names ---------------------------------------------------------------------------------


def test_names_are_torchs(torch):
    for name, dt in dtypes.DTYPES.items():
        assert str(getattr(torch, name)) == dtypes.torch_name(dt) == f"torch.{name}"
        assert dtypes.lookup(name) == dtypes.lookup(f"torch.{name}") == dt
        assert torch.tensor([], dtype=getattr(torch, name)).numpy().dtype == dt
    for alias, name in dtypes.ALIASES.items():
        assert getattr(torch, alias) == getattr(torch, name)
        assert dtypes.lookup(f"torch.{alias}") == dtypes.DTYPES[name]


@pytest.mark.parametrize("name", ["torch.complex64", "long", "float16", "torch.", "int", ""])
def test_unknown_dtype_names(name):
    with pytest.raises(UnknownNameError) as e:
        dtypes.lookup(name)
    assert "torch.int64/torch.long" in e.value.to_dict()["message"]


# --- type promotion ------------------------------------------------------------------------


def test_promote_types_table(torch):
    for a, b in itertools.product(NAMES, repeat=2):
        want = torch.promote_types(getattr(torch, a), getattr(torch, b))
        assert dtypes.torch_name(dtypes.promote_types(a, b)) == str(want), (a, b)


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_result_type_pairs(torch, default):
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    try:
        for a, b in itertools.product(OPERANDS, repeat=2):
            err = _torch_error(lambda a=a, b=b: torch.result_type(_t(torch, a), _t(torch, b)))
            if err is not None:  # bool with 2**63
                with pytest.raises(EvaluationError) as e:
                    dtypes.result_type(a, b, default_float=default)
                assert e.value.message == err
                continue
            want = torch.result_type(_t(torch, a), _t(torch, b))
            got = dtypes.result_type(a, b, default_float=default)
            assert f"torch.{got.name}" == str(want), (a, b)  # uint64 for 2**63 with itself
    finally:
        torch.set_default_dtype(old)


def test_result_type_triples(torch):
    """Three operands at once (not pairwise: bool with uint8 and int8 zero-dims is int16).
    torch.clamp promotes its three tensors, or a tensor with two scalar bounds, together."""

    def clamp(*ops):
        return torch.clamp(*(_t(torch, o) for o in ops)).dtype

    for ops in itertools.product(TENSORS, repeat=3):
        if any(o[0] != "bool" for o in ops):  # clamp has no loop for three bools
            assert dtypes.torch_name(dtypes.result_type(*ops)) == str(clamp(*ops)), ops
    for ops in itertools.product(TENSORS[4:], SCALARS, SCALARS):  # clamp skips floats
        err = _torch_error(lambda ops=ops: clamp(*ops))
        if err is None:
            assert dtypes.torch_name(dtypes.result_type(*ops)) == str(clamp(*ops)), ops
        elif err.startswith("Promotion"):
            with pytest.raises(EvaluationError) as e:
                dtypes.result_type(*ops)
            assert e.value.message == err
        else:  # clamp's own checks: 2**63 as an int32 bound, no loop for bool
            assert "without overflow" in err or err.endswith("not implemented for 'Bool'")
    assert dtypes.result_type(("bool", "tensor"), ("uint8", "zerodim"), ("int8", "zerodim")) == (
        np.int16
    )


def test_result_type_of_arrays():
    assert dtypes.result_type(np.zeros(2, np.int8), np.zeros((), np.int64)) == np.int8
    assert dtypes.result_type(np.zeros(2, np.int8), np.zeros((), np.float64)) == np.float64
    assert dtypes.result_type(np.zeros(2, bool), 2.5, default_float="float64") == np.float64
    assert dtypes.result_type(np.zeros(2, np.float32), np.float64(1.0)) == np.float32


def _check_kind(torch, kind, torch_op, operands, default="float32", **kw):
    """promote_for(kind) against the dtype (or the error) of a real torch call."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    try:
        for ops in operands:
            if not any(isinstance(o, tuple) for o in ops):
                continue  # PyTorch's operators need a tensor
            err = _torch_error(lambda ops=ops: torch_op(*(_t(torch, o) for o in ops)))
            if err is not None:
                with pytest.raises(EvaluationError) as e:
                    dtypes.promote_for(kind, *ops, default_float=default, **kw)
                assert e.value.message == err, (kind, ops)
            else:
                want = torch_op(*(_t(torch, o) for o in ops)).dtype
                got = dtypes.promote_for(kind, *ops, default_float=default, **kw)
                assert dtypes.torch_name(got) == str(want), (kind, ops)
    finally:
        torch.set_default_dtype(old)


PAIRS = list(itertools.product(OPERANDS, repeat=2))
SINGLES = [(o,) for o in TENSORS]


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_promote_for_kinds(torch, default):
    check = _check_kind
    check(torch, "promote", torch.maximum, [p for p in PAIRS if all(map(_is_t, p))], default)
    check(torch, "promote", lambda a, b: a * b, PAIRS, default)
    # (a scalar / a tensor is reciprocal, then mul, in PyTorch: two promotions, not one)
    check(torch, "float", lambda a, b: a / b, [p for p in PAIRS if _is_t(p[0])], default)
    check(torch, "float", torch.sin, SINGLES, default)
    check(torch, "float", torch.exp, SINGLES, default)
    check(torch, "bool", lambda a, b: a == b, PAIRS, default)
    check(torch, "bool", lambda a, b: a < b, PAIRS, default)
    check(torch, "bool", torch.isnan, SINGLES, default)
    check(torch, "bool", torch.logical_xor, [p for p in PAIRS if all(map(_is_t, p))], default)
    check(torch, "same", lambda x: x.reshape(-1), SINGLES, default)
    check(torch, "long", torch.argmax, [s for s in SINGLES if s[0][0] != "bool"], default)
    check(torch, "long", torch.argsort, SINGLES, default)
    check(torch, "sum", torch.sum, SINGLES, default)
    check(torch, "sum", torch.prod, SINGLES, default)
    check(torch, "sum", lambda x: x.reshape(-1).cumsum(0), SINGLES, default)
    for kernel, f in [
        ("mean", torch.mean),
        ("nanmean", torch.nanmean),
        ("var", torch.var),
        ("std", torch.std),
        ("norm", torch.norm),
        ("softmax_lastdim_kernel_impl", lambda x: x.softmax(-1)),
    ]:
        check(torch, "floating_only", f, SINGLES, default, kernel=kernel)
    for kernel, f in [
        ("bitwise_and_cpu", lambda a, b: a & b),
        ("bitwise_or_cpu", lambda a, b: a | b),
        ("bitwise_xor_cpu", lambda a, b: a ^ b),
    ]:
        check(torch, "integral_only", f, PAIRS, default, kernel=kernel)
    check(torch, "integral_only", torch.bitwise_not, SINGLES, default, kernel="bitwise_not_cpu")
    check(torch, "integer_only", lambda a, b: a << b, PAIRS, default, kernel="lshift_cpu")
    check(torch, "integer_only", lambda a, b: a >> b, PAIRS, default, kernel="rshift_cpu")


def _is_t(op):
    return isinstance(op, tuple)


def test_promote_for_rejects_unknown_kind():
    with pytest.raises(ValueError):
        dtypes.promote_for("frobnicate", 2.5)


# --- casts ---------------------------------------------------------------------------------

FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 0.7, -0.7, 1.9, -1.9, 127.5, 128.0, -128.9]
FLOATS += [-129.0, 255.9, 256.0, 300.7, -300.7, 32767.5, 40000.0, 65543.0, 2.0**31 - 1, 2.0**31]
FLOATS += [-(2.0**31), -(2.0**31) - 1, 2.0**31 + 256, 2.0**32 + 5, 3e9, -3e9, 2.0**53 + 2]
FLOATS += [2.0**63, -(2.0**63), 2.0**64, 1e20, -1e20, 1e300, -1e300, 5e-324, 1e-40]


def _same(ours, theirs):
    """Equal values, dtypes, nan positions and signs of zero."""
    assert ours.dtype == theirs.dtype
    if ours.dtype.kind == "f":
        num = ~np.isnan(theirs)  # a nan's sign bit is noise
        np.testing.assert_array_equal(np.signbit(ours[num]), np.signbit(theirs[num]))
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("src", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 37])  # PyTorch's scalar loop and its vectorised one
def test_cast_from_float(torch, src, n):
    with np.errstate(over="ignore"):
        a = np.repeat(np.array(FLOATS, src), n)
    for dst in NAMES:
        want = torch.from_numpy(a).to(getattr(torch, dst)).numpy()
        _same(dtypes.cast(a, dst), want)
        _same(dtypes.cast(a[0], dst), want[0:1].reshape(()))


def test_cast_between_integers_and_bool(torch):
    vals = [0, 1, -1, 2, 127, 128, -128, -129, 255, 256, 32767, -32768, 65535, 2**31 - 1]
    vals += [-(2**31), 2**31, 2**32 + 7, 2**53 + 1, 2**24 + 1, 2**63 - 1, -(2**63), 16777217]
    for src in INTS + ["bool"]:
        a = dtypes.cast(np.array(vals, np.int64), src)
        for dst in NAMES:
            want = torch.from_numpy(a).to(getattr(torch, dst)).numpy()
            _same(dtypes.cast(a, dst), want)


def test_scalar_array_wraps_as_torch(torch):
    for name in NAMES:
        for v in [1000, 200, -129, 2**40 + 3, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), True, 2.5]:
            t = torch.zeros(1, dtype=getattr(torch, name))
            if isinstance(v, float) and name[0] != "f" or name == "bool" and v >= 2**63:
                continue  # a float promotes an integer tensor to float; bool refuses 2**63
            want = (t + v).numpy()[0]
            assert dtypes.result_type(t.numpy(), v) == want.dtype
            assert dtypes.scalar_array(v, want.dtype).item() == want.item(), (name, v)
    for v in [-(2**63) - 1, 2**64]:
        err = _torch_error(lambda v=v: torch.zeros(1, dtype=torch.int64) + v)
        with pytest.raises(EvaluationError) as e:
            dtypes.scalar_array(v, "int64")
        assert e.value.message == err


# --- integer arithmetic --------------------------------------------------------------------


def _edges(name):
    info = np.iinfo(name)
    vals = [info.min, info.min + 1, -7, -5, -2, -1, 0, 1, 2, 3, 5, 7, 100, info.max - 1, info.max]
    return np.array(sorted({v for v in vals if info.min <= v <= info.max}), name)


def _grid(a, b):
    return np.repeat(a, b.size), np.tile(b, a.size)


def _torch_or_error(torch, f, *arrays):
    try:
        return f(*(torch.from_numpy(np.ascontiguousarray(x)) for x in arrays)).numpy(), None
    except Exception as e:
        return None, str(e)


def _agree(torch, ours, theirs, *arrays):
    want, err = _torch_or_error(torch, theirs, *arrays)
    if err is not None:
        with pytest.raises(EvaluationError) as e:
            ours(*arrays)
        assert e.value.message == err
    else:
        _same(ours(*arrays), want)


DIVISIONS = [
    (intops.floor_divide, lambda a, b: a // b),
    (intops.remainder, lambda a, b: a % b),
    (intops.fmod, lambda a, b: a.fmod(b)),
    (intops.trunc_divide, lambda a, b: a.div(b, rounding_mode="trunc")),
]


@pytest.mark.parametrize("name", INTS)
@pytest.mark.parametrize("k", range(len(DIVISIONS)))
def test_integer_division(torch, name, k):
    ours, theirs = DIVISIONS[k]
    e = _edges(name)
    a, b = _grid(e, e[e != 0])
    if k == 3 and name in ("int32", "int64"):  # PyTorch dies of SIGFPE at min / -1
        fault = (a == np.iinfo(name).min) & (b == -1)
        assert ours(a[fault], b[fault]).tolist() == [np.iinfo(name).min]
        a, b = a[~fault], b[~fault]
    _agree(torch, ours, theirs, a, b)
    _agree(torch, ours, theirs, e, np.zeros_like(e))  # PyTorch's "ZeroDivisionError"
    _agree(torch, ours, theirs, e[:1], np.array([1, 0], name))
    assert ours(e[:0], e[:0]).dtype == e.dtype


def test_integer_division_by_zero_message(torch):
    with pytest.raises(EvaluationError) as e:
        intops.floor_divide(np.array([1]), np.array(0))
    assert e.value.message == _torch_error(lambda: torch.tensor([1]) // 0) == "ZeroDivisionError"
    assert e.value.exit_code == 1


@pytest.mark.parametrize("name", ["float32", "float64"])
@pytest.mark.parametrize("k", range(len(DIVISIONS)))
def test_float_division_rules(torch, name, k):
    """PyTorch's float //, %, fmod and trunc division at nan, ±inf, ±0 and signs."""
    vals = np.array([-math.inf, -5.5, -4.0, -2.0, -0.0, 0.0, 2.0, 3.5, 4.0, math.inf, math.nan])
    a, b = _grid(vals.astype(name), vals.astype(name))
    ours, theirs = DIVISIONS[k]
    _agree(torch, ours, theirs, a, b)


def test_true_division(torch):
    big = [2**40 + 1, -(2**62) - 3, 7, 0, -1, 2**24 + 1]
    for name in INTS + ["bool"]:
        e = dtypes.cast(np.array(big, np.int64), name)
        a, b = _grid(e, e)
        for default in ("float32", "float64"):
            dt = dtypes.promote_for("float", a, b, default_float=default)
            want = torch.from_numpy(a).div(torch.from_numpy(b)).numpy()
            if default == "float32":
                _same(intops.true_divide(a, b, dt), want)
            assert dt == (want.dtype if default == "float32" else np.float64)


@pytest.mark.parametrize("name", INTS)
def test_shifts(torch, name):
    e = _edges(name)
    counts = np.array([c for c in [-1, 0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127]])
    info = np.iinfo(name)
    counts = counts[(counts >= info.min) & (counts <= info.max)].astype(name)
    a, b = _grid(e, counts)
    _agree(torch, intops.left_shift, lambda x, y: x << y, a, b)
    _agree(torch, intops.right_shift, lambda x, y: x >> y, a, b)
    _agree(torch, intops.left_shift, lambda x, y: x << y, e[3:4], np.array(2, name))


def test_shift_and_bitwise_refusals(torch):
    f, bl = np.array([1.5], np.float32), np.array([True])
    for x, y in [(f, f), (bl, bl), (f.astype(np.float64), f.astype(np.float64))]:
        _agree(torch, intops.left_shift, lambda a, b: a << b, x, y)
        _agree(torch, intops.right_shift, lambda a, b: a >> b, x, y)
        _agree(torch, intops.bitwise_and, lambda a, b: a & b, x, y)
        _agree(torch, intops.bitwise_or, lambda a, b: a | b, x, y)
        _agree(torch, intops.bitwise_xor, torch.bitwise_xor, x, y)
        _agree(torch, intops.bitwise_not, torch.bitwise_not, x)


@pytest.mark.parametrize("name", INTS + ["bool"])
def test_bitwise(torch, name):
    e = dtypes.cast(_edges("int64"), name)
    a, b = _grid(e, e)
    _agree(torch, intops.bitwise_and, lambda x, y: x & y, a, b)
    _agree(torch, intops.bitwise_or, lambda x, y: x | y, a, b)
    _agree(torch, intops.bitwise_xor, lambda x, y: x ^ y, a, b)
    _agree(torch, intops.bitwise_not, lambda x: ~x, e)


@pytest.mark.parametrize("name", INTS)
def test_integer_power(torch, name):
    e = _edges(name)
    info = np.iinfo(name)
    exps = np.array([x for x in [-3, -2, -1, 0, 1, 2, 3, 7, 8, 15, 31, 40, 63, 64, 100, 127, 255]])
    exps = exps[(exps >= info.min) & (exps <= info.max)].astype(name)
    a, b = _grid(e, exps)
    _agree(torch, intops.power, lambda x, y: x**y, a, b)
    _agree(torch, intops.power, lambda x, y: x**y, e, np.array(3, name))  # a zero-dim exponent


@pytest.mark.parametrize("name", INTS + ["bool", "float32"])
def test_python_int_exponent_checks(torch, name):
    dt = dtypes.DTYPES[name]
    for v in [-1, -5, 0, 2, 127, 128, 255, 256, 2**40]:
        out_dt = dtypes.result_type((name, "tensor"), v)
        err = _torch_error(lambda v=v: torch.ones(2, dtype=getattr(torch, name)) ** v)
        if err is None:
            dtypes.scalar_array(v, out_dt)
            intops.check_exponent(v, out_dt)
            a = dtypes.cast(np.ones(2, dt) * 3, out_dt)
            want = (torch.from_numpy(a) ** v).numpy()
            with np.errstate(over="ignore"):
                _same(intops.power(a, dtypes.scalar_array(v, out_dt)), want)
        else:
            with pytest.raises(EvaluationError) as e:
                intops.check_exponent(v, out_dt)
            assert e.value.message == err, (name, v)


def test_bool_arithmetic(torch):
    """bool + bool stays bool in PyTorch (logical or), bool * bool is and; bool - bool, -bool,
    abs, //, %, ** refuse; a Python int or an int tensor promotes bool to int64."""
    a, b = _grid(np.array([True, False]), np.array([True, False]))
    assert (torch.from_numpy(a) + torch.from_numpy(b)).dtype == torch.bool
    assert dtypes.promote_for("promote", a, b) == np.bool_
    _same(np.add(a, b), (torch.from_numpy(a) + torch.from_numpy(b)).numpy())
    _same(np.multiply(a, b), (torch.from_numpy(a) * torch.from_numpy(b)).numpy())
    _agree(torch, intops.subtract, lambda x, y: x - y, a, b)
    _agree(torch, intops.negative, lambda x: -x, a)
    _agree(torch, intops.absolute, torch.abs, a)
    for ours, theirs in DIVISIONS:
        _agree(torch, ours, theirs, a, b)
    _agree(torch, intops.power, lambda x, y: x**y, a, b)
    assert dtypes.result_type(a, 1) == np.int64 == dtypes.promote_for("sum", a)
    assert torch.from_numpy(a).sum().item() == np.sum(a, dtype=dtypes.promote_for("sum", a))


@pytest.mark.parametrize("name", INTS)
def test_wraparound_of_numpy_ufuncs_is_torchs(torch, name):
    """add, sub, mul, neg, abs and sum need no helper: numpy wraps as PyTorch does."""
    e = _edges(name)
    a, b = _grid(e, e)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    with np.errstate(over="ignore"):
        _same(np.add(a, b), (ta + tb).numpy())
        _same(intops.subtract(a, b), (ta - tb).numpy())
        _same(np.multiply(a, b), (ta * tb).numpy())
        _same(intops.negative(e), (-torch.from_numpy(e)).numpy())
        _same(intops.absolute(e), torch.from_numpy(e).abs().numpy())
        for f in ("sum", "prod"):
            want = getattr(torch.from_numpy(e), f)().numpy()
            got = getattr(np, f)(e, dtype=dtypes.promote_for("sum", e))
            _same(np.asarray(got), want)
        _same(np.cumsum(e, dtype=np.int64), torch.from_numpy(e).cumsum(0).numpy())


SCALAR_OPS = [
    (intops.floor_divide, lambda a, b: a // b),
    (intops.remainder, lambda a, b: a % b),
    (intops.left_shift, lambda a, b: a << b),
    (intops.right_shift, lambda a, b: a >> b),
    (intops.bitwise_and, lambda a, b: a & b),
    (intops.bitwise_xor, lambda a, b: a ^ b),
    (np.add, lambda a, b: a + b),
    (np.multiply, lambda a, b: a * b),
]


@pytest.mark.parametrize("name", INTS + ["bool"])
def test_operations_with_python_scalars(torch, name):
    """A Python scalar on either side: result_type, then convert, then the operation."""
    e = dtypes.cast(_edges("int64"), name)
    for (ours, theirs), v in itertools.product(SCALAR_OPS, [-1, 0, 3, 200, 1000, True, 2.5]):
        for left in (False, True):
            args = (v, e) if left else (e, v)
            try:
                want, err = theirs(*(torch.from_numpy(x) if x is e else x for x in args)), None
            except Exception as exc:
                want, err = None, str(exc)
            with np.errstate(over="ignore"):
                try:
                    dt = dtypes.result_type(*args)
                    got = ours(*(dtypes.convert(x, dt) for x in args))
                except EvaluationError as exc:
                    assert exc.message == err, (name, v, left, theirs)
                    continue
            assert err is None, (name, v, left, err)
            _same(np.asarray(got), want.numpy())


def test_comparisons_use_the_common_dtype(torch):
    """int64 16777217 == 16777216.0 in float32, as PyTorch compares in result_type."""
    a = np.array([16777217, 3])
    dt = dtypes.result_type(a, 16777216.0)
    ours = dtypes.convert(a, dt) == dtypes.convert(16777216.0, dt)
    _same(ours, (torch.from_numpy(a) == 16777216.0).numpy())


# --- printing and JSON ---------------------------------------------------------------------

SHAPES = [(), (0,), (1,), (2,), (5,), (2, 0), (0, 3), (3, 4), (2, 3, 4), (1, 1, 1), (999,)]
SHAPES += [(1000,), (1001,), (40, 30), (2, 3, 200), (4, 60), (30,), (7, 1001), (1, 0, 2)]


def _random_ints(rng, name, shape, spread):
    if name == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(name)
    if spread == 0:
        return rng.integers(info.min, info.max, shape, dtype=name, endpoint=True)
    lo = -(10**spread) if info.min < 0 else 0
    return rng.integers(max(lo, info.min), min(10**spread, info.max), shape).astype(name)


@pytest.mark.parametrize("name", NAMES[2:])
def test_integer_and_bool_repr(torch, name):
    rng = np.random.default_rng(len(name))
    for shape, spread in itertools.product(SHAPES, range(4)):
        a = _random_ints(rng, name, shape, spread)
        assert tensor_repr(a) == repr(torch.from_numpy(a)), (shape, spread)


def test_known_integer_strings():
    assert tensor_repr(np.array([0, 2, 1])) == "tensor([0, 2, 1])"
    assert tensor_repr(np.array([True, False])) == "tensor([ True, False])"
    assert tensor_repr(np.array(5)) == "tensor(5)"
    assert tensor_repr(np.array(True)) == "tensor(True)"
    assert tensor_repr(np.array([], np.int64)) == "tensor([], dtype=torch.int64)"
    assert tensor_repr(np.array([3, -1], np.int8)) == "tensor([ 3, -1], dtype=torch.int8)"
    assert tensor_repr(np.array([255], np.uint8)) == "tensor([255], dtype=torch.uint8)"
    assert tensor_repr(np.array(7, np.int32)) == "tensor(7, dtype=torch.int32)"


def test_json_ready(torch):
    rng = np.random.default_rng(1)
    for name in NAMES[2:]:
        for shape in [(), (0,), (3,), (2, 3), (2, 0, 1)]:
            a = _random_ints(rng, name, shape, 0)
            got = dtypes.json_ready(a)
            assert json.dumps(got) == json.dumps(torch.from_numpy(a).tolist())
            assert all(type(v) in (int, bool) for v in np.ravel(np.array(got, object)))
    assert json.dumps(dtypes.json_ready(np.array([True, False]))) == "[true, false]"
    with pytest.raises(TypeError):
        dtypes.json_ready(np.array([1.5]))


# --- programs on typed inputs, against torch -----------------------------------------------


I3 = "int64:3,-4,5"
B3 = "bool:true,false,true"
X3 = "1.5,-2,3.25"
# (program, inputs): each runs in gradcli and, as Python, in torch on the same tensors
PROGRAMS = [
    ("(x * i).sum()", {"x": X3, "i": I3}),
    ("(x * (i // 2)).sum()", {"x": X3, "i": I3}),
    ("i // 2", {"i": I3}),
    ("i // -3", {"i": I3}),
    ("7 // i", {"i": I3}),
    ("i % 3", {"i": I3}),
    ("i % -3", {"i": I3}),
    ("-7 % i", {"i": I3}),
    ("i + 2", {"i": I3}),
    ("i * 2.5", {"i": I3}),
    ("i / 2", {"i": I3}),
    ("i ** 2", {"i": I3}),
    ("2 ** i.abs()", {"i": I3}),
    ("i ** 0.5", {"i": I3}),
    ("-i", {"i": I3}),
    ("~i", {"i": I3}),
    ("~m", {"m": B3}),
    ("i & 6", {"i": I3}),
    ("i | 8", {"i": I3}),
    ("i << 2", {"i": I3}),
    ("i >> 1", {"i": I3}),
    ("m << 1", {"m": B3}),
    ("i >> 70", {"i": I3}),
    ("i << -1", {"i": I3}),
    ("i.bitwise_xor(i + 1)", {"i": I3}),
    ("m & (i > 0)", {"m": B3, "i": I3}),
    ("m | (i > 4)", {"m": B3, "i": I3}),
    ("m + m", {"m": B3}),
    ("m * m", {"m": B3}),
    ("m + 1", {"m": B3}),
    ("m.sum()", {"m": B3}),
    ("i.sum()", {"i": I3}),
    ("i.prod()", {"i": I3}),
    ("i.max()", {"i": I3}),
    ("i.cumsum(0)", {"i": I3}),
    ("i.sin()", {"i": I3}),
    ("i.exp() * x", {"x": X3, "i": I3}),
    ("i < x", {"x": X3, "i": I3}),
    ("i == 5", {"i": I3}),
    ("i.abs()", {"i": I3}),
    ("i.relu()", {"i": I3}),
    ("i.clamp(0.5)", {"i": I3}),
    ("i.clamp(0, 4)", {"i": I3}),
    ("i.clamp(max=2.5)", {"i": I3}),
    ("m.square()", {"m": B3}),
    ("i.square()", {"i": I3}),
    ("i.reshape(3, 1) * x", {"x": X3, "i": I3}),
    ("i.sum(dtype=torch.float64)", {"i": I3}),
    ("i.float() / 4", {"i": I3}),
    ("i.to(torch.int8) * 100", {"i": I3}),
    ("j * 100", {"j": "int8:3,-4,5"}),
    ("j + 1000", {"j": "int8:3,-4,5"}),
    ("u - 5", {"u": "uint8:3,4,250"}),
    ("u + j", {"u": "uint8:3,4,250", "j": "int8:3,-4,5"}),
    ("k * 2 + i", {"k": "int32:3,-4,5", "i": I3}),
    ("k.sum()", {"k": "int32:3,-4,5"}),
    ("(x * m).sum()", {"x": X3, "m": B3}),
    ("(x * ((x > 1) + (x > 2))).sum()", {"x": X3}),
    ("(d * x).sum()", {"x": X3, "d": "float64:1,2,3"}),
    ("d * 2 + 1", {"d": "float64:1,2,3"}),
    ("(x.double() * 2).sum()", {"x": X3}),
    ("(x.float() * 2).sum()", {"x": X3}),
    ("(d.float() * x).sum()", {"x": X3, "d": "float64:1,2,3"}),
    ("(x * x.long()).sum()", {"x": X3}),
    ("x.long()", {"x": "nan,inf,-2.7"}),
    ("x.int()", {"x": "-0.0,1e10,2.5"}),
    ("x.bool()", {"x": "nan,0,-0.0"}),
    ("x.to(torch.uint8)", {"x": "300.7,-1,255"}),
    ("(x.to(torch.float64) + x.type(torch.float64)).sum()", {"x": X3}),
    ("x.sum(dtype=torch.float64)", {"x": X3}),
    ("x.mean(dtype=torch.float64)", {"x": X3}),
    ("x.prod(dtype=torch.float64)", {"x": X3}),
    ("x.cumsum(0, dtype=torch.float64).sum()", {"x": X3}),
    ("x.softmax(0, dtype=torch.float64)[0]", {"x": X3}),
    ("x.log_softmax(0, dtype=torch.float64)[1]", {"x": X3}),
    ("(x * i.to(torch.float64)).sum()", {"x": X3, "i": I3}),
    ("i.long() + 1", {"i": I3}),
    ("(x * i).sum() + (i * 0.5).sum()", {"x": X3, "i": I3}),
    ("e.sum()", {"e": "int64:[]"}),
    ("e + 1", {"e": "int64:[]"}),
    ("i / 0", {"i": I3}),
    ("(x // i).detach()", {"x": X3, "i": I3}),
    ("(i % x).sum()", {"x": X3, "i": I3}),
    ("(x % i).sum()", {"x": X3, "i": I3}),
    ("torch.where(m, i, x).sum()", {"m": B3, "x": X3, "i": I3}),
    ("torch.where(m, i, 7)", {"m": B3, "i": I3}),
    ("i @ i", {"i": I3}),
    ("(torch.cat([i, x]) * 2).sum()", {"x": X3, "i": I3}),
    ("torch.maximum(i, x).sum()", {"x": X3, "i": I3}),
    ("i.reshape(3, 1).T", {"i": I3}),
    ("i.flip(0)[1:]", {"i": I3}),
    ("(x * (i > 0) * (i >= x)).sum()", {"x": X3, "i": I3}),
    ("x.long() // 2", {"x": "-inf,-0.0,7.9"}),
    ("(x.int().double() * x).sum()", {"x": "nan,-0.0,2.5"}),
    ("i * 4611686018427387904", {"i": I3}),
]


def _inputs(values, dtype):
    return {k: to_array(parse_value(v), dtype, k) for k, v in values.items()}


def _ours(program, values, dtype):
    with api.quietly():
        prog, arrays, wrt, cap, _ = api.prepare(program, values, None, dtype)
        nodes, out = engine.forward(prog, arrays, set(wrt), dtype, cap)
    return nodes[out]


def _theirs(torch, program, arrays):
    leaves = {
        k: torch.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f") for k, a in arrays.items()
    }
    code, out = _compiled(program)
    ns = {"torch": torch, **leaves}
    exec(code, ns)
    return ns[out], leaves


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program,values", PROGRAMS, ids=[p for p, _ in PROGRAMS])
def test_programs_on_typed_inputs(torch, program, values, dtype):
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        arrays = _inputs(values, dtype)
        theirs, leaves = _theirs(torch, program, arrays)
    finally:
        torch.set_default_dtype(torch.float32)
    ours = _ours(program, values, dtype)
    assert np.asarray(ours.value).dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.value, theirs.detach().numpy(), rtol=1e-6)
    assert ours.requires_grad == theirs.requires_grad
    if not theirs.requires_grad:
        return
    seed = np.ones(ours.shape, np.asarray(ours.value).dtype)
    result = gradcli.evaluate(
        program, values, dtype=dtype, seed_vector=None if not ours.shape else seed
    )
    theirs.backward(torch.from_numpy(seed))
    assert our_labels(result) == torch_labels(theirs)
    assert result.grad_fn == type(theirs.grad_fn).__name__
    assert set(result.grad) == {k for k, v in leaves.items() if v.requires_grad}
    for k, g in result.grad.items():
        want = leaves[k].grad
        if want is None:
            assert g is None
        else:
            assert g.dtype == want.numpy().dtype
            np.testing.assert_allclose(g, want.numpy(), rtol=1e-6)


# programs torch refuses: the same message
REFUSED = [
    ("i ** -1", {"i": I3}),
    ("i // 0", {"i": I3}),
    ("i % (i - 3)", {"i": I3}),
    ("i.mean()", {"i": I3}),
    ("m.mean()", {"m": B3}),
    ("i.std()", {"i": I3}),
    ("i.softmax(0)", {"i": I3}),
    ("-m", {"m": B3}),
    ("m - m", {"m": B3}),
    ("x & x", {"x": X3}),
    ("x.bitwise_not()", {"x": X3}),
    ("x << 1", {"x": X3}),
    ("x.bitwise_left_shift(m)", {"x": X3, "m": B3}),
    ("m.floor()", {"m": B3}),
    ("m.relu()", {"m": B3}),
    ("m // m", {"m": B3}),
    ("i.norm()", {"i": I3}),
    ("m.abs()", {"m": B3}),
]


@pytest.mark.parametrize("program,values", REFUSED, ids=[p for p, _ in REFUSED])
def test_refusals_are_torchs(torch, program, values):
    arrays = _inputs(values, "float32")
    message = _torch_error(lambda: _theirs(torch, program, arrays))
    assert message is not None
    with pytest.raises(GradcliError) as info:
        _ours(program, values, "float32")
    assert info.value.message.startswith(message.splitlines()[0])
    assert info.value.exit_code == 1


# --- typed VALUEs: command line, -i JSON, batch records, --wrt -----------------------------

TYPED_VALUES = [
    ("int64:0,2,1", np.array([0, 2, 1])),
    ("int64: -3", np.array(-3)),
    ("int32:[[1, 2], [3, 4]]", np.array([[1, 2], [3, 4]], np.int32)),
    ("int8:-128,127", np.array([-128, 127], np.int8)),
    ("uint8:0,255", np.array([0, 255], np.uint8)),
    ("bool:[true,false]", np.array([True, False])),
    ("bool:true,false,1,0", np.array([True, False, True, False])),
    ("float64:1,2", np.array([1.0, 2.0])),
    ("float32:[1.5]", np.array([1.5], np.float32)),
    ("int64:[]", np.array([], np.int64)),
    ("int64:[9223372036854775807]", np.array([2**63 - 1])),
    ("int64:zeros(2)", np.zeros(2, np.int64)),
    ("int64:arange(3)", np.arange(3)),
    ("float64:linspace(0,1,3)", np.linspace(0, 1, 3)),
    ({"dtype": "int64", "data": [0, 2, 1]}, np.array([0, 2, 1])),
    ({"dtype": "bool", "data": [[True], [False]]}, np.array([[True], [False]])),
    ({"dtype": "int32", "data": 4.0}, np.array(4, np.int32)),
    ({"dtype": "float64", "data": ["nan", 1]}, np.array([np.nan, 1.0])),
]


@pytest.mark.parametrize("value,want", TYPED_VALUES, ids=[str(v) for v, _ in TYPED_VALUES])
def test_typed_values(value, want):
    got = to_array(parse_value(value) if isinstance(value, str) else value, "float32", "v")
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


BAD_TYPED = [
    ("int8:128", "128 does not fit in int8"),
    ("uint8:-1", "-1 does not fit in uint8"),
    ("int64:[9223372036854775808]", "does not fit in int64"),
    ("int64:1.5", "'1.5' is not a whole number"),
    ("int64:[1.5]", "whole numbers, got 1.5"),
    ("int64:[true]", "whole numbers, got true"),
    ("bool:maybe", "not true, false or a whole number"),
    ("int64:[[1, 2], [3]]", "ragged"),
    ("int64:[1, [2]]", "ragged"),
    ("int64:", "empty value"),
    ("int64:randn(3)", "randn() makes floating point values"),
    ({"dtype": "int64"}, 'exactly the keys "dtype" and "data"'),
    ({"dtype": "int64", "data": [1], "x": 1}, "not x"),
    ({"dtype": "complex64", "data": [1]}, "unknown dtype complex64"),
]


@pytest.mark.parametrize("value,fragment", BAD_TYPED, ids=[str(v) for v, _ in BAD_TYPED])
def test_bad_typed_values(value, fragment):
    with pytest.raises(InputError) as info:
        to_array(parse_value(value) if isinstance(value, str) else value, "float32", "v")
    assert fragment in info.value.message and info.value.exit_code == 2


def test_integer_inputs_do_not_require_grad():
    r = gradcli.evaluate("(x * i).sum()", {"x": "1,2", "i": "int64:3,4"})
    assert r.wrt == ["x"] and list(r.grad) == ["x"]
    assert [n.label for n in r.nodes if n.op == "input"] == ["AccumulateGrad", None]
    with pytest.raises(InputError, match="only Tensors of floating point dtype can require"):
        gradcli.evaluate("(x * i).sum()", {"x": "1,2", "i": "int64:3,4"}, wrt="x,i")
    with pytest.raises(EvaluationError, match="element 0 of tensors does not require grad"):
        gradcli.evaluate("(i * 2.5).sum()", {"i": "int64:3,4"})


def _cli(*args, stdin=None):
    from click.testing import CliRunner

    from gradcli.cli import main

    return CliRunner().invoke(main, list(args), input=stdin)


def test_typed_values_on_the_command_line_and_in_json(tmp_path):
    out = _cli("grad", "(x * i).sum()", "x=1,2,3", "i=int64:0,2,1", "--json")
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert got["grad"] == {"x": [0.0, 2.0, 1.0]} and got["dtype"] == "float32"
    node = next(n for n in got["nodes"] if n["name"] == "i")
    assert node["value"] == [0, 2, 1] and node["grad"] is None and node["grad_fn"] is None
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"x": [1, 2], "m": {"dtype": "bool", "data": [True, False]}}))
    out = _cli("grad", "(x * m).sum() + x.double().sum()", "-i", str(path), "--json")
    got = json.loads(out.output)
    assert got["dtype"] == "float64" and got["value"] == 4.0 and got["grad"] == {"x": [2.0, 1.0]}
    text = _cli("grad", "(x * i).sum()", "x=1,2,3", "i=int64:0,2,1").output
    assert "tensor([0, 2, 1])" not in text and "[0, 2, 1]" in text
    out = _cli("grad", "(x * i).sum()", "x=1,2", "i=int64:0,2", "--wrt", "i")
    assert out.exit_code == 2 and "only Tensors of floating point dtype" in out.output


def test_typed_values_in_batch_records():
    lines = [
        {"expr": "(x * i).sum()", "inputs": {"x": [1, 2], "i": {"dtype": "int64", "data": [3, 4]}}},
        {"expr": "(x * m).sum()", "inputs": {"x": [1, 2], "m": "bool:false,true"}},
        {"expr": "(x * i).sum()", "inputs": {"x": [1, 2], "i": {"dtype": "int8", "data": [300]}}},
    ]
    out = _cli("batch", stdin="\n".join(json.dumps(x) for x in lines) + "\n")
    answers = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]
    assert answers[0]["grad"] == {"x": [3.0, 4.0]} and answers[0]["value"] == 11.0
    assert answers[1]["grad"] == {"x": [0.0, 1.0]}
    assert "does not fit in int8" in answers[2]["error"]["message"]


def test_integer_outputs_print_and_serialise_as_torch():
    out = _cli("graph", "i // 2 + (m & m)", "i=int64:3,-4", "m=bool:true,false", "--format", "json")
    assert out.exit_code == 0, out.output
    assert "[1, -2]" in out.output.replace("\n", " ") or '"value": [' in out.output
    text = _cli("graph", "(x * (m | m)).sum()", "x=1,2", "m=bool:true,false").output
    assert "[ True, False]" in text
