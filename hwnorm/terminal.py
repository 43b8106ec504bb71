"""Every line the ``hwnorm`` command prints is safe on a terminal.

Paths and names reach the terminal from the command line, configs and models: untrusted text that
may hold an escape sequence (clear the screen, colour a fake "0 mismatches"), a carriage return or
a bidirectional override. The command's standard streams are wrapped for the duration of a
command (:func:`escaping_streams`):

* every control character but the line structure the command writes itself (newline, the
  carriage return of a progress line, tab) is shown as a ``\\uXXXX`` escape, wherever it came from;
* text known to be untrusted (:func:`distrust`: the command-line arguments, config values) is
  shown escaped *whole*, newlines included, so it cannot start a line of its own.
"""

from __future__ import annotations

import contextlib
import sys

from hwnorm.io import UNTRUSTED, distrust, is_control, printable

__all__ = ["distrust", "escaping_streams", "escape"]

_LAYOUT = "\n\r\t"          # the command's own line structure


def escape(text: str) -> str:
    for bad in sorted(UNTRUSTED, key=len, reverse=True):
        if bad in text:
            text = text.replace(bad, printable(bad))
    return "".join(ch if ch in _LAYOUT or not is_control(ch) else f"\\u{ord(ch):04x}" for ch in text)


class _EscapingStream:
    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape(text))
        return len(text)

    def __getattr__(self, name):  # flush, isatty, encoding …: the wrapped stream's
        return getattr(self._stream, name)


@contextlib.contextmanager
def escaping_streams():
    """``sys.stdout`` and ``sys.stderr`` escaped (module docstring) until the block ends."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _EscapingStream(out), _EscapingStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
