// prod profile: no cold starts for the ML agent, Redis-backed idempotency across replicas, zone-redundant storage,
// geo-redundant SQL backups, 90-day logs, alerts every 5 minutes (docs/cost.md: about $56 a month).
// Used by .github/workflows/deploy-infra.yml (environment "production", behind a manual approval).
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME', 'race-prod')
param location = readEnvironmentVariable('AZURE_LOCATION', 'eastus2')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param principalType = 'ServicePrincipal'
param sqlAdminObjectId = readEnvironmentVariable('SQL_ADMIN_OBJECT_ID', '')
param sqlAdminLogin = readEnvironmentVariable('SQL_ADMIN_LOGIN', 'trading-race-sql-admins')
param sqlAdminPrincipalType = 'Group'

// S0 (10 DTU, always on, $14.72): at the default 15-minute timers a serverless database never pauses and
// would bill its 0.5 vCore floor around the clock (~$190 a month); see docs/cost.md.
param sqlTier = 'Standard'
param sqlBackupStorageRedundancy = 'Geo'
param storageSku = 'Standard_ZRS'
param keyVaultSoftDeleteRetentionDays = 90
param logRetentionDays = 90
param logDailyQuotaGb = '-1'
param functionInstanceMemoryMB = 2048
param functionMaximumInstanceCount = 100

param deployRedis = true
param deployMlService = true
param deployContainerRegistry = true
param mlImage = readEnvironmentVariable('ML_IMAGE', '')
param mlMinReplicas = 1
param mlMaxReplicas = 3
param customMlTimeoutSeconds = '5'
param raceAgentTimeoutSeconds = '30'

param staticWebAppLocation = 'eastus2'
param dashboardExtraOrigins = []
param alertEmail = readEnvironmentVariable('ALERT_EMAIL', '')
param alertEvaluationFrequency = 'PT5M'

param llamaApiKey = readEnvironmentVariable('LLAMA_API_KEY', '')
param openAiApiKey = readEnvironmentVariable('OPENAI_API_KEY', '')
param azureOpenAiApiKey = readEnvironmentVariable('AZURE_OPENAI_API_KEY', '')
param coinGeckoApiKey = readEnvironmentVariable('COINGECKO_API_KEY', '')
param mlServiceApiKey = readEnvironmentVariable('ML_SERVICE_API_KEY', '')
param apiAdminKey = readEnvironmentVariable('API_ADMIN_KEY', '')
param existingSecretNames = []
