"""Shared test helpers: domain-aware inputs, the PyTorch oracle, label walks.

PyTorch is an oracle only. Without it the oracle tests skip, unless GRADCLI_REQUIRE_TORCH=1
(as .ci/run sets), which turns the skip into a failure."""

import ast
import collections
import json
import math
import os
import re
import warnings

import numpy as np
import pytest

import gradcli


def _torch():
    try:
        import torch
    except ImportError:
        if os.environ.get("GRADCLI_REQUIRE_TORCH") == "1":
            pytest.fail("GRADCLI_REQUIRE_TORCH=1 but torch is not installed")
        pytest.skip("torch is not installed (pip install torch==2.13.0)")
    return torch


@pytest.fixture
def torch():
    return _torch()


def sample(shape, domain, rng):
    """Inputs drawn from an operator's domain, away from kinks and ties."""
    n = int(np.prod(shape))
    if domain == "real":
        x = rng.standard_normal(n)
    elif domain == "positive":
        x = rng.uniform(0.5, 2.0, n)
    elif domain == "nonzero":
        x = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 2.0, n)
    elif domain == "away":  # away from 0, where relu/abs have kinks
        x = rng.choice([-1.0, 1.0], n) * rng.uniform(0.2, 2.0, n)
    elif domain == "distinct":  # well separated values: no ties for max/min
        x = rng.permutation(n) * 0.37 - 1.0 + rng.uniform(0, 0.05, n)
    elif domain == "prob":  # inside (0, 1), as probabilities and BCE inputs are
        x = rng.uniform(0.1, 0.9, n)
    elif domain == "unit":
        x = rng.uniform(-0.9, 0.9, n)
    else:
        raise ValueError(domain)
    return x.reshape(shape)


def table_examples():
    """(id, program, {name: (shape, domain)}) for every example of every operator."""
    from gradcli.ops import TABLE

    out = []
    for op in TABLE:
        for k, (text, specs) in enumerate(op.examples):
            out.append(pytest.param(text, specs, id=f"{op.name}-{k}:{text}"))
    return out


def torch_labels(t):
    """The multiset of grad_fn class names reachable from ``t``, as PyTorch records them."""
    seen, out, stack = set(), collections.Counter(), [t.grad_fn]
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        out[type(f).__name__] += 1
        stack.extend(g for g, _ in f.next_functions)
    return out


def our_labels(result):
    from gradcli.ops.results import grad_fns

    return collections.Counter(grad_fns(result.program, result.nodes))


def torch_namespace(torch, dtype):
    """gradcli's functions spelled in PyTorch (the mirror of each operator)."""

    def t(v):
        return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=dtype)

    def reduce(method):
        def f(x, dim=None, keepdim=False):
            x = t(x)
            return (
                getattr(x, method)()
                if dim is None
                else getattr(x, method)(dim=dim, keepdim=keepdim)
            )

        return f

    F = torch.nn.functional

    def target(x, tgt):
        tgt = t(tgt)
        return tgt if tgt.shape == x.shape else tgt.detach().long()

    ns = {
        name: (lambda f: lambda x, *a, **k: f(t(x), *a, **k))(getattr(torch, name))
        for name in (
            "exp",
            "log",
            "sqrt",
            "sin",
            "cos",
            "tan",
            "tanh",
            "sigmoid",
            "relu",
            "abs",
            "log1p",
            "expm1",
            "reciprocal",
            "erf",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "log2",
            "log10",
            "exp2",
            "rsqrt",
            "square",
            "sign",
            "floor",
            "ceil",
            "round",
            "atan2",
            "logsumexp",
            "cumsum",
            "flatten",
            "outer",
            "where",
            "clamp",
        )
    }
    ns.update(
        {
            name: (lambda f: lambda x, *a, **k: f(t(x), *a, **k))(getattr(F, name))
            for name in (
                "softplus",
                "leaky_relu",
                "elu",
                "silu",
                "gelu",
                "hardtanh",
                "softmax",
                "log_softmax",
                "mse_loss",
                "l1_loss",
                "binary_cross_entropy",
                "binary_cross_entropy_with_logits",
            )
        }
    )

    def extremum(method):
        def f(x, dim=None, keepdim=False):
            x = t(x)
            return (
                getattr(x, method)()
                if dim is None
                else getattr(x, method)(dim=dim, keepdim=keepdim)  # (values, indices)
            )

        return f

    ns.update(
        sum=reduce("sum"),
        mean=reduce("mean"),
        prod=reduce("prod"),
        max=extremum("max"),
        min=extremum("min"),
        amax=lambda x, dim=None, keepdim=False: x.amax(
            dim=() if dim is None else dim, keepdim=keepdim
        ),
        amin=lambda x, dim=None, keepdim=False: x.amin(
            dim=() if dim is None else dim, keepdim=keepdim
        ),
        maximum=lambda a, b: torch.maximum(t(a), t(b)),
        minimum=lambda a, b: torch.minimum(t(a), t(b)),
        dot=lambda a, b: torch.dot(a, b),
        mv=lambda a, b: torch.mv(a, b),
        mm=lambda a, b: torch.mm(a, b),
        transpose=lambda a: a.t(),
        unsqueeze=lambda x, dim=0: x.unsqueeze(dim),
        squeeze=lambda x, dim=None: x.squeeze() if dim is None else x.squeeze(dim),
        norm=lambda x, p=2, dim=None, keepdim=False: x.norm(p=p, dim=dim, keepdim=keepdim),
        var=lambda x, dim=None, correction=1, keepdim=False: x.var(
            dim=dim, correction=correction, keepdim=keepdim
        ),
        std=lambda x, dim=None, correction=1, keepdim=False: x.std(
            dim=dim, correction=correction, keepdim=keepdim
        ),
        reshape=lambda x, *shape: x.reshape(*shape),
        cross_entropy=lambda x, tgt, reduction="mean": F.cross_entropy(
            x, target(x, tgt), reduction=reduction
        ),
        nll_loss=lambda x, tgt, reduction="mean": F.nll_loss(x, t(tgt).long(), reduction=reduction),
        cat=lambda xs, dim=0: torch.cat([t(v) for v in xs], dim),
        stack=lambda xs, dim=0: torch.stack([t(v) for v in xs], dim),
        inf=math.inf,
        nan=math.nan,
        bmm=torch.bmm,
        baddbmm=torch.baddbmm,
        addmm=torch.addmm,
        addmv=torch.addmv,
        kron=torch.kron,
        cross=torch.cross,
        tensordot=torch.tensordot,
        dist=torch.dist,
        cdist=torch.cdist,
        diag=torch.diag,
        diag_embed=torch.diag_embed,
        renorm=torch.renorm,
        einsum=torch.einsum,
        matmul=torch.matmul,
        asinh=lambda x: torch.asinh(t(x)),
        acosh=lambda x: torch.acosh(t(x)),
        atanh=lambda x: torch.atanh(t(x)),
        rad2deg=lambda x: torch.rad2deg(t(x)),
        deg2rad=lambda x: torch.deg2rad(t(x)),
        trunc=lambda x: torch.trunc(t(x)),
        frac=lambda x: torch.frac(t(x)),
        sinc=lambda x: torch.sinc(t(x)),
        isnan=lambda x: torch.isnan(t(x)),
        isinf=lambda x: torch.isinf(t(x)),
        isfinite=lambda x: torch.isfinite(t(x)),
        signbit=lambda x: torch.signbit(t(x)),
        nan_to_num=lambda x, **k: torch.nan_to_num(t(x), **k),
        logit=lambda x, eps=None: torch.logit(t(x), eps),
        logaddexp=lambda a, b: torch.logaddexp(t(a), t(b)),
        logaddexp2=lambda a, b: torch.logaddexp2(t(a), t(b)),
        hypot=lambda a, b: torch.hypot(t(a), t(b)),
        copysign=lambda a, b: torch.copysign(a, b),
        fmod=lambda a, b: torch.fmod(a, b),
        remainder=lambda a, b: torch.remainder(a, b),
        xlogy=lambda a, b: torch.xlogy(a, b),
        lerp=lambda a, b, w: torch.lerp(a, b, w),
        heaviside=lambda a, v: torch.heaviside(t(a), t(v)),
        isclose=lambda a, b, **k: torch.isclose(t(a), t(b), **k),
        lgamma=lambda x: torch.lgamma(t(x)),
        digamma=lambda x: torch.digamma(t(x)),
        polygamma=lambda n, x: torch.polygamma(int(n), t(x)),
        erfinv=lambda x: torch.erfinv(t(x)),
        i0=lambda x: torch.i0(t(x)),
        conv1d=F.conv1d,
        conv2d=F.conv2d,
        conv3d=F.conv3d,
        conv_transpose1d=F.conv_transpose1d,
        conv_transpose2d=F.conv_transpose2d,
        conv_transpose3d=F.conv_transpose3d,
        max_pool1d=F.max_pool1d,
        max_pool2d=F.max_pool2d,
        max_pool3d=F.max_pool3d,
        avg_pool1d=F.avg_pool1d,
        avg_pool2d=F.avg_pool2d,
        avg_pool3d=F.avg_pool3d,
        adaptive_avg_pool1d=F.adaptive_avg_pool1d,
        adaptive_avg_pool2d=F.adaptive_avg_pool2d,
        adaptive_avg_pool3d=F.adaptive_avg_pool3d,
        adaptive_max_pool1d=F.adaptive_max_pool1d,
        adaptive_max_pool2d=F.adaptive_max_pool2d,
        adaptive_max_pool3d=F.adaptive_max_pool3d,
        lp_pool1d=F.lp_pool1d,
        lp_pool2d=F.lp_pool2d,
        lp_pool3d=F.lp_pool3d,
        unfold=F.unfold,
        fold=F.fold,
        pixel_shuffle=F.pixel_shuffle,
        pixel_unshuffle=F.pixel_unshuffle,
        torch=torch,  # programs in PyTorch's own spelling: torch.sin(x), F.relu(x), math.pi
        F=F,
        nn=torch.nn,
        math=math,
    )
    return ns


def _compiled(program):
    """A gradcli program as Python code (^ is **; the last line, or the last assignment's
    name, is the output): (code object, name of the output)."""
    tree = ast.parse(program.replace("^", "**"))
    last = tree.body[-1]
    if isinstance(last, ast.Expr):
        tree.body[-1] = ast.Assign(targets=[ast.Name("__out__", ast.Store())], value=last.value)
        ast.fix_missing_locations(tree)
        return compile(tree, "<program>", "exec"), "__out__"
    return compile(tree, "<program>", "exec"), last.targets[0].id


def run_torch(torch, program, inputs, wrt=None, dtype="float64", seed=None):
    """Run a gradcli program in PyTorch (Python parses it: ^ is **, the last line is the
    output). Returns (output tensor, {name: grad or None})."""
    tdtype = getattr(torch, dtype)
    leaves = {
        k: torch.tensor(
            np.asarray(v, dtype=dtype), dtype=tdtype, requires_grad=(wrt is None or k in wrt)
        )
        for k, v in inputs.items()
    }
    ns = torch_namespace(torch, tdtype)
    ns.update(leaves)
    code, out_name = _compiled(program)
    exec(code, ns)
    out = ns[out_name]
    if seed is None:
        out.backward()
    else:
        out.backward(gradient=torch.tensor(np.asarray(seed, dtype=dtype), dtype=tdtype))
    return out, {
        k: (None if v.grad is None else v.grad.numpy())
        for k, v in leaves.items()
        if v.requires_grad
    }


def torch_function(torch, program, names, dtype="float64"):
    """The program as a PyTorch function of its inputs (for torch.autograd.functional)."""
    tdtype = getattr(torch, dtype)
    code, out_name = _compiled(program)

    def f(*tensors):
        ns = torch_namespace(torch, tdtype)
        ns.update(dict(zip(names, tensors, strict=True)))
        exec(code, ns)
        return ns[out_name]

    return f


def pool_indices_match_pytorch(torch, call, shape, dtype, seed):
    """A pooling ``call`` with return_indices on x against PyTorch: the int64 indices (with
    ties, where the first maximum is taken, NaN and -inf in the windows), the values'
    gradient through ``v, i = call`` and the labels."""
    import gradcli
    from gradcli import derivatives as D

    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 3, size=shape).astype(dtype)
    x.flat[::7] = np.nan
    x.flat[3::11] = -np.inf
    env = {"F": torch.nn.functional, "torch": torch, "x": torch.tensor(x, requires_grad=True)}
    values, indices = eval(call, env)
    ours = D.jvp(f"{call}[1]", {"x": x}, {"x": np.ones_like(x)}, dtype=dtype)["value"]
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, indices.numpy())
    c = rng.standard_normal(values.shape).astype(dtype)
    program = f"v, i = {call}\n(v * c).sum() + i.sum()"
    mine = gradcli.evaluate(program, {"x": x, "c": c}, wrt=["x"], dtype=dtype)
    theirs = (values * torch.tensor(c)).sum() + indices.sum()
    theirs.backward()
    np.testing.assert_allclose(mine.value, theirs.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(mine.grad["x"], env["x"].grad.numpy(), rtol=1e-6, atol=1e-7)
    assert our_labels(mine) == torch_labels(theirs)


class NamedInputs:
    """Programs over fixed named inputs (floats the gradients are taken of; integer and bool
    tensors passed typed), run by gradcli and by torch alike, for the tests that check a family
    of operators case by case (tests/test_scatter.py, tests/test_polish.py)."""

    def __init__(self, floats, others, quiet=False):
        self.floats = floats
        self.inputs = {**floats, **others}
        self.quiet = quiet  # torch's warnings are not what the test checks ("in beta")

    def used(self, program):
        """The inputs the program names."""
        names = set(re.findall(r"[A-Za-z_]\w*", program))
        return {k: v for k, v in self.inputs.items() if k in names}

    def given(self, used):
        """gradcli's spelling of them: floats as arrays, the rest "dtype:[...]"."""
        return {
            k: v if k in self.floats else f"{v.dtype.name}:{json.dumps(v.tolist())}"
            for k, v in used.items()
        }

    def torch_run(self, torch, program, used, dtype):
        """(torch's result, {float input name: its leaf tensor})."""
        ns = {"torch": torch, "F": torch.nn.functional}
        leaves = {}
        for k, v in used.items():
            if k in self.floats:
                leaves[k] = ns[k] = torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True)
            else:
                ns[k] = torch.from_numpy(v)
        with warnings.catch_warnings():
            if self.quiet:
                warnings.simplefilter("ignore")
            return eval(program, ns), leaves

    def ours(self, program, used, dtype, seed=None):
        floats = [k for k in used if k in self.floats]
        return gradcli.evaluate(
            program, self.given(used), dtype=dtype, wrt=",".join(floats), seed_vector=seed
        )

    def check(self, torch, program, dtype, rng):
        """Value, dtype, shape, label, label multiset and every float input's gradient (for
        a random seed vector) the same as torch's."""
        used = self.used(program)
        theirs, leaves = self.torch_run(torch, program, used, dtype)
        seed = rng.standard_normal(tuple(theirs.shape)).astype(dtype) if theirs.dim() else None
        ours = self.ours(program, used, dtype, seed)
        theirs.backward(torch.from_numpy(seed) if seed is not None else None)
        assert ours.shape == tuple(theirs.shape)
        assert ours.value.dtype == theirs.detach().numpy().dtype
        np.testing.assert_allclose(ours.value, theirs.detach().numpy(), rtol=1e-6)
        assert ours.grad_fn == type(theirs.grad_fn).__name__
        assert our_labels(ours) == torch_labels(theirs)
        for k, leaf in leaves.items():
            want = None if leaf.grad is None else leaf.grad.numpy()
            if want is None:
                assert ours.grad[k] is None or not np.any(ours.grad[k])
                continue
            assert ours.grad[k].dtype == want.dtype
            np.testing.assert_allclose(ours.grad[k], want, rtol=1e-5, atol=1e-6)

    def check_differences(self, program):
        """float64 gradients of every float input against central differences."""
        used = self.used(program)
        given = self.given(used)
        floats = [k for k in used if k in self.floats]
        ours = gradcli.evaluate(program, given, dtype="float64", wrt=",".join(floats))
        for k in floats:
            base = used[k]
            numeric = np.zeros_like(base)
            for pos in np.ndindex(base.shape):
                h = np.zeros_like(base)
                h[pos] = 1e-6
                up = gradcli.evaluate(program, {**given, k: base + h}, dtype="float64").value
                down = gradcli.evaluate(program, {**given, k: base - h}, dtype="float64").value
                numeric[pos] = (up - down) / 2e-6
            np.testing.assert_allclose(ours.grad[k], numeric, rtol=1e-6, atol=1e-7)
