// Azure SQL with Microsoft Entra-only authentication (no SQL logins, no passwords anywhere).
// The Entra admin is a person, group or pipeline that runs migrations; the Function App's identity gets a
// contained database user with read/write rights from infra/scripts/sql_grant_app_identity.py (postprovision).

param location string
param tags object
param serverName string
param databaseName string
@description('Free: the Azure SQL free offer (100,000 vCore-seconds a month, then paused until the next month). Basic: 5 DTU, 2 GB, always on. Standard: S0, 10 DTU. Serverless: GP_S_Gen5 with auto-pause.')
@allowed([
  'Free'
  'Basic'
  'Standard'
  'Serverless'
])
param tier string = 'Basic'
@description('Serverless only: the most vCores the database may scale to.')
param serverlessMaxVcores int = 1
@description('Serverless only: minutes without connections before the database pauses (-1: never; at least 15).')
param autoPauseDelayMinutes int = 60
@allowed([
  'Local'
  'Zone'
  'Geo'
])
param backupStorageRedundancy string = 'Local'
@description('Object id of the Entra admin (a group is best: the operators and the deploy pipeline). For a service principal, its application (client) id.')
param adminObjectId string
@description('Display name of the Entra admin (the group or user name).')
param adminLogin string
@allowed([
  'User'
  'Group'
  'Application'
])
param adminPrincipalType string = 'Group'
@description('Log Analytics workspace that receives the SQL audit log.')
param logAnalyticsId string

var isServerless = tier == 'Serverless' || tier == 'Free'
var skus = {
  Free: {
    name: 'GP_S_Gen5'
    tier: 'GeneralPurpose'
    family: 'Gen5'
    capacity: 2
  }
  Basic: {
    name: 'Basic'
    tier: 'Basic'
    capacity: 5
  }
  Standard: {
    name: 'S0'
    tier: 'Standard'
    capacity: 10
  }
  Serverless: {
    name: 'GP_S_Gen5'
    tier: 'GeneralPurpose'
    family: 'Gen5'
    capacity: serverlessMaxVcores
  }
}
// Basic allows 2 GB at most; DTU Standard sizes are fixed steps; vCore (and the free offer) 32 GB.
var maxSizeBytes = {
  Free: 34359738368
  Basic: 2147483648
  Standard: 10737418240
  Serverless: 34359738368
}

resource sqlServer 'Microsoft.Sql/servers@2023-08-01-preview' = {
  // checkov:skip=CKV_AZURE_113:Flex Consumption without a virtual network has no fixed outbound IPs, so the server is reachable on its public endpoint through the Azure-services rule only; authentication is Entra-only
  // checkov:skip=CKV2_AZURE_45:No private endpoint without a virtual network (see CKV_AZURE_113)
  name: serverName
  location: location
  tags: tags
  properties: {
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    restrictOutboundNetworkAccess: 'Disabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: adminLogin
      sid: adminObjectId
      principalType: adminPrincipalType
      tenantId: subscription().tenantId
    }
  }
}

// 0.0.0.0 - 0.0.0.0 is Azure's "allow Azure services" rule, not the whole internet. The deployer's own IP is
// added and removed around migrations by the postprovision hook.
resource allowAzureServices 'Microsoft.Sql/servers/firewallRules@2023-08-01-preview' = {
  parent: sqlServer
  name: 'AllowAllWindowsAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource database 'Microsoft.Sql/servers/databases@2023-08-01-preview' = {
  // checkov:skip=CKV_AZURE_229:Zone redundancy is not offered on Basic/S0 and doubles serverless cost; backups are zone- or geo-redundant in prod
  // checkov:skip=CKV_AZURE_26:Alert e-mails come with threat detection (Defender for SQL); the action group handles the app's alerts
  // checkov:skip=CKV_AZURE_27:Same as CKV_AZURE_26
  parent: sqlServer
  name: databaseName
  location: location
  tags: tags
  sku: skus[tier]
  properties: {
    collation: 'SQL_Latin1_General_CP1_CI_AS'
    maxSizeBytes: maxSizeBytes[tier]
    zoneRedundant: false
    requestedBackupStorageRedundancy: backupStorageRedundancy
    autoPauseDelay: isServerless ? autoPauseDelayMinutes : null
    minCapacity: isServerless ? json('0.5') : null
    useFreeLimit: tier == 'Free' ? true : null
    freeLimitExhaustionBehavior: tier == 'Free' ? 'AutoPause' : null
  }
}

resource auditing 'Microsoft.Sql/servers/auditingSettings@2023-08-01-preview' = {
  parent: sqlServer
  name: 'default'
  properties: {
    state: 'Enabled'
    isAzureMonitorTargetEnabled: true
    auditActionsAndGroups: [
      'SUCCESSFUL_DATABASE_AUTHENTICATION_GROUP'
      'FAILED_DATABASE_AUTHENTICATION_GROUP'
      'DATABASE_PERMISSION_CHANGE_GROUP'
      'DATABASE_PRINCIPAL_CHANGE_GROUP'
      'SCHEMA_OBJECT_CHANGE_GROUP'
    ]
  }
}

// Server audit events flow through the master database's diagnostic settings.
resource masterDatabase 'Microsoft.Sql/servers/databases@2023-08-01-preview' existing = {
  parent: sqlServer
  name: 'master'
}

resource auditDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'sql-audit-to-log-analytics'
  scope: masterDatabase
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        category: 'SQLSecurityAuditEvents'
        enabled: true
      }
    ]
  }
}

output serverName string = sqlServer.name
output serverFqdn string = sqlServer.properties.fullyQualifiedDomainName
output databaseName string = database.name
output databaseId string = database.id
