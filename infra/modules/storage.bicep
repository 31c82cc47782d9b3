// The Function App's storage: host state (timer locks, keys) and the Flex Consumption deployment container.
// No account keys at all: every caller uses Entra ID (the function's identity has the data roles below).

param location string
param tags object
param storageAccountName string
param deploymentContainerName string
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
])
param skuName string = 'Standard_LRS'
@description('Principal id of the Function App identity.')
param functionPrincipalId string

// Flex Consumption with identity-based AzureWebJobsStorage needs blob (deployment package, leases),
// queue and table access.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43:The name is built in main.bicep as st + uniqueString(), always 15 lowercase letters and digits; checkov cannot evaluate a parameter
  // checkov:skip=CKV_AZURE_35:No virtual network in these profiles (private endpoints cost more than the whole dev bill); shared keys are disabled, so access is Entra ID + RBAC only
  // checkov:skip=CKV_AZURE_59:Flex Consumption without VNet integration reaches its storage over the public endpoint; anonymous blob access and shared keys are disabled
  // checkov:skip=CKV_AZURE_33:Queue logging is classic Storage Analytics; the host's queue use is minimal and identity-based
  // checkov:skip=CKV_AZURE_206:Replication is a parameter: LRS in dev (cost), ZRS in prod
  // checkov:skip=CKV2_AZURE_1:Microsoft-managed keys are enough for timer locks and deployment packages (no customer data)
  // checkov:skip=CKV2_AZURE_33:No private endpoint without a virtual network (see CKV_AZURE_35)
  // checkov:skip=CKV2_AZURE_38:Soft delete is unnecessary for re-creatable deployment packages and host state
  // checkov:skip=CKV2_AZURE_41:No SAS is ever issued: shared key access is disabled
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}

output storageAccountName string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
