// The datashare-dr Function App (custom handler, Linux) and its hosting plan.
//
// hostingPlan = 'FlexConsumption' (default): plan SKU FC1, `functionAppConfig.runtime` =
// custom 1.0, package pulled from a blob container with the user-assigned identity. Flex
// rejects FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE,
// so none of them is set there.
//
// hostingPlan = 'ElasticPremium': plan SKU EP1..EP3 (always-warm instance, VNet options);
// the runtime is chosen the classic way: FUNCTIONS_WORKER_RUNTIME = custom,
// FUNCTIONS_EXTENSION_VERSION = ~4, linuxFxVersion = '' (the platform's "Custom Handler"
// stack on Linux uses an empty linuxFxVersion, i.e. the default Functions base image) and
// WEBSITE_RUN_FROM_PACKAGE = 1 (zip deploy to the app, no Azure Files content share, which
// would need a storage account key).
//
// App settings mirror exactly the keys `Config` reads (docs/CONTRACTS.md "Runtime
// settings"); tests/infra_settings.rs holds the block between the app-settings markers equal
// to src/config ENV_KEYS plus the documented host-owned extras.

@description('Azure region of the plan and the app.')
param location string

@description('Function App name (becomes <name>.azurewebsites.net).')
param name string

@description('Hosting plan name.')
param planName string

@allowed([
  'FlexConsumption'
  'ElasticPremium'
])
@description('FlexConsumption (FC1, default) or ElasticPremium (EP1-EP3, see premiumSku).')
param hostingPlan string = 'FlexConsumption'

@allowed([
  'EP1'
  'EP2'
  'EP3'
])
@description('Elastic Premium SKU, used only when hostingPlan = ElasticPremium.')
param premiumSku string = 'EP1'

@minValue(40)
@maxValue(1000)
@description('Flex: maximum instances. Stage work is serialised per run, so the default is plenty.')
param flexMaximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex: instance memory size in MB.')
param flexInstanceMemoryMB int = 512

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Blob service endpoint of the app storage, without trailing slash.')
param storageBlobEndpoint string

@description('Queue service endpoint of the app storage, without trailing slash.')
param storageQueueEndpoint string

@description('URL of the blob container Flex deploys from.')
param deploymentContainerUrl string

@description('Application Insights connection string (not a secret with local auth disabled).')
param appInsightsConnectionString string

@description('DR_CONFIG_PATH: path of the DR topology TOML. Relative paths resolve against the app root (the handler working directory), i.e. the file shipped in the package.')
param drConfigPath string

@description('REPLICATE_SCHEDULE: NCRONTAB (6 fields) of the ReplicateConfig timer.')
param replicateSchedule string

@description('READINESS_SCHEDULE: NCRONTAB (6 fields) of the CheckReadiness timer.')
param readinessSchedule string

@description('WATCHDOG_SCHEDULE: NCRONTAB (6 fields) of the RunWatchdog timer.')
param watchdogSchedule string

@description('RUST_LOG: log filter of the handler.')
param rustLog string

@description('NOTIFY_WEBHOOK_URL as a Key Vault secret URI (modules/keyvault.bicep); the app setting is the reference `@Microsoft.KeyVault(SecretUri=...)`, resolved with the app identity. Empty = not set.')
param notifyWebhookSecretUri string = ''

@description('NOTIFY_TEAMS_WEBHOOK_URL as a Key Vault secret URI (Teams workflow / incoming-webhook URL; events arrive as Adaptive Cards). Empty = not set.')
param notifyTeamsWebhookSecretUri string = ''

@description('Private networking (issue 15): VNet integration through appSubnetId and access restrictions (default Deny; allowed: the ActionGroup service tag for alert webhooks, and allowedIpRanges). Default false.')
param enablePrivateNetworking bool = false

@description('Subnet for VNet integration (Flex: delegated to Microsoft.App/environments; Elastic Premium: Microsoft.Web/serverFarms). Required with enablePrivateNetworking.')
param appSubnetId string = ''

@description('CIDR ranges allowed to call the app (operators, runbook automation) with enablePrivateNetworking; the ActionGroup service tag is always allowed.')
param allowedIpRanges array = []

@description('REPLICATE_BUDGET_SECONDS: optional time budget of one replicate pass (timer ticks, ReplicatePair; ReplicateNow uses at most 180 s of it). Empty = 80% of host.json functionTimeout.')
param replicateBudgetSeconds string = ''

@description('Tags applied to the plan and the app.')
param tags object = {}

var isFlex = hostingPlan == 'FlexConsumption'

// app-settings:begin
// Keys `Config` reads (docs/CONTRACTS.md "Runtime settings"). Deliberately absent, with reasons
// (docs/deploy.md "App settings"): FUNCTIONS_CUSTOMHANDLER_PORT (injected by the host per
// process), AzureWebJobsStorage (connection string: local/Azurite only; shared keys are off),
// AZURE_CLIENT_SECRET (the app uses its managed identity, never a secret).
var configSettings = {
  DR_CONFIG_PATH: drConfigPath
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  ARM_ENDPOINT: environment().resourceManager
  ARM_AUTH: 'managed-identity'
  AZURE_CLIENT_ID: identityClientId
  AZURE_TENANT_ID: tenant().tenantId
  REPLICATE_SCHEDULE: replicateSchedule
  READINESS_SCHEDULE: readinessSchedule
  WATCHDOG_SCHEDULE: watchdogSchedule
  RUST_LOG: rustLog
}
// Only set when given, so an empty value never reaches Config. Key Vault references, never the
// URLs themselves (issue 15): the platform resolves them with keyVaultReferenceIdentity.
var notifySettings = empty(notifyWebhookSecretUri) ? {} : {
  NOTIFY_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${notifyWebhookSecretUri})'
}
var teamsSettings = empty(notifyTeamsWebhookSecretUri) ? {} : {
  NOTIFY_TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${notifyTeamsWebhookSecretUri})'
}
// Only set when given: the handler derives the budget from host.json otherwise.
var budgetSettings = empty(replicateBudgetSeconds) ? {} : {
  REPLICATE_BUDGET_SECONDS: replicateBudgetSeconds
}
// Host-owned extras (read by the Functions host, not by the handler).
var hostSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}
var premiumHostSettings = isFlex ? {} : {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'custom'
  WEBSITE_RUN_FROM_PACKAGE: '1'
}
// app-settings:end

// Access restrictions with private networking: the action group's webhooks (ActionGroup
// service tag) and the given operator ranges; everything else, and the SCM site, denied.
var actionGroupRule = [
  {
    name: 'azure-monitor-action-groups'
    action: 'Allow'
    priority: 100
    tag: 'ServiceTag'
    ipAddress: 'ActionGroup'
  }
]
var operatorRules = [for (cidr, i) in allowedIpRanges: {
  name: 'operators-${i}'
  action: 'Allow'
  priority: 200 + i
  ipAddress: cidr
}]

var flexSku = {
  name: 'FC1'
  tier: 'FlexConsumption'
}
var premiumSkuObject = {
  name: premiumSku
  tier: 'ElasticPremium'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  sku: isFlex ? flexSku : premiumSkuObject
  properties: {
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : 20
  }
}

var flexFunctionAppConfig = {
  deployment: {
    storage: {
      type: 'blobContainer'
      value: deploymentContainerUrl
      authentication: {
        type: 'UserAssignedIdentity'
        userAssignedIdentityResourceId: identityId
      }
    }
  }
  scaleAndConcurrency: {
    maximumInstanceCount: flexMaximumInstanceCount
    instanceMemoryMB: flexInstanceMemoryMB
  }
  runtime: {
    name: 'custom'
    version: '1.0'
  }
}

// Properties that only Elastic Premium accepts are null on Flex (ARM treats null as "not
// set"; Flex rejects linuxFxVersion and the elastic scale settings).
resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: enablePrivateNetworking ? appSubnetId : null
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      linuxFxVersion: isFlex ? null : ''
      minimumElasticInstanceCount: isFlex ? null : 1
      functionAppScaleLimit: isFlex ? null : 20
      vnetRouteAllEnabled: (enablePrivateNetworking && !isFlex) ? true : null
      ipSecurityRestrictions: enablePrivateNetworking ? concat(actionGroupRule, operatorRules) : null
      ipSecurityRestrictionsDefaultAction: enablePrivateNetworking ? 'Deny' : 'Allow'
      scmIpSecurityRestrictionsUseMain: enablePrivateNetworking ? true : null
      scmIpSecurityRestrictionsDefaultAction: enablePrivateNetworking ? 'Deny' : 'Allow'
    }
    functionAppConfig: isFlex ? flexFunctionAppConfig : null
  }
}

// checkov maps this `sites/config` child onto its web-app checks; the site-level settings
// they look for are on `site` above (and justified in infra/checkov-skips.md where not set).
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: not a site; the HTTP API is protected by function keys (authLevel function), see infra/checkov-skips.md CKV_AZURE_13
  // checkov:skip=CKV_AZURE_63: not a site; Windows IIS HTTP logs do not exist for a Linux Functions app, telemetry goes to Application Insights
  // checkov:skip=CKV_AZURE_65: not a site; IIS detailed error pages do not exist for a Linux Functions app
  // checkov:skip=CKV_AZURE_66: not a site; IIS failed-request tracing does not exist for a Linux Functions app
  // checkov:skip=CKV_AZURE_80: not a site; .NET Framework version does not apply to a Rust custom handler
  // checkov:skip=CKV_AZURE_88: not a site; Flex has no content share and Premium runs from package (Azure Files would need a storage key)
  // checkov:skip=CKV_AZURE_222: not a site; public network access is set on `site`, see infra/checkov-skips.md CKV_AZURE_222
  parent: site
  name: 'appsettings'
  properties: union(configSettings, notifySettings, teamsSettings, budgetSettings, hostSettings, premiumHostSettings)
}

@description('Log Analytics workspace for the Function App logs; empty = none.')
param logAnalyticsWorkspaceId string = ''

// Issue 15: no basic-auth (publishing profile) deployments over SCM or FTP.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource siteDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsWorkspaceId)) {
  name: 'datashare-dr-logs'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'FunctionAppLogs', enabled: true }
    ]
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
