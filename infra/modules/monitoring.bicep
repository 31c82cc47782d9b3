// Log Analytics + workspace-based Application Insights. Local (instrumentation-key) ingestion is off: the
// Functions host and the app send telemetry with their managed identity (Monitoring Metrics Publisher).

param location string
param tags object
param logAnalyticsName string
param appInsightsName string
@description('Days of retention (30 is included in the ingestion price).')
param retentionInDays int = 30
@description('Daily ingestion cap in GB; -1 for none. The dev profile caps it under the 5 GB/month free allowance.')
param dailyQuotaGb string = '-1'
@description('Accept only Entra-authenticated telemetry (the identities below); the app must export with its managed identity.')
param disableLocalAuth bool = true
@description('Identities allowed to send telemetry (principal ids).')
param publisherPrincipalIds array = []

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    workspaceCapping: {
      dailyQuotaGb: json(dailyQuotaGb)
    }
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: disableLocalAuth
    IngestionMode: 'LogAnalytics'
    RetentionInDays: retentionInDays
  }
}

resource publisherRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in publisherPrincipalIds: {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}]

output logAnalyticsId string = logAnalytics.id
output logAnalyticsName string = logAnalytics.name
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
