// The app's own storage account: Functions host state (keys, timer/singleton leases), the
// queues and the blob container the code uses (names fixed in docs/CONTRACTS.md "Storage
// names"), and the Flex Consumption deployment container.
//
// Shared keys are disabled: every caller (the Functions host, the Rust handler, the Flex
// platform pulling the package) authenticates with the app's user-assigned identity, so
// there is no connection string or account key anywhere in the deployment.

@description('Azure region of the storage account.')
param location string

@minLength(3)
@maxLength(24)
@description('Storage account name (3-24 lower-case letters and digits, globally unique).')
param name string

@description('Tags applied to the storage account.')
param tags object = {}

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Principal id of the app identity that gets data-plane roles on this account.')
param appPrincipalId string

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Replication of the app storage. Run records and reports live here: ZRS keeps them through a zone outage; the DR tool itself is deployed per region, see docs/deploy.md.')
param skuName string = 'Standard_ZRS'

@description('Private networking (issue 15): public network access disabled, network ACLs deny, and private endpoints for blob and queue in privateEndpointSubnetId. Default false (public endpoint, Entra-only data plane).')
param enablePrivateNetworking bool = false

@description('Subnet of the blob/queue private endpoints (required with enablePrivateNetworking).')
param privateEndpointSubnetId string = ''

@description('Private DNS zone ids by group: { blob: <privatelink.blob zone id>, queue: <privatelink.queue zone id> }; a missing key = no DNS zone group for it (central DNS / Azure Policy).')
param privateDnsZoneIds object = {}

// Names the Rust code uses (docs/CONTRACTS.md "Storage names"); tests/infra_settings.rs holds
// these literals equal to the contract.
var queueNames = [
  'failover-stages'
  'failover-stages-poison'
  'notifications'
  'replicate-pairs'
]
var dataContainerName = 'datashare-dr'

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: enablePrivateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: enablePrivateNetworking ? 'Deny' : 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // Issue 15: versioning + soft delete protect runs, locks and state from a bad write.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: 14
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 14
    }
  }
}

// Run records, active-run locks, alert dedup records, readiness reports and per-pair state.
resource dataContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: dataContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Flex Consumption pulls the app package from here with the app identity.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for q in queueNames: {
  parent: queueService
  name: q
}]

// WHY Storage Blob Data Owner: identity-based AzureWebJobsStorage needs it (the host keeps
// function keys, timer schedule status and singleton leases as blobs and creates its own
// containers); the Flex platform reads the deployment package and `az functionapp deployment`
// writes it with the same identity; the Rust code writes run records with ETag conditions.
// Scoped to this account only.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageBlobDataOwnerRoleId)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr: host state, deployment package and run records (identity-based AzureWebJobsStorage)'
  }
}

// WHY Storage Queue Data Contributor: the queue triggers (FailoverStage, FailoverPoison) need
// Reader + Message Processor, the host moves exhausted messages to `failover-stages-poison`
// and the code enqueues stage and notification messages with a visibility delay (Message
// Sender). Contributor is the one built-in role that covers all of those on this account,
// including creating the `-poison` queue if it was deleted. No Storage Account Contributor:
// that is only required for blob triggers, and this app has none.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageQueueDataContributorRoleId)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr: queue triggers, poison moves and stage/notification sends'
  }
}

@description('Log Analytics workspace for blob/queue audit logs; empty = none.')
param logAnalyticsWorkspaceId string = ''

// Issue 15: audit of every read/write/delete on the app's blobs and queues.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsWorkspaceId)) {
  name: 'datashare-dr-audit'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsWorkspaceId)) {
  name: 'datashare-dr-audit'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

// Private endpoints of the blob and queue services (the Functions host, the handler and the
// Flex package loader reach them through the app's VNet integration).
var privateGroups = enablePrivateNetworking ? [
  'blob'
  'queue'
] : []

resource endpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [for g in privateGroups: {
  name: '${name}-pe-${g}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: g
        properties: {
          privateLinkServiceId: account.id
          groupIds: [
            g
          ]
        }
      }
    ]
  }
}]

resource endpointDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [for (g, i) in privateGroups: if (contains(privateDnsZoneIds, g)) {
  parent: endpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: g
        properties: {
          privateDnsZoneId: contains(privateDnsZoneIds, g) ? privateDnsZoneIds[g] : ''
        }
      }
    ]
  }
}]

output id string = account.id
output name string = account.name
output blobEndpoint string = 'https://${account.name}.blob.${environment().suffixes.storage}'
output queueEndpoint string = 'https://${account.name}.queue.${environment().suffixes.storage}'
output deploymentContainerUrl string = 'https://${account.name}.blob.${environment().suffixes.storage}/${deploymentContainerName}'
output dataContainerName string = dataContainer.name
