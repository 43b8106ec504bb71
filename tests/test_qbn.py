"""Quantized BN: the fold is exact, minimal, and refuses what it cannot do."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from hwnorm.exactfit import Dyadic, cell, fit_affine, first_hit, round_exact
from hwnorm.fixed import FixedFormat, Rounding
from hwnorm.bnspec import BNSpec, aciq_alpha, aciq_mse, bn_statistics, fold_bn
from tests import reference as ref

MODES = [m.name.lower() for m in Rounding]


def random_bn(rng, channels):
    """Hostile-ish BN parameters: negative, zero and tiny γ, exact-tie dyadic values."""
    gamma = rng.uniform(-3, 3, channels)
    gamma[rng.random(channels) < 0.15] = 0.0
    gamma[rng.random(channels) < 0.1] = 0.5  # dyadic: produces exact ties
    beta = rng.normal(0, 2, channels)
    beta[rng.random(channels) < 0.1] = 0.25
    mean = rng.normal(0, 50, channels)
    var = rng.uniform(0.01, 400, channels)
    var[rng.random(channels) < 0.1] = 1.0
    return gamma, beta, mean, var


def all_inputs(spec):
    return np.arange(spec.in_lo, spec.in_hi + 1)[:, None].repeat(spec.channels, 1)


def float_bn(x, gamma, beta, mean, var, eps, s_in, s_out, z_in=0, z_out=0):
    """The float BN a user would write, in float64, before rounding."""
    real = s_in * (x.astype(np.float64) - z_in)
    return (gamma * (real - mean) / np.sqrt(var + eps) + beta) / s_out + z_out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_fold_is_exact_exhaustively_up_to_16_bits(mode, overflow):
    """Every input of every width 2 … 16: integer datapath == exact R(a·x + b), fitted."""
    rng = np.random.default_rng(hash((mode, overflow)) % 2**32)
    for width in (2, 3, 5, 8, 11, 13, 16):
        g, b, m, v = random_bn(rng, 12)
        s_in = 2.0 ** -rng.integers(0, 6) * rng.uniform(0.5, 1)
        fold = fold_bn(g, b, m, v, 1e-5, in_fmt=FixedFormat.integer(width),
                       out_fmt=FixedFormat.integer(8), in_scale=s_in, out_scale=rng.uniform(0.02, 0.5),
                       out_zero_point=int(rng.integers(-5, 5)), rounding=mode, overflow=overflow)
        x = all_inputs(fold.spec)
        got, want = fold.spec.apply(x), fold.target(x)
        assert np.array_equal(got, want), (width, np.argwhere(got != want)[:5])


def test_target_is_exact_against_fractions():
    """The fast exact target (float + integer fix-ups) equals a Fraction evaluation."""
    rng = np.random.default_rng(7)
    for mode in MODES:
        g, b, m, v = random_bn(rng, 6)
        fold = fold_bn(g, b, m, v, 0.0, in_fmt=FixedFormat.integer(10), rounding=mode, overflow="wrap",
                       out_fmt=FixedFormat.integer(16), in_scale=0.125, out_scale=0.25)
        x = all_inputs(fold.spec)
        want = np.array([[ref.fit(ref.round_rational(Fraction(fold.a[c]) * int(xi) + Fraction(fold.b[c]), mode),
                                  16, True, "wrap") for c in range(6)] for xi in x[:, 0]])
        assert np.array_equal(fold.target(x), want)


def test_fold_agrees_with_float_bn_except_at_float_ties():
    """Against the float BN a user writes: differences only where float64 itself cannot
    tell which side of a rounding boundary the value is on."""
    rng = np.random.default_rng(3)
    g, b, m, v = random_bn(rng, 32)
    fold = fold_bn(g, b, m, v, 1e-3, in_fmt=FixedFormat.integer(12), out_fmt=FixedFormat.integer(8),
                   in_scale=0.05, out_scale=0.1, rounding="half_even")
    x = all_inputs(fold.spec)
    y = float_bn(x, g, b, m, v, 1e-3, 0.05, 0.1)
    want = FixedFormat.integer(8).quantize(y, "half_even")
    diff = fold.spec.apply(x) != want
    frac = np.abs(y - np.floor(y) - 0.5)
    assert np.all(frac[diff] < 1e-9), "a mismatch away from a float tie"
    assert diff.mean() < 1e-3


@pytest.mark.parametrize("mode", ["floor", "half_up", "half_away"])
def test_shift_is_minimal(mode):
    """No (A, B) at shift k − 1 reproduces the target (A scanned ±64 around ideal)."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(40):
        a, b = rng.uniform(-2, 2), rng.uniform(-6, 6)
        f = Dyadic.from_floats(a, b)
        x0 = int(rng.integers(-40, 0))
        x1 = x0 + int(rng.integers(1, 60))
        fit = fit_affine(f, Rounding.parse(mode), x0, x1)
        if fit.shift == 0:
            continue
        k = fit.shift - 1
        xs = np.arange(x0, x1 + 1)
        n = np.array([round_exact(f, int(x), Rounding.parse(mode)) for x in xs])
        cells = np.array([cell(Rounding.parse(mode), int(v), k) for v in n])
        ideal = math.floor(a * 2**k)
        for A in range(ideal - 64, ideal + 65):
            assert (cells[:, 0] - A * xs).max() > (cells[:, 1] - A * xs).min(), (a, b, x0, x1, A)
        checked += 1
    assert checked > 20


def test_first_hit_matches_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        m = int(rng.choice([2, 8, 64, 1024, 7, 13]))
        a, c = (int(v) for v in rng.integers(-3 * m, 3 * m, 2))
        lo = int(rng.integers(0, m))
        hi = int(rng.integers(lo, m))
        brute = next((t for t in range(2 * m + 2) if lo <= (a * t + c) % m <= hi), None)
        assert first_hit(a, c, m, lo, hi) == brute


@pytest.mark.parametrize("width, out_bits, overflow", [(20, 8, "wrap"), (24, 8, "saturate"),
                                                       (32, 8, "saturate"), (24, 12, "saturate")])
def test_wide_inputs_random_and_adversarial(width, out_bits, overflow):
    """Beyond exhaustive reach: the certificate's own hull points, the region edges and
    10^5 random inputs per case all match the exact target."""
    rng = np.random.default_rng(width + out_bits)
    g, b, m, v = random_bn(rng, 8)
    fmt = FixedFormat.integer(width)
    fold = fold_bn(g, b, m, v, 1e-5, in_fmt=fmt, out_fmt=FixedFormat.integer(out_bits),
                   in_scale=2.0**-(width // 2), out_scale=0.05, rounding="half_up", overflow=overflow)
    spec = fold.spec
    from hwnorm.exactfit import hull_candidates
    pts = set(rng.integers(spec.in_lo, spec.in_hi, 100_000, endpoint=True).tolist())
    pts |= {spec.in_lo, spec.in_hi, 0, -1, 1}
    for c in range(spec.channels):
        f = Dyadic.from_floats(fold.a[c], fold.b[c])
        g_ = Dyadic(f.N, f.C + f.M // 2, f.M)
        pts |= {x for x in hull_candidates(g_.N, g_.C, g_.M, spec.in_lo, spec.in_hi)}
    x = np.array(sorted(pts))[:, None].repeat(spec.channels, 1)
    assert np.array_equal(spec.apply(x), fold.target(x))
    assert spec.acc_bits <= 63


def test_too_wide_for_64_bits_is_refused_clearly():
    """32-bit inputs with a 16-bit wrapping output cannot be exact in a 63-bit accumulator."""
    with pytest.raises(ValueError, match="channel 0 .*63-bit accumulator.*narrow the input range"):
        fold_bn([1.0], [0.0], [0.0], [1.0], in_fmt=FixedFormat.integer(32), in_scale=2.0**-16,
                out_fmt=FixedFormat.integer(16), out_scale=0.0123, overflow="wrap")


@settings(max_examples=200, deadline=None)
@given(data=st.data(), mode=st.sampled_from(MODES), overflow=st.sampled_from(["saturate", "wrap"]))
def test_apply_equals_big_integer_reference_on_arbitrary_specs(data, mode, overflow):
    """Any integer spec (not only folded ones): per-channel shifts 0 … 63, exact ties, 63-bit
    accumulators, every mode and overflow; the kernel equals ``fit(shift_round(m·x + b))``."""
    channels = data.draw(st.integers(1, 4))
    in_fmt = FixedFormat.integer(data.draw(st.integers(1, 32)), data.draw(st.booleans()))
    out_fmt = FixedFormat.integer(data.draw(st.integers(1, 40)), data.draw(st.booleans()))
    mult = data.draw(st.lists(st.integers(-(1 << 31), 1 << 31), min_size=channels, max_size=channels))
    shift = data.draw(st.lists(st.integers(0, 63), min_size=channels, max_size=channels))
    bias, tie_row = [], []
    for m, s in zip(mult, shift):
        x0 = data.draw(st.integers(in_fmt.min_int, in_fmt.max_int))
        tie_row.append(x0)
        if s and data.draw(st.booleans()):  # make x0 an exact tie of this channel
            bias.append(data.draw(st.integers(-8, 8)) * (1 << s) + (1 << (s - 1)) - m * x0)
        else:
            bias.append(data.draw(st.integers(-(1 << 62), 1 << 62)))
    try:
        spec = BNSpec(channels, in_fmt, out_fmt, mult, bias, shift, rounding=mode, overflow=overflow)
    except ValueError:
        assume(False)  # the accumulator needs more than 63 bits: refused, tested elsewhere
    edges = [spec.in_lo, spec.in_hi, 0, min(max(-1, spec.in_lo), spec.in_hi)]
    rows = data.draw(st.lists(st.lists(st.one_of(st.sampled_from(edges), st.integers(spec.in_lo, spec.in_hi)),
                                       min_size=channels, max_size=channels), min_size=1, max_size=20))
    x = np.array(rows + [tie_row], dtype=np.int64)
    want = [[ref.fit(ref.shift_round(m * int(v) + b, s, mode), out_fmt.width, out_fmt.signed, overflow)
             for v, m, b, s in zip(row, mult, bias, shift)] for row in x]
    assert spec.apply(x).tolist() == want


def test_shared_and_per_channel_shift():
    rng = np.random.default_rng(2)
    g, b, m, v = random_bn(rng, 16)
    shared = fold_bn(g, b, m, v, in_fmt=FixedFormat.integer(10))
    per = fold_bn(g, b, m, v, in_fmt=FixedFormat.integer(10), per_channel_shift=True)
    assert shared.spec.shared_shift == per.channel_min_shift.max()
    assert np.array_equal(per.spec.shift, per.channel_min_shift)
    assert per.spec.mult_bits <= shared.spec.mult_bits
    x = all_inputs(shared.spec)
    assert np.array_equal(shared.spec.apply(x), per.spec.apply(x))


def test_degenerate_parameters():
    # γ = 0: a constant channel, folded exactly (mult 0)
    fold = fold_bn([0.0, -1.0], [3.3, 0.0], [0.0, 2.0], [1.0, 4.0], 0.0, in_fmt=FixedFormat.integer(8),
                   out_scale=1.0)
    assert fold.spec.mult[0] == 0
    x = all_inputs(fold.spec)
    y = fold.spec.apply(x)
    assert np.all(y[:, 0] == 3) and np.array_equal(y, fold.target(x))
    assert fold.spec.mult[1] < 0  # negative γ: negative multiplier, same datapath
    # tiny scale: exact constant
    tiny = fold_bn([1e-30], [0.3], [0.0], [1.0], in_fmt=FixedFormat.integer(16), out_scale=0.1)
    assert np.all(tiny.spec.apply(all_inputs(tiny.spec)) == 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(var=[1.0, 0.0], eps=0.0), "channel 1: var \\+ eps = 0"),
    (dict(gamma=[1.0, np.nan]), "gamma is nan in channel 1"),
    (dict(beta=[np.inf, 0.0]), "beta is inf in channel 0"),
    (dict(var=[1.0, -2.0]), "var is negative .* channel 1"),
    (dict(gamma=[1e300, 1.0], var=[1e-300, 1.0], eps=0.0), "channel 0"),
    (dict(gamma=[1e17, 1.0], overflow="wrap"), "channel 0 .*no exact integer fit"),
    (dict(out_scale=[0.1, 0.0]), "out_scale must be > 0, got 0.0 in channel 1"),
    (dict(gamma=[1.0, 1.0, 1.0]), "shape"),
])
def test_hostile_parameters_name_the_channel(kwargs, message):
    args = dict(gamma=[1.0, 1.0], beta=[0.0, 0.0], mean=[0.0, 0.0], var=[1.0, 1.0], eps=1e-5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        fold_bn(args.pop("gamma"), args.pop("beta"), args.pop("mean"), args.pop("var"), args.pop("eps"),
                in_fmt=FixedFormat.integer(16), **args)


def test_apply_rejects_out_of_range_and_bad_shapes():
    fold = fold_bn([1.0], [0.0], [0.0], [1.0], in_fmt=FixedFormat.integer(8), in_range=(-10, 10))
    with pytest.raises(ValueError, match="outside the declared range"):
        fold.spec.apply(np.array([[11]]))
    with pytest.raises(ValueError, match="channels"):
        fold.spec.apply(np.zeros((3, 2), np.int32))
    with pytest.raises(ValueError, match="integers"):
        fold.spec.apply(np.zeros((3, 1)))


def test_spec_roundtrip_and_hash():
    rng = np.random.default_rng(4)
    spec = fold_bn(*random_bn(rng, 5), in_fmt=FixedFormat.integer(9)).spec
    again = BNSpec.from_dict(spec.to_dict())
    assert again == spec and again.spec_hash == spec.spec_hash
    assert not spec.mult.flags.writeable
    with pytest.raises(ValueError, match="missing field 'mult'"):
        BNSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "mult"})
    with pytest.raises(ValueError, match="at most 63"):
        BNSpec(1, FixedFormat.integer(32), FixedFormat.integer(8), [1 << 40], [0], [0])


def test_exact_ties_follow_the_declared_mode():
    """a = 1/2, b = 0: every odd x is an exact tie; each mode rounds it its own way."""
    x = np.arange(-7, 8)[:, None]
    for mode in MODES:
        fold = fold_bn([0.5], [0.0], [0.0], [1.0], 0.0, in_fmt=FixedFormat.integer(4), out_scale=1.0,
                       rounding=mode)
        want = [ref.round_rational(Fraction(int(v), 2), mode) for v in x[:, 0]]
        assert fold.spec.apply(x)[:, 0].tolist() == want


# ------------------------------------------------------------ Range/L1 BN, ACIQ

def test_bn_statistics_variants():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(8192, 4))
    mean, var = bn_statistics(x)
    assert np.allclose(mean, 3.0, atol=0.1) and np.allclose(var, 4.0, rtol=0.05)
    _, var_l1 = bn_statistics(x, "l1")
    assert np.allclose(np.sqrt(var_l1), 2.0, rtol=0.03)  # E|X−μ|·√(π/2) = σ for Gaussians
    _, var_code = bn_statistics(x, "range")
    _, var_paper = bn_statistics(x, "range", range_constant="paper")
    assert np.allclose(np.sqrt(var_code), 2.0, rtol=0.15)
    ratio = np.sqrt(var_paper / var_code)
    assert np.allclose(ratio, 1 / (0.5 * 0.35 * (1 + math.sqrt(math.pi * math.log(4)))))
    # the matching folded spec is exact
    fold = fold_bn([1.0] * 4, [0.0] * 4, mean, var_l1, 0.0, in_fmt=FixedFormat.integer(8), in_scale=0.1,
                   out_scale=0.05)
    xs = all_inputs(fold.spec)
    assert np.array_equal(fold.spec.apply(xs), fold.target(xs))
    with pytest.raises(ValueError, match="allowed: standard, range, l1"):
        bn_statistics(x, "l2")


@pytest.mark.parametrize("dist, table", [
    ("laplace", {2: 2.83, 3: 3.90, 4: 5.03, 8: 9.90}),
    ("gauss", {2: 1.71, 3: 2.15, 4: 2.55, 8: 3.92}),
])
def test_aciq_matches_published_table(dist, table):
    for bits, alpha in table.items():
        got = aciq_alpha(bits, dist)
        assert abs(got - alpha) <= 0.01, (bits, got)
        # it is a minimum of the published expression
        assert aciq_mse(got, bits, dist) <= min(aciq_mse(got * 0.99, bits, dist), aciq_mse(got * 1.01, bits, dist))
    assert abs(aciq_alpha(4, dist, scale=3.0) - 3.0 * aciq_alpha(4, dist)) < 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_fit_is_exact_on_dyadic_maps_full_of_ties(mode):
    """Small-denominator a, b put many (or all) inputs exactly on rounding boundaries."""
    rng = np.random.default_rng(17)
    R = Rounding.parse(mode)
    for _ in range(1500):
        a = Fraction(int(rng.integers(-64, 65)), int(rng.choice([1, 2, 4, 8, 16, 32])))
        b = Fraction(int(rng.integers(-64, 65)), int(rng.choice([1, 2, 4, 8, 16, 32])))
        f = Dyadic.from_floats(float(a), float(b))
        x0 = int(rng.integers(-30, 10))
        x1 = x0 + int(rng.integers(0, 40))
        sat = rng.random() < 0.3
        qlo, qhi = (-20, 20) if sat else (None, None)
        fit = fit_affine(f, R, x0, x1, qlo, qhi)
        for x in range(x0, x1 + 1):
            got = ref.round_rational(Fraction(fit.mult * x + fit.bias, 1 << fit.shift), mode)
            want = ref.round_rational(a * x + b, mode)
            if sat:
                got, want = min(max(got, qlo), qhi), min(max(want, qlo), qhi)
            assert got == want, (a, b, x0, x1, fit, x)
