#!/usr/bin/env bash
# Regenerates src/api/schema.d.ts from the API's OpenAPI document (the one /api/openapi.json serves).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build
PYTHONPATH=. "${PYTHON:-.venv/bin/python}" web/scripts/openapi.py > build/openapi.json
cd web && npx openapi-typescript ../build/openapi.json -o src/api/schema.d.ts
