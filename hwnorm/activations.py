"""How each quantized activation after an accumulator is realized in hardware — and which is cheaper.

A quantizer after a BN (or any exact affine map) of an accumulator has two exact realizations
(:mod:`hwnorm.quantizer`, both giving identical codes on every accumulator value):

* ``thresholds`` — FINN style: the MVU compares its accumulator with ``2^n − 1`` thresholds per
  channel (a threshold ROM and comparators in the MVU's last stage);
* ``requant`` — the seed paper's integer BN: the MVU hands on its raw accumulator to a ``qbn``
  block computing ``clip(R((A·acc + B) >> k))`` (one multiplier per lane, per-channel constants).

A design picks per layer (``activations = "requant"``, or a table ``{layer = "thresholds"}``), or
``auto``: for each layer the realization whose blocks' LUT estimate on the target is smaller at
the layer's folding (:func:`compare`). ``auto`` is resolved here, before the network is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwnorm.dataflow import check_folding
from hwnorm.estimate.resources import estimate_resources
from hwnorm.defaults import ACTIVATION_CHOICES
from hwnorm.estimate.synthesis import synthesize, TARGETS, ToolError
from hwnorm.hdl.verilog import verilog_text

__all__ = ["check_choice", "Comparison", "compare", "resolve", "costs_per_target"]


def check_choice(value, where: str):
    """A valid ``activations`` setting: one of :data:`hwnorm.defaults.ACTIVATION_CHOICES`, or a table
    ``{layer: choice}``."""
    if isinstance(value, str):
        if value not in ACTIVATION_CHOICES:
            raise ValueError(f"{where}: activations = {value!r} is not allowed; allowed: {', '.join(ACTIVATION_CHOICES)}, "
                             "or a table {layer = choice}")
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{where}: activations must be one of {', '.join(ACTIVATION_CHOICES)} or a table {{layer = choice}}")
    for layer, choice in value.items():
        if choice not in ACTIVATION_CHOICES:
            raise ValueError(f"{where}: activations.{layer} = {choice!r} is not allowed; allowed: {', '.join(ACTIVATION_CHOICES)}")
    return value


@dataclass(frozen=True)
class Comparison:
    """The two realizations of one layer's activation at one folding, on one target."""
    layer: str
    quantizer: str
    thresholds_luts: int
    requant_luts: int | None   # None: the rounding mode has no requantizer datapath
    chosen: str

    def to_dict(self) -> dict:
        return dict(vars(self))


def _layer_blocks(net, layer: str, fold: dict):
    """The blocks realizing ``layer``'s activation in ``net``: its MVU, and the qbn that follows
    it when that is how it is realized."""
    names = [lay.name for lay in net.layers]
    k = names.index(layer)
    blocks = [net.layers[k].block(fold)]
    nxt = net.layers[k + 1] if k + 1 < len(names) else None
    if nxt is not None and nxt.kind == "qbn" and net.layers[k].kind == "mvu" and net.layers[k].thresholds is None:
        blocks.append(nxt.block({"pe": blocks[0].out_lanes}))
    return blocks


def compare(load, folding: dict | None, target: str) -> tuple[list[Comparison], object, object]:
    """Both realizations of every activation site, costed on ``target`` at the layers' folding
    (``folding`` or each kind's default): ``(comparisons, thresholds network, requant network)``.
    ``load(activations)`` imports the model with a realization setting."""
    imported = load("thresholds")
    possible = {site.layer: site.quantizer for site in imported.activation_sites if site.requant_possible}
    requant = load({layer: "requant" for layer in possible}) if possible else imported
    fold = check_folding(imported.network, {k: v for k, v in (folding or {}).items()
                                            if k in {lay.name for lay in imported.network.layers}})

    def luts(net, layer) -> int:
        return sum(estimate_resources(b, [target])[target]["lut"] for b in _layer_blocks(net, layer, fold[layer]))

    out = []
    for site in imported.activation_sites:
        thr = luts(imported.network, site.layer)
        req = luts(requant.network, site.layer) if site.layer in possible else None
        out.append(Comparison(site.layer, site.quantizer, thr, req,
                              "requant" if req is not None and req < thr else "thresholds"))
    return out, imported, requant


def resolve(choice, comparisons: list[Comparison]) -> dict:
    """The per-layer realizations of a setting, ``auto`` taken from the comparisons."""
    auto = {c.layer: c.chosen for c in comparisons}
    if isinstance(choice, str):
        return {c.layer: auto[c.layer] if choice == "auto" else choice for c in comparisons}
    return {layer: auto.get(layer, "thresholds") if how == "auto" else how for layer, how in choice.items()}


def costs_per_target(load, folding: dict | None, targets, synth_targets=(), progress=None) -> list[dict]:
    """Both realizations of every activation site where both exist, on every target: the LUT
    estimate and, on ``synth_targets``, Yosys' count of the blocks each realization adds, at the
    layers' folding — what a report shows next to the realization chosen."""
    imported = load("thresholds")
    possible = [site for site in imported.activation_sites if site.requant_possible]
    if not possible:
        return []
    requant = load({site.layer: "requant" for site in possible})
    names = {lay.name for lay in imported.network.layers}
    fold = check_folding(imported.network, {k: v for k, v in (folding or {}).items() if k in names})
    rows = []
    for site in possible:
        row = {"layer": site.layer, "quantizer": site.quantizer}
        for how, net in (("thresholds", imported.network), ("requant", requant.network)):
            blocks = _layer_blocks(net, site.layer, fold[site.layer])
            row[how] = {t: {"estimate": sum(estimate_resources(b, [t])[t]["lut"] for b in blocks)} for t in targets}
            for t in targets:
                if t in synth_targets:
                    if progress:
                        progress(f"synthesizing the {how} realization of {site.layer} for {t}")
                    try:
                        row[how][t]["yosys"] = sum(synthesize(verilog_text(b.component(), f"{how}_{k}"), f"{how}_{k}",
                                                              TARGETS[t]).counts["lut"] for k, b in enumerate(blocks))
                    except ToolError:
                        row[how][t]["yosys"] = None  # the tool failed: shown as "—"
        rows.append(row)
    return rows
