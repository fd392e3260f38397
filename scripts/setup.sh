#!/usr/bin/env bash
# Idempotent set-up shared by run.sh, test.sh and .ci/run: virtual environment, pinned
# dependencies, and the KDD splits (fetched, verified and cached under data/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing requirements.txt"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  echo "$want" > "$stamp"
fi

# The raw KDD files: $ANODET_KDD_SOURCE (a folder or base URL) if set; else a local mirror in
# ../shared/kdd when there is one; else anodet's default, the official UCI KDD archive.
if [ -z "${ANODET_KDD_SOURCE:-}" ] && [ -d ../shared/kdd ]; then
  export ANODET_KDD_SOURCE="$(cd ../shared/kdd && pwd)"
fi
.venv/bin/python -m anodet data
