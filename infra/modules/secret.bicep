// One Key Vault secret. A module of its own so that callers can make it conditional at the module level
// (checkov does not see the properties of a resource that has an `if` condition).

param keyVaultName string
param secretName string
@secure()
param secretValue string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:API keys are rotated by their provider or by redeploying (docs/operations.md), not on a fixed date; an expiry would silently stop the agents
  parent: vault
  name: secretName
  properties: {
    value: secretValue
    contentType: 'text/plain'
  }
}

output secretName string = secret.name
