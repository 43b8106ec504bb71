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

from hwnorm.estimate.design import estimate_figures
from hwnorm.estimate.synthesis import critical_path_text
from hwnorm.generate import Verilog, plan_of
from hwnorm.sim.verify import rtl_figures
from hwnorm.io import printable, write_atomic_set

__all__ = ["design_figures", "summary_lines", "markdown_table", "render_markdown", "render_plots", "render_index", "render_reports",
           "write_reports"]

RESOURCE_CLASSES = ("lut", "ff", "bram", "dsp")
INDEX = "designs.md"  # reports/README.md describes the whole folder; this indexes the design reports


def design_figures(design, *, clock_mhz: float, images: int, vectors: int, seed: int, sim: str | None,
                   targets=None, synth: bool = True, fmax: bool = True, work_dir=None, progress=None,
                   buffer_codec: str = "none", synth_targets=None, energy_table=None, cells=None,
                   parts: dict | None = None) -> dict:
    """Every figure of one design's report (plain JSON types), from the same stages as the flow:
    its plan (built once), its Verilog (converted once), the estimates (with synthesis), then
    the verification (accuracy and co-simulation)."""
    plan = plan_of(design)
    verilog = Verilog.of_plan(plan) if synth or fmax or sim else None
    fig = estimate_figures(plan, clock_mhz=clock_mhz, images=images, targets=targets, synth=synth, fmax=fmax,
                           progress=progress, buffer_codec=buffer_codec, synth_targets=synth_targets,
                           energy_table=energy_table, cells=cells, verilog=verilog, parts=parts)
    return rtl_figures(fig, plan, vectors=vectors, seed=seed, sim=sim, work_dir=work_dir, progress=progress,
                       verilog=verilog)


def summary_lines(figs: list[dict]) -> list[str]:
    """What ``hwnorm report`` prints: one line per design."""
    lines = []
    for fig in figs:
        c = fig["cycles"]["design"]
        line = f"{fig['design']:<18} {c['cycles_per_vector']:>5} clocks/vector, latency {c['latency']:>4}"
        if "rtl" in fig:
            line += f", {fig['rtl']['mismatches']} mismatches in {fig['rtl']['vectors']} vectors"
        lines.append(line)
    return lines


# ------------------------------------------------------------------ markdown
def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; every cell through :func:`hwnorm.io.printable` (a name with ``|`` or a
    newline would break the table)."""

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if k == 0 else "---:" for k in range(len(header))) + "|"]
    lines += ["| " + " | ".join(printable(c, markdown=True) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _configuration(fig: dict) -> str:
    p = dict(fig["parameters"])
    folding = p.pop("folding", None)
    layers = p.pop("layers", None)
    shift = p.pop("shift", None)
    out = markdown_table(["parameter", "value"], [[k, f"`{v}`"] for k, v in p.items()])
    if shift is not None:
        out += f"\n\nPer-channel shift: `{shift}`"
    if layers:
        rows = []
        for layer in layers:
            f = (folding or {}).get(layer["name"], {})
            rows.append([layer["name"], layer["kind"], layer["in"], layer["out"], f.get("pe", ""), f.get("simd", "")])
        out += "\n\n" + markdown_table(["layer", "kind", "in", "out", "PE", "SIMD"], rows)
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
        out += markdown_table(["stage", "kind", "clocks / vector", "first vector done at"],
                      [[s["name"], s["kind"], s["cycles_per_vector"], s["done_at"]] for s in c["stages"]]) + "\n\n"
    rtl = fig.get("rtl")
    if rtl:
        fr = rtl["full_rate"]
        out += "Estimate against a full-rate co-simulation of the generated Verilog:\n\n"
        out += markdown_table(["figure", "estimate", f"measured ({rtl['simulator']})"], [
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
    out += markdown_table(["component", "pJ / inference"], [[k, f"{v:.1f}"] for k, v in comps]) + "\n\n"
    out += markdown_table(["layer", "pJ / inference"], [[layer["name"], f"{layer['total_pj']:.1f}"] for layer in e["layers"]])
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
            + markdown_table(["buffer", "read pJ / inference", "write pJ / model load", "area mm²", "of the read: cells pJ"],
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
            path = critical_path_text(t.get("critical_path"))
            how = "; ".join(["fits", *t.get("passes", ()), *([t["note"]] if t.get("note") else []),
                             *([path] if path else [])])
            timing.append([target, t["device"] or "—", "—" if t["fmax_mhz"] is None else f"{t['fmax_mhz']:.1f}",
                           t["reason"] or how])
        if "synthesis_failed" in r:
            timing.append([target, "—", "—", f"synthesis failed: {r['synthesis_failed']}"])
        if "skipped" in r:
            timing.append([target, r["usage"]["part"], "—", r["skipped"]])
    out = ("Analytic model (`hwnorm/estimate/resources.py`, calibrated on other foldings) against Yosys "
           "synthesis of this design (error = (estimate − Yosys) / Yosys):\n\n")
    uncalibrated = sorted({k for r in fig["resources"].values() for k in r.get("uncalibrated_kinds", ())})
    if uncalibrated:
        out += (f"Block kinds without calibrated costs of their own ({', '.join(uncalibrated)}) are "
                "costed with the generic fit over all calibrated blocks: expect a larger error until "
                "`hwnorm estimate --calibrate` has synthesized them.\n\n")
    out += markdown_table(["target", "resource", "estimate", "Yosys", "error"], rows)
    if timing:
        out += ("\n\nFmax from nextpnr on a registered harness (the core between flip-flops, 8 pins):\n\n"
                + markdown_table(["target", "device", "Fmax (MHz)", "note"], timing))
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
            "estimate on the design's target.\n\n" + markdown_table(header, table))


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
        measured = [k for k, t in enumerate(targets) if "synthesis" in fig["resources"][t]]
        if measured:  # a target not synthesized (the estimate ruled its part out) has no Yosys bar
            ax.bar(x[measured] + 0.2, [fig["resources"][targets[k]]["synthesis"]["counts"][cls] for k in measured],
                   0.4, label="Yosys")
        ax.set_xticks(x, targets)
        ax.set_title(f"{name}: {cls.upper()}")
        ax.legend(fontsize=7)
    f.tight_layout()
    out[f"{name}_resources.png"] = _png(f)
    return out


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
            elif "skipped" in r:
                cells.append(f"{t} {r['estimate']['lut']}/— (over the {r['usage']['part']}: not synthesized)")
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
            + markdown_table(["design", "kind", "clocks / vector", "latency", "mismatches / vectors", "golden top-1",
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
