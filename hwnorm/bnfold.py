"""``hwnorm qbn``: fold every batch-norm of a model into an exact integer requantizer and prove it.

The BN layers come from the QONNX importer's one walk over a model (its ``bn_sites``: each
BatchNormalization with the exact real map from its integer input, every op before it
included) or from a JSON file of parameters::

    {"layers": [{"name": "bn0", "gamma": [...], "beta": [...], "mean": [...], "var": [...],
                 "eps": 1e-5, "in_range": [-784, 784]}]}

Each is folded by :func:`hwnorm.bnspec.fold_bn` at an output format and checked against the exact
target: every input of its range when there are at most ``EXHAUSTIVE_LIMIT``, else a large sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hwnorm.datatypes import IntType
from hwnorm.fixed import FixedFormat
from hwnorm import data
from hwnorm.io import load_json
from hwnorm.bnspec import fold_bn
from hwnorm.qonnx import interpret

__all__ = ["BNLayer", "bn_layers_from", "output_scale", "fold_layer", "verify_fold", "fold_all", "fold_lines",
           "EXHAUSTIVE_LIMIT"]

EXHAUSTIVE_LIMIT = 1 << 20  # inputs per channel checked one by one; wider ranges are sampled
_FIELDS = ("name", "gamma", "beta", "mean", "var", "eps", "in_range")


@dataclass(frozen=True)
class BNLayer:
    """Float BN parameters per channel and the integer range of its input."""
    name: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float
    in_range: tuple[int, int]


def bn_layers_from(source: str | None) -> list[BNLayer]:
    """BN layers of the vendored TFC model (``None``), an ONNX model, or a JSON parameter file."""
    if source is None or source.endswith(".onnx"):
        return _from_model(source)
    return _from_json(source)


def _from_model(source: str | None) -> list[BNLayer]:
    path = source or data.path("models/TFC_1W1A.onnx")
    sites = interpret(path).bn_sites
    if not sites:
        raise ValueError(f"{path}: no BatchNormalization node found")
    return [BNLayer(site.name, *site.form.as_bn(), 0.0, (site.lo, site.hi)) for site in sites]


def _from_json(source: str) -> list[BNLayer]:
    doc = load_json(source)
    entries = doc.get("layers", [doc]) if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{source}: 'layers' must be a non-empty list")
    layers = []
    for i, entry in enumerate(entries):
        where = f"{source}: layers[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object")
        unknown = set(entry) - set(_FIELDS)
        if unknown:
            raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_FIELDS))}")
        missing = [k for k in ("gamma", "beta", "mean", "var", "in_range") if k not in entry]
        if missing:
            raise ValueError(f"{where}: missing field {missing[0]!r}")
        rng = entry["in_range"]
        if (not isinstance(rng, list) or len(rng) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng) or rng[0] > rng[1]):
            raise ValueError(f"{where}: in_range must be [lo, hi] with integers lo ≤ hi")
        arrays = []
        for k in ("gamma", "beta", "mean", "var"):
            values = entry[k] if isinstance(entry[k], list) else [entry[k]]
            if not values or not all(_real(v) for v in values):  # true / false are no numbers here
                raise ValueError(f"{where}: {k}: gamma, beta, mean and var must be lists of numbers")
            arrays.append(np.asarray(values, dtype=np.float64))
        eps = entry.get("eps", 1e-5)
        if not _real(eps):
            raise ValueError(f"{where}: eps must be a number, got {eps!r}")
        name = entry.get("name", f"bn{i}")
        if not isinstance(name, str):
            raise ValueError(f"{where}: name must be a string, got {name!r}")
        layers.append(BNLayer(name, *arrays, float(eps), (rng[0], rng[1])))
    return layers


def _real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def output_scale(layer: BNLayer, out_fmt: FixedFormat) -> float:
    """Scale at which the largest |BN(x)| over the input range just fits (BN is affine: check the ends)."""
    with np.errstate(all="ignore"):
        ys = [layer.gamma * (x - layer.mean) / np.sqrt(layer.var + layer.eps) + layer.beta for x in layer.in_range]
    peak = float(np.nanmax(np.abs(ys))) if np.isfinite(ys).all() else 1.0
    return max(peak, 1e-12) / out_fmt.max_int


def fold_layer(layer: BNLayer, out_fmt: FixedFormat, rounding, overflow, per_channel_shift: bool = False):
    """The exact fold (:class:`hwnorm.bnspec.BNFold`) of one layer over its whole input range."""
    lo, hi = layer.in_range
    return fold_bn(layer.gamma, layer.beta, layer.mean, layer.var, layer.eps,
                   in_fmt=FixedFormat(IntType.from_range(lo, hi, signed=True).bits), in_scale=1.0, in_range=(lo, hi),
                   out_fmt=out_fmt, out_scale=output_scale(layer, out_fmt), rounding=rounding, overflow=overflow,
                   per_channel_shift=per_channel_shift, name=layer.name)


def verify_fold(fold, rng) -> tuple[int, int, str]:
    """(inputs checked, mismatches, how): the golden kernel against the exact target, on every
    input of the range or on a million-input sample with both ends and zero."""
    spec = fold.spec
    size = spec.in_hi - spec.in_lo + 1
    if size <= EXHAUSTIVE_LIMIT:
        x = np.arange(spec.in_lo, spec.in_hi + 1)
        how = "exhaustive"
    else:
        x = np.unique(np.concatenate([rng.integers(spec.in_lo, spec.in_hi, 1_000_000, endpoint=True),
                                      [spec.in_lo, spec.in_hi, 0]]))
        how = "sampled"
    xs = np.broadcast_to(x[:, None], (x.size, spec.channels))
    mismatches = int(np.count_nonzero(spec.apply(xs) != fold.target(xs)))
    return xs.size, mismatches, how


def fold_all(source: str | None, out_fmt: FixedFormat, rounding, overflow, per_channel_shift: bool = False,
             seed: int = 0, say=lambda line: None) -> dict:
    """``hwnorm qbn``: every BN layer of ``source`` (None: the vendored TFC_1W1A) folded and proved;
    ``say`` gets the heading and one row per layer as it is done (a layer can take seconds)."""
    label = source or "embedded default: TFC_1W1A (vendored)"
    say(f"quantized BN fold — {label}; output {out_fmt}, rounding {rounding}, overflow {overflow}")
    say(f"{'layer':<24}{'ch':>4}{'input range':>18}{'shift':>7}{'min..max/ch':>13}{'mult b':>8}{'acc b':>7}"
        f"{'checked':>12}{'mismatch':>10}{'ms':>7}")
    rng = np.random.default_rng(seed)
    layers, mismatches = [], 0
    for layer in bn_layers_from(source):
        lo, hi = layer.in_range
        t0 = time.perf_counter()
        try:
            fold = fold_layer(layer, out_fmt, rounding, overflow, per_channel_shift)
        except ValueError as e:
            raise ValueError(f"{source or 'TFC_1W1A'}: layer {layer.name}: {e}") from None
        checked, bad, how = verify_fold(fold, rng)
        ms = (time.perf_counter() - t0) * 1e3
        spec = fold.spec
        shift = str(spec.shared_shift) if spec.shared_shift is not None else "per-ch"
        span = f"{fold.channel_min_shift.min()}..{fold.channel_min_shift.max()}"
        say(f"{layer.name[:23]:<24}{spec.channels:>4}{f'[{lo}, {hi}]':>18}{shift:>7}{span:>13}"
            f"{spec.mult_bits:>8}{spec.acc_bits:>7}{checked:>12}{bad:>10}{ms:>7.0f}")
        mismatches += bad
        layers.append({"spec": spec.to_dict(), "spec_hash": spec.spec_hash,
                       "channel_min_shift": fold.channel_min_shift.tolist(),
                       "mult_bits": spec.mult_bits, "acc_bits": spec.acc_bits,
                       "verified": {"inputs": checked, "method": how, "mismatches": bad}})
    return {"source": label, "layers": layers, "mismatches": mismatches}


def fold_lines(result: dict) -> list[str]:
    """The closing line of ``hwnorm qbn`` (the rows came as each layer was done)."""
    return [f"exactness: {sum(r['verified']['inputs'] for r in result['layers'])} (input, channel) pairs checked, "
            f"{result['mismatches']} mismatches"]
