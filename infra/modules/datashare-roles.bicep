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

// Provider side (issue 15: least privilege). Three roles instead of one:
//  * `operator`  -> SECONDARY accounts: what replication and failover write there;
//  * `primaryReader` -> PRIMARY accounts: read only (replicate, readiness and final-sync read);
//  * `failback` -> PRIMARY accounts, assigned ONLY with grantFailbackRole = true (runbook step
//    before a planned failback, revoked after it; docs/deploy.md "Failback role").
// Per action, why:
//  accounts/read                          observe both accounts (replicate, readiness)
//  shares/read|write|delete               create/update secondary shares; delete only with prune = delete
//  shares/listSynchronizations|Details    RPO estimate and final-sync status (list*/action = a read)
//  shares/dataSets/read|write|delete      mirror datasets onto the secondary; delete only when pruning
//  shares/invitations/read|write|delete   invite consumers (now / at failover), drill recipients, drill cleanup
//  shares/synchronizationSettings/*       enable schedules on failover (enable-schedules stage), mirror them
//  shares/providerShareSubscriptions/read consumer coverage (readiness); revoke/reinstate/adjust are
//                                         failback-only (failback role)
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
  'Microsoft.DataShare/accounts/shares/providerShareSubscriptions/read'
  'Microsoft.DataShare/accounts/shares/operationResults/read'
]

// Primary accounts, by default: read only. final-sync reads the last snapshots
// (listSynchronizations/Details); readiness and replication read shares, data sets,
// invitations, schedules and consumer subscriptions.
var primaryReaderActions = [
  'Microsoft.DataShare/accounts/read'
  'Microsoft.DataShare/accounts/shares/read'
  'Microsoft.DataShare/accounts/shares/listSynchronizations/action'
  'Microsoft.DataShare/accounts/shares/listSynchronizationDetails/action'
  'Microsoft.DataShare/accounts/shares/dataSets/read'
  'Microsoft.DataShare/accounts/shares/invitations/read'
  'Microsoft.DataShare/accounts/shares/synchronizationSettings/read'
  'Microsoft.DataShare/accounts/shares/providerShareSubscriptions/read'
  'Microsoft.DataShare/accounts/shares/operationResults/read'
]

// Failback only (the primary becomes the replication target again): write the shares, data
// sets, invitations and schedules back, and revoke / reinstate / adjust the consumers' share
// subscriptions on the primary (the wildcard covers `adjust`, which the published operations
// list omits).
var failbackActions = [
  'Microsoft.DataShare/accounts/shares/write'
  'Microsoft.DataShare/accounts/shares/delete'
  'Microsoft.DataShare/accounts/shares/dataSets/write'
  'Microsoft.DataShare/accounts/shares/dataSets/delete'
  'Microsoft.DataShare/accounts/shares/invitations/write'
  'Microsoft.DataShare/accounts/shares/invitations/delete'
  'Microsoft.DataShare/accounts/shares/synchronizationSettings/write'
  'Microsoft.DataShare/accounts/shares/synchronizationSettings/delete'
  'Microsoft.DataShare/accounts/shares/providerShareSubscriptions/*'
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

resource primaryReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'datashare-dr-primary-reader', nameSuffix)
  properties: {
    roleName: 'datashare-dr primary reader (${nameSuffix})'
    description: 'Read-only Azure Data Share actions datashare-dr needs on PRIMARY accounts (replicate, readiness, final-sync).'
    type: 'CustomRole'
    permissions: [
      {
        actions: primaryReaderActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource failback 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'datashare-dr-failback', nameSuffix)
  properties: {
    roleName: 'datashare-dr failback (${nameSuffix})'
    description: 'Write actions on PRIMARY Data Share accounts, needed only during a planned failback. Assigned only with grantFailbackRole = true.'
    type: 'CustomRole'
    permissions: [
      {
        actions: failbackActions
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

// Adding a Blob / ADLS Gen2 dataset is checked against the CALLER's rights on the store: the
// Data Share roles doc requires "permission to write to the Azure data store" of whoever adds a
// data set, and its custom-role sample lists Microsoft.Storage/storageAccounts/write. That
// right would also let the app change network rules or enable shared keys, so it is granted
// only with storeWriteForDataSetCreation = true, and only on SECONDARY stores (where data sets
// are created); never on primary stores. Without it, creating a data set answers 403, which the
// tool reports as a tool fault naming the missing right.
@description('Grant Microsoft.Storage/storageAccounts/write on SECONDARY stores because Azure Data Share requires write permission on the data store from whoever adds a Blob/ADLS Gen2 data set (concepts-roles-permissions). false = read-only linker; creating data sets then fails with 403.')
param storeWriteForDataSetCreation bool = true

var storeLinkerActions = concat([
  'Microsoft.Storage/storageAccounts/read'
  'Microsoft.Storage/storageAccounts/blobServices/containers/read'
  'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'
], storeWriteForDataSetCreation ? [
  'Microsoft.Storage/storageAccounts/write'
] : [])

resource storeLinker 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'datashare-dr-store-linker', nameSuffix)
  properties: {
    roleName: 'datashare-dr store linker (${nameSuffix})'
    description: 'Storage actions Azure Data Share checks on the caller when a Blob/ADLS Gen2 dataset is added (secondary stores only).'
    type: 'CustomRole'
    permissions: [
      {
        actions: storeLinkerActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output operatorRoleGuid string = operator.name
output operationReaderRoleGuid string = operationReader.name
output primaryReaderRoleGuid string = primaryReader.name
output failbackRoleGuid string = failback.name
output storeLinkerRoleGuid string = storeLinker.name
