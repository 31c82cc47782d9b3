// The race's Function App on Flex Consumption (FC1, Linux, Python): one user-assigned identity for storage,
// Key Vault references, Application Insights and Azure SQL. HTTPS only, TLS 1.2, no FTP, no basic-auth
// publishing, CORS limited to the dashboard's origin.

param location string
param tags object
param planName string
param appName string
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param appInsightsName string
@description('The app\'s own settings (shared/config.py names), built in main.bicep; secure so values never show in deployment history.')
@secure()
param appSettings object
param corsOrigins array
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Flex Consumption scales out on demand; zone redundancy is a prod-only option that needs always-ready instances
  // checkov:skip=CKV_AZURE_211:Flex Consumption (FC1) is a serverless plan; there is no instance size to choose
  // checkov:skip=CKV_AZURE_212:Instances are created on demand by Flex Consumption; a minimum count would be always-ready instances, billed around the clock
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_16:The HTTP API is public and read-only (the dashboard calls it anonymously); admin routes check Api__AdminKey
  // checkov:skip=CKV_AZURE_17:Client certificates would stop the browser dashboard from calling the API
  // checkov:skip=CKV_AZURE_56:See CKV_AZURE_16: App Service Authentication would block the anonymous dashboard
  // checkov:skip=CKV_AZURE_222:The dashboard calls the API from browsers on the internet; there is no private network to serve it on
  // checkov:skip=CKV_AZURE_213:Flex Consumption has no App Service health check; /api/health reports each dependency and the log alerts watch failures and latency
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales on demand (see the plan)
  // checkov:skip=CKV_AZURE_88:Flex Consumption keeps the package in the deployment blob container, not Azure Files
  // checkov:skip=CKV_AZURE_13:Same as CKV_AZURE_16
  name: appName
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: corsOrigins
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Platform settings: identity-based host storage (no keys) and Entra-authenticated telemetry. Flex
// Consumption takes the runtime from functionAppConfig, so the worker runtime setting is not set here.
var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// checkov reads this `appsettings` resource as the `web` config, hence the skips below: the web settings live in
// the site's siteConfig, and Flex Consumption has no App Service HTTP logs, detailed error pages, failed-request
// tracing, Azure Files content or .NET version (telemetry goes to Application Insights).
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:appsettings, not the web config (see above); the API is public and read-only by design
  // checkov:skip=CKV_AZURE_222:appsettings, not the web config; the dashboard reaches the API over the internet
  // checkov:skip=CKV_AZURE_63:appsettings, not the web config; no App Service HTTP logs on Flex (Application Insights instead)
  // checkov:skip=CKV_AZURE_65:appsettings, not the web config; detailed error pages do not apply to a Functions API
  // checkov:skip=CKV_AZURE_66:appsettings, not the web config; no failed-request tracing on Flex (Application Insights instead)
  // checkov:skip=CKV_AZURE_80:appsettings, not the web config; a Python app has no .NET Framework version
  // checkov:skip=CKV_AZURE_88:appsettings, not the web config; Flex keeps its package in the deployment blob container
  parent: site
  name: 'appsettings'
  properties: union(platformSettings, appSettings)
}

resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output appName string = site.name
output defaultHostName string = site.properties.defaultHostName
output url string = 'https://${site.properties.defaultHostName}'
