// Static Web Apps (Free) hosts the React dashboard; its origin is the only one the API's CORS allows
// (plus any custom domains given to main.bicep). The dashboard is deployed with its deployment token
// (`az staticwebapp secrets list`), never written to an output.

param location string
param tags object
param name string
@allowed([
  'Free'
  'Standard'
])
param skuName string = 'Free'

resource staticSite 'Microsoft.Web/staticSites@2023-12-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
  }
  properties: {
    allowConfigFileUpdates: true
    stagingEnvironmentPolicy: 'Enabled'
  }
}

output name string = staticSite.name
output origin string = 'https://${staticSite.properties.defaultHostname}'
