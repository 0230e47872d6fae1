// datashare-dr: everything the Functions app needs, with least privilege.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.bicepparam
//
// Deployed at resource-group scope (the app's own group). It also deploys, through modules:
// custom role definitions at the app's subscription, role assignments in the resource groups
// of the Data Share accounts and mapped stores (any subscription of the tenant), and, with
// enableAlerting, alert rules in the primary accounts' resource groups. The deploying user
// therefore needs Owner (or Contributor + Role Based Access Control Administrator) on those
// scopes; docs/deploy.md lists it. Walk-through, verification, key rotation and tear-down:
// docs/deploy.md.

targetScope = 'resourceGroup'

@minLength(3)
@maxLength(11)
@description('Lower-case letters and digits; prefix of every resource name.')
param namePrefix string = 'dsdr'

@description('Region of the app. Deploy the app OUTSIDE the primary Data Share region (normally in the secondary region) so that an outage of the primary does not take the failover tool down with it.')
param location string = resourceGroup().location

@allowed([
  'FlexConsumption'
  'ElasticPremium'
])
@description('FlexConsumption (FC1, runtime custom 1.0; default) or ElasticPremium (premiumSku, an always-warm instance; use when Flex is not offered in the region or VNet features are needed).')
param hostingPlan string = 'FlexConsumption'

@allowed([
  'EP1'
  'EP2'
  'EP3'
])
@description('Elastic Premium SKU; only used with hostingPlan = ElasticPremium.')
param premiumSku string = 'EP1'

@allowed([
  'provider'
  'consumer'
])
@description('Must match `role` in the DR config: provider (replicate and fail over shares) or consumer (accept, map, trigger on the secondary).')
param role string = 'provider'

@description('Pairs of the DR config: [{ name, primaryAccountId, secondaryAccountId, primaryRegionDisplayName }]. name = [[pairs]].name; the region display name is how Service Health spells it (e.g. "West Europe").')
param pairs array

@description('Planned failback only: assign the failback role (write rights on the PRIMARY accounts). Default false; set true for the failback window, deploy again with false to revoke (docs/deploy.md "Failback role").')
param grantFailbackRole bool = false

@description('Why: Azure Data Share requires write permission on the data store from whoever adds a Blob/ADLS Gen2 data set. true = the store linker on SECONDARY stores includes Microsoft.Storage/storageAccounts/write; false = read-only (data set creation then fails with 403, reported as a tool fault).')
param storeWriteForDataSetCreation bool = true

@description('Mapped data stores: [{ id, side: "primary" | "secondary" (default primary = read only), dataShareAccountId? }]. The app identity gets Reader on each (readiness), plus the store-linker role on storage accounts (provider). With dataShareAccountId, that Data Share account identity gets Storage Blob Data Reader (provider source) / Contributor (consumer sink) on the store. List secondary stores (and primary stores for failback).')
param stores array = []

@description('DR_CONFIG_PATH. Default: the TOML shipped at the root of the app package (scripts/package copies it there), relative to the app root.')
param drConfigPath string = 'dr-config.toml'

@description('REPLICATE_SCHEDULE (NCRONTAB, 6 fields).')
param replicateSchedule string = '0 */15 * * * *'

@description('READINESS_SCHEDULE (NCRONTAB, 6 fields).')
param readinessSchedule string = '0 5,35 * * * *'

@description('WATCHDOG_SCHEDULE (NCRONTAB, 6 fields) of the RunWatchdog timer.')
param watchdogSchedule string = '0 */5 * * * *'

@description('RUST_LOG filter.')
param rustLog string = 'info'

@secure()
@description('NOTIFY_WEBHOOK_URL (optional). Empty = not set.')
param notifyWebhookUrl string = ''

@secure()
@description('NOTIFY_TEAMS_WEBHOOK_URL (optional): Teams workflow / incoming-webhook URL for Adaptive Cards. Empty = not set.')
param notifyTeamsWebhookUrl string = ''

@description('Key Vault for the notification webhook URLs (they become Key Vault references, never plain app settings): resource id of an EXISTING vault (RBAC authorization) to add the secrets to; empty = a vault is created in this resource group when a webhook URL is given.')
param keyVaultId string = ''

@description('Private networking (issue 15). Default false: public endpoints (storage Entra-only, app behind function keys). true = storage (blob, queue) and a created Key Vault behind private endpoints with public network access disabled, the app VNet-integrated (appSubnetId) with access restrictions (ActionGroup service tag + allowedIpRanges). docs/deploy.md "Private networking".')
param enablePrivateNetworking bool = false

@description('With enablePrivateNetworking: subnet for the app\'s VNet integration (Flex: delegated to Microsoft.App/environments; Elastic Premium: Microsoft.Web/serverFarms).')
param appSubnetId string = ''

@description('With enablePrivateNetworking: subnet for the private endpoints (storage blob + queue, Key Vault).')
param privateEndpointSubnetId string = ''

@description('With enablePrivateNetworking: private DNS zone ids { blob, queue, vault } (privatelink.blob / privatelink.queue / privatelink.vaultcore); a missing key = no zone group (central DNS or Azure Policy registers the endpoint).')
param privateDnsZoneIds object = {}

@description('With enablePrivateNetworking: CIDR ranges allowed to call the app (operators, runbook automation); the ActionGroup service tag is always allowed.')
param allowedIpRanges array = []

@description('REPLICATE_BUDGET_SECONDS (optional): time budget of one replicate pass. Empty = 80% of host.json functionTimeout.')
param replicateBudgetSeconds string = ''

@description('Second pass, AFTER the package upload: create the action group (calls AlertWebhook with its function key) and the Resource Health + Service Health alert rules.')
param enableAlerting bool = false

@description('E-mail addresses paged with every alert (optional).')
param alertEmailReceivers array = []

@description('Service Health service name of Azure Data Share.')
param dataShareServiceName string = 'Azure Data Share'

@description('Use the Entra-secured webhook for the action group (default; the app verifies its token, [alerts].require_authenticated). The receiver app registration cannot be created by Bicep: run scripts/create-alert-receiver-app first.')
param useAadAuthWebhook bool = true

@description('Secure webhook: object id of the receiver app registration.')
param aadWebhookObjectId string = ''

@description('Secure webhook: Application ID URI of the receiver app registration.')
param aadWebhookIdentifierUri string = ''

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Replication of the app storage account.')
param storageSku string = 'Standard_ZRS'

@description('Tags applied to every resource created here.')
param tags object = {}

var suffix = uniqueString(subscription().id, resourceGroup().id, namePrefix)
var appName = '${namePrefix}-${suffix}'
var storageName = take(toLower('${namePrefix}${suffix}'), 24)
var deploymentContainerName = 'app-package'
var allTags = union(tags, {
  app: 'datashare-dr'
})

// Private networking needs both subnets: fail the deployment with a clear message otherwise
// (json() of a non-JSON text fails and shows the text).
var privateNetworkingCheck = (enablePrivateNetworking && (empty(appSubnetId) || empty(privateEndpointSubnetId))) ? json('enablePrivateNetworking = true needs appSubnetId (VNet integration) and privateEndpointSubnetId (private endpoints): docs/deploy.md "Private networking"') : 'ok'
var useKeyVault = !empty(notifyWebhookUrl) || !empty(notifyTeamsWebhookUrl)
var createKeyVault = useKeyVault && empty(keyVaultId)
var keyVaultName = empty(keyVaultId) ? take('${namePrefix}kv${suffix}', 24) : last(split(keyVaultId, '/'))

var primaryAccountIds = [for p in pairs: p.primaryAccountId]
var secondaryAccountIds = [for p in pairs: p.secondaryAccountId]
var accountIds = union(primaryAccountIds, secondaryAccountIds)
var primarySubscriptions = [for p in pairs: split(p.primaryAccountId, '/')[2]]
var secondarySubscriptions = [for p in pairs: split(p.secondaryAccountId, '/')[2]]
var storeSubscriptions = [for s in stores: split(s.id, '/')[2]]
var accountSubscriptions = union(primarySubscriptions, secondarySubscriptions)
var allSubscriptions = union(accountSubscriptions, storeSubscriptions, [
  subscription().subscriptionId
])
var assignableScopes = [for s in allSubscriptions: '/subscriptions/${s}']

module identity 'modules/identity.bicep' = {
  name: 'dsdr-identity'
  params: {
    location: location
    name: '${appName}-id'
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'dsdr-storage'
  params: {
    location: location
    name: storageName
    tags: allTags
    deploymentContainerName: deploymentContainerName
    appPrincipalId: identity.outputs.principalId
    skuName: storageSku
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    enablePrivateNetworking: enablePrivateNetworking
    privateEndpointSubnetId: privateEndpointSubnetId
    privateDnsZoneIds: privateDnsZoneIds
  }
}

// The notification webhook URLs as Key Vault secrets: in a vault created here ...
module keyVault 'modules/keyvault.bicep' = if (createKeyVault) {
  name: 'dsdr-keyvault'
  params: {
    location: location
    vaultName: keyVaultName
    createVault: true
    appPrincipalId: identity.outputs.principalId
    notifyWebhookUrl: notifyWebhookUrl
    notifyTeamsWebhookUrl: notifyTeamsWebhookUrl
    enablePrivateNetworking: enablePrivateNetworking
    privateEndpointSubnetId: privateEndpointSubnetId
    privateDnsZoneId: contains(privateDnsZoneIds, 'vault') ? privateDnsZoneIds.vault : ''
    tags: allTags
  }
}

// ... or in an existing vault (keyVaultId), in that vault's resource group.
module existingKeyVault 'modules/keyvault.bicep' = if (useKeyVault && !empty(keyVaultId)) {
  name: 'dsdr-keyvault-existing'
  scope: resourceGroup(split(keyVaultId, '/')[2], split(keyVaultId, '/')[4])
  params: {
    location: location
    vaultName: keyVaultName
    createVault: false
    appPrincipalId: identity.outputs.principalId
    notifyWebhookUrl: notifyWebhookUrl
    notifyTeamsWebhookUrl: notifyTeamsWebhookUrl
  }
}

var notifyWebhookSecretUri = !useKeyVault ? '' : (createKeyVault ? keyVault.outputs.notifyWebhookSecretUri : existingKeyVault.outputs.notifyWebhookSecretUri)
var notifyTeamsWebhookSecretUri = !useKeyVault ? '' : (createKeyVault ? keyVault.outputs.notifyTeamsWebhookSecretUri : existingKeyVault.outputs.notifyTeamsWebhookSecretUri)

module monitoring 'modules/monitoring.bicep' = {
  name: 'dsdr-monitoring'
  params: {
    location: location
    workspaceName: '${appName}-logs'
    appInsightsName: '${appName}-ai'
    appPrincipalId: identity.outputs.principalId
    tags: allTags
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'dsdr-functionapp'
  params: {
    location: location
    name: appName
    planName: '${appName}-plan'
    hostingPlan: hostingPlan
    premiumSku: premiumSku
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    drConfigPath: drConfigPath
    replicateSchedule: replicateSchedule
    readinessSchedule: readinessSchedule
    watchdogSchedule: watchdogSchedule
    rustLog: rustLog
    notifyWebhookSecretUri: notifyWebhookSecretUri
    notifyTeamsWebhookSecretUri: notifyTeamsWebhookSecretUri
    replicateBudgetSeconds: replicateBudgetSeconds
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    enablePrivateNetworking: enablePrivateNetworking
    appSubnetId: appSubnetId
    allowedIpRanges: allowedIpRanges
    tags: allTags
  }
}

module roles 'modules/datashare-roles.bicep' = {
  name: 'dsdr-roles-${suffix}'
  scope: subscription()
  params: {
    nameSuffix: appName
    role: role
    assignableScopes: assignableScopes
    storeWriteForDataSetCreation: storeWriteForDataSetCreation
  }
}

module subscriptionAccess 'modules/subscription-access.bicep' = [for (sub, i) in accountSubscriptions: {
  name: 'dsdr-sub-${suffix}-${i}'
  scope: subscription(sub)
  params: {
    principalId: identity.outputs.principalId
    operationReaderRoleGuid: roles.outputs.operationReaderRoleGuid
  }
}]

// Secondary accounts: the operator role (replication and failover write there).
module accountAccess 'modules/datashare-account-access.bicep' = [for (accountId, i) in secondaryAccountIds: {
  name: 'dsdr-account-${suffix}-${i}'
  scope: resourceGroup(split(accountId, '/')[2], split(accountId, '/')[4])
  params: {
    accountName: last(split(accountId, '/'))
    principalId: identity.outputs.principalId
    operatorRoleGuid: roles.outputs.operatorRoleGuid
  }
}]

// Primary accounts: read only (provider) -- the consumer role's actions are all on its
// secondary account, so a consumer deployment gets the same read-only role on the primary.
module primaryAccess 'modules/datashare-account-access.bicep' = [for (accountId, i) in primaryAccountIds: {
  name: 'dsdr-primary-${suffix}-${i}'
  scope: resourceGroup(split(accountId, '/')[2], split(accountId, '/')[4])
  params: {
    accountName: last(split(accountId, '/'))
    principalId: identity.outputs.principalId
    operatorRoleGuid: roles.outputs.primaryReaderRoleGuid
  }
}]

// Failback: write rights on the primaries, ONLY when grantFailbackRole = true (runbook step
// before a planned failback; deploy again with false afterwards to revoke).
module failbackAccess 'modules/datashare-account-access.bicep' = [for (accountId, i) in primaryAccountIds: if (grantFailbackRole) {
  name: 'dsdr-failback-${suffix}-${i}'
  scope: resourceGroup(split(accountId, '/')[2], split(accountId, '/')[4])
  params: {
    accountName: last(split(accountId, '/'))
    principalId: identity.outputs.principalId
    operatorRoleGuid: roles.outputs.failbackRoleGuid
  }
}]

module storeAccess 'modules/store-access.bicep' = [for (store, i) in stores: {
  name: 'dsdr-store-${suffix}-${i}'
  scope: resourceGroup(split(store.id, '/')[2], split(store.id, '/')[4])
  params: {
    storeId: store.id
    appPrincipalId: identity.outputs.principalId
    // The store linker (which may carry storageAccounts/write) only on SECONDARY stores.
    storeLinkerRoleGuid: (role == 'provider' && (contains(store, 'side') ? store.side : 'primary') == 'secondary') ? roles.outputs.storeLinkerRoleGuid : ''
    dataShareAccountId: contains(store, 'dataShareAccountId') ? store.dataShareAccountId : ''
    dataShareDataRole: role == 'provider' ? 'source' : 'sink'
  }
}]

module actionGroup 'modules/action-group.bicep' = if (enableAlerting) {
  name: 'dsdr-actiongroup'
  params: {
    name: '${appName}-ag'
    shortName: 'datasharedr'
    functionAppName: functionApp.outputs.name
    functionAppHostName: functionApp.outputs.defaultHostName
    emailReceivers: alertEmailReceivers
    useAadAuth: useAadAuthWebhook
    aadWebhookObjectId: aadWebhookObjectId
    aadWebhookIdentifierUri: aadWebhookIdentifierUri
    tags: allTags
  }
}

module alertRules 'modules/alert-rules.bicep' = [for (pair, i) in pairs: if (enableAlerting) {
  name: 'dsdr-alerts-${suffix}-${i}'
  scope: resourceGroup(split(pair.primaryAccountId, '/')[2], split(pair.primaryAccountId, '/')[4])
  params: {
    namePrefix: appName
    pairName: pair.name
    primaryAccountId: pair.primaryAccountId
    primaryRegionDisplayName: pair.primaryRegionDisplayName
    dataShareServiceName: dataShareServiceName
    actionGroupId: enableAlerting ? actionGroup.outputs.id : ''
    tags: allTags
  }
}]

output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output statusPageUrl string = 'https://${functionApp.outputs.defaultHostName}/api/readiness'
output storageAccountName string = storage.outputs.name
output deploymentContainerUrl string = storage.outputs.deploymentContainerUrl
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output privateNetworking string = privateNetworkingCheck
output keyVaultName string = useKeyVault ? keyVaultName : ''
