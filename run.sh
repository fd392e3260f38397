#!/usr/bin/env bash
# The one command that runs the app: set up (venv, dependencies, data) and start Streamlit.
# It listens on 127.0.0.1 only. Serving a team is a choice: ANODET_HOST=0.0.0.0 bash run.sh (or --host
# 0.0.0.0) starts only with sign-in configured in .streamlit/secrets.toml, or with --no-auth said in so
# many words (README, "Serving a team"). Other arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")"
py=.venv/bin/python
[ -x "$py" ] || py=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$py" -m anodet.access.serving --check "$@"  # a refused start (one sentence, exit 2) installs and changes nothing
ANODET_SETUP=${ANODET_SETUP:-app} source scripts/setup.sh
exec .venv/bin/python -m anodet.access.serving "$@"
