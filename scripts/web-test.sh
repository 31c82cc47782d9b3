#!/usr/bin/env bash
# The dashboard's checks, as `make test` runs them: ESLint, strict TypeScript, Vitest component tests, the
# production build, then Playwright (playwright-core + Debian's Chromium) against a real local race.
# Screenshots land in build/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
# Node.js 18+ and Debian's Chromium (never `npx playwright install`: no browser downloads), installed from the
# distribution when missing, as scripts/with-services.sh does for PostgreSQL and Redis.
need=()
command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' || need+=(nodejs npm)
[[ -x "$CHROMIUM" ]] || need+=(chromium)
if ((${#need[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "[web-test] installing ${need[*]} from Debian's packages" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "The dashboard tests need Node.js 18+ and Chromium at $CHROMIUM: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
scripts/build-web.sh --deps-only
cd web
npx eslint .
npx tsc -b
npx vitest run
npx vite build --logLevel warn
CHROMIUM="$CHROMIUM" node --test --test-concurrency=1 e2e/
