"""Estimators: cycles (``cycles.py``), energy (``energy.py``) and resources (``resources.py``, an
analytic model calibrated against the synthesis runs of ``synthesis.py``).

Each reads the same frozen specs through the blocks' own models (:mod:`hwnorm.blocks`, never
Amaranth); none keeps a second copy of a width, latency or folding rule.
"""

from __future__ import annotations

from hwnorm.defaults import DEFAULT_CLOCK_MHZ, DEFAULT_IMAGES

__all__ = ["estimate_design", "design_resources", "DEFAULT_CLOCK_MHZ", "DEFAULT_IMAGES"]


def estimate_design(design, clock_mhz: float = DEFAULT_CLOCK_MHZ, images: int = DEFAULT_IMAGES,
                    energy_table=None, cells=None, targets=None, synth: bool = False, fmax: bool = False,
                    progress=None, buffer_codec: str = "none", synth_targets=None, verilog: str | None = None,
                    block=None) -> dict:
    """Cycle figures and analytic resources per FPGA target of any design, from its block (no
    Amaranth); for a network also energy per inference on the first ``images`` vendored MNIST test
    images (or seeded random inputs of the model's range), the weight buffer's MLC cells encoded by
    ``buffer_codec``. ``synth`` adds Yosys synthesis of the design and the estimate's error against
    it; ``fmax`` adds place-and-route Fmax (see ``synthesis.py``), both of ``verilog`` when the
    caller has the design's Verilog already (else it is generated here). ``block`` is the design's
    block when the caller has it (:func:`hwnorm.generate.model_of`)."""
    import numpy as np

    from hwnorm import data
    from hwnorm.estimate.cycles import design_cycles
    from hwnorm.estimate.energy import load_energy_table, network_energy
    from hwnorm.generate import model_of

    if block is None:
        block, _ = model_of(design)
    out = {"design": design.name, "kind": design.kind,
           "cycles": design_cycles(block, design.name, clock_mhz * 1e6).to_dict()}
    out["resources"] = design_resources(design, block, targets, synth or fmax, fmax, progress, synth_targets,
                                        verilog)
    net = getattr(block, "net", None)
    if net is not None:
        if images < 1:
            raise ValueError(f"--images must be at least 1, got {images}")
        x, _ = data.mnist_test()
        if net.in_features == x[0].size:
            x = x[:images].reshape(-1, net.in_features).astype(np.int64)
        else:
            lo, hi = net.in_range
            x = np.random.default_rng(0).integers(lo, hi + 1, (images, net.in_features))
        table = energy_table if energy_table is not None else load_energy_table()
        out["energy"] = network_energy(net, block.folding, x, table, cells, block.output, buffer_codec).to_dict()
    return out


def design_resources(design, block, targets=None, synth: bool = False, fmax: bool = False,
                     progress=None, synth_targets=None, verilog: str | None = None) -> dict:
    """Per target: the analytic estimate of the design's block; with ``synth`` the synthesized
    counts and the relative error of the estimate (on ``synth_targets`` only, default all); with
    ``fmax`` the place-and-route result."""
    from hwnorm.estimate.resources import estimate_resources, relative_error, uncalibrated_kinds
    from hwnorm.estimate.synthesis import TARGETS, ToolError, place_and_route, synthesize
    from hwnorm.generate import ports_of, verilog_text

    names = list(targets or TARGETS)
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target {unknown[0]!r}; allowed: {', '.join(TARGETS)}")
    estimates = estimate_resources(block, names)
    out = {t: {"estimate": estimates[t]} for t in names}
    uncalibrated = uncalibrated_kinds(block)
    for t in names:  # costed by the generic fit: say so next to the figure
        if uncalibrated:
            out[t]["uncalibrated_kinds"] = uncalibrated
    if not synth:
        return out
    component = block.component()  # Verilog and its ports: the one place hardware is built
    text = verilog if verilog is not None else verilog_text(component, design.name)
    for t in names:
        if synth_targets is not None and t not in synth_targets:
            continue
        if progress:
            progress(f"synthesizing {design.name} for {t}")
        try:
            syn = synthesize(text, design.name, TARGETS[t])
        except ToolError as e:  # one failed run (e.g. the WebAssembly Yosys out of memory) is reported, not fatal
            lines = str(e).splitlines()
            out[t]["synthesis_failed"] = " ".join([lines[0][:160]] + [ln.strip() for ln in lines if "trap" in ln][:1])
            continue
        out[t]["synthesis"] = syn.to_dict()
        out[t]["error"] = {cls: relative_error(estimates[t][cls], syn.counts[cls]) for cls in ("lut", "ff", "bram", "dsp")}
        if fmax:
            if progress:
                progress(f"placing and routing {design.name} on {t}")
            out[t]["timing"] = place_and_route(text, design.name, ports_of(component), TARGETS[t], core=syn).to_dict()
    if verilog is not None:
        from hwnorm.hdl.common import unused_ok
        unused_ok(component)  # its Verilog came from the caller
    return out
