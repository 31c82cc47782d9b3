// Container Apps environment + the ml_service app: scale 0-3 on HTTP load, liveness/readiness/startup probes,
// its API key (and the Redis connection string) pulled from Key Vault with the app's own identity.

param location string
param tags object
param environmentName string
param appName string
param logAnalyticsName string
param identityId string
param identityClientId string
param keyVaultUri string
@description('Registry login server the image comes from with the app identity (ACR); empty for a public image.')
param registryServer string = ''
@description('Full image reference; empty before the first `azd deploy ml` / deploy-ml-service run (a placeholder is used).')
param image string = ''
param redisEnabled bool = false
@minValue(0)
@maxValue(3)
param minReplicas int = 0
@minValue(1)
@maxValue(3)
param maxReplicas int = 3
param cpu string = '0.5'
param memory string = '1Gi'

var hasImage = !empty(image)
// Until the first image exists, a public ASP.NET sample holds the place: like ml_service it listens on 8080, so the
// ingress port never changes when `azd deploy ml` or the workflow swaps the image in. It has no /health routes,
// so the HTTP probes come with the real image (Container Apps' default TCP probes cover the placeholder).
var containerImage = hasImage ? image : 'mcr.microsoft.com/dotnet/samples:aspnetapp'
var targetPort = 8080
var probes = [
  {
    type: 'Startup'
    httpGet: {
      path: '/health/live'
      port: 8080
    }
    initialDelaySeconds: 2
    periodSeconds: 2
    timeoutSeconds: 2
    failureThreshold: 30
  }
  {
    type: 'Liveness'
    httpGet: {
      path: '/health/live'
      port: 8080
    }
    periodSeconds: 30
    timeoutSeconds: 3
    failureThreshold: 3
  }
  {
    type: 'Readiness'
    httpGet: {
      path: '/health/ready'
      port: 8080
    }
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  }
]
var apiKeySecret = [
  {
    name: 'ml-service-api-key'
    keyVaultUrl: '${keyVaultUri}secrets/CustomMlAgent--ApiKey'
    identity: identityId
  }
]
var redisSecret = [
  {
    name: 'redis-connection-string'
    keyVaultUrl: '${keyVaultUri}secrets/Redis--ConnectionString'
    identity: identityId
  }
]
var baseEnv = [
  {
    name: 'MlService__ApiKey'
    secretRef: 'ml-service-api-key'
  }
  {
    name: 'MlService__Device'
    value: 'cpu'
  }
  {
    name: 'MlService__TorchThreads'
    value: '1'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
]
var redisEnv = [
  {
    name: 'Redis__ConnectionString'
    secretRef: 'redis-connection-string'
  }
]
var registries = empty(registryServer) ? [] : [
  {
    server: registryServer
    identity: identityId
  }
]

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    zoneRedundant: false
  }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  tags: union(tags, {
    'azd-service-name': 'ml'
  })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: targetPort
        transport: 'http'
        allowInsecure: false
      }
      registries: registries
      secrets: concat(apiKeySecret, redisEnabled ? redisSecret : [])
    }
    template: {
      containers: [
        {
          name: 'ml-service'
          image: containerImage
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          env: concat(baseEnv, redisEnabled ? redisEnv : [])
          probes: hasImage ? probes : []
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-load'
            http: {
              metadata: {
                concurrentRequests: '10'
              }
            }
          }
        ]
      }
    }
  }
}

output environmentName string = environment.name
output appName string = app.name
output url string = 'https://${app.properties.configuration.ingress.fqdn}'
