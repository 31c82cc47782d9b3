// Azure Container Registry for the ml_service image. No admin user and no anonymous pull: the container app
// pulls with its managed identity (AcrPull) and the deploy pipeline pushes with its own identity (AcrPush).

param location string
param tags object
param registryName string
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Basic'
param pullPrincipalId string
@description('Object id of the deployer (azd user or pipeline) that pushes images; empty for none.')
param pushPrincipalId string = ''
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param pushPrincipalType string = 'User'

var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
var acrPush = '8311e382-0749-4cb8-b61a-304f252e45ec'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139:Public network access is needed by the GitHub-hosted runners that push and by Container Apps without a virtual network; pushes and pulls need Entra ID
  // checkov:skip=CKV_AZURE_163:Vulnerability scanning is Microsoft Defender for Containers (billed per image); enable it per subscription for prod
  // checkov:skip=CKV_AZURE_164:Content trust (signed images) needs Premium; the image is built and pushed only by the deploy workflow
  // checkov:skip=CKV_AZURE_165:Geo-replication needs Premium; one region serves one container app
  // checkov:skip=CKV_AZURE_166:Quarantine needs Premium
  // checkov:skip=CKV_AZURE_167:Retention of untagged manifests needs Premium
  // checkov:skip=CKV_AZURE_233:Zone redundancy needs Premium
  // checkov:skip=CKV_AZURE_237:Dedicated data endpoints need Premium
  name: registryName
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource pullRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, pullPrincipalId, acrPull)
  scope: registry
  properties: {
    principalId: pullPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
  }
}

resource pushRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(pushPrincipalId)) {
  name: guid(registry.id, pushPrincipalId, acrPush)
  scope: registry
  properties: {
    principalId: pushPrincipalId
    principalType: pushPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPush)
  }
}

output registryName string = registry.name
output loginServer string = registry.properties.loginServer
