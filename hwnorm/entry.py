"""The ``hwnorm`` command's entry point: Ctrl-C or SIGTERM at any instant — even while the heavy
modules load — ends in one line and exit 130 / 143, never a traceback."""

from __future__ import annotations

import os
import sys


def main(argv=None) -> int:
    try:
        from hwnorm.cli import main as cli_main
        code = cli_main(argv)
    except KeyboardInterrupt:  # before the command's own handler was in place: nothing was written yet
        print("hwnorm: interrupted; every output set is either written whole or left as it was", file=sys.stderr)
        code = 130
    if code in (130, 143):
        # Leave at once: the objects an interrupted elaboration leaves behind would warn as they are
        # collected (Amaranth's UnusedElaboratable), after the one line that says what happened.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
