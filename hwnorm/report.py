"""``hwnorm report``: one markdown page, a JSON of every figure and PNG plots per design.

Each figure is measured or estimated by the module that owns it; this one only gathers and
lays them out:

* accuracy — golden model top-1 on the 10,000 vendored MNIST images (networks), and the RTL
  co-simulated on a bounded number of vectors (``hwnorm.sim``): mismatches against the golden model;
* cycles — the estimator's clocks per vector, latency and per-stage table, next to what a
  full-rate co-simulation measured (every output beat's clock);
* energy — per layer and component (networks), weight buffer as SRAM and MLC STT-RAM;
* resources — the analytic model per FPGA target next to Yosys synthesis, the error, and Fmax.

Files of a report set (``-o DIR``, default ``reports/``): ``<design>.md``, ``<design>.json``,
``<design>_cycles.png``, ``<design>_energy.png`` (networks), ``<design>_resources.png``, and a
``designs.md`` index. The set is written at once (temporary names, then renames), so an
interrupted run leaves the previous report intact.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

__all__ = ["design_figures", "estimate_figures", "rtl_figures", "render_markdown", "render_plots", "render_index", "render_reports",
           "write_reports"]

RESOURCE_CLASSES = ("lut", "ff", "bram", "dsp")
INDEX = "designs.md"  # reports/README.md describes the whole folder; this indexes the design reports


def _accuracy(block, test_images: str = "all") -> dict | None:
    """Golden-model top-1 of a network on the vendored MNIST test images of the set ``test_images``
    (predictions for all 10,000, so co-simulated images can be looked up by index)."""
    from hwnorm import data

    net = getattr(block, "net", None)
    if net is None:
        return None
    x, y = data.mnist_test()
    if net.in_features != x[0].size:
        return None
    pred = net.predict(x.reshape(len(x), -1).astype(np.int64))
    ids = data.mnist_ids(test_images)
    return {"images": int(len(ids)), "test_images": test_images, "top1": float(np.mean(pred[ids] == y[ids])),
            "predictions": pred}


def rtl_predictions(job: dict, values: list) -> np.ndarray | None:
    """The classes a network's RTL gave, from its output beats: the index itself (argmax top) or
    the argmax of the raw scores (first index on ties); None if a beat is missing or undefined."""
    from hwnorm.sim.scoreboard import lanes_of

    per_vector = job["out_beats_per_vector"]
    if len(values) < job["vectors"] * per_vector or any(v is None for v in values):
        return None
    lanes = [lanes_of(v, job["out_lanes"], job["out_width"], job["out_signed"]) for v in values]
    scores = np.array(lanes[:job["vectors"] * per_vector]).reshape(job["vectors"], -1)
    return scores[:, 0] if job.get("argmax_output") else np.argmax(scores, axis=1)


def _rtl(design, block, vectors: int, seed: int, sim: str, work_dir, text: str, test_images: str = "all") -> dict:
    """Co-simulate ``vectors`` with random idle cycles and back-pressure (mismatches), then at full
    rate (every output beat's clock against the cycle estimator)."""
    from hwnorm.estimate.cycles import full_rate_output_cycles
    from hwnorm.sim.jobs import first_vectors
    from hwnorm.sim.runner import cosim
    from hwnorm.sim.verify import default_work_dir

    work = Path(work_dir) if work_dir else default_work_dir()
    job = block.job(vectors, seed, test_images) if getattr(block, "net", None) is not None else block.job(vectors, seed)
    random_rate = cosim(text, design.name, job, sim, work, mode="batch")
    full = cosim(text, design.name, first_vectors(job, job["vectors"], p_valid=1.0, p_ready=1.0), sim, work,
                 mode="batch")
    predicted = full_rate_output_cycles(block, full.vectors, full.first_in_cycle)
    measured = full.beat_cycles or []
    per_vector = block.out_beats
    done = measured[per_vector - 1::per_vector]
    out = {"simulator": sim, "vectors": random_rate.vectors, "p_valid": job["p_valid"], "p_ready": job["p_ready"],
           "mismatches": random_rate.mismatches + full.mismatches, "message": random_rate.message,
           "full_rate": {"vectors": full.vectors, "beats": len(measured),
                         "beats_at_predicted_clock": int(sum(a == b for a, b in zip(measured, predicted))),
                         "latency": measured[per_vector - 1] - full.first_in_cycle if measured else None,
                         "clocks_per_vector": (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else None}}
    if "image_ids" in job:  # a network on MNIST images: what the RTL predicted, for its top-1
        out["image_ids"] = job["image_ids"]
        out["predictions"] = rtl_predictions(job, random_rate.beat_values or [])
    return out


def design_figures(design, *, clock_mhz: float, images: int, vectors: int, seed: int, sim: str | None,
                   targets=None, synth: bool = True, fmax: bool = True, work_dir=None, progress=None,
                   buffer_codec: str = "none", synth_targets=None, energy_table=None, cells=None) -> dict:
    """Every figure of one design's report (plain JSON types): :func:`estimate_figures` (with
    synthesis) then :func:`rtl_figures` (accuracy and co-simulation), from one block and one
    Verilog text (the only time the hardware is built)."""
    from hwnorm.generate import model_of, verilog_text

    block, params = model_of(design)
    verilog = verilog_text(block.component(), design.name) if synth or fmax or sim else None
    fig = estimate_figures(design, block, params, clock_mhz=clock_mhz, images=images, targets=targets, synth=synth,
                           fmax=fmax, progress=progress, buffer_codec=buffer_codec, synth_targets=synth_targets,
                           energy_table=energy_table, cells=cells, verilog=verilog)
    return rtl_figures(fig, design, block, vectors=vectors, seed=seed, sim=sim, work_dir=work_dir, progress=progress,
                       verilog=verilog)


def estimate_figures(design, block, params: dict, *, clock_mhz: float, images: int, targets=None, synth: bool = True,
                     fmax: bool = True, progress=None, buffer_codec: str = "none", synth_targets=None,
                     energy_table=None, cells=None, verilog: str | None = None) -> dict:
    """Configuration, cycles, energy and resources of a design (its ``block`` and manifest
    ``params``, :func:`hwnorm.generate.model_of`). ``energy_table`` and ``cells`` are names or
    TOML paths (default: the built-in tables); ``verilog`` the design's Verilog if known."""
    from hwnorm.estimate import estimate_design
    from hwnorm.estimate.energy import load_energy_table
    from hwnorm.stt import load_table

    say = progress or (lambda what: None)
    say(f"{design.name}: estimates" + (" and synthesis" if synth else ""))
    est = estimate_design(design, clock_mhz, images, load_energy_table(energy_table), load_table(cells),
                          targets=targets, synth=synth, fmax=fmax, progress=say, buffer_codec=buffer_codec,
                          synth_targets=synth_targets, verilog=verilog, block=block)
    for r in est["resources"].values():  # what was measured; not tool run times or cache hits (not reproducible)
        for measured in (r.get("synthesis"), r.get("timing")):
            if measured:
                measured.pop("cached", None)
                measured.pop("seconds", None)
    fig = {"design": design.name, "kind": design.kind, "parameters": params, "clock_mhz": clock_mhz,
           "cycles": est["cycles"], "resources": est["resources"],
           "at_fmax": at_fmax(est["cycles"], est["resources"])}  # beside the cycle model's figures, not in them
    realizations = _activation_costs(design, targets, synth, say)
    if realizations:
        fig["activation_realizations"] = realizations
    if "energy" in est:
        fig["energy"] = est["energy"]
    return fig


def _activation_costs(design, targets, synth: bool, say) -> list:
    """Both realizations of a multi-bit network's activations, per layer and target (estimate and
    Yosys): see :mod:`hwnorm.activations`. Nothing for other designs."""
    from hwnorm.activations import costs_per_target
    from hwnorm.estimate.synthesis import TARGETS
    from hwnorm.generate import design_source
    from hwnorm.models import import_model

    if design.kind != "network" or str(design.params.get("model", "")).endswith(".json"):
        return []
    source, bits = design_source(design), design.params.get("score_bits")
    say(f"{design.name}: both activation realizations" + (" (with synthesis)" if synth else ""))
    return costs_per_target(lambda how: import_model(source, bits, how), design.params.get("folding"),
                            list(targets or TARGETS), synth, say)


def rtl_figures(fig: dict, design, block, *, vectors: int, seed: int, sim: str | None, work_dir=None,
                progress=None, verilog: str | None = None, test_images: str = "all") -> dict:
    """``fig`` with the golden model's accuracy (networks on the MNIST images of ``test_images``)
    and, on ``sim``, the RTL (``verilog``, or generated here from ``block``) co-simulated against it."""
    from hwnorm.generate import verilog_text

    say = progress or (lambda what: None)
    acc = _accuracy(block, test_images)
    if sim:
        say(f"{design.name}: co-simulating {vectors} vectors on {sim}")
        text = verilog if verilog is not None else verilog_text(block.component(), design.name)
        fig["rtl"] = _rtl(design, block, vectors, seed, sim, work_dir, text, test_images)
    if acc is not None:
        pred = acc.pop("predictions")
        fig["accuracy"] = acc
        rtl = fig.get("rtl")
        if rtl and "image_ids" in rtl:
            from hwnorm import data
            ids = np.array(rtl.pop("image_ids"))
            got = rtl.pop("predictions")
            _, y = data.mnist_test()
            fig["accuracy"]["cosimulated_images"] = len(ids)
            fig["accuracy"]["golden_top1_on_cosimulated"] = float(np.mean(pred[ids] == y[ids]))
            # from the classes the RTL itself gave (None if some output beat was missing or undefined)
            fig["accuracy"]["rtl_top1_on_cosimulated"] = None if got is None else float(np.mean(got == y[ids]))
    return fig


# ------------------------------------------------------------------ markdown
def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def _table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; every cell through :func:`hwnorm.io.printable` (a name with ``|`` or a
    newline would break the table)."""
    from hwnorm.io import printable

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if k == 0 else "---:" for k in range(len(header))) + "|"]
    lines += ["| " + " | ".join(printable(c, markdown=True) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _configuration(fig: dict) -> str:
    p = dict(fig["parameters"])
    folding = p.pop("folding", None)
    layers = p.pop("layers", None)
    shift = p.pop("shift", None)
    out = _table(["parameter", "value"], [[k, f"`{v}`"] for k, v in p.items()])
    if shift is not None:
        out += f"\n\nPer-channel shift: `{shift}`"
    if layers:
        rows = []
        for layer in layers:
            f = (folding or {}).get(layer["name"], {})
            rows.append([layer["name"], layer["kind"], layer["in"], layer["out"], f.get("pe", ""), f.get("simd", "")])
        out += "\n\n" + _table(["layer", "kind", "in", "out", "PE", "SIMD"], rows)
    return out


def _cycles_md(fig: dict) -> str:
    c = fig["cycles"]
    d = c["design"]
    out = (f"At {fig['clock_mhz']:g} MHz: **{c['vectors_per_second']:,.0f} vectors/s** "
           f"({d['cycles_per_vector']} clocks per vector), first result after **{d['latency']} clocks** "
           f"({c['latency_seconds'] * 1e6:.3f} µs). Bottleneck: `{c['bottleneck']}`.")
    achieved = [f"{r['vectors_per_second']:,.0f} vectors/s at {r['fmax_mhz']:.1f} MHz on {t}"
                for t, r in fig.get("at_fmax", {}).items()]
    if achieved:
        out += " At the Fmax place-and-route reaches: " + "; ".join(achieved) + "."
    timing = fig["parameters"].get("timing")
    if timing:
        out += f" Pipelined for {timing['clock_mhz']:g} MHz on {timing['target']}."
    out += "\n\n"
    if len(c["stages"]) > 1:
        out += _table(["stage", "kind", "clocks / vector", "first vector done at"],
                      [[s["name"], s["kind"], s["cycles_per_vector"], s["done_at"]] for s in c["stages"]]) + "\n\n"
    rtl = fig.get("rtl")
    if rtl:
        fr = rtl["full_rate"]
        out += "Estimate against a full-rate co-simulation of the generated Verilog:\n\n"
        out += _table(["figure", "estimate", f"measured ({rtl['simulator']})"], [
            ["clocks per vector", d["cycles_per_vector"], "—" if fr["clocks_per_vector"] is None
             else f"{fr['clocks_per_vector']:g}"],
            ["latency (clocks)", d["latency"], fr["latency"]],
            ["output beats at the predicted clock", fr["beats"], fr["beats_at_predicted_clock"]],
        ])
    return out


def _energy_md(fig: dict) -> str:
    e = fig["energy"]
    buf = e["weight_buffer"]
    comps = sorted(e["per_component_pj"].items(), key=lambda kv: -kv[1])
    out = (f"Per inference, from action counts of the golden model on {e['images']} images and the "
           f"`{e['table']}` energy table: compute **{e['compute_pj']:.1f} pJ**.\n\n")
    out += buffer_md(buf) + "\n\n"
    out += _table(["component", "pJ / inference"], [[k, f"{v:.1f}"] for k, v in comps]) + "\n\n"
    out += _table(["layer", "pJ / inference"], [[layer["name"], f"{layer['total_pj']:.1f}"] for layer in e["layers"]])
    return out


def buffer_md(buf: dict) -> str:
    """The weight memories as SRAM and as MLC STT-RAM arrays, like for like (hwnorm.stt.array)."""
    if "memories" not in buf:
        return ""
    n = len(buf["memories"])
    rows = [["SRAM", f"{buf['sram_read_pj']:,.1f}", f"{buf['sram_write_pj']:,.1f}", f"{buf['sram_area_mm2']:.4f}", "—"],
            [f"MLC STT-RAM, codec `{buf['stt_codec']}`", f"{buf['stt_read_pj']:,.1f}", f"{buf['stt_write_pj']:,.1f}",
             f"{buf['stt_area_mm2']:.4f}", f"{buf['stt_cell_read_pj']:,.1f}"]]
    return (f"Weight memories ({n} arrays, one per MVU, each row read once per input vector of its layer), "
            f"array level with periphery, the same capacity and word for both technologies "
            f"(`hwnorm.stt.array`: NVSim periphery + cell table `{buf['cell_table']}` for STT-RAM, "
            f"{buf['stt_cells']:,} cells; the energy table's SRAM reads):\n\n"
            + _table(["buffer", "read pJ / inference", "write pJ / model load", "area mm²", "of the read: cells pJ"],
                     rows))


def _resources_md(fig: dict) -> str:
    rows, timing = [], []
    for target, r in fig["resources"].items():
        est, syn = r["estimate"], r.get("synthesis")
        for cls in RESOURCE_CLASSES:
            got = syn["counts"][cls] if syn else "—"
            err = _pct(r["error"][cls]) if syn else "—"
            rows.append([target, cls.upper(), est[cls], got, err])
        if "timing" in r:
            t = r["timing"]
            timing.append([target, t["device"] or "—", "—" if t["fmax_mhz"] is None else f"{t['fmax_mhz']:.1f}",
                           t["reason"] or (f"fits; {t['note']}" if t.get("note") else "fits")])
        if "synthesis_failed" in r:
            timing.append([target, "—", "—", f"synthesis failed: {r['synthesis_failed']}"])
    out = ("Analytic model (`hwnorm/estimate/resources.py`, calibrated on other foldings) against Yosys "
           "synthesis of this design (error = (estimate − Yosys) / Yosys):\n\n")
    uncalibrated = sorted({k for r in fig["resources"].values() for k in r.get("uncalibrated_kinds", ())})
    if uncalibrated:
        out += (f"Block kinds without calibrated costs of their own ({', '.join(uncalibrated)}) are "
                "costed with the generic fit over all calibrated blocks: expect a larger error until "
                "`hwnorm estimate --calibrate` has synthesized them.\n\n")
    out += _table(["target", "resource", "estimate", "Yosys", "error"], rows)
    if timing:
        out += ("\n\nFmax from nextpnr on a registered harness (the core between flip-flops, 8 pins):\n\n"
                + _table(["target", "device", "Fmax (MHz)", "note"], timing))
    return out


def render_markdown(fig: dict) -> str:
    name = fig["design"]
    parts = [f"# {name} ({fig['kind']})", "Generated by `hwnorm report`; every figure is also in "
             f"[{name}.json]({name}.json).", "## Configuration", _configuration(fig)]
    acc = fig.get("accuracy")
    rtl = fig.get("rtl")
    if acc or rtl:
        parts.append("## Accuracy and co-verification")
        lines = []
        if acc:
            lines.append(f"- Golden model top-1 on all {acc['images']:,} MNIST test images: **{100 * acc['top1']:.2f}%**")
        if rtl:
            lines.append(f"- RTL on {rtl['simulator']}: {rtl['vectors']:,} vectors with random idle cycles and "
                         f"back-pressure (p_valid {rtl['p_valid']:.2f}, p_ready {rtl['p_ready']:.2f}), then at full "
                         f"rate: **{rtl['mismatches']} mismatches** against the golden model")
        if acc and "cosimulated_images" in acc:
            r = acc["rtl_top1_on_cosimulated"]
            lines.append(f"- On the {acc['cosimulated_images']:,} co-simulated images: golden top-1 "
                         f"{100 * acc['golden_top1_on_cosimulated']:.2f}%, RTL top-1 "
                         + ("n/a (an output was missing or undefined)" if r is None else f"{100 * r:.2f}%"))
        parts.append("\n".join(lines))
    parts += ["## Cycles", _cycles_md(fig), f"![cycles per stage]({name}_cycles.png)"]
    if "energy" in fig:
        parts += ["## Energy", _energy_md(fig), f"![energy breakdown]({name}_energy.png)"]
    parts += ["## Resources", _resources_md(fig), f"![resources]({name}_resources.png)"]
    if fig.get("activation_realizations"):
        parts += ["## Activations: thresholds or requantizer", _realizations_md(fig)]
    return "\n\n".join(parts) + "\n"


def _realizations_md(fig: dict) -> str:
    rows = fig["activation_realizations"]
    chosen = fig["parameters"].get("activations", {})
    targets = list(rows[0]["thresholds"])
    header = ["layer", "quantizer"] + [f"{how} {t} (estimate / Yosys)" for how in ("thresholds", "requant")
                                       for t in targets] + ["built"]
    table = []
    for r in rows:
        cells = [f"{r[how][t]['estimate']} / {r[how][t].get('yosys') or '—'}" for how in ("thresholds", "requant")
                 for t in targets]
        table.append([r["layer"], r["quantizer"], *cells, chosen.get(r["layer"], "thresholds")])
    return ("LUTs of the blocks each exact realization adds (the MVU with its thresholds; the MVU with a raw "
            "accumulator and the requantizer after it), at this folding; both give identical codes on every "
            "accumulator value (`hwnorm/quantizer.py`). `activations = \"auto\"` builds the one with the smaller "
            "estimate on the design's target.\n\n" + _table(header, table))


# ------------------------------------------------------------------ plots
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def render_plots(fig: dict) -> dict[str, bytes]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, out = fig["design"], {}
    stages = fig["cycles"]["stages"]
    f, ax = plt.subplots(figsize=(7, 0.35 * len(stages) + 1.6))
    colors = ["tab:red" if s["name"] == fig["cycles"]["bottleneck"] else "tab:blue" for s in stages]
    ax.barh([s["name"] for s in stages][::-1], [s["cycles_per_vector"] for s in stages][::-1], color=colors[::-1])
    ax.set_xlabel("clocks per vector (red: bottleneck)")
    ax.set_title(f"{name}: cycles per stage")
    f.tight_layout()
    out[f"{name}_cycles.png"] = _png(f)

    if "energy" in fig:
        e = fig["energy"]
        comps = sorted(e["per_component_pj"], key=lambda k: -e["per_component_pj"][k])
        f, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
        left = np.zeros(len(e["layers"]))
        labels = [layer["name"] for layer in e["layers"]]
        for comp in comps:
            vals = np.array([layer["pj"].get(comp, 0.0) for layer in e["layers"]])
            a1.barh(labels[::-1], vals[::-1], left=left[::-1], label=comp)
            left += vals
        a1.set_xlabel("pJ per inference")
        a1.set_title("compute energy per layer")
        a1.legend(fontsize=7)
        buf = e["weight_buffer"]
        a2.bar(["compute", "weights: SRAM", "weights: STT-RAM"], [e["compute_pj"], buf["sram_pj"], buf["stt_pj"]],
               color=["tab:blue", "tab:orange", "tab:green"])
        a2.set_ylabel("pJ per inference")
        a2.set_title("compute vs weight buffer")
        f.tight_layout()
        out[f"{name}_energy.png"] = _png(f)

    targets = list(fig["resources"])
    f, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, cls in zip(axes, ("lut", "ff")):
        x = np.arange(len(targets))
        est = [fig["resources"][t]["estimate"][cls] for t in targets]
        ax.bar(x - 0.2, est, 0.4, label="estimate")
        if all("synthesis" in fig["resources"][t] for t in targets):
            ax.bar(x + 0.2, [fig["resources"][t]["synthesis"]["counts"][cls] for t in targets], 0.4, label="Yosys")
        ax.set_xticks(x, targets)
        ax.set_title(f"{name}: {cls.upper()}")
        ax.legend(fontsize=7)
    f.tight_layout()
    out[f"{name}_resources.png"] = _png(f)
    return out


def at_fmax(cycles: dict, resources: dict) -> dict:
    """Throughput at the Fmax place-and-route achieved, per target that has one: what the design
    really delivers, beside the nominal clock's figure."""
    per_vector = cycles["design"]["cycles_per_vector"]
    return {t: {"fmax_mhz": r["timing"]["fmax_mhz"], "vectors_per_second": r["timing"]["fmax_mhz"] * 1e6 / per_vector}
            for t, r in resources.items() if (r.get("timing") or {}).get("fmax_mhz")}


def render_index(figs: list[dict]) -> str:
    """``designs.md`` of a report set: one row per design."""
    rows = []
    for fig in figs:
        c = fig["cycles"]["design"]
        rtl = fig.get("rtl")
        cells = []
        for t, r in fig["resources"].items():
            if "synthesis" in r:
                cells.append(f"{t} {r['estimate']['lut']}/{r['synthesis']['counts']['lut']} "
                             f"({_pct(r['error']['lut'])})")
        fmax = [f"{t} {r['fmax_mhz']:.0f} ({_rate(r['vectors_per_second'])})"
                for t, r in fig.get("at_fmax", {}).items()]
        acc = fig.get("accuracy")
        rows.append([f"[{fig['design']}]({fig['design']}.md)", fig["kind"], c["cycles_per_vector"], c["latency"],
                     "—" if not rtl else f"{rtl['mismatches']} / {rtl['vectors']:,}",
                     "—" if not acc else f"{100 * acc['top1']:.2f}%",
                     "<br>".join(cells) or "—", ", ".join(fmax) or "—"])
    return ("# hwnorm design reports\n\nRegenerate with `hwnorm report` (see the README). Per design: clocks per vector "
            "and latency from the cycle estimator (equal to co-simulation), mismatches of the RTL against the "
            "golden model, LUTs as estimate / Yosys (error), and the Fmax nextpnr reaches with the vectors per "
            "second at that clock.\n\n"
            + _table(["design", "kind", "clocks / vector", "latency", "mismatches / vectors", "golden top-1",
                      "LUT estimate / Yosys", "Fmax (MHz) (vectors/s)"], rows) + "\n")


def _rate(per_second: float) -> str:
    """A rate with an SI prefix: 2.3 M/s, 750 k/s."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_second >= scale:
            return f"{per_second / scale:.3g} {prefix}/s"
    return f"{per_second:.3g}/s"


def _other_reports(out_dir: Path, names: set) -> list[dict]:
    """Design reports already in ``out_dir`` (their JSON), other than ``names``, in name order."""
    out = []
    for path in sorted(out_dir.glob("*.json")) if out_dir.is_dir() else []:
        if path.stem in names:
            continue
        try:
            fig = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(fig, dict) and {"design", "cycles", "resources"} <= set(fig) and fig["design"] == path.stem:
            out.append(fig)
    return out


def write_reports(figs: list[dict], out_dir, merge_index: bool = False) -> list[str]:
    """Write the whole report set of ``figs`` into ``out_dir`` at once; returns the file names.
    With ``merge_index`` the index also lists the design reports already in the folder."""
    from hwnorm.io import write_atomic_set

    files = render_reports(figs, out_dir, merge_index)
    write_atomic_set(Path(out_dir), files)
    return sorted(files)


def render_reports(figs: list[dict], out_dir, merge_index: bool = False) -> dict:
    """The files :func:`write_reports` writes, ``{name: text or bytes}``."""
    files: dict = {}
    for fig in figs:
        files[f"{fig['design']}.md"] = render_markdown(fig)
        files[f"{fig['design']}.json"] = json.dumps(fig, indent=1) + "\n"
        files.update(render_plots(fig))
    indexed = figs
    if merge_index:  # keep the old index's order; designs new to it go last
        old = Path(out_dir) / INDEX
        order = re.findall(r"\[(\w+)\]\(\1\.md\)", old.read_text()) if old.exists() else []
        indexed = sorted(figs + _other_reports(Path(out_dir), {f["design"] for f in figs}),
                         key=lambda f: (order.index(f["design"]) if f["design"] in order else len(order)))
    files[INDEX] = render_index(indexed)
    return files
