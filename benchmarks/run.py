"""Run hwnorm's benchmarks: ``python benchmarks/run.py [NAME...]`` ≡ ``hwnorm bench [NAME...]``.

The benchmarks live in ``hwnorm/bench/`` so that an installed package carries them.
"""

import sys

from hwnorm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
