// Grants the app identity the custom operator role on ONE Data Share account.
// Deployed into the account's own resource group (which may be in another subscription).

@description('Data Share account name (the account must exist).')
param accountName string

@description('Principal id of the app identity.')
param principalId string

@description('Name (GUID) of the custom operator role definition.')
param operatorRoleGuid string

resource account 'Microsoft.DataShare/accounts@2021-08-01' existing = {
  name: accountName
}

// WHY at the account scope: replication writes shares/datasets/invitations/synchronization
// settings on the secondary (and on the primary for failback), readiness and final-sync
// read both, failover enables schedules and invites consumers on the secondary. Nothing
// outside these two accounts needs Data Share rights.
resource operator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, operatorRoleGuid)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', operatorRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr: replicate, check readiness, fail over and fail back this account'
  }
}

output accountId string = account.id
