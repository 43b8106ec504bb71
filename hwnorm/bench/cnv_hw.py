"""``cnv-hw``: FINN's flagship on hwnorm's hardware — the CIFAR-10 CNV (``CNV_CIFAR_1W1A``, FINN's
cnv-w1a1 topology) at FINN's own folding and at the fastest folding whose estimate fits an
ECP5-85F, each pipelined for 150 MHz: Yosys cells on ECP5 and 7-series, nextpnr Fmax on the
LFE5U-85F, clocks per image, and images/s at that Fmax — beside FINN's published figures.

Hours, not seconds (two Yosys runs and one place-and-route of a 20k-LUT top per folding, each
cached by content): not in the default ``hwnorm bench`` set; ``hwnorm bench cnv-hw`` runs it.
The ratios are against published numbers (FINN's Vivado flow cannot run here), which the
figures name; everything of hwnorm's is measured in the run.
"""

from __future__ import annotations

import sys

from hwnorm.bench.registry import benchmark, figure
from hwnorm.config import FlowConfig
from hwnorm.estimate.devices import device_named
from hwnorm.estimate.resources import estimate_resources
from hwnorm.estimate.synthesis import TARGETS, place_and_route, synthesize
from hwnorm.flow import import_stage, plan_stage
from hwnorm.folding import Folding
from hwnorm.generate import Verilog

MODEL = "CNV_CIFAR_1W1A"
DEVICE = "LFE5U-85F"
CLOCK_MHZ = 150.0
# FINN's published cnv-w1a1 (Zynq-7020, Vivado post-synthesis, 100 MHz; FINN's end-to-end example):
FINN = {"images_per_s": 3020, "clock_mhz": 100, "lut": 21135, "ff": 31517, "bram36": 98, "bram18": 9, "dsp": 0,
        "top1": 84.19}
BNN_PYNQ_IMAGES_PER_S = 9150      # BNN-PYNQ cnvW1A1 on the PYNQ-Z1
FINN_PAPER_IMAGES_PER_S = 21906   # the FINN paper's CNV on a ZC706
# FINN's folding of cnv-w1a1 (its end-to-end example's folding config): each MVAU's (PE, SIMD) in
# network order; a window's SIMD is its convolution's; the max-pools take 32 channels per beat
FINN_MVAU = ((16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32), (1, 4), (1, 8), (5, 1))
FINN_POOL_LANES = 32
SYNTH_SECONDS = 6 * 3600  # a whole CNV top: synth_ecp5 alone runs half an hour on a busy 2-core machine


def finn_folding(net) -> dict:
    """FINN's cnv-w1a1 folding in hwnorm's terms, by layer kind and order."""
    mvus = [layer for layer in net.layers if layer.kind == "mvu"]
    if len(mvus) != len(FINN_MVAU):
        raise ValueError(f"{MODEL}: {len(mvus)} MVU layers, FINN's cnv-w1a1 folding has {len(FINN_MVAU)}")
    out = {layer.name: {"pe": pe, "simd": simd} for layer, (pe, simd) in zip(mvus, FINN_MVAU)}
    for k, layer in enumerate(net.layers):
        if layer.kind == "window":  # the convolution it feeds takes its beats
            out[layer.name] = {"simd": out[net.layers[k + 1].name]["simd"]}
        elif layer.kind == "maxpool":
            out[layer.name] = {"pe": FINN_POOL_LANES}
        elif layer.kind == "thresholding":  # the image's quantizer: a pixel (its channels) per beat
            out[layer.name] = {"pe": layer.in_features}
    last = mvus[-1]
    for layer in net.layers[net.layers.index(last) + 1:]:  # the scores after it: its lanes
        out[layer.name] = {"pe": FINN_MVAU[-1][0]}
    return out


def cnv_plans(say=print):
    """(label, how, plan) at FINN's folding and at the fastest that fits the ECP5-85F."""
    base = dict(model=MODEL, name="cnv_cifar", target="ecp5", clock_mhz=CLOCK_MHZ, origin="hwnorm bench cnv-hw")
    net = import_stage(FlowConfig(**base))
    finn = FlowConfig(**base, folding=Folding(finn_folding(net)))
    fitted = FlowConfig(**base, device=DEVICE)
    out = []
    for label, config in (("finn_folding", finn), ("fastest_85f", fitted)):
        plan, how = plan_stage(config, net, progress=lambda text: say(f"  {label}: {text}"))
        out.append((label, how, plan))
    return out


@benchmark("cnv-hw", default=False)
def bench_cnv_hw(repeat: int = 1, say=None):
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    finn_per_klut = FINN["images_per_s"] / (FINN["lut"] / 1000)
    for label, how, plan in cnv_plans(say):
        clocks = plan.block.initiation_interval
        say(f"{label}: {clocks} clocks per image ({how}); generating Verilog")
        verilog = Verilog.of_plan(plan)
        extra = {"clocks_per_image": clocks, "folding": how, "finn_published": FINN}
        for t in ("ecp5", "xilinx"):
            say(f"{label}: synthesizing for {t}")
            syn = synthesize(verilog.text, plan.design.name, TARGETS[t], timeout=SYNTH_SECONDS)
            est = estimate_resources(plan.block, [t])[t]
            extra[t] = {"yosys": {k: syn.counts[k] for k in ("lut", "ff", "carry", "bram", "dsp")},
                        "estimate": {k: est[k] for k in ("lut", "ff", "carry", "bram", "dsp")},
                        "synth_seconds": round(syn.seconds)}
            if t == "ecp5":
                say(f"{label}: placing and routing on the {DEVICE}")
                pnr = place_and_route(verilog.text, plan.design.name, list(verilog.ports),
                                      TARGETS[t].on(device_named(DEVICE)), core=syn, timeout=SYNTH_SECONDS)
                extra[t].update(fmax_mhz=pnr.fmax_mhz, critical_path=pnr.critical_path, fits=pnr.fits,
                                reason=pnr.reason)
        fmax = extra["ecp5"].get("fmax_mhz")
        rate = fmax * 1e6 / clocks if fmax else 0.0
        lut = extra["xilinx"]["yosys"]["lut"]
        yield figure(f"cnv_hw.{label}.images_per_s", rate, "images/s at the ECP5-85F Fmax",
                     "FINN cnv-w1a1, Zynq-7020 at 100 MHz (published)", FINN["images_per_s"],
                     bnn_pynq=BNN_PYNQ_IMAGES_PER_S, finn_paper_zc706=FINN_PAPER_IMAGES_PER_S, **extra)
        yield figure(f"cnv_hw.{label}.images_per_s_per_klut", rate / (lut / 1000) if lut else 0.0,
                     "images/s per 1000 7-series LUTs (Yosys)", "FINN cnv-w1a1 (published, Vivado)", finn_per_klut,
                     xilinx_lut=lut, finn_lut=FINN["lut"])
