// Azure Cache for Redis for ml_service's idempotency store: TLS only (non-TLS port off, TLS 1.2).
// Optional: without it ml_service keeps idempotency in memory (one replica; readiness says so).
// The access key never leaves Azure: it is written straight into Key Vault as the connection string that
// ml_service reads (`Redis__ConnectionString`, StackExchange form, which ml_service turns into a rediss:// URL).

param location string
param tags object
param redisName string
param keyVaultName string
@allowed([
  'Basic'
  'Standard'
])
param skuName string = 'Basic'
@description('C-family size: 0 = 250 MB (C0).')
param capacity int = 0

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  // checkov:skip=CKV_AZURE_89:Private endpoints need a virtual network and Premium-era networking cost; the cache is TLS-only with an access key kept in Key Vault
  name: redisName
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisVersion: '6'
    redisConfiguration: {
      'maxmemory-policy': 'volatile-ttl'
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource connectionStringSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rewritten from the cache's current key on every deployment; rotate with `az redis regenerate-keys` then redeploy (docs/operations.md)
  parent: vault
  name: 'Redis--ConnectionString'
  properties: {
    value: '${redis.properties.hostName}:${redis.properties.sslPort},password=${redis.listKeys().primaryKey},ssl=True,abortConnect=False'
    contentType: 'text/plain'
  }
}

output redisName string = redis.name
output redisHostName string = redis.properties.hostName
