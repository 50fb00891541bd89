"""Build notebooks/submission.ipynb from notebooks/submission.py with the kit inlined.

    python scripts/build_notebook.py                       # the committed notebook
    python scripts/build_notebook.py --method finetune --set lr=1e-3 --out /tmp/nb.ipynb
    python scripts/build_notebook.py --check               # exit 1 if it is out of date

Same options as ``unlearnkit build-notebook`` (``make notebook`` runs this script).
"""

from __future__ import annotations

import sys

from unlearnkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["build-notebook", *sys.argv[1:]]))
