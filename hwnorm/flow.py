"""``hwnorm flow``: model → golden accuracy → folding → Verilog → co-simulation → estimates → report.

The flow is a pipeline of stages, each making one product once and handing it on::

    import_stage   config → Network     the model imported once (hwnorm.models.Model, per realization)
    plan_stage     Network → Plan       the folding, and the design's block built once (hwnorm.generate)
    verilog_stage  Plan → Verilog       the text and its ports: co-simulation and synthesis read it
    verify         Plan, Verilog → figures   accuracy and co-simulation (hwnorm.sim.verify)
    estimate       Plan, Verilog → figures   cycles, energy, resources (hwnorm.estimate.design)
    report         figures → files      written with the Verilog as one set (hwnorm.report)

``hwnorm sweep`` composes the same stages. Each prints what it did and how long it took; the
simulator builds, Yosys and nextpnr results are cached by content. Outputs are written as sets
(temporary names, then renames): an interrupted flow leaves the previous rtl/ and reports/ intact.

Folding: the layers named in the config keep their PE / SIMD; the others are chosen here —
with ``throughput`` the cheapest folding (fewest PE·SIMD per layer) whose slowest stage takes at
most ``clock / throughput`` clocks per image; with ``lut_budget`` the fastest folding whose LUT
estimate on the config's target fits; with neither, the folding of the embedded default design (``hwnorm/data/designs/default.toml``)
for its model, else hwnorm's automatic one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwnorm.config import FlowConfig
from hwnorm.dataflow import LEAST, NetworkBlock, check_folding
from hwnorm.estimate.design import estimate_figures
from hwnorm.estimate.energy import load_energy_table
from hwnorm.estimate.devices import SEARCH_FILL, Device, device_named
from hwnorm.estimate.resources import estimate_resources
from hwnorm.estimate.synthesis import TARGETS
from hwnorm.folding import Folding
from hwnorm.generate import (Design, Plan, Verilog, default_designs, generate, network_of, plan_of, store_of,
                             timing_of)
from hwnorm.io import check_writable, printable, write_file_sets
from hwnorm.report import render_reports
from hwnorm.sim.runner import pick_simulator
from hwnorm.sim.verify import rtl_figures
from hwnorm.stt import load_table
from hwnorm.timing import Timing, delay_models

__all__ = ["choose_folding", "flow_design", "import_stage", "plan_stage", "verilog_stage", "run_flow", "FlowResult",
           "summary"]


# ------------------------------------------------------------------ folding search
def folding_for_interval(net, limit: int, fixed: Folding) -> Folding | None:
    """The cheapest folding with every layer at most ``limit`` clocks per image (``fixed`` layers
    as given; the others the first of their kind's foldings, cheapest first, that is fast
    enough), or None when some layer cannot get there."""
    out = {}
    for layer in net.layers:
        if layer.name in fixed:
            out[layer.name] = fixed[layer.name]
            continue
        pick = next((fold for fold in layer.foldings() if layer.clocks_per_image(fold) <= limit), None)
        if pick is None:
            return None
        out[layer.name] = pick
    return Folding(out)


def _intervals(net) -> list[int]:
    """Every clocks-per-image value some folding of ``net`` reaches, fastest first."""
    return sorted({layer.clocks_per_image(fold) for layer in net.layers for fold in layer.foldings()})


def choose_folding(config: FlowConfig, net, estimate=None, progress=None) -> tuple[Folding, str]:
    """(folding of the layers, how it was chosen) for a config (see the module docstring).
    ``estimate``: folding → the resource estimate on the config's target (``lut``, ``ff``,
    ``carry``, ``lutram``, ``bram``, ``dsp``), asked once per distinct candidate; its optional
    ``lower(folding)`` is a cheaper bound below it, which rules most candidates out first.
    ``progress(text)`` hears of the search."""
    fixed = config.folding
    try:
        check_folding(net, fixed)  # names and divisibility of what the user set
    except ValueError as e:
        raise ValueError(f"{config.origin}: {e}") from None
    part = device_named(config.device) if config.device else None
    budgeted = config.lut_budget is not None or part is not None
    if config.throughput is None and not budgeted:
        if fixed:
            return fixed, "as configured"
        default = _default_folding(config.model)
        return (default, "the default design's") if default else (Folding(), "automatic")
    budget = Budget(config, net, part, estimate, progress)
    if config.throughput is not None:
        clock = config.clock_mhz * 1e6
        limit = math.floor(clock / config.throughput + 1e-9)
        if limit < 1:
            raise ValueError(f"{config.origin}: auto_folding.throughput = {config.throughput:g} images/s needs more "
                             f"than one image per clock at {config.clock_mhz:g} MHz")
        folding = folding_for_interval(net, limit, fixed)
        if folding is None:
            raise ValueError(f"{config.origin}: no folding reaches {config.throughput:g} images/s with the layers "
                             f"fixed in [folding]")
        how = f"cheapest reaching {config.throughput:g} images/s (≤ {limit} clocks per image)"
        if budgeted:
            problem = budget.exceeded(folding)
            if problem:
                raise ValueError(f"{config.origin}: the cheapest folding reaching {config.throughput:g} images/s "
                                 f"{problem}")
            how += f", {budget.fits_text(folding)}"
        return folding, how
    faster = None  # the nearest faster candidate that did not fit, and why
    candidates = [f for f in (folding_for_interval(net, limit, fixed) for limit in _intervals(net)) if f is not None]
    # the cheap bound first: every candidate it rules out, the full estimate (FIFOs sized) never sees
    start = next((i for i, f in enumerate(candidates) if not budget.exceeded(f, lower=True)), len(candidates))
    if start:
        faster = (candidates[start - 1], budget.exceeded(candidates[start - 1], lower=True))
    for folding in candidates[start:]:
        problem = budget.exceeded(folding)
        if not problem:
            how = f"fastest {budget.fits_text(folding)}"
            if part is not None:
                how += (f"; the next faster ({_clocks(net, faster[0])} clocks per image) {faster[1]}" if faster else
                        f"; no folding is faster: {_bottleneck(net, folding)} sets the pace")
            return folding, how
        faster = (folding, problem)
    raise ValueError(f"{config.origin}: no folding fits {budget.label}; the smallest {faster[1]}")


class Budget:
    """What a searched folding must fit: ``lut_budget`` on the target, and the whole ``device``
    (LUT, FF, BRAM, DSP); each distinct candidate is estimated once."""

    def __init__(self, config: FlowConfig, net, part, estimate, progress=None):
        self.config, self.net, self.part, self.estimate, self.seen = config, net, part, estimate, {}
        self.lower = getattr(estimate, "lower", None)  # a cheaper bound below the estimate, if it has one
        self.progress = progress or (lambda text: None)
        self.target = TARGETS[config.target]
        parts = [f"lut_budget = {config.lut_budget} on {config.target}" if config.lut_budget is not None else "",
                 f"the {part.name}" if part is not None else ""]
        self.label = " and ".join(p for p in parts if p)

    def resources(self, folding: Folding, lower: bool = False) -> dict:
        """The estimate of ``folding`` (``lower``: the bound below it, where there is one)."""
        lower = lower and self.lower is not None
        key = (folding, lower)
        if key not in self.seen:  # neighbouring intervals often give the same folding
            self.seen[key] = (self.lower if lower else self.estimate)(folding)
            r = self.seen[key]
            self.progress(f"folding search: {_clocks(self.net, folding)} clocks per image, "
                          f"{'at least ' if lower else ''}{r['lut']:,} LUT, {r['bram']:,} BRAM, {r['dsp']:,} DSP")
        return self.seen[key]

    def exceeded(self, folding: Folding, lower: bool = False) -> str:
        """What ``folding`` needs beyond the budget ("" : it fits; ``lower``: by the bound)."""
        r, config = self.resources(folding, lower), self.config
        if config.lut_budget is not None and r["lut"] > config.lut_budget:
            return (f"needs about {r['lut']} LUTs on {config.target}, over lut_budget = {config.lut_budget}"
                    if self.part is None else f"needs about {r['lut']} LUTs, over lut_budget = {config.lut_budget}")
        if self.part is not None:
            short = self.part.shortfalls(self.target.usage(r), fill=SEARCH_FILL)
            if short:
                return f"{Device.shortfall_text(short, self.part.name)} (estimated; {_fill_text()})"
        return ""

    def fits_text(self, folding: Folding) -> str:
        """``within 4000 LUTs on ice40 (3,811 estimated)``, ``fitting the LFE5U-85F (estimated …)``."""
        r, config = self.resources(folding), self.config
        within = f"within {config.lut_budget} LUTs on {config.target} ({r['lut']} estimated)" \
            if config.lut_budget is not None else ""
        if self.part is None:
            return within
        usage = self.target.usage(r)
        fitting = (f"fitting the {self.part.name} (estimated {self.part.usage_line(usage).rsplit(' of ', 1)[0]}; "
                   f"{self.part.binding(usage).upper()} the fullest)")
        return f"{within} and {fitting}" if within else fitting


def _fill_text() -> str:
    """``LUT at most 90% of the part``: what the search leaves free to route (SEARCH_FILL)."""
    return ", ".join(f"{cls.upper()} at most {100 * share:.0f}% of the part" for cls, share in SEARCH_FILL.items())


def _clocks(net, folding: Folding) -> int:
    """Clocks per image of ``folding``: its slowest layer's."""
    return max(layer.clocks_per_image(folding[layer.name]) for layer in net.layers)


def _bottleneck(net, folding: Folding) -> str:
    """The layer that sets ``folding``'s pace, by kind and name."""
    layer = max(net.layers, key=lambda layer: layer.clocks_per_image(folding[layer.name]))
    return f"{layer.kind} {printable(layer.name)} ({layer.clocks_per_image(folding[layer.name])} clocks per image)"


def _default_folding(model: str) -> Folding | None:
    """The folding of the embedded default network design when ``model`` is its model."""
    for d in default_designs():
        if d.kind == "network" and d.params.get("model") == model:
            return Folding(d.params.get("folding", {}))
    return None


def resource_estimator(config: FlowConfig, net, progress=None):
    """``folding → resources`` of ``net`` on the config's target (the analytic model of its blocks),
    built as the flow will build it: pipelined for the config's clock, weights stored as it says.
    ``progress(text)`` hears of each FIFO's least-depth search (a slow folding's takes a minute)."""
    design = flow_design(config, Folding())
    timing, store = timing_of(design), store_of(design)

    def resources(folding: Folding, size_fifos: bool = True) -> dict:
        # a graph's FIFOs at their least depths, as the flow builds them (the search is remembered
        # by plan, so the chosen folding's is not run again)
        least = LEAST if size_fifos and not net.is_chain else None
        block = NetworkBlock(net, folding, config.output, timing, store, fifo_depths=least, size_fifos=size_fifos,
                             progress=progress)
        return estimate_resources(block, [config.target])[config.target]
    # the bound: a graph's FIFOs at their kinds' depths and no FIFO for a fed layer
    # (dataflow.fed_layers) — no cycle-model run for a candidate the bound rules out
    resources.lower = lambda folding: resources(folding, size_fifos=False)
    return resources


# ------------------------------------------------------------------ the flow
@dataclass
class FlowResult:
    design: str
    model: str
    folding_how: str
    figures: dict
    files: list = field(default_factory=list)
    stages: list = field(default_factory=list)   # (stage, seconds, what it did)


def flow_design(config: FlowConfig, folding: dict) -> Design:
    """The network design a flow config describes, at ``folding`` (a graph's FIFOs at their least
    depths: the network design's default)."""
    extra = {} if config.score_bits is None else {"score_bits": config.score_bits}
    if config.activations is not None:
        extra.update(activations=config.activations, target=config.target)
    if config.target in delay_models():  # pipelined for the clock on the target (hwnorm.timing)
        extra.update(clock_mhz=config.clock_mhz, target=config.target)
    if config.stt_store:  # weight ROMs as encoded MLC STT-RAM cells under a fault map (hwnorm.stt.store)
        extra["stt"] = {"codec": config.codec, "ber": config.stt_ber, "seed": config.stt_seed, "cells": config.cells}
    return Design(config.name, "network", {"model": config.model, "output": config.output, "folding": folding,
                                           **extra}, config.origin, config.base)


def import_stage(config: FlowConfig):
    """Model → Network: the config's model imported (once: later stages get it from the same Model)."""
    return network_of(flow_design(config, {}))


def plan_stage(config: FlowConfig, net, progress=None) -> tuple[Plan, str]:
    """Network → Plan: the folding (configured or searched), and the design's block built once. A
    graph's FIFOs get their least depths that keep every output's clock
    (:func:`hwnorm.dataflow.minimal_fifos`), not the deeper ones that never fill."""
    folding, how = choose_folding(config, net, resource_estimator(config, net, progress), progress)
    if not net.is_chain and progress:
        progress("least FIFO depths")
    plan = plan_of(flow_design(config, folding))  # a graph's design: fifo_depths "least" (its default)
    least = plan.block.least_fifos
    if least is not None:
        shrunk = sum(small < never for never, small in least.values())
        how += f"; FIFOs at their least depths ({shrunk} of {len(least)} shallower than never full)"
    target = TARGETS[config.target]
    if config.device is None and target.part is not None:  # a folding no part of the target's size can hold
        short = target.part.shortfalls(target.usage(estimate_resources(plan.block, [config.target])[config.target]))
        if short:
            how += (f" — its estimate does not fit the {target.part.name} ({Device.shortfall_text(short, target.part.name)}):"
                    f" set device (or --device) to fold for a part")
    return plan, how


def verilog_stage(config: FlowConfig, plan: Plan) -> tuple[dict, Verilog]:
    """Plan → the Verilog set (files written later, with the report) and the top's Verilog."""
    files = generate([plan], config.rtl_dir, merge=True, write=False)
    return files, Verilog.of(files, config.name)


def _pipelining(config: FlowConfig) -> str:
    """What the flow's Verilog is timed for, or why it is not."""
    if config.target in delay_models():
        return Timing(config.clock_mhz, config.target).describe()
    return f"not pipelined: {config.target} has no delay model (ecp5 and ice40 have)"


def _parts(config: FlowConfig) -> dict | None:
    """The configured part for its target (the others place on their own parts)."""
    return {config.target: device_named(config.device)} if config.device else None


def _simulator(config: FlowConfig) -> str | None:
    try:
        return pick_simulator(config.simulator)
    except ValueError as e:
        raise ValueError(f"{config.origin}: {e}") from None


def _check_before_work(config: FlowConfig):
    """What can fail late, checked first: the energy and cell tables load, the simulator exists, and
    both output folders can be written. Returns the simulator (None: no co-simulation)."""
    for what, load, source in (("energy_table", load_energy_table, config.energy_table),
                               ("stt.cells", load_table, config.cells)):
        try:
            load(source)
        except ValueError as e:
            raise ValueError(f"{config.origin}: {what}: {e}") from None
    sim = _simulator(config)
    for what, folder in (("rtl_dir", config.rtl_dir), ("reports_dir", config.reports_dir)):
        check_writable(Path(folder), f"{config.origin}: {what}")
    return sim


def run_flow(config: FlowConfig, say=print) -> FlowResult:
    """Run every stage for ``config``; ``say`` receives one line per stage. Each stage's product
    (network, plan, Verilog, co-simulation, estimates, report) is made once and handed on."""
    stages = []

    def progress(what: str):
        say(f"      … {what}")

    def stage(label: str, start: float, what: str):
        seconds = time.perf_counter() - start
        stages.append((label, round(seconds, 2), what))
        say(f"[{len(stages)}/6] {label:<11} {seconds:7.1f} s  {what}")

    sim = _check_before_work(config)
    t = time.perf_counter()
    net = import_stage(config)
    stage("import", t, f"{net.name}: {len(net.layers)} layers, {net.in_features} → {net.out_features}")

    t = time.perf_counter()
    plan, how = plan_stage(config, net, progress)
    block = plan.block
    stage("folding", t, f"{how}: {block.initiation_interval} clocks per image; "
                        + ", ".join(f"{k} {'×'.join(str(v) for v in f.values())}" for k, f in block.folding.items()))

    t = time.perf_counter()
    files, verilog = verilog_stage(config, plan)  # the stages below simulate and synthesize this very text
    stage("verilog", t, f"{Path(config.rtl_dir) / (config.name + '.v')} ({verilog.text.count(chr(10))} "
                        f"lines, {_pipelining(config)}) and manifest.json, written with the report")

    t = time.perf_counter()
    fig = rtl_figures({}, plan, vectors=config.vectors, seed=config.seed, sim=sim, progress=progress,
                      test_images=config.test_images, verilog=verilog)
    acc = fig.get("accuracy")
    stage("verify", t, ("no simulator: RTL not co-simulated" if "rtl" not in fig else
                        f"{fig['rtl']['vectors']} images on {fig['rtl']['simulator']}: "
                        f"{fig['rtl']['mismatches']} mismatches")
          + (f"; golden top-1 {100 * acc['top1']:.2f}% on {acc['images']:,} images" if acc else ""))

    t = time.perf_counter()
    fig = {**estimate_figures(plan, clock_mhz=config.clock_mhz, images=config.images, synth=config.synth,
                              fmax=config.fmax and config.synth, buffer_codec=config.codec,
                              energy_table=config.energy_table, cells=config.cells, progress=progress,
                              verilog=verilog, parts=_parts(config)), **fig}
    r = fig["resources"][config.target]
    skipped = [f"{t}: {s['skipped']}" for t, s in fig["resources"].items() if "skipped" in s]
    stage("estimate", t, f"{fig['cycles']['design']['cycles_per_vector']} clocks per image; "
                         f"{fig['energy']['compute_pj']:,.0f} pJ compute per inference; "
                         f"{r['estimate']['lut']} LUTs estimated on {config.target}"
          + (f", {r['synthesis']['counts']['lut']} by Yosys" if "synthesis" in r else "")
          + (f"; Yosys failed: {r['synthesis_failed']}" if "synthesis_failed" in r else "")
          + "".join(f"\n      {line}" for line in skipped))

    t = time.perf_counter()
    reports = render_reports([fig], config.reports_dir, merge_index=True)
    # rtl/ and reports/ as one set: an interrupt never leaves new Verilog beside old reports
    write_file_sets({Path(config.rtl_dir): files, Path(config.reports_dir): reports})
    written = sorted(reports)
    stage("report", t, f"{Path(config.reports_dir) / (config.name + '.md')} and {len(written) - 1} more files "
                       f"(and the Verilog, as one set)")
    return FlowResult(config.name, net.name, how, fig, sorted(files) + written, stages)


def summary(result: FlowResult, config: FlowConfig) -> str:
    """The final screen: accuracy, mismatches, cycles, energy, LUTs."""
    fig = result.figures
    c = fig["cycles"]
    lines = [f"hwnorm flow: {result.model} → {result.design} ({result.folding_how})"]
    acc = fig.get("accuracy")
    if acc:
        held = " held-out" if acc.get("test_images") == "held-out" else ""
        line = f"  accuracy   golden top-1 {100 * acc['top1']:.2f}% on {acc['images']:,}{held} MNIST images"
        if acc.get("rtl_top1_on_cosimulated") is not None:
            line += f"; RTL {100 * acc['rtl_top1_on_cosimulated']:.2f}% on the {acc['cosimulated_images']:,} co-simulated"
        lines.append(line)
    rtl = fig.get("rtl")
    lines.append(f"  rtl check  {rtl['vectors']:,} images on {rtl['simulator']}: {rtl['mismatches']} mismatches"
                 if rtl else "  rtl check  not run (no simulator)")
    store = fig.get("parameters", {}).get("stt")
    if store:
        lines.append(f"  weights    stored as MLC STT-RAM cells, codec {store['codec']}, {store['stored_cells']:,} cells; "
                     f"fault map at BER {store['ber']:g} (seed {store['seed']}) flipped {store['flipped_bits']:,} bits "
                     "— the golden model reads the same cells")
    achieved = fig.get("at_fmax", {}).get(config.target)
    lines.append(f"  cycles     {c['design']['cycles_per_vector']} clocks per image, latency {c['design']['latency']} "
                 f"clocks → {c['vectors_per_second']:,.0f} images/s at {config.clock_mhz:g} MHz "
                 f"(bottleneck {c['bottleneck']})"
                 + (f"; {achieved['vectors_per_second']:,.0f} images/s at the {achieved['fmax_mhz']:.1f} MHz "
                    f"{config.target} Fmax" if achieved else ""))
    e = fig.get("energy")
    if e:
        buf = e["weight_buffer"]
        lines.append(f"  energy     {e['compute_pj']:,.0f} pJ compute + weight memories {buf['sram_pj']:,.0f} pJ as SRAM "
                     f"or {buf['stt_pj']:,.0f} pJ as MLC STT-RAM (codec {buf['stt_codec']}; arrays with periphery) "
                     f"per inference")
    r = fig["resources"][config.target]
    est = r["estimate"]
    line = f"  resources  {config.target}: {est['lut']:,} LUT, {est['ff']:,} FF, {est['bram']} BRAM, {est['dsp']} DSP (model)"
    if "synthesis" in r:
        got = r["synthesis"]["counts"]
        line += f"; Yosys {got['lut']:,} LUT, {got['ff']:,} FF, {got['bram']} BRAM, {got['dsp']} DSP"
    if "synthesis_failed" in r:
        line += f"; Yosys failed: {r['synthesis_failed']}"
    if "timing" in r:
        line += (f"; Fmax {r['timing']['fmax_mhz']:.1f} MHz" if r["timing"]["fmax_mhz"] else f"; {r['timing']['reason']}")
    lines.append(line)
    lines.append(f"  files      {config.rtl_dir}/{result.design}.v, {config.reports_dir}/{result.design}.md")
    return "\n".join(lines)

