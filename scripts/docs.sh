#!/usr/bin/env bash
# The handbook (make docs): Mermaid's script from npm, pinned, so that diagrams render without a
# CDN; then `mkdocs build --strict` (warnings, broken links and anchors are errors) into .site/.
set -euo pipefail
cd "$(dirname "$0")/.."
MERMAID=11.17.2
scripts=docs/javascripts
if [ "$(cat "$scripts/.mermaid-version" 2>/dev/null)" != "$MERMAID" ]; then
  work=$(mktemp -d)
  (cd "$work" && npm pack "mermaid@$MERMAID" --silent >/dev/null)
  tar -xzf "$work"/mermaid-*.tgz -C "$work" package/dist/mermaid.min.js
  mkdir -p "$scripts"
  cp "$work/package/dist/mermaid.min.js" "$scripts/mermaid.min.js"
  echo "$MERMAID" > "$scripts/.mermaid-version"
  rm -rf "$work"
fi
uv run python scripts/docs_questions.py --check
exec uv run mkdocs build --strict "$@"
