#!/usr/bin/env bash
# The one command that runs the app: set up (venv, dependencies, data) and start Streamlit.
set -euo pipefail
cd "$(dirname "$0")"
ANODET_SETUP=${ANODET_SETUP:-app} source scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py "$@"
