// Key Vault holding the notification webhook URLs (issue 15): the Function App reads them as
// Key Vault references (`@Microsoft.KeyVault(SecretUri=...)`) with its user-assigned identity,
// so the URLs (they carry their own signature) are never plain app settings.
//
// createVault = true: a vault created here (RBAC authorization, soft delete + purge
// protection). createVault = false: an existing vault (main.bicep `keyVaultId`), deployed at
// that vault's resource group; only the secrets and the role assignment are added to it.

@description('Azure region of a created vault.')
param location string

@minLength(3)
@maxLength(24)
@description('Vault name (created, or the existing vault).')
param vaultName string

@description('true = create the vault; false = use the existing vault of that name in this resource group.')
param createVault bool = true

@description('Principal id of the app identity: Key Vault Secrets User on the vault.')
param appPrincipalId string

@secure()
@description('NOTIFY_WEBHOOK_URL value; empty = no secret.')
param notifyWebhookUrl string = ''

@secure()
@description('NOTIFY_TEAMS_WEBHOOK_URL value; empty = no secret.')
param notifyTeamsWebhookUrl string = ''

@description('Private networking: public network access disabled and a private endpoint (group `vault`) in this subnet.')
param enablePrivateNetworking bool = false

@description('Subnet of the private endpoint (used only with enablePrivateNetworking).')
param privateEndpointSubnetId string = ''

@description('Private DNS zone id of privatelink.vaultcore.azure.net; empty = no DNS zone group (central DNS / policy).')
param privateDnsZoneId string = ''

@description('Tags applied to a created vault.')
param tags object = {}

// Built-in role: Key Vault Secrets User (read secret contents; nothing else).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var notifySecretName = 'notify-webhook-url'
var teamsSecretName = 'notify-teams-webhook-url'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = if (createVault) {
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: enablePrivateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: enablePrivateNetworking ? 'Deny' : 'Allow'
    }
  }
}

resource vaultRef 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource notifySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(notifyWebhookUrl)) {
  name: '${vaultName}/${notifySecretName}'
  properties: {
    value: notifyWebhookUrl
    contentType: 'text/uri-list'
  }
  dependsOn: [
    vault
  ]
}

resource teamsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(notifyTeamsWebhookUrl)) {
  name: '${vaultName}/${teamsSecretName}'
  properties: {
    value: notifyTeamsWebhookUrl
    contentType: 'text/uri-list'
  }
  dependsOn: [
    vault
  ]
}

// WHY Key Vault Secrets User: the platform resolves the app's Key Vault references with the
// app identity (`keyVaultReferenceIdentity`); reading secret values is all it needs.
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vaultName, appPrincipalId, keyVaultSecretsUserRoleId)
  scope: vaultRef
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr: resolve the Key Vault references of NOTIFY_WEBHOOK_URL / NOTIFY_TEAMS_WEBHOOK_URL'
  }
  dependsOn: [
    vault
  ]
}

resource vaultEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = if (createVault && enablePrivateNetworking) {
  name: '${vaultName}-pe-vault'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'vault'
        properties: {
          privateLinkServiceId: resourceId('Microsoft.KeyVault/vaults', vaultName)
          groupIds: [
            'vault'
          ]
        }
      }
    ]
  }
  dependsOn: [
    vault
  ]
}

resource vaultDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = if (createVault && enablePrivateNetworking && !empty(privateDnsZoneId)) {
  parent: vaultEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'vault'
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

// Versionless secret URIs: the platform picks up a rotated value within a day (or at restart).
var vaultUri = 'https://${vaultName}${environment().suffixes.keyvaultDns}'
output notifyWebhookSecretUri string = empty(notifyWebhookUrl) ? '' : '${vaultUri}/secrets/${notifySecretName}'
output notifyTeamsWebhookSecretUri string = empty(notifyTeamsWebhookUrl) ? '' : '${vaultUri}/secrets/${teamsSecretName}'
