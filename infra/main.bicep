// AI Trading Race on Azure: one resource group with the Function App (Flex Consumption), its storage, Key Vault,
// Azure SQL, the ML service on Container Apps (+ registry), optional Redis, Log Analytics + Application
// Insights, Static Web Apps for the dashboard, and the alerts. Deployed by `azd up` (main.parameters.json) or by
// .github/workflows/deploy-infra.yml (main.dev.bicepparam / main.prod.bicepparam). docs/deploy.md walks through it.
//
// Secrets: each one is a @secure() parameter written to Key Vault only when given, and the app settings hold
// Key Vault references (never values). A secret set by hand in Key Vault is referenced when its name is listed in
// `existingSecretNames`. No output carries a secret, a key or a connection string with a credential.

targetScope = 'subscription'

// ---------------------------------------------------------------- environment
@minLength(1)
@maxLength(40)
@description('Environment name (azd sets AZURE_ENV_NAME), e.g. race-dev; names and tags derive from it.')
param environmentName string
@minLength(1)
@description('Region of every resource but the Static Web App. Flex Consumption is offered in a subset of regions (az functionapp list-flexconsumption-locations).')
param location string
@description('Resource group to create or update; empty for rg-<environmentName>.')
param resourceGroupName string = ''
@description('Object id of whoever deploys (azd: AZURE_PRINCIPAL_ID; GitHub: the deploy service principal). Gets Key Vault Secrets Officer and AcrPush.')
param principalId string = ''
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

// ---------------------------------------------------------------- cost/size knobs (dev vs prod profiles)
@allowed([
  'Free'
  'Basic'
  'Standard'
  'Serverless'
])
@description('Azure SQL tier: Basic (5 DTU, about $5/month, always on) in dev; see docs/cost.md for the others.')
param sqlTier string = 'Basic'
param sqlServerlessMaxVcores int = 1
param sqlAutoPauseDelayMinutes int = 60
@allowed([
  'Local'
  'Zone'
  'Geo'
])
param sqlBackupStorageRedundancy string = 'Local'
@description('Entra admin of the SQL server (runs migrations): a group object id is best; for a service principal, its application (client) id. Defaults to the deployer.')
param sqlAdminObjectId string = principalId
param sqlAdminLogin string = 'trading-race-sql-admins'
@allowed([
  'User'
  'Group'
  'Application'
])
param sqlAdminPrincipalType string = principalType == 'ServicePrincipal' ? 'Application' : principalType
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
])
param storageSku string = 'Standard_LRS'
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 90
param logRetentionDays int = 30
@description('Application Insights accepts only Entra-authenticated telemetry (the Functions host uses APPLICATIONINSIGHTS_AUTHENTICATION_STRING; the app exports with its managed identity).')
param appInsightsEntraOnlyIngestion bool = true
@description('Daily Log Analytics ingestion cap in GB as a string (-1: none).')
param logDailyQuotaGb string = '-1'
@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048
@minValue(1)
@maxValue(1000)
param functionMaximumInstanceCount int = 40
@description('Deploy Azure Cache for Redis (Basic C0, about $16/month) for ml_service idempotency; without it the service keeps idempotency in memory.')
param deployRedis bool = false
@description('Deploy ml_service on Container Apps (the Custom ML agent is inactive without it).')
param deployMlService bool = true
@description('Deploy Azure Container Registry (Basic, about $5/month). Without it, mlImage must be a public image (e.g. on ghcr.io).')
param deployContainerRegistry bool = true
@description('ml_service image; empty until the first `azd deploy ml` or deploy-ml-service run, which set it.')
param mlImage string = ''
@minValue(0)
@maxValue(3)
param mlMinReplicas int = 0
@minValue(1)
@maxValue(3)
param mlMaxReplicas int = 3
@description('Static Web Apps is offered in a few regions only (westus2, centralus, eastus2, westeurope, eastasia).')
param staticWebAppLocation string = 'westeurope'
@description('More dashboard origins allowed by CORS (custom domains), e.g. https://race.example.com.')
param dashboardExtraOrigins array = []
@description('E-mail address that receives the alerts.')
param alertEmail string = ''
@allowed([
  'PT5M'
  'PT10M'
  'PT15M'
])
param alertEvaluationFrequency string = 'PT15M'

// ---------------------------------------------------------------- app settings (shared/config.py names)
param scheduleMarketData string = '0 */15 * * * *'
param scheduleRunAgents string = '0 5 * * * *'
param scheduleEquitySnapshot string = '0 10,25,40,55 * * * *'
@allowed([
  'groq'
  'together'
  'openai_compatible'
])
param llamaProvider string = 'groq'
param llamaBaseUrl string = ''
param llamaModel string = 'llama-3.3-70b-versatile'
param openAiModel string = 'gpt-4o-mini'
param azureOpenAiEndpoint string = ''
param azureOpenAiDeployment string = ''
param azureOpenAiModel string = ''
param azureOpenAiApiVersion string = '2024-10-21'
@allowed([
  'auto'
  'keyless'
  'demo'
  'pro'
])
param coinGeckoPlan string = 'auto'
param coinGeckoBaseUrl string = ''
param coinGeckoIds string = ''
@description('Seconds the Custom ML agent waits for ml_service; scale-to-zero (mlMinReplicas 0) needs room for a cold start.')
param customMlTimeoutSeconds string = '25'
@description('Deadline of one agent\'s decision (all retries included).')
param raceAgentTimeoutSeconds string = '45'
param logLevel string = 'INFO'
@description('Any other app setting, applied last (overrides the ones above).')
param extraAppSettings object = {}

// ---------------------------------------------------------------- secrets (Key Vault)
@secure()
param llamaApiKey string = ''
@secure()
param openAiApiKey string = ''
@secure()
param azureOpenAiApiKey string = ''
@secure()
param coinGeckoApiKey string = ''
@secure()
@description('ml_service\'s key (MlService__ApiKey = CustomMlAgent__ApiKey). Required with deployMlService unless listed in existingSecretNames.')
param mlServiceApiKey string = ''
@secure()
param apiAdminKey string = ''
@description('Secrets already in Key Vault (set with az keyvault secret set) that the app should reference although this deployment does not pass them, e.g. [\'Llama--ApiKey\'].')
param existingSecretNames array = []

// ---------------------------------------------------------------- names
var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  app: 'ai-trading-race'
}
var deployRegistry = deployMlService && deployContainerRegistry

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identities 'modules/identity.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    functionIdentityName: 'id-func-${token}'
    mlIdentityName: 'id-ml-${token}'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${token}'
    appInsightsName: 'appi-${token}'
    retentionInDays: logRetentionDays
    dailyQuotaGb: logDailyQuotaGb
    disableLocalAuth: appInsightsEntraOnlyIngestion
    publisherPrincipalIds: [
      identities.outputs.functionIdentityPrincipalId
    ]
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    storageAccountName: 'st${token}'
    deploymentContainerName: 'app-package'
    skuName: storageSku
    functionPrincipalId: identities.outputs.functionIdentityPrincipalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: 'kv-${token}'
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
    secretReaderPrincipalIds: [
      identities.outputs.functionIdentityPrincipalId
      identities.outputs.mlIdentityPrincipalId
    ]
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    llamaApiKey: llamaApiKey
    openAiApiKey: openAiApiKey
    azureOpenAiApiKey: azureOpenAiApiKey
    coinGeckoApiKey: coinGeckoApiKey
    mlServiceApiKey: mlServiceApiKey
    apiAdminKey: apiAdminKey
  }
}

module sql 'modules/sql.bicep' = {
  name: 'sql'
  scope: rg
  params: {
    location: location
    tags: tags
    serverName: 'sql-${token}'
    databaseName: 'trading-race'
    tier: sqlTier
    serverlessMaxVcores: sqlServerlessMaxVcores
    autoPauseDelayMinutes: sqlAutoPauseDelayMinutes
    backupStorageRedundancy: sqlBackupStorageRedundancy
    adminObjectId: sqlAdminObjectId
    adminLogin: sqlAdminLogin
    adminPrincipalType: sqlAdminPrincipalType
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module redis 'modules/redis.bicep' = if (deployRedis) {
  name: 'redis'
  scope: rg
  params: {
    location: location
    tags: tags
    redisName: 'redis-${token}'
    keyVaultName: keyVault.outputs.keyVaultName
  }
}

module registry 'modules/registry.bicep' = if (deployRegistry) {
  name: 'registry'
  scope: rg
  params: {
    location: location
    tags: tags
    registryName: 'cr${token}'
    pullPrincipalId: identities.outputs.mlIdentityPrincipalId
    pushPrincipalId: principalId
    pushPrincipalType: principalType
  }
}

module mlService 'modules/containerapp.bicep' = if (deployMlService) {
  name: 'ml-service'
  scope: rg
  dependsOn: [
    redis
    registry
  ]
  params: {
    location: location
    tags: tags
    environmentName: 'cae-${token}'
    appName: 'ca-ml-${token}'
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    identityId: identities.outputs.mlIdentityId
    identityClientId: identities.outputs.mlIdentityClientId
    keyVaultUri: keyVault.outputs.keyVaultUri
    registryServer: deployRegistry ? registry.outputs.loginServer : ''
    image: mlImage
    redisEnabled: deployRedis
    minReplicas: mlMinReplicas
    maxReplicas: mlMaxReplicas
  }
}

module dashboard 'modules/staticwebapp.bicep' = {
  name: 'dashboard'
  scope: rg
  params: {
    location: staticWebAppLocation
    tags: tags
    name: 'stapp-${token}'
  }
}

// ---------------------------------------------------------------- the Function App's settings
var kvUri = keyVault.outputs.keyVaultUri
var corsOrigins = concat([
  dashboard.outputs.origin
], dashboardExtraOrigins)
var hasLlamaKey = !empty(llamaApiKey) || contains(existingSecretNames, 'Llama--ApiKey')
var hasOpenAiKey = !empty(openAiApiKey) || contains(existingSecretNames, 'OpenAI--ApiKey')
var hasAzureOpenAiKey = !empty(azureOpenAiApiKey) || contains(existingSecretNames, 'AzureOpenAI--ApiKey')
var hasCoinGeckoKey = !empty(coinGeckoApiKey) || contains(existingSecretNames, 'CoinGecko--ApiKey')
var hasMlKey = !empty(mlServiceApiKey) || contains(existingSecretNames, 'CustomMlAgent--ApiKey')
var hasAdminKey = !empty(apiAdminKey) || contains(existingSecretNames, 'Api--AdminKey')

// No password: the app authenticates to Azure SQL with its managed identity's Entra access token
// (AZURE_CLIENT_ID names the identity); ODBC Driver 18 ships with the Functions Python image.
var tradingDbUrl = 'mssql+pyodbc://@${sql.outputs.serverFqdn}:1433/${sql.outputs.databaseName}?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes&TrustServerCertificate=no'

var appSettings = {
  LOG_LEVEL: logLevel
  // Run-time fallback for secrets that no reference names (shared/adapters/secrets.py: same secret names).
  KeyVault__Uri: kvUri
  KeyVault__CacheTtlSeconds: '300'
  ConnectionStrings__TradingDb: tradingDbUrl
  Database__ConnectTimeoutSeconds: '10'
  Database__StatementTimeoutSeconds: '30'
  MarketData__Provider: 'coingecko'
  MarketData__Interval: '1h'
  MarketData__BackfillHours: '72'
  Schedules__MarketData: scheduleMarketData
  Schedules__RunAgents: scheduleRunAgents
  Schedules__EquitySnapshot: scheduleEquitySnapshot
  Race__StartingCash: '100000'
  Race__FeeBps: '10'
  Race__SlippageBps: '5'
  Race__MinNotionalUsd: '10'
  Race__MaxPositionFraction: '1'
  Race__MaxOrdersPerDecision: '10'
  Race__CycleMinutes: '60'
  Race__SnapshotCandles: '48'
  Race__AgentTimeoutSeconds: raceAgentTimeoutSeconds
  Race__MaxConcurrentAgents: '32'
  Race__RandomSeed: '42'
  // 0: only a symbol whose candles lag the others' is not traded at; N > 0: nor a close older than N minutes
  Race__MaxPriceAgeMinutes: '0'
  Api__CorsOrigins: join(corsOrigins, ',')
  Api__MaxPageSize: '100'
  Api__MaxEquityPoints: '500'
  Api__MaxCandles: '1000'
  Api__ResponseCacheMegabytes: '32'
  Api__ResponseCacheMaxAgeSeconds: '1'
  Llama__Provider: llamaProvider
  Llama__Model: llamaModel
  Llama__TimeoutSeconds: '20'
  Llama__MaxRetries: '3'
  Llama__Temperature: '0.3'
  Llama__MaxTokens: '400'
  Llama__RequestsPerMinute: '30'
  Llama__TokensPerMinute: '12000'
  Llama__BreakerFailures: '5'
  Llama__BreakerResetSeconds: '60'
  Llama__PromptPricePerMTok: '0'
  Llama__CompletionPricePerMTok: '0'
  OpenAI__BaseUrl: 'https://api.openai.com/v1'
  OpenAI__Model: openAiModel
  OpenAI__TimeoutSeconds: '20'
  OpenAI__MaxRetries: '3'
  OpenAI__Temperature: '0.3'
  OpenAI__MaxTokens: '400'
  OpenAI__RequestsPerMinute: '30'
  OpenAI__TokensPerMinute: '6000'
  OpenAI__BreakerFailures: '5'
  OpenAI__BreakerResetSeconds: '60'
  OpenAI__PromptPricePerMTok: '0.15'
  OpenAI__CompletionPricePerMTok: '0.6'
  AzureOpenAI__ApiVersion: azureOpenAiApiVersion
  AzureOpenAI__TimeoutSeconds: '20'
  AzureOpenAI__MaxRetries: '3'
  AzureOpenAI__Temperature: '0.3'
  AzureOpenAI__MaxTokens: '400'
  AzureOpenAI__RequestsPerMinute: '30'
  AzureOpenAI__TokensPerMinute: '6000'
  AzureOpenAI__BreakerFailures: '5'
  AzureOpenAI__BreakerResetSeconds: '60'
  AzureOpenAI__PromptPricePerMTok: '0'
  AzureOpenAI__CompletionPricePerMTok: '0'
  CustomMlAgent__TimeoutSeconds: customMlTimeoutSeconds
  CustomMlAgent__MaxRetries: '2'
  CustomMlAgent__BreakerFailures: '5'
  CustomMlAgent__BreakerResetSeconds: '30'
  CoinGecko__Plan: coinGeckoPlan
  CoinGecko__CallsPerMinute: hasCoinGeckoKey ? '30' : '10'
  CoinGecko__TimeoutSeconds: '10'
  CoinGecko__MaxRetries: '3'
  CoinGecko__BreakerFailures: '3'
  CoinGecko__BreakerResetSeconds: '300'
}

// Optional settings are left out when empty, so the app's own defaults apply.
var optionalSettings = union(
  empty(llamaBaseUrl) ? {} : { Llama__BaseUrl: llamaBaseUrl },
  empty(azureOpenAiEndpoint) ? {} : { AzureOpenAI__Endpoint: azureOpenAiEndpoint },
  empty(azureOpenAiDeployment) ? {} : { AzureOpenAI__Deployment: azureOpenAiDeployment },
  empty(azureOpenAiModel) ? {} : { AzureOpenAI__Model: azureOpenAiModel },
  empty(coinGeckoBaseUrl) ? {} : { CoinGecko__BaseUrl: coinGeckoBaseUrl },
  empty(coinGeckoIds) ? {} : { CoinGecko__Ids: coinGeckoIds },
  deployMlService ? { CustomMlAgent__BaseUrl: mlService.outputs.url } : {}
)

// Key Vault references, only to secrets that exist (see existingSecretNames).
var secretSettings = union(
  hasLlamaKey ? { Llama__ApiKey: '@Microsoft.KeyVault(SecretUri=${kvUri}secrets/Llama--ApiKey/)' } : {},
  hasOpenAiKey ? { OpenAI__ApiKey: '@Microsoft.KeyVault(SecretUri=${kvUri}secrets/OpenAI--ApiKey/)' } : {},
  hasAzureOpenAiKey ? { AzureOpenAI__ApiKey: '@Microsoft.KeyVault(SecretUri=${kvUri}secrets/AzureOpenAI--ApiKey/)' } : {},
  hasCoinGeckoKey ? { CoinGecko__ApiKey: '@Microsoft.KeyVault(SecretUri=${kvUri}secrets/CoinGecko--ApiKey/)' } : {},
  hasMlKey ? { CustomMlAgent__ApiKey: '@Microsoft.KeyVault(SecretUri=${kvUri}secrets/CustomMlAgent--ApiKey/)' } : {},
  hasAdminKey ? { Api__AdminKey: '@Microsoft.KeyVault(SecretUri=${kvUri}secrets/Api--AdminKey/)' } : {}
)

module functionApp 'modules/functionapp.bicep' = {
  name: 'function-app'
  scope: rg
  dependsOn: [
    storage
    monitoring
  ]
  params: {
    location: location
    tags: tags
    planName: 'plan-${token}'
    appName: 'func-${token}'
    identityId: identities.outputs.functionIdentityId
    identityClientId: identities.outputs.functionIdentityClientId
    storageAccountName: storage.outputs.storageAccountName
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsName: monitoring.outputs.appInsightsName
    appSettings: union(appSettings, optionalSettings, secretSettings, extraAppSettings)
    corsOrigins: corsOrigins
    instanceMemoryMB: functionInstanceMemoryMB
    maximumInstanceCount: functionMaximumInstanceCount
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    nameSuffix: token
    alertEmail: alertEmail
    evaluationFrequency: alertEvaluationFrequency
  }
}

// ---------------------------------------------------------------- outputs (azd writes them to .azure/<env>/.env)
// Names, endpoints and ids only: no secret, key or credential-bearing connection string.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.appName
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_FUNCTION_IDENTITY_NAME string = identities.outputs.functionIdentityName
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = identities.outputs.functionIdentityClientId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.keyVaultName
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.keyVaultUri
output AZURE_SQL_SERVER_NAME string = sql.outputs.serverName
output AZURE_SQL_SERVER_FQDN string = sql.outputs.serverFqdn
output AZURE_SQL_DATABASE_NAME string = sql.outputs.databaseName
output AZURE_SQL_DATABASE_URL string = tradingDbUrl
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = deployRegistry ? registry.outputs.loginServer : ''
output AZURE_CONTAINER_REGISTRY_NAME string = deployRegistry ? registry.outputs.registryName : ''
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = deployMlService ? mlService.outputs.environmentName : ''
output ML_CONTAINER_APP_NAME string = deployMlService ? mlService.outputs.appName : ''
output ML_SERVICE_URL string = deployMlService ? mlService.outputs.url : ''
output REDIS_NAME string = deployRedis ? redis.outputs.redisName : ''
output STATIC_WEB_APP_NAME string = dashboard.outputs.name
output DASHBOARD_ORIGIN string = dashboard.outputs.origin
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output ALERT_NAMES array = alerts.outputs.alertNames
