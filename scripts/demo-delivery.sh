#!/usr/bin/env bash
# The delivery half of `make demo`, in a generated project whose pipeline has run: batch scoring,
# then the service started locally and checked the way the deploy workflow's test environment
# checks the image (make qa), then drift of what it served against the training data (make drift).
# Usage: scripts/demo-delivery.sh PROJECT_DIR [PORT]
set -euo pipefail
export MAKEFLAGS=--no-print-directory
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
# Production traffic for the monitor (QA's own requests are marked and left out of drift): the
# held-out rows, as a client would send them.
uv run --frozen python - "$url" <<'PY'
import importlib, json, sys, urllib.request
import yaml
package = yaml.safe_load(open(".copier-answers.yml"))["package_name"]
params = importlib.import_module(f"{package}.config").load_params()
read_table = importlib.import_module(f"{package}.data.table").read_table  # Parquet or CSV, as the stages write
frame = read_table(params["paths"]["test"]).drop(columns=[params["data"]["target"]])
rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
request = urllib.request.Request(sys.argv[1] + "/predict", json.dumps({"instances": rows}).encode(),
                                 {"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=30) as answer:
    print(f"sent {len(rows)} held-out rows as production traffic: HTTP {answer.status}")
PY
make drift
cat <<EOF

demo done in $(pwd):
  data contract     data/expectations/raw.json, column roles data/columns.yaml
  pipeline reports  reports/metrics.json, reports/gate.json, reports/plots/ (make plots: reports/plots.html, offline)
  registry          mlflow.db: challenger and champion aliases (make ui: http://127.0.0.1:5000)
  batch scores      reports/scores.csv
  service QA        reports/qa.json (load test, malformed requests, batch agreement)
  drift             reports/drift.html (open it in a browser), reports/drift.json
  prediction log    logs/predictions/
look closer:  cd $(pwd) && make help   |   make serve, then http://127.0.0.1:8000/docs
EOF
