"""``hwnorm stt-weights``: the integer weight memories of real QNNs in MLC STT-RAM — array energy
like for like with SRAM, per codec, and accuracy under soft errors from the golden model and
(``--rtl``) from the generated RTL on Verilator, written as markdown, JSON and a PNG plot.

Scenario (reported with the results):

* Each MVU's weight memory is its own array: its rows (PE × SIMD weights, the folding the flow's
  auto folding picks) are read once per input vector of the layer and written once per model
  load, over an all-00 array (:func:`hwnorm.stt.store.buffer_costs`).
* Soft errors: the encoded cells of every memory flip hard / soft bits with the cell table's
  per-state probabilities scaled to each bit-error rate (the largest soft-bit probability), one
  draw per (codec, rate, seed); the decoded weights run the held-out MNIST images.
* RTL: a network top stores the faulty cells in its weight ROMs and decodes them with the
  generated decoder of each codec; its predictions are compared bit for bit with the golden
  model reading the same faulty cells, and its own accuracy is counted from the RTL's outputs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np

from hwnorm.stt.cells import CellTable, load_table
from hwnorm.stt.intcodec import INT_CODECS
from hwnorm import data
from hwnorm.dataflow import check_folding
from hwnorm.estimate.energy import load_energy_table
from hwnorm.generate import design_for_model, model_of
from hwnorm.hdl.verilog import verilog_text
from hwnorm.io import write_atomic_set
from hwnorm.models import load_network
from hwnorm.report import markdown_table
from hwnorm.sim.jobs import network_job
from hwnorm.sim.runner import cosim
from hwnorm.stt.array import cross_check, load_array_model, total
from hwnorm.stt.store import memory_costs, stored_network, WeightStore

DEFAULT_MODELS = ("TFC_1W1A", "TFC_2W2A", "CNV_MNIST_1W1A", "CNV_MNIST_2W2A")
DEFAULT_BERS = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
DEFAULT_SEEDS = 3
DEFAULT_IMAGES = 1000
RTL_MODELS = ("TFC_1W1A", "TFC_2W2A")  # one binary, one multi-bit network
RTL_BERS = (1e-3, 1e-2, 3e-2, 1e-1)
RTL_IMAGES = 200


@dataclass
class Settings:
    table: CellTable = field(default_factory=load_table)
    models: tuple = DEFAULT_MODELS
    codecs: tuple = INT_CODECS
    bers: tuple = DEFAULT_BERS
    seeds: int = DEFAULT_SEEDS
    images: int = DEFAULT_IMAGES
    rtl: bool = False
    rtl_models: tuple = RTL_MODELS
    rtl_bers: tuple = RTL_BERS
    rtl_images: int = RTL_IMAGES

    def check(self) -> None:
        bad = [c for c in self.codecs if c not in INT_CODECS]
        if bad or "none" not in self.codecs:
            raise ValueError(f"codecs must be among {', '.join(INT_CODECS)} and include 'none'"
                             + (f"; got {bad[0]!r}" if bad else ""))
        if not self.bers or any(not 0 < b <= 0.5 for b in (*self.bers, *self.rtl_bers)):
            raise ValueError("bit-error rates must be in (0, 0.5]")
        if self.seeds < 1 or not 1 <= self.images <= 2000 or not 1 <= self.rtl_images <= 2000:
            raise ValueError("seeds must be ≥ 1 and images in 1..2000 (the held-out MNIST images)")
        if not self.models:
            raise ValueError("no models given")


def held_out(n: int, selection: str = "held-out"):
    """The first ``n`` MNIST test images of ``selection`` (by default the held-out ones; one of
    :data:`hwnorm.data.TEST_IMAGE_SETS`) as rows of pixel codes, their labels and indices."""
    x, y = data.mnist_test()
    ids = data.mnist_ids(selection)[:n]
    return x[ids].reshape(len(ids), -1).astype(np.int64), y[ids], ids


def fault_accuracy(net, folding, x, y, store: WeightStore, table: CellTable) -> tuple[float, int]:
    """(top-1 on ``x``, bits flipped) of ``net`` with its weight memories at ``folding`` stored
    as MLC STT-RAM cells by ``store`` (codec, and a fault map at its ber and seed), read back
    through the codec: the golden model of the faulty hardware."""
    faulty, memories = stored_network(net, folding, store, table)
    return float(np.mean(faulty.predict(x) == y)), int(sum(m.flips for m in memories.values()))


def _state_share(memories: dict) -> list[float]:
    counts = sum(np.bincount(m.clean.ravel(), minlength=4) for m in memories.values())
    return (counts / max(counts.sum(), 1)).tolist()


def _unused_codes(memories: dict) -> int:
    """Cell states (per cell class and memory) the content never uses: the redundancy remap+backup
    spends on MAP decoding."""
    out = 0
    for m in memories.values():
        classes = m.codec.classes(m.clean.shape[1])
        for k in np.unique(classes):
            out += 4 - np.unique(m.clean[:, classes == k]).size
    return out


def run_model(name: str, settings: Settings, progress=None) -> dict:
    say = progress or (lambda *_: None)
    table, energy, arrays = settings.table, load_energy_table(), load_array_model()
    net = load_network(name)[0]
    folding = check_folding(net, None)
    x, y, _ = held_out(settings.images)
    clean = float(np.mean(net.predict(x) == y))
    out = {"model": name, "images": len(x), "clean_accuracy": clean, "folding": folding, "energy": {},
           "accuracy": {}}
    for codec in settings.codecs:
        _, memories = stored_network(net, folding, WeightStore(codec), table)
        costs = memory_costs(net, memories, table, energy, arrays)
        out["energy"][codec] = {**total(costs), "cells": sum(c.rows * c.cells_per_row for c in costs),
                                "weight_bits": sum(c.rows * c.data_bits for c in costs),
                                "state_share": _state_share(memories), "unused_codes": _unused_codes(memories)}
    for codec in settings.codecs:
        rows = []
        for ber in settings.bers:
            accs, flips = [], 0
            for seed in range(settings.seeds):
                acc, flipped = fault_accuracy(net, folding, x, y, WeightStore(codec, ber, seed), table)
                accs.append(acc)
                flips += flipped
            rows.append({"ber": ber, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                         "min": float(np.min(accs)), "bit_flips": flips / settings.seeds})
        out["accuracy"][codec] = rows
        means = ", ".join(f"{100 * r['mean']:.1f}%" for r in rows)
        say(f"{name} {codec}: {means}")
    return out


def run_rtl(model: str, codec: str, ber: float, seed: int, images: int, work_dir) -> dict:
    """One fault-injected RTL co-simulation (Verilator, full rate): mismatches against the golden
    model under the same faults, and the accuracy the RTL's own outputs give."""
    d = design_for_model(model, "stt_rtl")
    d = dataclasses.replace(d, params={**d.params, "stt": {"codec": codec, "ber": ber, "seed": seed}})
    block, params = model_of(d)
    x, y, ids = held_out(images)
    name = f"stt_{model}_{codec.replace('+', '_')}".lower()
    job = network_job(block, x, seed, image_ids=ids, p_valid=1.0, p_ready=1.0)
    start = time.perf_counter()
    result = cosim(verilog_text(block.component(), name), name, job, "verilator", work_dir, mode="batch")
    values = [v if v is not None else -1 for v in (result.beat_values or [])]
    rtl_acc = float(np.mean(np.array(values[:len(y)]) == y)) if len(values) >= len(y) else float("nan")
    return {"model": model, "codec": codec, "ber": ber, "seed": seed, "images": len(x),
            "flipped_bits": params["stt"]["flipped_bits"], "mismatches": result.mismatches,
            "rtl_accuracy": rtl_acc, "golden_accuracy": float(np.mean(block.net.predict(x) == y)),
            "seconds": time.perf_counter() - start}


def run(settings: Settings, progress=None, work_dir=None) -> dict:
    settings.check()
    say = progress or (lambda *_: None)
    out = {"cell_table": settings.table.name, "bers": list(settings.bers), "seeds": settings.seeds,
           "codecs": list(settings.codecs),
           "cross_check": cross_check(load_array_model(), settings.table), "models": {}}
    for name in settings.models:
        out["models"][name] = run_model(name, settings, say)
    if settings.rtl:
        import tempfile
        work = work_dir or tempfile.mkdtemp(prefix="hwnorm-stt-rtl-")
        rows = []
        for model in settings.rtl_models:
            for codec in settings.codecs:
                for ber in settings.rtl_bers:
                    r = run_rtl(model, codec, ber, 0, settings.rtl_images, work)
                    say(f"RTL {model} {codec} BER {ber:g}: {r['mismatches']} mismatches, "
                        f"accuracy {100 * r['rtl_accuracy']:.1f}%")
                    rows.append(r)
        out["rtl"] = rows
    return out


# ---------------------------------------------------------------------- writing
def _pct(v: float) -> str:
    return f"{100 * v:+.1f}%"


def markdown(result: dict) -> str:
    lines = ["# Integer weight memories in MLC STT-RAM: codecs, array energy, faults", "",
             "Generated by `hwnorm stt-weights` (do not edit by hand). "
             f"Cell table **{result['cell_table']}**; array model `hwnorm/data/stt/arrays.toml`.", "",
             "Each MVU's weight memory is an array of its own (the flow's auto folding sets its rows and word): "
             "every row is read once per input vector of its layer and written once per model load over an "
             "all-00 array. SRAM and MLC STT-RAM are costed at array level, periphery included, for the same "
             "capacity and word (`hwnorm.stt.array`). *Unused codes*: cell states (per cell class and memory) "
             "the stored content never holds — the redundancy `remap+backup` decodes by MAP. Word codecs pad a "
             "row to whole 16-bit words, which costs narrow rows (the convolutions') many cells.", ""]
    lines += ["## The array model against NVSim", "",
              "The model's SLC-equivalent figures at each NVSim anchor's configuration (64-bit word): the read "
              "periphery is calibrated on the anchor's read (so the read matches by construction); the write "
              "puts the cell table's MTJ (Jadidi et al., half the bits switching) where NVSim has its own cell, "
              "which it does not publish — the difference is that cell's.", ""]
    rows = [[f"{r['capacity_kib']:g} KiB", f"{r['nvsim_read_pj']:.1f}", f"{r['model_slc_read_pj']:.1f}",
             f"{r['model_mlc_read_pj']:.1f}", f"{r['nvsim_write_pj']:.1f}", f"{r['model_slc_write_pj']:.1f}",
             _pct(r['model_slc_write_pj'] / r['nvsim_write_pj'] - 1), f"{r['model_mlc_write_pj']:.1f}",
             f"{r['nvsim_read_ns']:.2f}", f"{r['model_mlc_read_ns']:.2f}"] for r in result["cross_check"]]
    lines += [markdown_table(["array", "NVSim read pJ", "model SLC read", "model MLC read", "NVSim write pJ",
                      "model SLC write", "Δ", "model MLC write", "NVSim read ns", "model MLC read ns"], rows), ""]
    for name, m in result["models"].items():
        lines += [f"## {name}", "",
                  f"{m['energy']['none']['weight_bits']:,} weight bits; error-free accuracy "
                  f"**{100 * m['clean_accuracy']:.2f}%** on {m['images']} held-out MNIST images.", ""]
        base = m["energy"]["none"]
        rows = [["SRAM", "—", f"{base['sram_read_pj']:,.1f}", "", f"{base['sram_write_pj']:,.1f}", "",
                 f"{base['sram_area_mm2']:.4f}", "—", "—"]]
        for codec, e in m["energy"].items():
            rows.append([f"STT `{codec}`", f"{e['cells']:,}", f"{e['stt_read_pj']:,.1f}",
                         _pct(e['stt_read_pj'] / base['stt_read_pj'] - 1), f"{e['stt_write_pj']:,.1f}",
                         _pct(e['stt_write_pj'] / base['stt_write_pj'] - 1), f"{e['stt_area_mm2']:.4f}",
                         " / ".join(f"{100 * s:.0f}" for s in e["state_share"]), str(e["unused_codes"])])
        lines += [markdown_table(["buffer", "cells", "read pJ / inference", "Δ read", "write pJ / load", "Δ write", "area mm²",
                          "states 00/01/10/11 %", "unused codes"], rows), ""]
        lines += _trade_offs(m["energy"])
        bers = result["bers"]
        rows = [[f"`{codec}`"] + [f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f} ({100 * r['min']:.1f})" for r in acc]
                for codec, acc in m["accuracy"].items()]
        lines += [f"Accuracy (%) under soft errors, golden model: mean ± sd over {result['seeds']} seeds (min).", "",
                  markdown_table(["codec"] + [f"BER {b:g}" for b in bers], rows), ""]
    if result.get("rtl"):
        lines += ["## Fault-injected RTL on Verilator", "",
                  "The network top stores the faulty cells in its weight ROMs and decodes them with the generated "
                  "decoder; the golden model reads the same cells through the golden decoder (seed 0).", ""]
        rows = [[r["model"], f"`{r['codec']}`", f"{r['ber']:g}", f"{r['flipped_bits']:,}", str(r["images"]),
                 str(r["mismatches"]), f"{100 * r['rtl_accuracy']:.1f}", f"{100 * r['golden_accuracy']:.1f}"]
                for r in result["rtl"]]
        lines += [markdown_table(["model", "codec", "BER", "flipped bits", "images", "mismatches", "RTL accuracy %",
                          "golden accuracy %"], rows), ""]
    return "\n".join(lines)


def _trade_offs(energy: dict) -> list[str]:
    """Codecs that read for less but load for more: after how many inferences they pay off."""
    base, out = energy["none"], []
    for codec, e in energy.items():
        saved, paid = base["stt_read_pj"] - e["stt_read_pj"], e["stt_write_pj"] - base["stt_write_pj"]
        if saved > 0 and paid > 0:
            out.append(f"`{codec}` reads for {saved:,.0f} pJ less per inference and loads for {paid:,.0f} pJ more: "
                       f"it pays off after {_count(math.ceil(paid / saved), 'inference')} per model load (its most frequent "
                       "states go to the cheapest cells to read; an array loads over all-00 cells, which cost "
                       "nothing to keep).")
    return out + [""] if out else []


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def plot(result: dict) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(result["models"])
    f, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.2), squeeze=False)
    for ax, name in zip(axes[0], models):
        for codec, rows in result["models"][name]["accuracy"].items():
            ax.plot([r["ber"] for r in rows], [100 * r["mean"] for r in rows], "o-", label=codec, markersize=3)
        ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("bit-error rate")
    axes[0][0].set_ylabel("accuracy %")
    axes[0][-1].legend(fontsize=7)
    f.tight_layout()
    buf = io.BytesIO()
    f.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(f)
    return buf.getvalue()


def write(result: dict, out_dir) -> list:
    from pathlib import Path


    files = {"stt_weights.md": markdown(result) + "\n", "stt_weights.json": json.dumps(result, indent=1) + "\n",
             "stt_weights_accuracy.png": plot(result)}
    write_atomic_set(out_dir, files)
    return [Path(out_dir) / f for f in files]


def summary_lines(result: dict) -> list[str]:
    """What ``hwnorm stt-weights`` prints: per model its weight-memory energy, then each RTL run."""
    lines = []
    for name, m in result["models"].items():
        e = m["energy"]
        lines.append(f"{name}: error-free {100 * m['clean_accuracy']:.2f}%; weight memories per inference: SRAM "
                     f"{e['none']['sram_read_pj']:,.0f} pJ, STT-RAM " + ", ".join(
                         f"{c} {v['stt_read_pj']:,.0f}" for c, v in e.items()) + " pJ")
    for r in result.get("rtl", []):
        lines.append(f"RTL {r['model']} {r['codec']} BER {r['ber']:g}: {r['mismatches']} mismatches, "
                     f"accuracy {100 * r['rtl_accuracy']:.1f}%")
    return lines
