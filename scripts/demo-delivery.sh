#!/usr/bin/env bash
# The delivery half of `make demo`, in a generated project whose pipeline has run: batch scoring,
# then the service started locally and checked the way the deploy workflow's test environment
# checks the image (make qa), then drift of what it served against the training data (make drift).
# Usage: scripts/demo-delivery.sh PROJECT_DIR [PORT]
set -euo pipefail
cd "$1"
port="${2:-8765}"
url="http://127.0.0.1:$port"

make package score

set -m # the service gets its own process group, stopped as a whole on exit
mkdir -p logs
make serve PORT="$port" >logs/serve.log 2>&1 &
service=$!
trap 'kill -- -"$service" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    if uv run --frozen python -c "import urllib.request as u; u.urlopen('$url/health', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$service" 2>/dev/null || { cat logs/serve.log; exit 1; }
    sleep 0.5
done
make qa URL="$url"
make drift
echo "demo: pipeline, scoring, service QA and drift done in $(pwd)"
