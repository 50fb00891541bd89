"""Write a mock competition input folder (same options as ``unlearnkit mock-competition``).

    python scripts/make_mock_competition.py --source digits --out data/mock-digits --epochs 2
    python scripts/make_mock_competition.py --source cifar10 --root data --out data/mock-cifar \
        --train-per-class 2000
"""

from __future__ import annotations

import sys

from unlearnkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["mock-competition", *sys.argv[1:]]))
