"""Quantized batch-norm: an exact integer fold of float BN, its spec and its golden kernel.

Float BN on a quantized input ``x`` (stored integer, real value ``s_in·(x − z_in)``) with a
quantized output (real value ``s_out·(q − z_out)``) is an affine map per channel ``c``::

    q = R(a_c·x + b_c)      a_c = γ_c·s_in / (√(σ²_c + ε)·s_out)
                            b_c = (β_c − γ_c·(μ_c + s_in·z_in)/√(σ²_c + ε)) / s_out + z_out

The fold turns it into the integer datapath the hardware runs::

          x (in_fmt) ──►  × A_c  ──►  + B_c  ──►  >> k (rounding R)  ──►  saturate / wrap  ──► q
                          (mult)      (bias)      (shift, shared or      (out_fmt)
                                                   per channel)

and it is **exact**: for every integer ``x`` of the declared input range the integer result
equals ``fit(R(a_c·x + b_c))`` with ``a_c, b_c`` taken as the exact dyadic rationals their
float64 values are. :mod:`hwnorm.exactfit` proves it (for any input width, without
enumeration) and picks the smallest shift; the tests re-prove it exhaustively for inputs up to
16 bits. Degenerate parameters either fold exactly (γ = 0 gives a constant, γ < 0 a negative
multiplier) or raise ``ValueError`` naming the channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numba import njit, prange

from hwnorm.datatypes import IntType, int_array, whole
from hwnorm.exactfit import Dyadic, fit_affine, fit_at_shift, round_exact
from hwnorm.fixed import FixedFormat, Overflow, Rounding, fit_scalar, lifted_shift_round, fit, lifted_rounding
from hwnorm.spec import SpecIdentity
from hwnorm.vectorize import prefer_512_bit_vectors

__all__ = ["BNSpec", "BNFold", "fold_bn", "fold_dyadics", "bn_statistics", "aciq_mse", "aciq_alpha", "aciq_table"]


def _frozen_int64(name: str, values, channels: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"BNSpec.{name} must hold integers, got dtype {arr.dtype}")
    arr = np.array(np.broadcast_to(arr, (channels,)), dtype=np.int64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class BNSpec(SpecIdentity):
    """The one frozen spec of a quantized BN block (integers only).

    Per channel ``c``: ``q = fit(R((mult[c]·x + bias[c]) >> shift[c]))``, ``x`` in
    ``[in_lo, in_hi]`` (a sub-range of ``in_fmt``), ``fit`` = saturate to ``[out_lo, out_hi]``
    (default: all of ``out_fmt``; narrower for a narrow-range or ReLU-clipped quantizer) or wrap
    to ``out_fmt``. Channels are the last axis of the data (NHWC / streaming order).
    """

    channels: int
    in_fmt: FixedFormat
    out_fmt: FixedFormat
    mult: np.ndarray
    bias: np.ndarray
    shift: np.ndarray
    rounding: Rounding = Rounding.HALF_UP
    overflow: Overflow = Overflow.SATURATE
    in_lo: int | None = None
    in_hi: int | None = None
    name: str = "bn"
    out_lo: int | None = None
    out_hi: int | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if not isinstance(self.channels, (int, np.integer)) or self.channels < 1:
            raise ValueError(f"BNSpec.channels must be a positive integer, got {self.channels!r}")
        set_("channels", int(self.channels))
        for fname in ("in_fmt", "out_fmt"):
            if not isinstance(getattr(self, fname), FixedFormat):
                raise ValueError(f"BNSpec.{fname} must be a FixedFormat")
        set_("rounding", Rounding.parse(self.rounding))
        set_("overflow", Overflow.parse(self.overflow))
        for fname in ("mult", "bias", "shift"):
            set_(fname, _frozen_int64(fname, getattr(self, fname), self.channels))
        if self.shift.min() < 0 or self.shift.max() > 63:
            raise ValueError("BNSpec.shift must lie in 0 … 63")
        lo = self.in_fmt.min_int if self.in_lo is None else int(self.in_lo)
        hi = self.in_fmt.max_int if self.in_hi is None else int(self.in_hi)
        if not self.in_fmt.min_int <= lo <= hi <= self.in_fmt.max_int:
            raise ValueError(f"BNSpec input range [{lo}, {hi}] is not inside {self.in_fmt}")
        set_("in_lo", lo)
        set_("in_hi", hi)
        out_lo = self.out_fmt.min_int if self.out_lo is None else int(self.out_lo)
        out_hi = self.out_fmt.max_int if self.out_hi is None else int(self.out_hi)
        if not self.out_fmt.min_int <= out_lo <= out_hi <= self.out_fmt.max_int:
            raise ValueError(f"BNSpec output range [{out_lo}, {out_hi}] is not inside {self.out_fmt}")
        if (out_lo, out_hi) != (self.out_fmt.min_int, self.out_fmt.max_int) and self.overflow != Overflow.SATURATE:
            raise ValueError("BNSpec: a narrowed output range needs overflow = saturate")
        set_("out_lo", out_lo)
        set_("out_hi", out_hi)
        if self.acc_bits > 63:
            raise ValueError(f"BNSpec accumulator needs {self.acc_bits} bits; at most 63 are allowed")

    # ---- derived widths (every view reads these, none recomputes them)
    @property
    def acc_range(self) -> tuple[int, int]:
        """Extremes of ``mult·x + bias`` over the input range and all channels."""
        vals = [int(m) * x + int(b) for m, b in zip(self.mult, self.bias) for x in (self.in_lo, self.in_hi)]
        return min(vals), max(vals)

    @property
    def acc_type(self) -> IntType:
        """The register that holds ``mult·x + bias`` (two's complement)."""
        return IntType.from_range(*self.acc_range, signed=True)

    @property
    def acc_bits(self) -> int:
        return self.acc_type.bits

    @property
    def mult_bits(self) -> int:
        return IntType.from_range(int(self.mult.min()), int(self.mult.max()), signed=True).bits

    @property
    def bias_bits(self) -> int:
        return IntType.from_range(int(self.bias.min()), int(self.bias.max()), signed=True).bits

    @property
    def shared_shift(self) -> int | None:
        return int(self.shift[0]) if np.all(self.shift == self.shift[0]) else None

    @property
    def out_dtype(self) -> np.dtype:
        """The narrowest numpy integer type that holds ``out_fmt``."""
        bits = next(b for b in (8, 16, 32, 64) if self.out_fmt.width <= b)
        return np.dtype(f"{'' if self.out_fmt.signed else 'u'}int{bits}")

    # ---- golden model
    @cached_property
    def _lifted_rounding(self) -> tuple:
        """``(offset, shift, away, tie_mask, mode)`` for the kernel: the rounding lifted into the bias.

        ``acc_bits ≤ 63`` (checked above) is the headroom ``hwnorm.fixed.lifted_rounding`` needs;
        ``bias + lift`` is formed modulo 2^64, as the kernel's sum wraps back into range.
        """
        lift, away, tie_mask = lifted_rounding(self.shift, self.rounding)
        offset = (self.bias.view(np.uint64) + lift.view(np.uint64)).view(np.int64)
        return offset, self.shift, away, tie_mask, int(self.rounding)

    def apply(self, x) -> np.ndarray:
        """Run the integer datapath on ``x`` (shape ``(..., channels)``, integer dtype)."""
        x = np.asarray(x)
        if x.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: input must be integers, got dtype {x.dtype}")
        if x.ndim == 0 or x.shape[-1] != self.channels:
            raise ValueError(f"{self.name}: last axis must have {self.channels} channels, got shape {x.shape}")
        flat = np.ascontiguousarray(x.reshape(-1, self.channels))
        out = np.empty(flat.shape, self.out_dtype)
        bad = _bn_apply(flat, self.mult, *self._lifted_rounding, self.in_lo, self.in_hi, self.out_lo, self.out_hi,
                        self.out_fmt.width, self.overflow == Overflow.SATURATE, out)
        if bad:
            raise ValueError(f"{self.name}: {bad} input values outside the declared range "
                             f"[{self.in_lo}, {self.in_hi}] (exactness is only proven there)")
        return out.reshape(x.shape)

    # ---- serialization
    def to_dict(self) -> dict:
        fmt = lambda f: {"int_bits": f.int_bits, "frac_bits": f.frac_bits, "signed": f.signed}  # noqa: E731
        return {
            "kind": "qbn", "name": self.name, "channels": self.channels,
            "in_fmt": fmt(self.in_fmt), "out_fmt": fmt(self.out_fmt),
            "in_range": [self.in_lo, self.in_hi],
            "mult": self.mult.tolist(), "bias": self.bias.tolist(), "shift": self.shift.tolist(),
            "rounding": str(self.rounding), "overflow": str(self.overflow),
            **({} if self.out_range == self.out_fmt.int_type.range else {"out_range": list(self.out_range)}),
        }

    @property
    def out_range(self) -> tuple[int, int]:
        """Values the output takes: ``out_fmt``'s, or the narrower saturation range."""
        return self.out_lo, self.out_hi

    @classmethod
    def from_dict(cls, d: dict) -> "BNSpec":
        try:
            ints = {k: whole(d[k], f"spec.{k}") if not isinstance(d[k], list) else int_array(d[k], f"spec.{k}")
                    for k in ("mult", "bias", "shift")}
            ranges = {k: [whole(v, f"spec.{k}", optional=k == "out_range") for v in d.get(k, [None, None])]
                      for k in ("in_range", "out_range")}
            return cls(channels=whole(d["channels"], "spec.channels"), in_fmt=FixedFormat(**d["in_fmt"]),
                       out_fmt=FixedFormat(**d["out_fmt"]), **ints, rounding=d["rounding"], overflow=d["overflow"],
                       in_lo=ranges["in_range"][0], in_hi=ranges["in_range"][1], name=d.get("name", "bn"),
                       out_lo=ranges["out_range"][0], out_hi=ranges["out_range"][1])
        except KeyError as e:
            raise ValueError(f"BN spec is missing field {e.args[0]!r}") from None
        except TypeError as e:
            raise ValueError(f"BN spec has a malformed field: {e}") from None



@njit(cache=True, inline="always")
def _requantize_row(x, mult, offset, shift, away, tie_mask, mode, in_lo, in_hi, lo, hi, width, saturate, out):
    """One row of channels; returns how many inputs lie outside [in_lo, in_hi]."""
    bad = 0
    for j in range(x.shape[0]):
        v = np.int64(x[j])
        bad += (v < in_lo) | (v > in_hi)
        r = lifted_shift_round(v * mult[j] + offset[j], shift[j], away[j], tie_mask[j], mode)
        out[j] = fit_scalar(r, lo, hi, width, saturate)
    return bad


@njit(cache=True, parallel=True)
def _bn_apply(x, mult, offset, shift, away, tie_mask, mode, in_lo, in_hi, lo, hi, width, saturate, out):
    """``out = fit(round((mult·x + bias) >> shift))`` row by row, with ``offset = bias + lift``.

    The 512-bit hint sits inside the ``prange`` body because that body is the function LLVM
    vectorizes (2.8 → 4.0 G elements/s on the benchmark; the lifted rounding took it to ~5).
    """
    bad = 0
    for i in prange(x.shape[0]):
        prefer_512_bit_vectors()
        bad += _requantize_row(x[i], mult, offset, shift, away, tie_mask, mode, in_lo, in_hi, lo, hi, width,
                               saturate, out[i])
    return bad


# ------------------------------------------------------------------------- folding

@dataclass(frozen=True, eq=False)
class BNFold:
    """A folded BN: the spec plus what the fold knows about it (provenance, not a view)."""

    spec: BNSpec
    a: np.ndarray                 # float64 per-channel slope of the exact target R(a·x + b)
    b: np.ndarray                 # float64 per-channel offset
    channel_min_shift: np.ndarray  # smallest exact shift of each channel alone
    notes: tuple = field(default=())

    def target(self, x) -> np.ndarray:
        """The exact target ``fit(R(a·x + b))`` for integer ``x`` of shape ``(..., channels)``.

        Evaluated in float64; every point whose float value lies within the float error
        bound of a rounding boundary is recomputed with integers, so the result is exact.
        """
        spec = self.spec
        x = np.asarray(x)
        flat = x.reshape(-1, spec.channels)
        xf = flat.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            ax = self.a * xf
            v = ax + self.b
            # |error of a·x + b| ≤ 2u·(|a·x| + |b|); 8u leaves a wide margin.
            tol = 8 * np.finfo(np.float64).eps * (np.abs(ax) + np.abs(self.b) + 1.0)
            edge = v if spec.rounding == Rounding.FLOOR else v + 0.5
            n = np.floor(edge)
            near = (edge - n <= tol) | (n + 1 - edge <= tol) | ~np.isfinite(v) | (np.abs(v) > 2.0**62)
        out = np.where(near, 0, n).astype(np.int64)
        for i, c in zip(*np.nonzero(near)):
            f = Dyadic.from_floats(self.a[c], self.b[c])
            exact = round_exact(f, int(flat[i, c]), spec.rounding)
            out[i, c] = min(max(exact, -(1 << 63)), (1 << 63) - 1)
        return fit(out, spec.out_fmt, spec.overflow).reshape(x.shape)


def _per_channel(name: str, value, channels: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"BN parameter {name} must be numeric") from None
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size not in (1, channels)):
        raise ValueError(f"BN parameter {name} has shape {arr.shape}; expected a scalar or ({channels},)")
    arr = np.broadcast_to(arr, (channels,))
    for c in np.flatnonzero(~np.isfinite(arr)):
        raise ValueError(f"BN parameter {name} is {arr[c]} in channel {c}; it must be finite")
    return arr


def _fit_channels(dyadics, rounding, x0: int, x1: int, qlo, qhi, per_channel_shift: bool, max_acc_bits: int,
                  describe) -> tuple[list, np.ndarray]:
    """The exact fit of every channel's dyadic map over ``[x0, x1]`` (saturating to ``[qlo, qhi]``
    when given) and each channel's smallest shift; at one shared shift unless ``per_channel_shift``."""
    fits = []
    for c, f in enumerate(dyadics):
        try:
            fits.append(fit_affine(f, rounding, x0, x1, qlo, qhi, max_acc_bits=max_acc_bits))
        except ValueError as err:
            raise ValueError(f"{describe(c)}: {err}; narrow the input range or the output format") from None
    min_shift = np.array([best.shift for best in fits], dtype=np.int64)
    if per_channel_shift:
        return fits, min_shift
    k = int(min_shift.max())
    shared = []
    for c, (f, best) in enumerate(zip(dyadics, fits)):
        at_k = fit_at_shift(f, rounding, k, x0, x1, qlo, qhi, max_acc_bits=max_acc_bits)
        if at_k is None:  # scaling an exact fit by 2^j keeps it exact, but widens it
            j = k - best.shift
            at_k = type(best)(k, best.mult << j, best.bias << j)
            acc = IntType.from_range(min(at_k.mult * x0, at_k.mult * x1) + at_k.bias,
                                     max(at_k.mult * x0, at_k.mult * x1) + at_k.bias, signed=True).bits
            if acc > max_acc_bits:
                raise ValueError(f"channel {c}: at the shared shift {k} its accumulator needs "
                                 f"{acc} bits (> {max_acc_bits}); use per_channel_shift=True")
        shared.append(at_k)
    return shared, min_shift


def fold_dyadics(dyadics, *, in_range: tuple[int, int], out_fmt: FixedFormat, out_range: tuple[int, int],
                 rounding, per_channel_shift: bool = False, max_acc_bits: int = 63, name: str = "bn") -> BNSpec:
    """The saturating :class:`BNSpec` equal to ``clip(R(f_c(x)), out_range)`` for every integer
    ``x`` of ``in_range``, for given exact dyadic maps ``f_c`` (one per channel)."""
    rounding = Rounding.parse(rounding)
    x0, x1 = int(in_range[0]), int(in_range[1])
    qlo, qhi = int(out_range[0]), int(out_range[1])
    fits, _ = _fit_channels(dyadics, rounding, x0, x1, qlo, qhi, per_channel_shift, max_acc_bits,
                            lambda c: f"{name}: channel {c}")
    in_fmt = FixedFormat(IntType.from_range(x0, x1, signed=True).bits)
    return BNSpec(channels=len(dyadics), in_fmt=in_fmt, out_fmt=out_fmt,
                  mult=np.array([f.mult for f in fits], dtype=np.int64),
                  bias=np.array([f.bias for f in fits], dtype=np.int64),
                  shift=np.array([f.shift for f in fits], dtype=np.int64), rounding=rounding,
                  overflow=Overflow.SATURATE, in_lo=x0, in_hi=x1, name=name, out_lo=qlo, out_hi=qhi)


def fold_bn(gamma, beta, mean, var, eps: float = 1e-5, *,
            in_fmt: FixedFormat = FixedFormat.integer(16), out_fmt: FixedFormat = FixedFormat.integer(8),
            in_scale=None, in_zero_point=0, out_scale=None, out_zero_point=0,
            rounding="half_up", overflow="saturate", in_range=None,
            per_channel_shift: bool = False, max_acc_bits: int = 63, name: str = "bn") -> BNFold:
    """Fold float BN parameters into an exact :class:`BNSpec`.

    ``in_scale`` / ``out_scale`` default to the formats' own scales (``2^-frac_bits``); they
    and the zero points may be per channel. One shared shift (the largest of the channels'
    smallest exact shifts) unless ``per_channel_shift``.
    """
    rounding, overflow = Rounding.parse(rounding), Overflow.parse(overflow)
    gamma_arr = np.asarray(gamma, dtype=np.float64)
    channels = int(gamma_arr.size) if gamma_arr.ndim else 1
    g = _per_channel("gamma", gamma, channels)
    bt = _per_channel("beta", beta, channels)
    mu = _per_channel("mean", mean, channels)
    v = _per_channel("var", var, channels)
    e = _per_channel("eps", eps, channels)
    s_in = _per_channel("in_scale", in_fmt.scale if in_scale is None else in_scale, channels)
    s_out = _per_channel("out_scale", out_fmt.scale if out_scale is None else out_scale, channels)
    z_in = _per_channel("in_zero_point", in_zero_point, channels)
    z_out = _per_channel("out_zero_point", out_zero_point, channels)
    for pname, arr in (("in_zero_point", z_in), ("out_zero_point", z_out)):
        for c in np.flatnonzero(arr != np.round(arr)):
            raise ValueError(f"BN parameter {pname} must be an integer, got {arr[c]} in channel {c}")
    for pname, arr in (("in_scale", s_in), ("out_scale", s_out)):
        for c in np.flatnonzero(arr <= 0):
            raise ValueError(f"BN parameter {pname} must be > 0, got {arr[c]} in channel {c}")
    for c in np.flatnonzero(v < 0):
        raise ValueError(f"BN parameter var is negative ({v[c]}) in channel {c}")
    for c in np.flatnonzero(e < 0):
        raise ValueError(f"BN parameter eps is negative ({e[c]}) in channel {c}")
    for c in np.flatnonzero(v + e <= 0):
        raise ValueError(f"channel {c}: var + eps = 0, BN divides by zero (set eps > 0)")

    with np.errstate(over="ignore", invalid="ignore"):
        inv_std = 1.0 / np.sqrt(v + e)
        scale = g * inv_std
        a = scale * s_in / s_out
        b = (bt - scale * (mu + s_in * z_in)) / s_out + z_out
    for c in np.flatnonzero(~(np.isfinite(a) & np.isfinite(b))):
        raise ValueError(f"channel {c}: the folded affine map overflows float64 "
                         f"(a = {a[c]}, b = {b[c]}); the scales are too extreme")

    x0, x1 = (in_fmt.min_int, in_fmt.max_int) if in_range is None else (int(in_range[0]), int(in_range[1]))
    if not in_fmt.min_int <= x0 <= x1 <= in_fmt.max_int:
        raise ValueError(f"in_range [{x0}, {x1}] is not inside {in_fmt} [{in_fmt.min_int}, {in_fmt.max_int}]")
    qlo, qhi = (out_fmt.min_int, out_fmt.max_int) if overflow == Overflow.SATURATE else (None, None)

    dyadics = [Dyadic.from_floats(a[c], b[c]) for c in range(channels)]
    fits, min_shift = _fit_channels(dyadics, rounding, x0, x1, qlo, qhi, per_channel_shift, max_acc_bits,
                                    lambda c: f"channel {c} (a = {a[c]:.6g}, b = {b[c]:.6g})")
    spec = BNSpec(channels=channels, in_fmt=in_fmt, out_fmt=out_fmt,
                  mult=np.array([f.mult for f in fits], dtype=np.int64),
                  bias=np.array([f.bias for f in fits], dtype=np.int64),
                  shift=np.array([f.shift for f in fits], dtype=np.int64),
                  rounding=rounding, overflow=overflow, in_lo=x0, in_hi=x1, name=name)
    a_ro, b_ro = np.array(a), np.array(b)
    for arr in (a_ro, b_ro, min_shift):
        arr.setflags(write=False)
    return BNFold(spec=spec, a=a_ro, b=b_ro, channel_min_shift=min_shift)


# ------------------------------------------------- Range BN, L1 BN (batch statistics)

def bn_statistics(x, method: str = "standard", *, axis=0, chunks: int = 16,
                  range_constant: str = "code"):
    """Per-channel ``(mean, var)`` of a batch, for :func:`fold_bn` (with ``eps`` as wanted).

    ``method``:
      - ``standard``: the usual mean and (biased) variance;
      - ``range`` (Banner et al. 2018): σ̂ = C(n)·range, range = max − min averaged over
        ``chunks`` chunks of the batch axis, n = samples per chunk. ``range_constant="paper"``
        uses C(n) = 1/√(2 ln n) (≈ 2σ for Gaussian data: a constant γ absorbs);
        ``"code"`` the authors' 0.5·0.35·(1+√(π ln 4))/√(2 ln n) (≈ σ for Gaussian data);
      - ``l1`` (Hoffer et al. 2018): σ̂ = mean|x − μ|·√(π/2), since E|X| = σ√(2/π).
    Returned ``var`` is σ̂², so ``fold_bn(γ, β, mean, var, eps=0, …)`` folds the variant exactly.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    x = x.reshape(x.shape[0], -1)
    if x.shape[0] < 2:
        raise ValueError("bn_statistics needs at least 2 samples along the batch axis")
    mean = x.mean(axis=0)
    if method == "standard":
        return mean, x.var(axis=0)
    if method == "l1":
        sigma = np.abs(x - mean).mean(axis=0) * math.sqrt(math.pi / 2)
        return mean, sigma**2
    if method == "range":
        chunks = max(1, min(int(chunks), x.shape[0] // 2))
        parts = np.array_split(x, chunks, axis=0)
        rng = np.mean([p.max(axis=0) - p.min(axis=0) for p in parts], axis=0)
        n = min(len(p) for p in parts)
        if range_constant == "paper":
            c_n = 1.0 / math.sqrt(2 * math.log(n))
        elif range_constant == "code":
            c_n = 0.5 * 0.35 * (1 + math.sqrt(math.pi * math.log(4))) / math.sqrt(2 * math.log(n))
        else:
            raise ValueError(f"unknown range_constant {range_constant!r}; allowed: paper, code")
        return mean, (c_n * rng) ** 2
    raise ValueError(f"unknown BN statistics method {method!r}; allowed: standard, range, l1")


# ------------------------------------------------------------- ACIQ clipping

def aciq_mse(alpha: float, bits: int, dist: str = "laplace", scale: float = 1.0) -> float:
    """Banner et al. 2019 (ACIQ) expected MSE of clipping at ±alpha plus M-bit rounding noise.

    ``scale`` is b for Laplace(b), σ for Gaussian(σ).
    """
    noise = alpha**2 / (3 * 4**bits)
    if dist == "laplace":
        return 2 * scale**2 * math.exp(-alpha / scale) + noise
    if dist == "gauss":
        s = scale
        return ((alpha**2 + s**2) * (1 - math.erf(alpha / (s * math.sqrt(2))))
                - math.sqrt(2 / math.pi) * alpha * s * math.exp(-alpha**2 / (2 * s**2)) + noise)
    raise ValueError(f"unknown distribution {dist!r}; allowed: laplace, gauss")


def aciq_alpha(bits: int, dist: str = "laplace", scale: float = 1.0) -> float:
    """The clipping value minimizing :func:`aciq_mse` (golden-section search; unimodal)."""
    if not 1 <= int(bits) <= 32:
        raise ValueError(f"ACIQ bits must lie in 1 … 32, got {bits}")
    aciq_mse(1.0, bits, dist)  # validates dist
    lo, hi = 1e-6 * scale, 64.0 * scale
    ratio = (math.sqrt(5) - 1) / 2
    c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fc, fd = aciq_mse(c, bits, dist, scale), aciq_mse(d, bits, dist, scale)
    while hi - lo > 1e-12 * scale:
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - ratio * (hi - lo)
            fc = aciq_mse(c, bits, dist, scale)
        else:
            lo, c, fc = c, d, fd
            d = lo + ratio * (hi - lo)
            fd = aciq_mse(d, bits, dist, scale)
    return (lo + hi) / 2


def aciq_table(bits=range(2, 9)) -> dict:
    """``{dist: {bits: alpha/scale}}`` for Laplace and Gaussian."""
    return {dist: {int(m): aciq_alpha(m, dist) for m in bits} for dist in ("laplace", "gauss")}
