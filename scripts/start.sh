#!/usr/bin/env bash
# Set up (first run only) and start the app on http://localhost:7860 with the demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py serve "$@"
