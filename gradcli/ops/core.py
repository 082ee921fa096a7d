"""Shared by every family of operators: the Op row, lazy numpy, and the shape and
gradient helpers more than one family uses."""

import math
from typing import Any

from ..errors import ShapeError


class _LazyNumpy:
    """Stands for numpy until first use, so parsing and ``--help`` never import it. Each
    module of the table that calls ``lazy_numpy(globals())`` gets the real module in its
    globals on first use, so later calls pay nothing."""

    users: list[dict[str, object]] = []

    def __getattr__(self, name):
        import numpy

        for g in self.users:
            g["np"] = numpy
        return getattr(numpy, name)


def lazy_numpy(module_globals):
    _LazyNumpy.users.append(module_globals)
    return np


np = _LazyNumpy()
_LazyNumpy.users.append(globals())


REQUIRED = object()  # a parameter default meaning "must be given"


class Whole(float):
    """A number literal written as an integer (``2``, not ``2.0``): a Python int to type
    promotion (``i + 2`` stays int64), a float to every rule, as it always was."""

    __slots__ = ()


# PyTorch's dtype names (torch.<name>) and the canonical name each means; the half types
# are names gradcli knows to refuse them clearly
DTYPE_NAMES = {n: n for n in ("float32", "float64", "int64", "int32", "int16", "int8", "uint8")}
DTYPE_NAMES |= {"bool": "bool", "float16": "float16", "bfloat16": "bfloat16", "half": "float16"}
DTYPE_NAMES |= {"float": "float32", "double": "float64", "long": "int64", "int": "int32"}
DTYPE_NAMES |= {"short": "int16"}


class DType(str):
    """A dtype literal in a program (``torch.int64``), by its canonical name ("int64")."""

    __slots__ = ()

    def __repr__(self):
        return f"torch.{self}"


# The kinds of parameters by name, as in PyTorch's signatures: whole numbers, and one whole
# number or a sequence of them (shapes, lists of dims). ``dim`` is one, or a list where the
# row says dim_list. Any parameter with an int default is a whole number too.
INTEGER_PARAMS = {"dim0", "dim1", "dim2", "start", "length", "offset", "diagonal", "index"}
SEQUENCE_PARAMS = {"shape", "size", "sizes", "dims", "shifts", "source", "destination"}
# a whole number, or one per spatial dimension; a string ('same') or None passes to the row
INTEGER_OR_TUPLE_PARAMS = {"stride", "padding", "dilation", "groups", "kernel_size"}
INTEGER_OR_TUPLE_PARAMS |= {"output_padding", "output_size", "divisor_override"}
INTEGER_OR_TUPLE_PARAMS |= {"upscale_factor", "downscale_factor"}


SMALL = 4096  # below this many elements, broadcasting views cost more than they save
ELIDE_BYTES = 256 * 1024  # numpy's NPY_MIN_ELIDE_BYTES: temporaries it reuses in place


class Op:
    __slots__ = (
        "name",
        "arity",
        "params",
        "forward",
        "grads",
        "label",
        "shape",
        "mirror",
        "rule",
        "examples",
        "numbers",
        "lower",
        "public",
        "call",
        "dtype",
        "variadic",
        "listarg",
        "saves",
        "ufunc",
        "aliases",
        "namespaces",
        "methods",
        "spellings",
        "inputs",
        "keywords",
        "reduction",
        "dim_list",
        "receiver",
        "tensor_overload",
        "free",
        "tensor_params",
        "grad_into",
        "integer",
        "bare",
        "random",
        "stack",
    )

    def __init__(
        self,
        name,
        forward,
        grads,
        label,
        shape,
        *,
        arity=1,
        params=None,
        mirror=None,
        rule="",
        examples=(),
        numbers=False,
        lower=None,
        public=True,
        call=None,
        dtype=None,
        variadic=False,
        listarg=False,
        saves="all",
        ufunc=None,
        aliases=(),
        namespaces=("torch",),
        methods=None,
        spellings=(),
        inputs=None,
        keywords=None,
        free=(),
        tensor_params=(),
        reduction=False,
        dim_list=None,
        receiver=0,
        tensor_overload=None,
        grad_into=False,
        integer=None,
        bare=True,
        random=False,
        stack=None,
    ):
        self.name = name
        self.arity = arity  # number of tensor inputs, which come first
        self.params = dict(params or {})  # attribute name -> default, after the tensors
        self.forward = forward  # (*inputs, **attrs) -> array
        # one rule per tensor input, (g, out, *inputs, **attrs) -> array; or one function
        # giving the list of all inputs' gradients (list arguments); None: no gradient
        self.grads: Any = grads  # tuple | Callable[..., list] | None
        self.label = label
        self.shape = shape  # (shapes, attrs) -> shape; raises ShapeError
        self.mirror = mirror or f"torch.{name}(a)"
        self.rule = rule  # the local derivative, for people
        self.examples = examples  # ((program, {input: (shape, domain)}), ...) for the tests
        self.numbers = numbers  # takes Python numbers as operands (arithmetic operators)
        self.lower: Any = lower  # shape-dependent decomposition into other ops (matmul)
        self.public = public  # callable by name from programs
        self.call = call  # how a program spells it, when not as a call by name (a.T)
        self.dtype = dtype  # the output dtype when not the evaluation dtype ("bool")
        self.variadic = variadic  # reshape(x, 3, 2): trailing positionals form one argument
        self.listarg = listarg  # cat([a, b]): the tensors come as one list
        # What the VJP rules read, as PyTorch's saved tensors: "all" (inputs and output),
        # "inputs", "out", "others" (an input's value only when another input is
        # differentiated, as for a·b), "pow" (the inputs, and the output only when the
        # exponent is differentiated), or "none" (shapes only). Lean evaluation frees the rest.
        self.saves = saves
        # operands -> the numpy ufunc that computes this op (so a result can be written
        # into a dying operand's buffer), or None where the op is not one ufunc call
        self.ufunc: Any = ufunc
        # How programs spell it, as PyTorch does. ``aliases`` are other names of the same
        # function (clip for clamp), valid bare, in each of ``namespaces`` ("torch",
        # "torch.nn.functional", "torch.special", "torch.linalg") and as methods;
        # ``methods`` are its Tensor method names (by default its names, when it lives in
        # torch); ``spellings`` are further qualified names ("torch.special.expit").
        self.aliases = tuple(aliases)
        self.namespaces = tuple(namespaces) if public else ()
        names = (name, *self.aliases)
        if methods is None:
            methods = names if "torch" in self.namespaces else ()
        self.methods = tuple(methods) if public else ()
        self.spellings = tuple(spellings)
        # the names of the tensor arguments, for keywords (torch.add(input=x, other=y))
        default = ("input", "other", "third")[:arity] if arity > 1 else ("input",)
        self.inputs = tuple(inputs or default)
        # other keyword names PyTorch accepts for a parameter (linalg.vector_norm's ord)
        self.keywords = dict(keywords or {})
        # a reduction over dim=: an explicit dim=None is PyTorch's dim overload (SumBackward1)
        # over every dimension, stored as dim=()
        self.reduction = reduction
        self.dim_list = reduction if dim_list is None else dim_list  # dim=(0, 1) accepted
        self.receiver = receiver  # which tensor argument a method's receiver is
        # the op PyTorch's overload means when a tensor stands where the first parameter
        # goes: torch.max(a, b) is torch.maximum(a, b)
        self.tensor_overload = tensor_overload
        # parameters whose values the row checks itself (tensordot's dims: an integer or a
        # pair of lists), passed through as the program gives them
        self.free = tuple(free)
        # parameters that take an optional tensor (conv2d's bias, layer_norm's weight): a
        # tensor given for one comes as a further tensor argument, after the fixed ones and in
        # the order of ``params``, and the parameter itself is then True (None when not given)
        self.tensor_params = tuple(tensor_params)
        # its VJP rules take ``into=``: an array of the result's shape and dtype they may
        # write their result in and return (the arriving adjoint when nothing else reads it,
        # or a free buffer of the engine's), or None; the numbers are the same either way
        self.grad_into = grad_into
        # the forward on integer and bool operands where numpy's differs from PyTorch's
        # (integer division, bool negation, ...); the kind of promotion is dtypes.kind_of's
        self.integer = integer
        self.bare = bare  # callable by its bare name (False: a Tensor method only, x.long())
        self.random = random  # draws from the run's generator (its forward takes generator=)
        # How a leading axis of records passes through it (gradcli.stacked, batch): None
        # (it cannot: such records are evaluated one at a time), "elementwise" (the forward
        # and rules broadcast over it), "reduce" (a reduction over dim=, the dims moved past
        # it), "loss" (elementwise with reduction='none', then each record's reduction, as
        # ops.losses reduces), "rows" (called once per record: exact whatever the op) or
        # "matmul" (as rows, or numpy's stacked matmul once that has given the same bytes).
        self.stack = stack

    def names(self):
        """Every spelling that resolves to this op: bare names, qualified names and
        ``Tensor.<method>``."""
        if not self.public:
            return ()
        names = (self.name, *self.aliases)
        out = list(names) if self.bare else []
        for ns in self.namespaces:
            out += [f"{ns}.{n}" for n in names]
        out += [f"Tensor.{m}" for m in self.methods]
        return tuple(dict.fromkeys(out + list(self.spellings)))

    def label_for(self, kinds, attrs):
        return self.label if isinstance(self.label, str) else self.label(kinds, attrs)

    def describe(self):
        """One row of `gradcli ops` and of the README's operator list."""
        tensors = ["[a, b, ...]"] if self.listarg else ["a", "b", "c"][: self.arity]
        params = [k if v is REQUIRED else f"{k}={v!r}" for k, v in self.params.items()]
        labels = self.label if isinstance(self.label, str) else self.label.__doc__
        extra = [s for s in self.spellings if s.rpartition(".")[2] not in self.aliases]
        also = [*self.aliases, *(s.replace("torch.nn.functional.", "F.") for s in extra)]
        return {
            "name": self.name,
            "call": self.call or f"{self.name}({', '.join(tensors + params)})",
            "mirror": self.mirror + (f"; also {', '.join(also)}" if also else ""),
            "labels": labels,
            "rule": self.rule,
            "spellings": list(self.names()),
        }


def fmt_shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast_shapes(*shapes):
    """numpy/PyTorch broadcasting, with PyTorch's message on a mismatch."""
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            d = s[i - ndim + len(s)] if i - ndim + len(s) >= 0 else 1
            if d != 1:
                if size != 1 and d != size:
                    a = shapes[0]
                    b = shapes[1] if len(shapes) > 1 else a
                    raise ShapeError(
                        f"shapes {fmt_shape(a)} and {fmt_shape(b)} cannot be broadcast: the "
                        f"size of tensor a ({size}) must match the size of tensor b ({d}) "
                        f"at non-singleton dimension {i}"
                    )
                size = d
        out.append(size)
    return tuple(out)


def _same(shapes, attrs):
    return shapes[0]


def _bcast(shapes, attrs):
    return broadcast_shapes(*shapes)


def norm_dims(dim, ndim):
    """``dim`` (int, list of ints, or None for all) as a sorted tuple of non-negative axes.
    An empty list also means every dimension, as in PyTorch's reductions (x.sum(dim=[]))."""
    if dim is None or (isinstance(dim, (list, tuple)) and not dim):
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (list, tuple)) else (dim,)
    out = []
    rank = max(ndim, 1)
    for d in dims:
        if not -rank <= d < rank:
            raise ShapeError(
                f"Dimension out of range (expected to be in range of "
                f"[{-rank}, {rank - 1}], but got {d})"
            )
        d = d % rank
        if d in out:
            raise ShapeError(f"dim {d} appears multiple times in the list of dims")
        out.append(d)
    return tuple(sorted(d for d in out if d < ndim))


def _reduce_shape(shapes, attrs):
    shape = shapes[0]
    dims = norm_dims(attrs.get("dim"), len(shape))
    keep = attrs.get("keepdim", False)
    return tuple(1 if i in dims else n for i, n in enumerate(shape) if keep or i not in dims)


def _expand_reduced(g, x, dim, keepdim):
    """Broadcast the gradient of a reduction back over the reduced dimensions."""
    if dim is not None and not keepdim:
        g = np.expand_dims(g, norm_dims(dim, x.ndim))
    if x.size <= SMALL:
        return np.broadcast_to(g, x.shape).copy() if g.shape != x.shape else g
    return np.broadcast_to(g, x.shape)


def _count(x, dim):
    n = 1
    for d in norm_dims(dim, x.ndim):
        n *= x.shape[d]
    return n


def _re(a):
    """The real part. Every branch (comparison, |x|, sign) is taken on it, so each rule also
    runs on complex dual numbers x + i·h·t, which is how forward mode and Hessians work."""
    return a.real if getattr(a, "dtype", None) is not None and a.dtype.kind == "c" else a


def _complex(a):
    return getattr(a, "dtype", None) is not None and a.dtype.kind == "c"


def _abs(a):
    return a * np.sign(a.real) if _complex(a) else np.abs(a)


def _constant(g):
    """The value of a gradient that is one number broadcast (the backward of a mean or a
    sum), or None: scaling it then costs nothing until it meets a full tensor."""
    if isinstance(g, np.ndarray) and g.size > SMALL and not any(g.strides):
        return g.reshape(-1)[0]
    return None


def _scale(g, k):
    """g * k for a Python number k, keeping a broadcast constant a broadcast constant."""
    c = _constant(g)
    if c is not None:
        return np.broadcast_to(c * k, g.shape)
    return g * k


REAL = "real"


V = {"a": ((3,), REAL)}  # the usual example input: a vector


VB = {"a": ((2, 3), REAL), "b": ((3,), REAL)}  # broadcasting pair


M = {"A": ((2, 3), REAL)}  # the usual matrix example input


P3 = {"a": ((3,), "prob"), "b": ((3,), "prob")}


def _one_dim(dim, ndim):
    if isinstance(dim, tuple):
        if len(dim) != 1:
            raise ShapeError(f"dim must be a single integer here, got {list(dim)}")
        dim = dim[0]
    return norm_dims(dim, ndim)[0] if ndim else 0


def _dim_shape(shapes, attrs):
    if shapes[0]:
        _one_dim(attrs["dim"], len(shapes[0]))
    elif attrs["dim"] not in (0, -1):
        raise ShapeError(
            f"Dimension out of range (expected to be in range of [-1, 0], but got {attrs['dim']})"
        )
    return shapes[0]


MAX_DIMS = 64  # numpy's limit (PyTorch allows more)


def check_rank(shape):
    """A result of more dimensions than numpy can hold is an error, not a crash."""
    if len(shape) > MAX_DIMS:
        raise ShapeError(
            f"a tensor of {len(shape)} dimensions: gradcli (numpy) supports at most {MAX_DIMS}"
        )
    return shape


def _resolve_shape(shape, size):
    shape = check_rank(tuple(shape) if isinstance(shape, tuple) else (shape,))
    if shape.count(-1) > 1:
        raise ShapeError("only one dimension can be inferred (-1)")
    if any(d < -1 for d in shape):
        raise ShapeError(f"invalid shape dimension {min(shape)}")
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {size}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if math.prod(shape) != size:
        raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {size}")
    return shape


def _reshape_ids(emit, node, a, shape):
    """torch.reshape: a view of a contiguous tensor, an aliasing reshape of a strided one
    that allows it, else a contiguous clone then a view."""
    value = np.asarray(node(a).value)  # a Python number (flatten(2)) is a 0-d tensor
    shape = _resolve_shape(shape, value.size)
    if value.flags.c_contiguous:
        return emit("reshape_view", (a,), {"shape": shape, "kind": "view"})
    try:
        np.reshape(value, shape, copy=False)
        return emit("reshape_view", (a,), {"shape": shape, "kind": "alias"})
    except ValueError:
        return emit("reshape_view", (emit("clone", (a,)),), {"shape": shape, "kind": "unsafe"})


def _sigmoid(a):
    # 1/(1+e^-a) overflows harmlessly to 0 for large negative a; no warnings leak (errstate).
    # Dual numbers take the form that does not overflow on their side of 0.
    if _complex(a):
        e = np.exp(-np.where(a.real >= 0, a, -a))
        return np.where(a.real >= 0, 1 / (1 + e), e / (1 + e))
    return 1 / (1 + np.exp(-a))
