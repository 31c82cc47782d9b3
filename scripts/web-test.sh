#!/usr/bin/env bash
# The dashboard's checks, as `make test` runs them: ESLint, strict TypeScript, Vitest component tests, the
# production build, then Playwright (playwright-core + Debian's Chromium) against a real local race.
# Screenshots land in build/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
  echo "The dashboard tests need Node.js 18+ (.ci/run installs it; or apt-get install nodejs npm)" >&2
  exit 1
fi
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "The browser tests need Chromium at $CHROMIUM (.ci/run installs it; or apt-get install chromium)" >&2
  exit 1
fi
scripts/build-web.sh --deps-only
cd web
npx eslint .
npx tsc -b
npx vitest run
npx vite build --logLevel warn
CHROMIUM="$CHROMIUM" node --test --test-concurrency=1 e2e/
