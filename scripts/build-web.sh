#!/usr/bin/env bash
# Builds the dashboard (web/dist) when it is missing or older than its sources, with the machine's Node.js 18+.
# Without Node.js it says how to get the dashboard and exits 0: the race then serves the API only.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v node >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
  echo "Node.js 18+ not found: the race runs API-only. Install Node.js 18+ (https://nodejs.org) and run 'make run' again for the dashboard." >&2
  exit 0
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [[ "${1:-}" != "--deps-only" ]]; then
  if [[ ! -f dist/index.html ]] || [[ -n "$(find src index.html vite.config.ts package.json package-lock.json tsconfig*.json -newer dist/index.html -print -quit)" ]]; then
    echo "Building the dashboard (web/dist)"
    npx vite build --logLevel warn
  fi
fi
