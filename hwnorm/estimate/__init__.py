"""Estimators: cycles (``cycles.py``) and energy (``energy.py``); synthesis-calibrated resources
are still to come (issue 7).

Each reads the same frozen specs and the generated components' own models; none keeps a second
copy of a width, latency or folding rule.
"""

from __future__ import annotations

__all__ = ["estimate_design", "DEFAULT_CLOCK_MHZ", "DEFAULT_IMAGES"]

DEFAULT_CLOCK_MHZ = 100.0
DEFAULT_IMAGES = 1000


def estimate_design(design, clock_mhz: float = DEFAULT_CLOCK_MHZ, images: int = DEFAULT_IMAGES,
                    energy_table=None, cells=None) -> dict:
    """Cycle figures of any generated design; for a network also energy per inference on the
    first ``images`` vendored MNIST test images (or seeded random inputs of the model's range)."""
    import numpy as np

    from hwnorm import data
    from hwnorm.estimate.cycles import design_cycles
    from hwnorm.estimate.energy import load_energy_table, network_energy
    from hwnorm.generate import build
    from hwnorm.hdl.common import unused_ok

    component = unused_ok(build(design)[0])
    out = {"design": design.name, "kind": design.kind,
           "cycles": design_cycles(component, design.name, clock_mhz * 1e6).to_dict()}
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
        out["energy"] = network_energy(net, component.folding, x, table, cells, component.output).to_dict()
    return out
