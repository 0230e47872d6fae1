// Log Analytics workspace + workspace-based Application Insights.
//
// The Functions host sends its telemetry (requests, traces from the handler's stdout JSON
// lines, dependencies) with Entra ID authentication (APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// = "ClientId=<app identity>;Authorization=AAD"); local (instrumentation-key) ingestion is
// disabled, so the connection string alone cannot be used to write fake telemetry.

@description('Azure region of the workspace and the component.')
param location string

@description('Log Analytics workspace name.')
param workspaceName string

@description('Application Insights component name.')
param appInsightsName string

@description('Principal id of the app identity that publishes telemetry.')
param appPrincipalId string

@minValue(30)
@maxValue(730)
@description('Days Log Analytics keeps data. Run audit trails also live in Blob storage.')
param retentionInDays int = 90

@description('Tags applied to both resources.')
param tags object = {}

// Built-in "Monitoring Metrics Publisher" (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

// WHY Monitoring Metrics Publisher on the component only: with DisableLocalAuth the host
// must present an Entra token of the app identity to ingest telemetry; this role is the
// documented minimum for that and grants nothing else.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'datashare-dr: Entra-authenticated telemetry ingestion'
  }
}

output appInsightsId string = appInsights.id
output connectionString string = appInsights.properties.ConnectionString
output workspaceId string = workspace.id
