// Grants the app identity the read-only "operation reader" custom role on one subscription
// that holds a Data Share account of a pair (see datashare-roles.bicep for why).

targetScope = 'subscription'

@description('Principal id of the app identity.')
param principalId string

@description('Name (GUID) of the operation reader role definition.')
param operationReaderRoleGuid string

// WHY subscription scope: location-level operation results
// (/subscriptions/{id}/providers/Microsoft.DataShare/locations/...) have no narrower scope.
// The role can read nothing but those operation results.
resource operationReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, operationReaderRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', operationReaderRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr: poll Data Share long-running operations'
  }
}
