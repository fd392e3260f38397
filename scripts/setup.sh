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
# ANODET_SETUP=app (run.sh: the runtime pins) or dev (test.sh: runtime + training + tools).
profile=${ANODET_SETUP:-dev}
want=$(cat requirements.txt requirements-train.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
stamp=.venv/.requirements.sha256
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" != "dev $want" ] && [ "$have" != "$profile $want" ]; then
  file=requirements-dev.txt
  [ "$profile" = app ] && file=requirements.txt
  echo "setup: installing $file"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$file"
  echo "$profile $want" > "$stamp"
fi

# The raw KDD files: $ANODET_KDD_SOURCE (a folder or base URL) if set; else a local mirror in
# ../shared/kdd when there is one; else anodet's default, the official UCI KDD archive.
if [ -z "${ANODET_KDD_SOURCE:-}" ] && [ -d ../shared/kdd ]; then
  export ANODET_KDD_SOURCE="$(cd ../shared/kdd && pwd)"
fi
.venv/bin/python -m anodet data
