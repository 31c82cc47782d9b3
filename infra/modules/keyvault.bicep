// Key Vault for the app's secrets: RBAC authorization (no access policies), soft delete and purge protection.
// A secret is written only when this deployment is given its value; secrets set by hand
// (`az keyvault secret set`) are left alone. Main.bicep references a secret from app settings only when it is
// given here or listed in `existingSecretNames`, so no Key Vault reference ever points at a missing secret.

param location string
param tags object
param keyVaultName string
@description('Days a deleted vault or secret can be recovered (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90
@description('Principal ids that read secrets at run time (the function and the ML service identities).')
param secretReaderPrincipalIds array
@description('Object id of the person or pipeline that deploys, granted Key Vault Secrets Officer to set secrets; empty for none.')
param deployerPrincipalId string = ''
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@secure()
param llamaApiKey string = ''
@secure()
param openAiApiKey string = ''
@secure()
param azureOpenAiApiKey string = ''
@secure()
param coinGeckoApiKey string = ''
@secure()
param mlServiceApiKey string = ''
@secure()
param apiAdminKey string = ''

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:No virtual network in these profiles; Flex Consumption has no fixed outbound IPs to allow-list. Access is RBAC-only
  // checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: the Function App resolves Key Vault references over the public endpoint
  // checkov:skip=CKV2_AZURE_32:No private endpoint without a virtual network
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

module llamaApiKeySecret 'secret.bicep' = if (!empty(llamaApiKey)) {
  name: 'kv-secret-llama-apikey'
  params: {
    keyVaultName: vault.name
    secretName: 'Llama--ApiKey'
    secretValue: llamaApiKey
  }
}

module openAiApiKeySecret 'secret.bicep' = if (!empty(openAiApiKey)) {
  name: 'kv-secret-openai-apikey'
  params: {
    keyVaultName: vault.name
    secretName: 'OpenAI--ApiKey'
    secretValue: openAiApiKey
  }
}

module azureOpenAiApiKeySecret 'secret.bicep' = if (!empty(azureOpenAiApiKey)) {
  name: 'kv-secret-azure-openai-apikey'
  params: {
    keyVaultName: vault.name
    secretName: 'AzureOpenAI--ApiKey'
    secretValue: azureOpenAiApiKey
  }
}

module coinGeckoApiKeySecret 'secret.bicep' = if (!empty(coinGeckoApiKey)) {
  name: 'kv-secret-coingecko-apikey'
  params: {
    keyVaultName: vault.name
    secretName: 'CoinGecko--ApiKey'
    secretValue: coinGeckoApiKey
  }
}

module mlServiceApiKeySecret 'secret.bicep' = if (!empty(mlServiceApiKey)) {
  name: 'kv-secret-custommlagent-apikey'
  params: {
    keyVaultName: vault.name
    secretName: 'CustomMlAgent--ApiKey'
    secretValue: mlServiceApiKey
  }
}

module apiAdminKeySecret 'secret.bicep' = if (!empty(apiAdminKey)) {
  name: 'kv-secret-api-adminkey'
  params: {
    keyVaultName: vault.name
    secretName: 'Api--AdminKey'
    secretValue: apiAdminKey
  }
}

resource secretReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in secretReaderPrincipalIds: {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}]

resource deployerOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

output keyVaultName string = vault.name
output keyVaultUri string = vault.properties.vaultUri
output keyVaultId string = vault.id
