#!/usr/bin/env bash
# azd's postprovision hook (azure.yaml), also run by .github/workflows/deploy-functions.yml:
#   1. opens the SQL firewall to this machine's public IP (removed again on exit),
#   2. gives the Function App's identity its contained database user (read/write),
#   3. migrates the database (`python -m shared.adapters.db.migrate upgrade`),
#   4. seeds the assets and agents with the app's own settings (`python -m shared.local_race --setup-only`).
# Everything runs from the deployer's machine or the GitHub runner, authenticated as the SQL server's Entra admin
# with an Entra access token (azd auth / az login / OIDC): no SQL password exists.
# Needs: python3.11, ODBC Driver 18 for SQL Server, the az CLI. Reads azd's outputs from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${AZURE_RESOURCE_GROUP:?run through azd (or export the outputs of main.bicep)}"
: "${AZURE_SQL_SERVER_NAME:?}" "${AZURE_SQL_SERVER_FQDN:?}" "${AZURE_SQL_DATABASE_NAME:?}" "${AZURE_SQL_DATABASE_URL:?}"
: "${AZURE_FUNCTION_IDENTITY_NAME:?}" "${AZURE_FUNCTION_IDENTITY_CLIENT_ID:?}" "${AZURE_KEY_VAULT_NAME:?}"

log() { echo "[postprovision] $*" >&2; }

VENV=${DEPLOY_VENV:-.azure/.venv-deploy}
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV (the app's requirements + pyodbc + azure-identity)"
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt pyodbc azure-identity
fi
PY="$VENV/bin/python"

RULE="deployer-$(hostname | tr -cd 'A-Za-z0-9-' | cut -c1-40)"
MY_IP=${DEPLOYER_IP:-$(curl -fsS https://api.ipify.org)}
log "allowing $MY_IP through the SQL firewall as $RULE"
az sql server firewall-rule create -g "$AZURE_RESOURCE_GROUP" -s "$AZURE_SQL_SERVER_NAME" -n "$RULE" \
  --start-ip-address "$MY_IP" --end-ip-address "$MY_IP" --output none
trap 'az sql server firewall-rule delete -g "$AZURE_RESOURCE_GROUP" -s "$AZURE_SQL_SERVER_NAME" -n "$RULE" --output none || true' EXIT
sleep "${FIREWALL_PROPAGATION_SECONDS:-20}"

"$PY" infra/scripts/sql_grant_app_identity.py --server "$AZURE_SQL_SERVER_FQDN" --database "$AZURE_SQL_DATABASE_NAME" \
  --identity-name "$AZURE_FUNCTION_IDENTITY_NAME" --client-id "$AZURE_FUNCTION_IDENTITY_CLIENT_ID"

export ConnectionStrings__TradingDb="$AZURE_SQL_DATABASE_URL"
log "migrating $AZURE_SQL_DATABASE_NAME"
"$PY" -m shared.adapters.db.migrate upgrade

# The seed activates an agent when its provider is configured, so it needs the keys the app will have. They are
# read from Key Vault into this process's environment only (never printed, never written to a file).
secret() { az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" -n "$1" --query value -o tsv 2>/dev/null || true; }
export MarketData__Provider=coingecko
export CustomMlAgent__BaseUrl="${ML_SERVICE_URL:-}"
Llama__ApiKey=$(secret Llama--ApiKey); export Llama__ApiKey
OpenAI__ApiKey=$(secret OpenAI--ApiKey); export OpenAI__ApiKey
AzureOpenAI__ApiKey=$(secret AzureOpenAI--ApiKey); export AzureOpenAI__ApiKey
CustomMlAgent__ApiKey=$(secret CustomMlAgent--ApiKey); export CustomMlAgent__ApiKey
log "seeding assets and agents"
"$PY" -m shared.local_race --setup-only
log "done"
