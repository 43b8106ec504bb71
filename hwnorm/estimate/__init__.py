"""Estimators: cycles (``cycles.py``), energy (``energy.py``) and resources (``resources.py``, an
analytic model calibrated against the synthesis runs of ``synthesis.py``).

Each reads the same frozen specs and the generated components' own models; none keeps a second
copy of a width, latency or folding rule.
"""

from __future__ import annotations

from hwnorm.hdl.common import unused_ok

__all__ = ["estimate_design", "DEFAULT_CLOCK_MHZ", "DEFAULT_IMAGES"]

DEFAULT_CLOCK_MHZ = 100.0
DEFAULT_IMAGES = 1000


def estimate_design(design, clock_mhz: float = DEFAULT_CLOCK_MHZ, images: int = DEFAULT_IMAGES,
                    energy_table=None, cells=None, targets=None, synth: bool = False, fmax: bool = False,
                    progress=None, buffer_codec: str = "none", synth_targets=None, verilog: str | None = None) -> dict:
    """Cycle figures and analytic resources per FPGA target of any generated design; for a network
    also energy per inference on the first ``images`` vendored MNIST test images (or seeded random
    inputs of the model's range), the weight buffer's MLC cells encoded by ``buffer_codec``. ``synth`` adds Yosys synthesis of the design and the estimate's
    error against it; ``fmax`` adds place-and-route Fmax (see ``synthesis.py``), both of ``verilog`` when
    the caller has the design's Verilog already (else it is generated here)."""
    import numpy as np

    from hwnorm import data
    from hwnorm.estimate.cycles import design_cycles
    from hwnorm.estimate.energy import load_energy_table, network_energy
    from hwnorm.generate import build

    component = unused_ok(build(design)[0])
    out = {"design": design.name, "kind": design.kind,
           "cycles": design_cycles(component, design.name, clock_mhz * 1e6).to_dict()}
    out["resources"] = design_resources(design, component, targets, synth or fmax, fmax, progress, synth_targets,
                                        verilog)
    if design.kind == "network":
        if images < 1:
            raise ValueError(f"--images must be at least 1, got {images}")
        net = component.net
        x, _ = data.mnist_test()
        if net.in_features == x[0].size:
            x = x[:images].reshape(-1, net.in_features).astype(np.int64)
        else:
            lo, hi = net.layers[0].in_range
            x = np.random.default_rng(0).integers(lo, hi + 1, (images, net.in_features))
        table = energy_table if energy_table is not None else load_energy_table()
        out["energy"] = network_energy(net, component.folding, x, table, cells, component.output,
                                       buffer_codec).to_dict()
    return out


def design_resources(design, component, targets=None, synth: bool = False, fmax: bool = False,
                     progress=None, synth_targets=None, verilog: str | None = None) -> dict:
    """Per target: the analytic estimate; with ``synth`` the synthesized counts and the relative
    error of the estimate (on ``synth_targets`` only, default all); with ``fmax`` the
    place-and-route result."""
    from hwnorm.estimate.resources import estimate_resources, relative_error
    from hwnorm.estimate.synthesis import TARGETS, place_and_route, synthesize
    from hwnorm.generate import ports_of, verilog_text

    names = list(targets or TARGETS)
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target {unknown[0]!r}; allowed: {', '.join(TARGETS)}")
    estimates = estimate_resources(component, names)
    out = {t: {"estimate": estimates[t]} for t in names}
    if not synth:
        return out
    text = verilog if verilog is not None else verilog_text(component, design.name)
    for t in names:
        if synth_targets is not None and t not in synth_targets:
            continue
        if progress:
            progress(f"synthesizing {design.name} for {t}")
        syn = synthesize(text, design.name, TARGETS[t])
        out[t]["synthesis"] = syn.to_dict()
        out[t]["error"] = {cls: relative_error(estimates[t][cls], syn.counts[cls]) for cls in ("lut", "ff", "bram", "dsp")}
        if fmax:
            if progress:
                progress(f"placing and routing {design.name} on {t}")
            out[t]["timing"] = place_and_route(text, design.name, ports_of(component), TARGETS[t], core=syn).to_dict()
    return out
