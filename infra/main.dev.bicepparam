// dev profile: the cheapest setup that still runs the whole race (docs/cost.md: about $8 a month).
// Used by .github/workflows/deploy-infra.yml (environment "dev"); secrets come from the environment, which the
// workflow fills from GitHub secrets. `az deployment sub create -l <region> -f infra/main.bicep -p infra/main.dev.bicepparam`
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME', 'race-dev')
param location = readEnvironmentVariable('AZURE_LOCATION', 'eastus2')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param principalType = 'ServicePrincipal'
// A group holding the operators and the deploy pipeline (object id), or the pipeline's application (client) id
// with sqlAdminPrincipalType 'Application'.
param sqlAdminObjectId = readEnvironmentVariable('SQL_ADMIN_OBJECT_ID', '')
param sqlAdminLogin = readEnvironmentVariable('SQL_ADMIN_LOGIN', 'trading-race-sql-admins')
param sqlAdminPrincipalType = 'Group'

// Always-on 5 DTU database ($4.90); the free offer would pause after ~2 days at the default schedules.
param sqlTier = 'Basic'
param sqlBackupStorageRedundancy = 'Local'
param storageSku = 'Standard_LRS'
param keyVaultSoftDeleteRetentionDays = 7
param logRetentionDays = 30
// 0.15 GB/day stays under the 5 GB/month free ingestion.
param logDailyQuotaGb = '0.15'
param functionInstanceMemoryMB = 2048
param functionMaximumInstanceCount = 40

// No Redis (ml_service keeps idempotency in memory, one replica) and no registry: the image is the public one
// that deploy-ml-service.yml pushes to ghcr.io for dev.
param deployRedis = false
param deployMlService = true
param deployContainerRegistry = false
param mlImage = readEnvironmentVariable('ML_IMAGE', '')
param mlMinReplicas = 0
param mlMaxReplicas = 1
param customMlTimeoutSeconds = '25'
param raceAgentTimeoutSeconds = '45'

param staticWebAppLocation = 'eastus2'
param alertEmail = readEnvironmentVariable('ALERT_EMAIL', '')
param alertEvaluationFrequency = 'PT15M'

param llamaApiKey = readEnvironmentVariable('LLAMA_API_KEY', '')
param openAiApiKey = readEnvironmentVariable('OPENAI_API_KEY', '')
param azureOpenAiApiKey = readEnvironmentVariable('AZURE_OPENAI_API_KEY', '')
param coinGeckoApiKey = readEnvironmentVariable('COINGECKO_API_KEY', '')
param mlServiceApiKey = readEnvironmentVariable('ML_SERVICE_API_KEY', '')
param apiAdminKey = readEnvironmentVariable('API_ADMIN_KEY', '')
// Secrets you set with `az keyvault secret set` instead of passing them here, e.g. ['Llama--ApiKey'].
param existingSecretNames = []
