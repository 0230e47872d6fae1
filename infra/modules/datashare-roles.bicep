// Custom role definitions for the app identity (deployed at subscription scope).
//
// There is no built-in "Data Share Contributor" role. The alternatives are Contributor on the
// Data Share accounts (also grants accounts/delete, diagnostic settings, tags, locks...) or a
// custom role with exactly the Microsoft.DataShare actions the tool performs. This module
// defines the latter, from the Microsoft.DataShare operations list
// (https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations#microsoftdatashare)
// and the Data Share custom-role sample
// (https://learn.microsoft.com/azure/data-share/concepts-roles-permissions#custom-roles-for-data-share).

targetScope = 'subscription'

@description('Short, unique suffix for the role names (role names are unique per tenant).')
param nameSuffix string

@allowed([
  'provider'
  'consumer'
])
@description('provider: replicate shares/datasets/invitations/schedules and run failovers. consumer: accept invitations, map datasets, create triggers.')
param role string = 'provider'

@description('Scopes the roles can be assigned at: /subscriptions/<id> of every Data Share account and mapped store.')
param assignableScopes array

// Provider side, per action, why:
//  accounts/read                          observe both accounts (replicate, readiness)
//  shares/read|write|delete               create/update secondary shares; delete only with prune = delete
//  shares/listSynchronizations|Details    RPO estimate from the last snapshots (readiness)
//  shares/dataSets/read|write|delete      mirror datasets onto the secondary; delete only when pruning
//  shares/invitations/read|write|delete   invite consumers (now / at failover), drill recipients, drill cleanup
//  shares/synchronizationSettings/*       enable schedules on failover (enable-schedules stage), mirror them
//  shares/providerShareSubscriptions/*    consumer coverage (read), revoke/reinstate/adjust expiry; the wildcard
//                                         covers `adjust`, which the published operations list omits
//  shares/operationResults/read           poll long-running share operations
var providerActions = [
  'Microsoft.DataShare/accounts/read'
  'Microsoft.DataShare/accounts/shares/read'
  'Microsoft.DataShare/accounts/shares/write'
  'Microsoft.DataShare/accounts/shares/delete'
  'Microsoft.DataShare/accounts/shares/listSynchronizations/action'
  'Microsoft.DataShare/accounts/shares/listSynchronizationDetails/action'
  'Microsoft.DataShare/accounts/shares/dataSets/read'
  'Microsoft.DataShare/accounts/shares/dataSets/write'
  'Microsoft.DataShare/accounts/shares/dataSets/delete'
  'Microsoft.DataShare/accounts/shares/invitations/read'
  'Microsoft.DataShare/accounts/shares/invitations/write'
  'Microsoft.DataShare/accounts/shares/invitations/delete'
  'Microsoft.DataShare/accounts/shares/synchronizationSettings/read'
  'Microsoft.DataShare/accounts/shares/synchronizationSettings/write'
  'Microsoft.DataShare/accounts/shares/synchronizationSettings/delete'
  'Microsoft.DataShare/accounts/shares/providerShareSubscriptions/*'
  'Microsoft.DataShare/accounts/shares/operationResults/read'
]

// Consumer side: accept the pending invitation on the secondary account (create share
// subscription), map datasets to sinks, create triggers, optionally synchronize, and read the
// source synchronization settings to copy the provider's schedule. The official custom-role
// sample grants exactly `shareSubscriptions/*` for this.
var consumerActions = [
  'Microsoft.DataShare/accounts/read'
  'Microsoft.DataShare/accounts/shareSubscriptions/*'
]

// Deliberately NOT granted: accounts/write and accounts/delete (the secondary account is
// created by IaC, not by the tool; see docs/deploy.md for `[pairs.create_secondary]`),
// diagnosticSettings/write, Microsoft.DataShare/register/action.

resource operator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'datashare-dr-operator', nameSuffix, role)
  properties: {
    roleName: 'datashare-dr ${role} operator (${nameSuffix})'
    description: 'Exactly the Azure Data Share actions datashare-dr needs on the Data Share accounts of its pairs. Assigned at the account scope only.'
    type: 'CustomRole'
    permissions: [
      {
        actions: role == 'provider' ? providerActions : consumerActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Long-running Data Share operations may report status under
// /subscriptions/{id}/providers/Microsoft.DataShare/locations/{region}/operationResults/...,
// which an assignment at the account scope does not cover. Read-only, subscription scope.
resource operationReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'datashare-dr-operation-reader', nameSuffix)
  properties: {
    roleName: 'datashare-dr operation reader (${nameSuffix})'
    description: 'Read Azure Data Share long-running operation results at location level. Nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.DataShare/locations/operationResults/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Adding a Blob / ADLS Gen2 dataset is checked against the CALLER's rights on the store
// ("permission to write to the Azure data store", Data Share roles doc). These are the
// storage actions of the official Data Share custom-role sample. Assigned per mapped storage
// account only (never resource group or subscription). storageAccounts/write is in the
// sample and in the documented prerequisite; drop it here if your tenant shows dataset
// creation works without it (readiness will report a failed dataset write otherwise).
resource storeLinker 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'datashare-dr-store-linker', nameSuffix)
  properties: {
    roleName: 'datashare-dr store linker (${nameSuffix})'
    description: 'Storage actions Azure Data Share checks on the caller when a Blob/ADLS Gen2 dataset is added.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/read'
          'Microsoft.Storage/storageAccounts/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/read'
          'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output operatorRoleGuid string = operator.name
output operationReaderRoleGuid string = operationReader.name
output storeLinkerRoleGuid string = storeLinker.name
