// User-assigned managed identity of the datashare-dr Function App.
//
// One identity is used for everything the app authenticates to: the app's own storage
// (AzureWebJobsStorage__credential = managedidentity), the Flex deployment container,
// Application Insights ingestion (Authorization=AAD) and Azure Resource Manager (ARM_AUTH =
// managed-identity with AZURE_CLIENT_ID). A user-assigned identity (rather than the site's
// system-assigned one) lets every role assignment exist BEFORE the app starts, so the first
// cold start does not race RBAC propagation, and survives re-creating the app.

@description('Azure region of the identity.')
param location string

@description('Name of the user-assigned identity.')
param name string

@description('Tags applied to the identity.')
param tags object = {}

resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = uami.id
output name string = uami.name
output principalId string = uami.properties.principalId
output clientId string = uami.properties.clientId
