// Two user-assigned identities: one for the Function App, one for the ML service's container app.
// Separate identities keep each workload's grants to what it needs (least privilege).

param location string
param tags object
param functionIdentityName string
param mlIdentityName string

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: functionIdentityName
  location: location
  tags: tags
}

resource mlIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: mlIdentityName
  location: location
  tags: tags
}

output functionIdentityId string = functionIdentity.id
output functionIdentityName string = functionIdentity.name
output functionIdentityClientId string = functionIdentity.properties.clientId
output functionIdentityPrincipalId string = functionIdentity.properties.principalId
output mlIdentityId string = mlIdentity.id
output mlIdentityClientId string = mlIdentity.properties.clientId
output mlIdentityPrincipalId string = mlIdentity.properties.principalId
