#!/usr/bin/env bash
# The kit installed outside the checkout: build a wheel, install it (with the dependencies
# pyproject.toml declares) into a fresh venv in a temporary folder, and from there run
# `unlearnkit list` and a tiny local-eval on digits (no download). Run by .ci/run.
#
#   scripts/check_install.sh            # PYTHON=python3.11 to pick the interpreter
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/unlearnkit-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
pip_q=(-q --disable-pip-version-check)

"${PYTHON:-python3}" -m venv "$work/venv"
py="$work/venv/bin/python"
# build from a copy: setuptools writes build/ and *.egg-info beside the sources
mkdir "$work/pkg"
tar -C "$root" --exclude=__pycache__ --exclude='*.egg-info' -cf - pyproject.toml README.md src \
  | tar -C "$work/pkg" -xf -
"$py" -m pip wheel "${pip_q[@]}" --no-deps -w "$work/dist" "$work/pkg"
"$py" -m pip install "${pip_q[@]}" --no-compile "$work"/dist/unlearnkit-*.whl

cd "$work"  # nothing of the checkout on the path from here on
"$py" - "$work" <<'PY'
import sys, unlearnkit
assert unlearnkit.__file__.startswith(sys.argv[1]), f"imported from {unlearnkit.__file__}"
PY
"$work/venv/bin/unlearnkit" list | tee "$work/list.txt"
grep -q "^benchmarks: .*digits" "$work/list.txt"
"$work/venv/bin/unlearnkit" list bad_teacher --bench digits > /dev/null
cat > "$work/quick.yaml" <<'YAML'
# digits (no download) cut for a smoke test: N = 4, 2 epochs
source: digits
source_options: {views: 1}
scenario: "random:0.1"
model: small_cnn
num_models: 4
train: {epochs: 2, lr: 1.0e-3}
YAML
start=$SECONDS
"$work/venv/bin/unlearnkit" local-eval --bench "$work/quick.yaml" --method finetune --workers 2 \
  --quiet --cache "$work/cache" --out "$work/run"
test -s "$work/run/report.json"
echo "check_install: wheel installed in $work, list and local-eval ran ($((SECONDS - start)) s)"
