"""A design's estimates: cycles, resources per FPGA target (with synthesis and place-and-route
when asked), energy per inference for a network, and both activation realizations' costs — the
``Estimates`` stage of the flow, read from the design's block (its plan), never rebuilt here."""

from __future__ import annotations

from hwnorm import data
from hwnorm.activations import costs_per_target
from hwnorm.defaults import DEFAULT_CLOCK_MHZ, DEFAULT_IMAGES
from hwnorm.estimate.cycles import design_cycles
from hwnorm.estimate.energy import load_energy_table, network_energy
from hwnorm.estimate.devices import RULE_OUT_MARGIN, Device, device_named
from hwnorm.estimate.resources import estimate_resources, relative_error, uncalibrated_kinds
from hwnorm.estimate.synthesis import TARGETS, ToolError, place_and_route, synthesize
from hwnorm.generate import Design, Plan, Verilog, model_for
from hwnorm.stt import load_table

__all__ = ["estimate_design", "design_resources", "estimate_figures", "activation_costs", "at_fmax",
           "estimate_lines", "resource_lines"]


def estimate_design(plan: Plan, clock_mhz: float = DEFAULT_CLOCK_MHZ, images: int = DEFAULT_IMAGES,
                    energy_table=None, cells=None, targets=None, synth: bool = False, fmax: bool = False,
                    progress=None, buffer_codec: str = "none", synth_targets=None,
                    verilog: Verilog | None = None, parts: dict | None = None) -> dict:
    """Cycle figures and analytic resources per FPGA target of a planned design, from its block
    (no Amaranth); for a network also energy per inference on the first ``images`` vendored MNIST
    test images (or seeded random inputs of the model's range), the weight buffer's MLC cells
    encoded by ``buffer_codec``. ``synth`` adds Yosys synthesis of the design and the estimate's
    error against it; ``fmax`` adds place-and-route Fmax (see ``synthesis.py``), both of
    ``verilog`` when the caller has the design's Verilog already (else it is generated here)."""
    design, block = plan.design, plan.block
    out = {"design": design.name, "kind": design.kind,
           "cycles": design_cycles(block, design.name, clock_mhz * 1e6).to_dict()}
    out["resources"] = design_resources(plan, targets, synth or fmax, fmax, progress, synth_targets, verilog, parts)
    net = block.net
    if net is not None:
        out["fifos"] = fifo_figures(block)
        if images < 1:
            raise ValueError(f"--images must be at least 1, got {images}")
        table = energy_table if energy_table is not None else load_energy_table()
        out["energy"] = network_energy(block, data.network_inputs(net, images), table, cells, buffer_codec).to_dict()
    return out


def fifo_figures(block) -> dict:
    """A network's stream FIFOs: each one's depth and width, and their bits in all (what they
    cost in memory: a branch's FIFO holds what the other branches delay)."""
    fifos = [{"name": stage.name, "depth": stage.block.depth, "width": stage.block.width}
             for stage in block.stages if stage.block.kind == "fifo"]
    return {"fifos": fifos, "bits": sum(f["depth"] * f["width"] for f in fifos)}


def design_resources(plan: Plan, targets=None, synth: bool = False, fmax: bool = False,
                     progress=None, synth_targets=None, verilog: Verilog | None = None, parts: dict | None = None) -> dict:
    """Per target: the analytic estimate of the design's block; with ``synth`` the synthesized
    counts and the relative error of the estimate (on ``synth_targets`` only, default all); with
    ``fmax`` the place-and-route result on the target's part (``parts``: target → a
    :class:`~hwnorm.estimate.devices.Device` of its family, default the target's own).

    Where the estimate rules the part out — it exceeds the part in some resource by more than the
    model's error (:data:`~hwnorm.estimate.devices.RULE_OUT_MARGIN`) — nothing is synthesized or
    placed for that target: the figures say ``skipped`` and why (an hour of Yosys on a design
    four times a part's size measures nothing a user can build)."""
    design, block = plan.design, plan.block
    names = list(targets or TARGETS)
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target {unknown[0]!r}; allowed: {', '.join(TARGETS)}")
    estimates = estimate_resources(block, names)
    out = {t: {"estimate": estimates[t]} for t in names}
    uncalibrated = uncalibrated_kinds(block)
    chosen = {t: TARGETS[t] if (parts or {}).get(t) is None else TARGETS[t].on(parts[t]) for t in names}
    for t in names:  # costed by the generic fit: say so next to the figure
        if uncalibrated:
            out[t]["uncalibrated_kinds"] = uncalibrated
        if chosen[t].part is not None:  # what the estimate takes of the part Fmax is placed on
            out[t]["usage"] = {"part": chosen[t].part.name, **chosen[t].usage(estimates[t])}
    if not synth:
        return out
    verilog = verilog or Verilog.of_plan(plan)  # the hardware is built here only when the caller has no Verilog
    for t in names:
        if synth_targets is not None and t not in synth_targets:
            continue
        target = chosen[t]
        if target.part is not None:
            short = target.part.shortfalls(out[t]["usage"], margin=RULE_OUT_MARGIN)
            if short:
                out[t]["skipped"] = (f"not synthesized: the estimate rules out the {target.part.name} "
                                     f"({Device.shortfall_text(short, target.part.name)})")
                if progress:
                    progress(f"{design.name} on {t}: {out[t]['skipped']}")
                continue
        if progress:
            progress(f"synthesizing {design.name} for {t}")
        try:
            syn = synthesize(verilog.text, design.name, target)
        except ToolError as e:  # one failed run (e.g. the WebAssembly Yosys out of memory) is reported, not fatal
            lines = str(e).splitlines()
            out[t]["synthesis_failed"] = " ".join([lines[0][:160]] + [ln.strip() for ln in lines if "trap" in ln][:1])
            continue
        out[t]["synthesis"] = syn.to_dict()
        out[t]["error"] = {cls: relative_error(estimates[t][cls], syn.counts[cls]) for cls in ("lut", "ff", "bram", "dsp")}
        if fmax:
            if progress:
                progress(f"placing and routing {design.name} on {t}")
            out[t]["timing"] = place_and_route(verilog.text, design.name, list(verilog.ports), target,
                                               core=syn).to_dict()
    return out


def estimate_figures(plan: Plan, *, clock_mhz: float, images: int, targets=None, synth: bool = True,
                     fmax: bool = True, progress=None, buffer_codec: str = "none", synth_targets=None,
                     energy_table=None, cells=None, verilog: Verilog | None = None, parts: dict | None = None) -> dict:
    """Configuration, cycles, energy and resources of a planned design. ``energy_table`` and
    ``cells`` are names or TOML paths (default: the built-in tables); ``parts`` the part per target
    (:func:`design_resources`); ``verilog`` the design's
    Verilog if known."""
    design = plan.design
    say = progress or (lambda what: None)
    say(f"{design.name}: estimates" + (" and synthesis" if synth else ""))
    est = estimate_design(plan, clock_mhz, images, load_energy_table(energy_table), load_table(cells),
                          targets=targets, synth=synth, fmax=fmax, progress=say, buffer_codec=buffer_codec,
                          synth_targets=synth_targets, verilog=verilog, parts=parts)
    for r in est["resources"].values():  # what was measured; not tool run times or cache hits (not reproducible)
        for measured in (r.get("synthesis"), r.get("timing")):
            if measured:
                measured.pop("cached", None)
                measured.pop("seconds", None)
    fig = {"design": design.name, "kind": design.kind, "parameters": plan.params, "clock_mhz": clock_mhz,
           "cycles": est["cycles"], "resources": est["resources"],
           "at_fmax": at_fmax(est["cycles"], est["resources"])}  # beside the cycle model's figures, not in them
    # Yosys on the realizations only where it ran on the design (not where its estimate ruled the
    # part out: a large network's layers, twice, on a target it cannot use)
    synthesized = [t for t, r in est["resources"].items() if r.get("synthesis")] if synth else []
    realizations = activation_costs(design, targets, synthesized, say)
    if realizations:
        fig["activation_realizations"] = realizations
    if "energy" in est:
        fig["energy"] = est["energy"]
    return fig


def activation_costs(design: Design, targets, synth_targets, say) -> list:
    """Both realizations of a multi-bit network's activations, per layer and target (the estimate;
    Yosys' count on ``synth_targets``): see :mod:`hwnorm.activations`; from the design's
    :class:`~hwnorm.models.Model`, so a realization the plan imported already is not imported
    again. Nothing for other designs."""
    if design.kind != "network":
        return []
    model = model_for(design)
    if model.is_ir:
        return []
    say(f"{design.name}: both activation realizations" + (" (with synthesis)" if synth_targets else ""))
    return costs_per_target(model.imported, design.params.get("folding"), list(targets or TARGETS), synth_targets, say)


def at_fmax(cycles: dict, resources: dict) -> dict:
    """Throughput at the Fmax place-and-route achieved, per target that has one: what the design
    really delivers, beside the nominal clock's figure."""
    per_vector = cycles["design"]["cycles_per_vector"]
    return {t: {"fmax_mhz": r["timing"]["fmax_mhz"], "vectors_per_second": r["timing"]["fmax_mhz"] * 1e6 / per_vector}
            for t, r in resources.items() if (r.get("timing") or {}).get("fmax_mhz")}


def estimate_lines(design: Design, r: dict, clock_mhz: float) -> list[str]:
    """What ``hwnorm estimate`` prints for one design's :func:`estimate_design` figures."""
    c = r["cycles"]
    d = c["design"]
    lines = [f"{design.name} ({design.kind}): {d['cycles_per_vector']} clocks per vector, latency {d['latency']} "
             f"clocks; at {clock_mhz:g} MHz {c['vectors_per_second']:,.0f} vectors/s, "
             f"first result after {c['latency_seconds'] * 1e6:.3f} µs"]
    if len(c["stages"]) > 1:
        w = max(26, 1 + max(len(st["name"]) for st in c["stages"]))  # a column as wide as the longest name
        lines.append(f"  {'stage':<{w}}{'kind':<14}{'clocks/vector':>14}{'done at':>9}")
        for st in c["stages"]:
            mark = "  ← bottleneck" if st["name"] == c["bottleneck"] else ""
            lines.append(f"  {st['name']:<{w}}{st['kind']:<14}{st['cycles_per_vector']:>14}{st['done_at']:>9}{mark}")
    if r.get("fifos", {}).get("fifos"):
        f = r["fifos"]
        deepest = sorted(f["fifos"], key=lambda x: -x["depth"] * x["width"])[:4]
        lines.append(f"  FIFOs: {len(f['fifos'])}, {f['bits']:,} bits (largest: "
                     + ", ".join(f"{x['name']} {x['depth']} × {x['width']} b" for x in deepest) + ")")
    if r.get("least_fifos"):
        f = r["least_fifos"]
        shrunk = [f"{n} {d['never_full']} → {d['least']}" for n, d in f["depths"].items() if d["least"] < d["never_full"]]
        lines.append(f"  least FIFO depths keeping every output's clock ({f['seconds']:.0f} s, back-pressure model): "
                     f"{f['bits']['never_full']:,} → {f['bits']['least']:,} bits"
                     + (f"; {', '.join(shrunk)}" if shrunk else ""))
    if "energy" in r:
        e = r["energy"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(e["per_component_pj"].items(), key=lambda kv: -kv[1]))
        buf = e["weight_buffer"]
        lines.append(f"  energy per inference ({e['images']} images, table {e['table']}): compute {e['compute_pj']:.1f} pJ "
                     f"({parts}); weight memories as SRAM arrays {buf['sram_pj']:.1f} pJ, as MLC STT-RAM arrays "
                     f"{buf['stt_pj']:.1f} pJ (codec {buf['stt_codec']}, {buf['stt_cells']} cells; periphery included)")
    return lines + resource_lines(r["resources"])


def resource_lines(resources: dict) -> list[str]:
    """One line per target: estimate, and synthesis with the error where it ran."""
    lines = []
    for target, r in resources.items():
        est = r["estimate"]
        line = (f"  {target:<7} estimate {est['lut']:>6} LUT {est['ff']:>6} FF {est['bram']:>3} BRAM "
                f"{est['dsp']:>3} DSP")
        if "synthesis" in r:
            got, err = r["synthesis"]["counts"], r["error"]
            pct = "/".join("—" if err[c] is None else f"{100 * err[c]:+.0f}%" for c in ("lut", "ff"))
            line += (f" | Yosys {got['lut']:>6} LUT {got['ff']:>6} FF {got['bram']:>3} BRAM {got['dsp']:>3} DSP "
                     f"(LUT/FF error {pct})")
        if "usage" in r:  # what the estimate takes of the part Fmax is placed on
            use = r["usage"]
            line += f" | {device_named(use['part']).usage_line(use)}"
        if "skipped" in r:
            line += f" | {r['skipped']}"
        if "synthesis_failed" in r:  # asked for, not produced: say so and why (no Fmax follows either)
            line += f" | Yosys failed: {r['synthesis_failed']}"
        if "timing" in r:
            t = r["timing"]
            line += f" | Fmax {t['fmax_mhz']:.1f} MHz on {t['device']}" if t["fmax_mhz"] else f" | {t['reason']}"
            line += "".join(f" ({p})" for p in t.get("passes", ()))  # what was changed before placing
        if r.get("uncalibrated_kinds"):
            line += f" | {', '.join(r['uncalibrated_kinds'])}: generic costs (not calibrated yet)"
        lines.append(line)
    return lines
