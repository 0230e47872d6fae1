// Access to ONE mapped data store (storage account / ADLS Gen2, SQL server, Synapse
// workspace or Kusto cluster). Deployed into the store's own resource group.
//
//  * app identity -> Reader on the store: readiness checks that every mapped store exists and
//    is in the expected region, and reads the store's role assignments to prove the Data Share
//    account identity holds its data role. Reader is `*/read`, which includes
//    Microsoft.Authorization/roleAssignments/read; it grants no data-plane access.
//  * app identity -> "store linker" custom role (storage accounts only): the storage actions
//    Data Share checks on the caller when a Blob/ADLS Gen2 dataset is added.
//  * Data Share account identity -> Storage Blob Data Reader (source store of a provider
//    account) or Storage Blob Data Contributor (sink store of a consumer account), when
//    `dataShareAccountId` is given. Data Share would otherwise create this assignment itself
//    only if the CALLER may write role assignments on the store (Owner / User Access
//    Administrator); pre-granting it here keeps the app identity free of any
//    roleAssignments/write right. SQL / Synapse sources need a contained database user
//    instead (a SQL script, see docs/deploy.md), which Bicep cannot create.

@description('ARM id of the store (top-level resource: storage account, SQL server, Synapse workspace or Kusto cluster).')
param storeId string

@description('Principal id of the app identity.')
param appPrincipalId string

@description('Name (GUID) of the "store linker" custom role; empty = do not assign it.')
param storeLinkerRoleGuid string = ''

@description('ARM id of the Data Share account whose identity needs data access to this store; empty = none.')
param dataShareAccountId string = ''

@allowed([
  'source'
  'sink'
])
@description('source: Storage Blob Data Reader (provider dataset source). sink: Storage Blob Data Contributor (consumer mapping target).')
param dataShareDataRole string = 'source'

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
var storageBlobDataReaderRoleId = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

var segments = split(storeId, '/')
var providerType = toLower('${segments[6]}/${segments[7]}')
var storeName = segments[8]
var isStorage = providerType == 'microsoft.storage/storageaccounts'
var isSql = providerType == 'microsoft.sql/servers'
var isSynapse = providerType == 'microsoft.synapse/workspaces'
var isKusto = providerType == 'microsoft.kusto/clusters'

var hasDataShareIdentity = isStorage && !empty(dataShareAccountId)
// A well-formed placeholder keeps the (unused) expressions valid when no account is given.
var dsAccountId = empty(dataShareAccountId) ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroup().name}/providers/Microsoft.DataShare/accounts/none' : dataShareAccountId
var dsDataRoleId = dataShareDataRole == 'source' ? storageBlobDataReaderRoleId : storageBlobDataContributorRoleId

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = if (isStorage) {
  name: storeName
}

resource sqlServer 'Microsoft.Sql/servers@2021-11-01' existing = if (isSql) {
  name: storeName
}

resource synapse 'Microsoft.Synapse/workspaces@2021-06-01' existing = if (isSynapse) {
  name: storeName
}

resource kusto 'Microsoft.Kusto/clusters@2023-08-15' existing = if (isKusto) {
  name: storeName
}

resource dsAccount 'Microsoft.DataShare/accounts@2021-08-01' existing = if (hasDataShareIdentity) {
  scope: resourceGroup(split(dsAccountId, '/')[2], split(dsAccountId, '/')[4])
  name: last(split(dsAccountId, '/'))
}

// WHY Reader (all store kinds): existence/region check and role-assignment read for readiness.
resource readerOnStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isStorage) {
  name: guid(storeId, appPrincipalId, readerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr readiness: store exists, region, role assignments'
  }
}

resource readerOnSql 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isSql) {
  name: guid(storeId, appPrincipalId, readerRoleId)
  scope: sqlServer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr readiness: store exists, region, role assignments'
  }
}

resource readerOnSynapse 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isSynapse) {
  name: guid(storeId, appPrincipalId, readerRoleId)
  scope: synapse
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr readiness: store exists, region, role assignments'
  }
}

resource readerOnKusto 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isKusto) {
  name: guid(storeId, appPrincipalId, readerRoleId)
  scope: kusto
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr readiness: store exists, region, role assignments'
  }
}

// WHY store linker (storage only): Data Share checks the caller's rights on the store when a
// Blob/ADLS Gen2 dataset is created on a share (replicate / failback).
resource linkerOnStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isStorage && !empty(storeLinkerRoleGuid)) {
  name: guid(storeId, appPrincipalId, 'store-linker')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storeLinkerRoleGuid)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr: add Blob/ADLS Gen2 datasets that point at this store'
  }
}

// WHY a data role for the Data Share account's OWN identity: the service reads (source) or
// writes (sink) the data with it during snapshots. Granted once per account and store.
resource dataShareData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasDataShareIdentity) {
  name: guid(storeId, dsAccountId, dsDataRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dsDataRoleId)
    principalId: dsAccount.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'Azure Data Share account identity: snapshot ${dataShareDataRole} access'
  }
}

output storeKind string = providerType
