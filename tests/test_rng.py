"""PyTorch's random numbers: after torch.manual_seed(N), torch.rand / randn / randint /
randperm give bit for bit what gradcli.rng.Generator(N) gives, in every ATen code path
(the serial Box-Muller with its cached sample below 16 elements, normal_fill's 16-element
blocks with the recomputed tail, the float32 vector kernel, randint's 32- and 64-bit draws,
randperm's swaps), and a run of several calls after one seed carries the state over."""

import json
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from gradcli.cli import main
from gradcli.errors import InputError
from gradcli.inputs import parse_value, to_array
from gradcli.rng import Generator, _fma, _init_genrand, record_seed

SEEDS = [0, 1, 42, 2**32 - 1, 2**32, 2**40 + 7, 2**63 + 5, 2**64 - 1]
SHAPES = [(0,), (1,), (2,), (7,), (15,), (16,), (17,), (31,), (33,), (1000,), (3, 5), (4, 16, 2)]
SHAPES += [(), (32,), (48,), (1, 17)]


def same_bits(ours, theirs):
    """Equal dtype, shape and bytes: nothing approximate."""
    theirs = theirs.numpy()
    return (
        ours.dtype == theirs.dtype
        and ours.shape == theirs.shape
        and ours.tobytes() == np.ascontiguousarray(theirs).tobytes()
    )


def test_engine_state_is_init_genrand():
    """numpy's legacy seeding of mt19937 is init_genrand: the state we give numpy's bit
    generator is the one RandomState builds for the same 32-bit seed."""
    for seed in (0, 1, 5489, 2**32 - 1):
        assert np.array_equal(_init_genrand(seed), np.random.RandomState(seed).get_state()[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["rand", "randn"])
@pytest.mark.parametrize("seed", SEEDS)
def test_draws_match_torch(torch, seed, kind, dtype):
    for shape in SHAPES:
        g = Generator(seed)
        torch.manual_seed(seed)
        ours = getattr(g, kind)(shape, dtype)
        theirs = getattr(torch, kind)(shape, dtype=getattr(torch, dtype))
        assert same_bits(ours, theirs), (shape, ours, theirs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", [3, 2**33 + 1])
def test_large_normals_match_torch(torch, seed, dtype):
    """Enough float32 normals (1.6 million) that a wrong fused multiply-add anywhere in the
    emulated log/sincos kernel would show; an odd size so the tail is recomputed."""
    n = 1_600_007 if dtype == "float32" else 100_003
    g = Generator(seed)
    torch.manual_seed(seed)
    assert same_bits(g.randn((n,), dtype), torch.randn(n, dtype=getattr(torch, dtype)))


RANGES = [
    (0, 1),
    (0, 10),
    (-5, 5),
    (3, 4),
    (0, 2**28 - 1),  # the last range drawn from one 32-bit number
    (0, 2**28),  # the first drawn from two
    (7, 2**28 + 7),
    (0, 2**31),
    (0, 2**32),
    (0, 2**32 + 1),
    (-(2**40), 2**40),
    (-(2**63), 2**63 - 1),
]


@pytest.mark.parametrize("low,high", RANGES)
def test_randint_matches_torch(torch, low, high):
    for seed in (0, 42, 2**64 - 1):
        for shape in ((0,), (1,), (17,), (1000,), (3, 5)):
            g = Generator(seed)
            torch.manual_seed(seed)
            ours = g.randint(low, high, shape)
            assert same_bits(ours, torch.randint(low, high, shape)), (seed, shape)


FLOAT_RANGES = [(0, 10), (0, 2**24 + 1), (0, 2**24 + 3), (-(2**24) - 3, 5), (-3, 2**40)]
FLOAT_RANGES += [(0, 2**53 + 1), (-(2**53) - 5, 2**53 + 7), (-(2**63), 2**63 - 1)]


@pytest.mark.filterwarnings("ignore:.*out of bounds")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("low,high", FLOAT_RANGES)
def test_randint_as_floats_matches_torch(torch, low, high, dtype):
    """torch.randint(..., dtype=float): bounds pulled in to what the dtype can hold."""
    g = Generator(3)
    torch.manual_seed(3)
    theirs = torch.randint(low, high, (50,), dtype=getattr(torch, dtype))
    assert same_bits(g.randint(low, high, (50,), dtype), theirs)


@pytest.mark.parametrize("n", [0, 1, 2, 10, 100, 1000, 10000])
def test_randperm_matches_torch(torch, n):
    for seed in (0, 1, 42, 2**32 - 1):
        g = Generator(seed)
        torch.manual_seed(seed)
        assert same_bits(g.randperm(n), torch.randperm(n)), seed
        assert same_bits(g.randperm(n, "float32"), torch.randperm(n, dtype=torch.float32))


def _mixed_calls(api, t):
    """The same sequence of calls spelled for gradcli.rng (t is None) or torch: odd small
    normals leave a cached sample that the next small normal draw (of either dtype) uses,
    while normal_fill and the other calls pass it by."""
    f32 = "float32" if t is None else t.float32
    f64 = "float64" if t is None else t.float64
    return [
        api.randn((3,), dtype=f32),
        api.randn((5,), dtype=f64),
        api.rand((2,), dtype=f32),
        api.randn((17,), dtype=f32),
        api.randint(0, 7, (4,)),
        api.randn((1,), dtype=f64),
        api.randperm(9),
        api.randn((20,), dtype=f64),
        api.rand((3,), dtype=f64),
        api.randn((1,), dtype=f32),
        api.randn((1,), dtype=f32),
        api.randint(-(2**35), 2**35, (3,)),
        api.randn((33,), dtype=f32),
        api.randn((2, 3), dtype=f64),
    ]


class _Ours:
    def __init__(self, seed):
        self.g = Generator(seed)

    def __getattr__(self, name):
        method = getattr(self.g, name)
        return lambda *a, dtype=None: method(*a) if dtype is None else method(*a, dtype)


@pytest.mark.parametrize("seed", [0, 7, 2**32 + 3])
def test_sequences_carry_state_like_torch(torch, seed):
    ours = _mixed_calls(_Ours(seed), None)
    torch.manual_seed(seed)
    theirs = _mixed_calls(torch, torch)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert same_bits(a, b), (k, a, b)


def test_manual_seed_drops_the_cached_normal(torch):
    g = Generator(5)
    g.randn((1,), "float64")  # leaves the pair's second sample cached
    g.manual_seed(5)
    torch.manual_seed(5)
    torch.randn(1, dtype=torch.float64)
    torch.manual_seed(5)
    assert same_bits(g.randn((3,), "float64"), torch.randn(3, dtype=torch.float64))


def test_seeds_are_those_torch_takes(torch):
    assert same_bits(Generator(-1).rand((4,), "float32"), _seeded(torch, 2**64 - 1).rand(4))
    for bad in (2**64, -(2**63) - 1, 1.5, True, "3"):
        with pytest.raises(InputError):
            Generator(bad)
    with pytest.raises(ValueError):
        torch.manual_seed(2**64)


def _seeded(torch, seed):
    torch.manual_seed(seed)
    return torch


def test_unseeded_generators_differ():
    assert not np.array_equal(Generator().rand((8,), "float64"), Generator().rand((8,), "float64"))


def test_bad_arguments():
    g = Generator(0)
    for low, high in ((5, 5), (6, 5), (0, 2**64 + 1)):
        with pytest.raises(ValueError):
            g.randint(low, high, (2,))
    with pytest.raises(ValueError):
        g.randperm(-1)
    with pytest.raises(ValueError):
        g.randn((2,), "float16")


# ---- through the command line --------------------------------------------------------------


def _grad(*args):
    r = CliRunner().invoke(main, ["grad", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_value_generators_draw_torchs_numbers(torch, dtype):
    """x=randn(..) and rand(..) inputs under --random-seed are torch's draws, made in the
    order the program first uses its inputs."""
    out = _grad(
        "sum(y) + sum(x)", "x=randn(2,3)", "y=rand(20)", "--random-seed", "42", "--dtype", dtype
    )
    torch.manual_seed(42)
    tdtype = getattr(torch, dtype)
    y = torch.rand(20, dtype=tdtype)
    x = torch.randn(2, 3, dtype=tdtype)
    values = {n["name"]: n["value"] for n in out["nodes"] if n["op"] == "input"}
    assert np.array_equal(np.array(values["x"], dtype), x.numpy())
    assert np.array_equal(np.array(values["y"], dtype), y.numpy())


def test_batch_records_draw_from_their_own_seed(torch):
    data = '{"expr": "sum(x)", "inputs": {"x": "randn(17)"}}\n' * 3
    r = CliRunner().invoke(main, ["batch", "--random-seed", "9", "--nodes"], input=data)
    assert r.exit_code == 0, r.output
    answers = [json.loads(line) for line in r.output.splitlines()]
    for line, a in enumerate(answers, start=1):
        torch.manual_seed(record_seed(9, line))
        (x,) = (n["value"] for n in a["nodes"] if n["op"] == "input")
        assert np.array_equal(np.array(x, np.float32), torch.randn(17).numpy())
    assert answers[0]["value"] != answers[1]["value"]


def test_random_seed_out_of_range_is_a_usage_error():
    r = CliRunner().invoke(main, ["grad", "sum(x)", "x=randn(3)", "--random-seed", str(2**64)])
    assert r.exit_code == 2
    assert "out of range" in r.output


def _round_to_float32(q):
    """The float32 nearest the rational q, ties to even, by exact comparison."""
    r = np.float32(float(q))
    best = None
    for c in (np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))):
        d = abs(Fraction(float(c)) - q)
        even = int(np.array(c).view(np.uint32)) % 2 == 0
        if best is None or d < best[0] or (d == best[0] and even):
            best = (d, c)
    return best[1]


def test_fused_multiply_add_rounds_once():
    """The emulated vfmadd is a * b + c rounded once, also where the double sum lands on a
    float32 midpoint that the exact value misses."""
    f = np.float32
    a, b = f(1 + 2**-22), f(1 - 2**-24)
    c = f(2**-46 - 2**-60)  # a * b + c is 2**-60 below a float32 midpoint
    assert _fma(np.array([a]), np.array([b]), c)[0] == f(1 + 2**-23)
    assert np.float32(float(a) * float(b) + float(c)) == f(1 + 2**-22)  # the naive sum errs
    rng = np.random.default_rng(0)
    x, y, z = (
        rng.standard_normal(2000).astype(f) * f(10) ** rng.integers(-4, 4, 2000) for _ in "xyz"
    )
    ours = _fma(x, y, z)
    exact = [
        _round_to_float32(Fraction(float(p)) * Fraction(float(q)) + Fraction(float(r)))
        for p, q, r in zip(x, y, z, strict=True)
    ]
    assert ours.tobytes() == np.array(exact, f).tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_randint_and_randperm_values_are_torchs(torch, dtype):
    """randint(..)/randperm(n) VALUEs: torch's integers, held (for now) as floats of --dtype,
    i.e. torch.randint(.., dtype=float) and torch.randperm(n, dtype=float)."""
    tdtype = getattr(torch, dtype)
    cases = [
        ("randint(0, 10, (2, 3))", lambda: torch.randint(0, 10, (2, 3), dtype=tdtype)),
        ("randint(5, (4,))", lambda: torch.randint(5, (4,), dtype=tdtype)),
        (f"randint(-3, {2**40}, [17])", lambda: torch.randint(-3, 2**40, [17], dtype=tdtype)),
        ("randint(7, ())", lambda: torch.randint(7, (), dtype=tdtype)),
        ("randperm(0)", lambda: torch.randperm(0, dtype=tdtype)),
        ("randperm(100)", lambda: torch.randperm(100, dtype=tdtype)),
    ]
    for text, draw in cases:
        ours = to_array(text, dtype, rng=Generator(11))
        torch.manual_seed(11)
        assert same_bits(ours, draw()), text


@pytest.mark.parametrize(
    "text",
    [
        "randint(3)",
        "randint(5, 5, (2,))",
        "randint(1.5, (2,))",
        "randint(0, 9223372036854775808, (2,))",
        "randint(0, 3, (-1,))",
        "randint(a, (2,))",
        "randperm(2, 3)",
        "randperm(-1)",
        "randperm(1.5)",
    ],
)
def test_bad_random_values(text):
    with pytest.raises(InputError):
        to_array(parse_value(text), "float32")


def test_randperm_float32_limit():
    with pytest.raises(InputError, match="2\\^24"):
        to_array("randperm(16777218)", "float32")
