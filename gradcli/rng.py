"""PyTorch's CPU random generator, draw for draw: ``torch.manual_seed(N)`` then ``randn``,
``rand``, ``randint``, ``randperm``, ``bernoulli_`` (dropout's masks) and ``exponential_``
(gumbel_softmax's noise) give the same bits here as in PyTorch 2.13 on CPU.

It mirrors ATen's CPUGeneratorImpl: an mt19937 engine seeded with the low 32 bits of the
seed (init_genrand), ``random()`` one 32-bit output, ``random64()`` two (the first is the
high half), the uniform and normal transforms of DistributionsHelper.h and the CPU kernels
of native/cpu/DistributionTemplates.h. numpy's MT19937 produces the raw stream (its state
is set to the one PyTorch seeds), so large draws are vectorised.

normal_ has three code paths in ATen, chosen by dtype and size:
- fewer than 16 elements: per element, Box-Muller in double (log1p, cos, sin of libm), the
  second sample of each pair cached in the generator for the next draw;
- float64, 16 or more: normal_fill, 16 uniforms at a time (libm's log, cos, sin in double),
  the last partial block recomputed from 16 fresh uniforms over the tail;
- float32, 16 or more: the same blocks through avx_mathfun.h's log256_ps and sincos256_ps
  (ATen's AVX2 kernel, which x86-64 CPUs with AVX2 or AVX-512 run), emulated here in float32
  with the fused multiply-adds the compiler forms.
"""

import array
import math
import os

import numpy as np

from .errors import InputError

_N = 624  # mt19937's state words


def _init_genrand(seed):
    """mt19937's state for a 32-bit seed (MT19937RNGEngine.h init_with_uint32)."""
    state = [seed & 0xFFFFFFFF]
    for j in range(1, _N):
        prev = state[-1]
        state.append((1812433253 * (prev ^ (prev >> 30)) + j) & 0xFFFFFFFF)
    return np.array(state, dtype=np.uint32)


def check_seed(seed):
    """A seed torch.manual_seed takes: a whole number in [-2**63, 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"a random seed is a whole number, got {seed!r}")
    if not -(2**63) <= seed < 2**64:
        raise InputError(
            f"random seed {seed} is out of range",
            hint="torch.manual_seed takes a whole number from -2**63 to 2**64 - 1",
        )
    return int(seed)


def record_seed(seed, line):
    """One 64-bit seed for a batch record from the run's seed and the record's line number
    (numpy's SeedSequence of the two; a line number below 0 taken modulo 2**64), so that
    each record draws its own numbers."""
    entropy = [seed, line % 2**64]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def _floating(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"rand and randn draw float32 or float64, not {dtype}")
    return dtype


class Generator:
    """ATen's CPUGeneratorImpl (torch.Generator on CPU): the engine plus the cached normal.
    Without a seed it takes one from os.urandom, as PyTorch's default generator does; a
    [seed, line] pair is a batch record's seed (record_seed)."""

    def __init__(self, seed=None):
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        elif isinstance(seed, (list, tuple)):
            seed = record_seed(*seed)
        self.manual_seed(seed)

    def manual_seed(self, seed):
        """torch.manual_seed(seed): the engine takes the seed's low 32 bits."""
        self.seed = check_seed(seed) % 2**64
        self._bits = np.random.MT19937()
        self._bits.state = {
            "bit_generator": "MT19937",
            "state": {"key": _init_genrand(self.seed), "pos": _N},
        }
        self._next_normal = None  # next_double_normal_sample_
        return self

    # ---- the engine ------------------------------------------------------------------------
    def random(self, n):
        """n outputs of random(): 32-bit draws, as uint64."""
        return self._bits.random_raw(n)

    def random64(self, n):
        """n outputs of random64(): (first draw << 32) | second draw."""
        raw = self._bits.random_raw(2 * n)
        return (raw[0::2] << np.uint64(32)) | raw[1::2]

    # ---- transforms ------------------------------------------------------------------------
    def _uniform(self, n, dtype):
        """uniform_real_distribution(0, 1): 24 bits of random() for float32, 53 bits of
        random64() for float64, times 2**-digits."""
        if dtype == np.float32:
            return (self.random(n) & np.uint64(0xFFFFFF)).astype(np.float32) * np.float32(2**-24)
        return (self.random64(n) & np.uint64(2**53 - 1)).astype(np.float64) * 2.0**-53

    def rand(self, shape, dtype="float32"):
        """torch.rand(shape, dtype=dtype)."""
        dtype = _floating(dtype)
        return self._uniform(math.prod(shape), dtype).reshape(shape)

    def randn(self, shape, dtype="float32"):
        """torch.randn(shape, dtype=dtype)."""
        dtype = _floating(dtype)
        n = math.prod(shape)
        if n < 16:
            out = np.array([self._normal() for _ in range(n)], dtype=np.float64)
            return out.astype(dtype).reshape(shape)
        fill = _fill16_float if dtype == np.float32 else _fill16_double
        data = self._uniform(n, dtype)
        whole = n - n % 16
        data[:whole] = fill(data[:whole])
        if n % 16:
            data[n - 16 :] = fill(self._uniform(16, dtype))
        return data.reshape(shape)

    def _normal(self):
        """normal_distribution<double>(0, 1): Box-Muller, caching the sine's sample."""
        if self._next_normal is not None:
            value, self._next_normal = self._next_normal, None
            return value
        u1, u2 = self._uniform(2, np.float64).tolist()
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self._next_normal = r * math.sin(theta)
        return r * math.cos(theta)

    def bernoulli(self, shape, p):
        """torch.empty(shape).bernoulli_(p) for a float p, as booleans: ATen's default CPU
        kernel, a bernoulli_distribution<double> per element (a 53-bit uniform from
        random64() below p). ATen's source also has an MKL kernel for Intel CPUs, but
        PyTorch 2.13's CPU build runs the default one on them as well (checked on a
        GenuineIntel AVX-512 machine under every ATEN_CPU_CAPABILITY)."""
        return self._uniform(math.prod(shape), np.float64).reshape(shape) < p

    def exponential(self, shape, dtype="float32"):
        """torch.empty(shape, dtype=dtype).exponential_(): exponential_distribution<double>(1)
        per element, -log1p(-u) of a 53-bit uniform (libm's log1p, which Python's math
        calls), rounded to the dtype."""
        dtype = _floating(dtype)
        u = self._uniform(math.prod(shape), np.float64).tolist()
        out = np.fromiter(map(math.log1p, (-v for v in u)), np.float64, len(u))
        return (-out).astype(dtype).reshape(shape)

    def randint(self, low, high, shape, dtype="int64"):
        """torch.randint(low, high, shape, dtype=dtype): random() % range + low, or random64()
        from a range of 2**28 on (ATen's bound on the skew of %). For a floating dtype ATen
        first pulls the bounds in so that no draw rounds onto ``high`` (update_from/to)."""
        low, high, dtype = int(low), int(high), np.dtype(dtype)
        if not low < high:
            raise ValueError(f"randint needs low < high, got low={low}, high={high}")
        if dtype.kind == "f":
            low, high = _update_from(low, dtype), _update_to(high, dtype)
            if not low < high:
                raise ValueError(f"randint's bounds cast to {dtype} meet: low={low}, high={high}")
        span = high - low
        if span >= 2**64:
            raise ValueError(f"randint's range {span} does not fit 64 bits")
        n = math.prod(shape)
        draws = self.random64(n) if span >= 2**28 else self.random(n)
        out = (draws % np.uint64(span)).astype(np.int64) + np.int64(low)
        return out.astype(dtype).reshape(shape)

    def randperm(self, n, dtype="int64"):
        """torch.randperm(n, dtype=dtype): Fisher-Yates swaps with random() % (n - i); from
        2**32 / 20 elements on, ATen's inside-out variant with random64() % (i + 1)."""
        n, dtype = int(n), np.dtype(dtype)
        if n < 0:
            raise ValueError(f"randperm needs n >= 0, got {n}")
        if dtype.kind == "f" and n > 2 ** (np.finfo(dtype).nmant + 1) + 1:
            raise ValueError(f"randperm: n too large for {dtype}")
        return self._randperm(n).astype(dtype)

    def _randperm(self, n):
        """The swaps, in order, over a compact array; the draws made a block at a time."""
        perm = array.array("q", range(n))
        block = 1 << 20
        if n < (2**32 - 1) // 20:
            for start in range(0, n - 1, block):
                stop = min(start + block, n - 1)
                lows = np.arange(start, stop, dtype=np.uint64)
                picks = (self.random(stop - start) % (np.uint64(n) - lows) + lows).tolist()
                for i, j in zip(range(start, stop), picks, strict=True):
                    perm[i], perm[j] = perm[j], perm[i]
        else:
            for start in range(0, n, block):
                stop = min(start + block, n)
                lows = np.arange(start, stop, dtype=np.uint64)
                picks = (self.random64(stop - start) % (lows + np.uint64(1))).tolist()
                for i, z in zip(range(start, stop), picks, strict=True):
                    perm[i] = perm[z]
                    perm[z] = i
        return np.frombuffer(perm, dtype=np.int64).copy()


# ---- randint's bounds for floating dtypes (native/DistributionTemplates.h) ----------------


def _as_float_int64(x, dtype):
    """static_cast<int64_t>(static_cast<scalar_t>(x)) for an int64 x: rounded to the dtype's
    significant bits, ties to even; x86 gives INT64_MIN for what int64 cannot hold."""
    digits = np.finfo(dtype).nmant + 1
    drop = max(abs(x).bit_length() - digits, 0)
    q, r = divmod(abs(x), 1 << drop)
    half = 1 << drop >> 1
    q += drop > 0 and (r > half or (r == half and q % 2 == 1))
    y = (q << drop) * (1 if x >= 0 else -1)
    return y if -(2**63) <= y < 2**63 else -(2**63)


def _shift(x, dtype):
    return 1 << (abs(x).bit_length() - 1 - (np.finfo(dtype).nmant + 1) + 1)


def _update_from(low, dtype):
    up = _as_float_int64(low + 1, dtype)
    return up + _shift(low + 1, dtype) if up < low else low


def _update_to(high, dtype):
    down = _as_float_int64(high - 1, dtype)
    return down - _shift(high - 1, dtype) if down >= high else high


# ---- normal_fill_16 in double: libm's log, cos and sin (Python's math calls the same) -----


def _fill16_double(u):
    """normal_fill_16<double> over consecutive blocks of 16 uniforms."""
    blocks = u.reshape(-1, 2, 8)
    u1 = (1.0 - blocks[:, 0]).ravel()
    u2 = blocks[:, 1].ravel()
    radius = np.sqrt(-2.0 * np.fromiter(map(math.log, u1.tolist()), np.float64, u1.size))
    theta = (2.0 * math.pi) * u2
    t = theta.tolist()
    cos = np.fromiter(map(math.cos, t), np.float64, len(t))
    sin = np.fromiter(map(math.sin, t), np.float64, len(t))
    out = np.empty_like(blocks)
    out[:, 0] = (radius * cos).reshape(-1, 8)
    out[:, 1] = (radius * sin).reshape(-1, 8)
    return out.ravel()


# ---- normal_fill_16_AVX2: avx_mathfun.h in float32, with the compiler's FMAs --------------

_F = np.float32


def _fma(a, b, c):
    """a * b + c rounded once to float32 (vfmadd), for results in float32's normal range.
    The product is exact in double, so the double sum is off only where it lands exactly
    on a float32 midpoint (its low 29 bits 1 then zeros); there TwoSum's error term says
    which way the exact value lies."""
    p = a.astype(np.float64) * b.astype(np.float64)
    s = p + c
    r = s.astype(np.float32)
    tie = np.flatnonzero((s.view(np.uint64) & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000))
    if tie.size:
        ps, ss = p.ravel()[tie], s.ravel()[tie]
        cs = np.broadcast_to(c, p.shape).ravel()[tie].astype(np.float64)
        back = ss - cs
        err = (ps - back) + (cs - (ss - back))
        rs = r.ravel()[tie]
        up = (err > 0) & (rs < ss)
        down = (err < 0) & (rs > ss)
        rs = np.where(up, np.nextafter(rs, _F(np.inf)), rs)
        rs = np.where(down, np.nextafter(rs, _F(-np.inf)), rs)
        r = r.copy().reshape(-1)
        r[tie] = rs
        r = r.reshape(p.shape)
    return r


def _log256(x):
    """log256_ps for x in (0, 1] (no invalid or denormal inputs come from 1 - uniform)."""
    bits = x.view(np.int32)
    e = ((bits >> 23) - 0x7F).astype(_F) + _F(1)
    x = ((bits & ~0x7F800000) | np.float32(0.5).view(np.int32)).view(_F)
    mask = x < _F(0.707106781186547524)
    tmp = np.where(mask, x, _F(0))
    x = x - _F(1)
    e = e - np.where(mask, _F(1), _F(0))
    x = x + tmp
    z = x * x
    y = _F(7.0376836292e-2)
    for p in (
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    ):
        y = _fma(np.broadcast_to(y, x.shape), x, _F(p))
    # GCC fuses each multiply into the add or subtract that consumes it (the first such
    # multiply in source order when two feed one add); z * 0.5 and e * q2 are exact.
    y = _fma(y * x, z, e * _F(-2.12194440e-4))
    y = y - z * _F(0.5)
    return _fma(e, _F(0.693359375), x + y)


def _sincos256(x):
    """sincos256_ps for x >= 0: (sin, cos)."""
    j = (x * _F(1.27323954473516)).astype(np.int32)
    j = (j + 1) & ~1
    y = j.astype(_F)
    sign_sin = (j & 4) << 29
    poly = (j & 2) == 0
    sign_cos = (~(j - 2) & 4) << 29
    x = _fma(y, _F(-0.78515625), x)
    x = _fma(y, _F(-2.4187564849853515625e-4), x)
    x = _fma(y, _F(-3.77489497744594108e-8), x)
    z = x * x
    c = _fma(np.broadcast_to(_F(2.443315711809948e-005), z.shape), z, _F(-1.388731625493765e-003))
    c = _fma(c, z, _F(4.166664568298827e-002))
    c = _fma(c * z, z, -(z * _F(0.5)))
    c = c + _F(1)
    s = _fma(np.broadcast_to(_F(-1.9515295891e-4), z.shape), z, _F(8.3321608736e-3))
    s = _fma(s, z, _F(-1.6666654611e-1))
    s = s * z
    s = _fma(s, x, x)
    zero = _F(0)
    ysin2 = np.where(poly, s, zero)
    ysin1 = np.where(poly, zero, c)
    s = s - ysin2
    c = c - ysin1
    sin = (ysin1 + ysin2).view(np.int32) ^ sign_sin
    cos = (c + s).view(np.int32) ^ sign_cos
    return sin.view(_F), cos.view(_F)


def _fill16_float(u):
    """normal_fill_16_AVX2 over consecutive blocks of 16 float32 uniforms."""
    blocks = u.reshape(-1, 2, 8)
    u1 = (_F(1) - blocks[:, 0]).ravel()
    radius = np.sqrt(_F(-2) * _log256(u1))
    theta = _F(2.0 * math.pi) * blocks[:, 1].ravel()
    sin, cos = _sincos256(theta)
    out = np.empty_like(blocks)
    out[:, 0] = (radius * cos).reshape(-1, 8)
    out[:, 1] = (radius * sin).reshape(-1, 8)
    return out.ravel()
