"""Small I/O helpers shared by every command: atomic writes, friendly JSON loading."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import tempfile
import threading
from pathlib import Path


def is_control(ch: str) -> bool:
    """A character that acts on a terminal instead of showing: C0 / C1 controls, DEL, and the
    bidirectional overrides and isolates (U+202A … U+202E, U+2066 … U+2069)."""
    code = ord(ch)
    return code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069


# Text from outside (arguments, data-file strings) holding control characters: the ``hwnorm``
# command shows each escaped whole wherever it appears in a line (hwnorm.terminal).
UNTRUSTED: set[str] = set()


def distrust(*texts) -> None:
    """Register strings (paths: with their file name and stem) to be shown escaped whole."""
    for text in texts:
        if not isinstance(text, str) or not any(is_control(ch) for ch in text):
            continue  # nothing to hide: shown as it is
        UNTRUSTED.add(text)
        with contextlib.suppress(ValueError, OSError):
            p = Path(text)
            UNTRUSTED.update(v for v in (str(p), p.name, p.stem, str(p.resolve())) if any(map(is_control, v)))


def _distrust_strings(doc) -> None:
    """Every string of a parsed data file (lists of numbers are passed over at their first item)."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            distrust(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list) and item and not isinstance(item[0], (int, float)):
            stack.extend(item)


def printable(text, markdown: bool = False) -> str:
    """``text`` safe for a terminal line (or, with ``markdown``, a Markdown table cell): control
    characters (newline, CR, NUL, ESC …) and bidirectional overrides (U+202E …) as ``\\uXXXX``
    escapes, and in Markdown ``|`` as ``\\|``. Names and paths from models and files are untrusted
    wherever they land."""
    out = []
    for ch in str(text):
        if is_control(ch):
            out.append(f"\\u{ord(ch):04x}")
        elif ch == "|" and markdown:
            out.append("\\|")
        else:
            out.append(ch)
    return "".join(out)


GUNZIP_LIMIT = 1 << 30  # bytes a gzip-compressed file may expand to (a small file can hold a huge one)


def is_onnx_file(path) -> bool:
    """Whether a file name is an ONNX model's: ``.onnx``, or ``.onnx.gz`` compressed."""
    return str(path).endswith((".onnx", ".onnx.gz"))


def read_model_bytes(path) -> bytes:
    """A model file's bytes; one whose name ends ``.gz`` is decompressed (to at most
    :data:`GUNZIP_LIMIT` bytes, else a ValueError naming the file)."""
    p = Path(path)
    if p.suffix != ".gz":
        return p.read_bytes()
    with gzip.open(p, "rb") as f:
        raw = f.read(GUNZIP_LIMIT + 1)
    if len(raw) > GUNZIP_LIMIT:
        raise ValueError(f"{p}: expands to more than {GUNZIP_LIMIT >> 20} MiB; not read")
    return raw


def write_atomic(path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename,
    so an interrupted run leaves either the old file or the new one, never half of one."""
    path = Path(path)
    write_file_sets({path.parent: {path.name: data}})
    return path


def write_atomic_set(folder, files: dict, remove: tuple = ()) -> None:
    """Write several files into ``folder`` as one set (see :func:`write_file_sets`)."""
    write_file_sets({Path(folder): files}, remove)


def write_file_sets(sets: dict, remove: tuple = ()) -> None:
    """Write ``{folder: {name: text or bytes}}`` as one set, across folders (a design's rtl/ and its
    reports/ together): every file goes to a temporary name first, and only when all are complete
    are they renamed into place, with SIGINT and SIGTERM held until the last rename. An interrupt
    before the renames leaves every old file intact; the folders never hold half of the old set
    and half of the new, whichever thread the signal reached. Temporary files an earlier run left
    (killed with SIGKILL, or a power cut) are removed first; the files in ``remove`` (outputs of
    an earlier set that this one no longer has) go with the renames."""
    temps: list = []
    try:
        for folder, files in sets.items():
            folder = Path(folder)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OSError(f"{folder}: cannot create the folder ({e.strerror or e})") from None
            for name, text in files.items():
                _remove_stale_temps(folder, name)
                try:
                    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=folder)
                except OSError as e:
                    raise OSError(f"{folder / name}: cannot write ({e.strerror or e})") from None
                temps.append((tmp, folder / name))
                with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as fh:
                    fh.write(text)
                os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with signals_held():
            for tmp, final in temps:
                _rename(tmp, final)
            for path in remove:
                Path(path).unlink(missing_ok=True)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


TEMP_SUFFIX = ".hwnorm-tmp"


def _rename(tmp, final) -> None:
    """``os.replace`` (a seam for the tests, which send signals at this very instant)."""
    os.replace(tmp, final)


def _remove_stale_temps(folder: Path, name: str) -> None:
    import glob

    for suffix in (TEMP_SUFFIX, ".tmp"):  # ".tmp": what earlier versions of hwnorm left
        for old in folder.glob(f".{glob.escape(name)}.*{suffix}"):
            old.unlink(missing_ok=True)


HELD_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n))


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM for the duration, then act on the first one that came.

    Python runs signal handlers in the main thread whichever OS thread the signal reached (Numba's
    workers included), so replacing the handlers — not masking one thread — holds them all."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list = []
    old = {sig: signal.getsignal(sig) for sig in HELD_SIGNALS}
    for sig in HELD_SIGNALS:
        signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if pending:
            _deliver(pending[0], old[pending[0]])


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, a CI cancel, ``kill``): unwinds like Ctrl-C, so temporary files go."""


def terminate_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread (instead of killing the process
    between two file operations)."""
    def raise_terminated(signum, frame):
        raise Terminated
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)


def _deliver(signum: int, handler) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL and signum == signal.SIGINT:
        raise KeyboardInterrupt
    elif handler != signal.SIG_IGN:
        signal.raise_signal(signum)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Deepest nesting of tables / arrays a data file may have: every hwnorm file needs a handful of
# levels; a bound keeps parsers and the checks after them from recursing without end.
MAX_NESTING = 32


def _nesting(obj) -> int:
    """Depth of nested dicts / lists, measured without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_NESTING:
                    return depth + 1
                stack.append((child, depth + 1))
        deepest = max(deepest, depth)
    return deepest


def _bounded(obj, path):
    if _nesting(obj) > MAX_NESTING:
        raise ValueError(f"{path}: tables / arrays nested more than {MAX_NESTING} deep")
    return obj


def parse_json(text: str, path) -> object:
    """JSON text → data, every failure (nesting too deep included) a ValueError naming ``path``."""
    try:
        doc = _bounded(json.loads(text), path)
        _distrust_strings(doc)
        return doc
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise ValueError(f"{path}: tables / arrays nested more than {MAX_NESTING} deep") from None


def parse_toml(text: str, path) -> dict:
    """TOML text → data, every failure (nesting too deep included) a ValueError naming ``path``."""
    import tomllib

    try:
        doc = _bounded(tomllib.loads(text), path)
        _distrust_strings(doc)
        return doc
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from None
    except RecursionError:
        raise ValueError(f"{path}: tables / arrays nested more than {MAX_NESTING} deep") from None


def load_json(path) -> dict:
    """Read a JSON object, turning every failure into a ValueError that names the file."""
    obj = parse_json(read_text(path), path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return obj


def load_toml(path) -> dict:
    """Parse a TOML file, turning every failure into a ValueError that names the file."""
    return parse_toml(read_text(path), path)


def check_writable(folder, what: str) -> None:
    """``folder`` exists and is writable, or can be made (the nearest existing parent is writable):
    checked before the work whose results would land there."""
    folder = probe = Path(folder)
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} = {str(folder)!r}: {probe} is not a folder")
    try:  # a real write (as root, os.access says yes to read-only mounts and /proc)
        with tempfile.TemporaryFile(dir=probe, prefix=".hwnorm-probe-"):
            pass
    except OSError as e:
        raise ValueError(f"{what} = {str(folder)!r}: {probe} is not writable ({e.strerror or e})") from None


def read_text(path) -> str:
    """A UTF-8 text file (a leading byte-order mark is dropped), every failure a ValueError naming
    the file: missing, a folder, unreadable, or not UTF-8."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x})") from None
