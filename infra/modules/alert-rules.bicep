// The two activity-log alert rules that can start a failover for ONE pair. Deployed into the
// resource group of the pair's PRIMARY Data Share account (activity-log alert rules watch
// their own subscription), both delivered to the action group with the common schema (set on
// the receiver) and a `pair` custom property (alert `customProperties`, see
// azure-monitor-alerts.md section 2.3).

@description('Prefix of the rule names (the app name).')
param namePrefix string

@description('Pair name from the DR config ([[pairs]].name).')
param pairName string

@description('ARM id of the primary Data Share account of the pair.')
param primaryAccountId string

@description('Display name of the primary region as Service Health writes it (e.g. "West Europe").')
param primaryRegionDisplayName string

@description('Service Health service name of Azure Data Share.')
param dataShareServiceName string = 'Azure Data Share'

@description('Resource id of the action group that calls AlertWebhook.')
param actionGroupId string

@description('Tags applied to the rules.')
param tags object = {}

var webhookProperties = {
  pair: pairName
  source: 'datashare-dr'
}

// Resource Health of the primary account. No filter on `status` or `cause`: the handler
// decides (section 4.3), and Available/Resolved events must arrive too, to be recorded on the
// run (never an automatic failback). Unknown is left out: not a decision signal.
resource resourceHealth 'Microsoft.Insights/activityLogAlerts@2020-10-01' = {
  name: '${namePrefix}-resourcehealth-${pairName}'
  location: 'Global'
  tags: tags
  properties: {
    description: 'datashare-dr: Resource Health of the primary Data Share account of pair ${pairName}'
    enabled: true
    scopes: [
      primaryAccountId
    ]
    condition: {
      allOf: [
        {
          field: 'category'
          equals: 'ResourceHealth'
        }
        {
          field: 'resourceType'
          equals: 'Microsoft.DataShare/accounts'
        }
        {
          anyOf: [
            {
              field: 'properties.currentHealthStatus'
              equals: 'Unavailable'
            }
            {
              field: 'properties.currentHealthStatus'
              equals: 'Degraded'
            }
            {
              field: 'properties.currentHealthStatus'
              equals: 'Available'
            }
          ]
        }
      ]
    }
    actions: {
      actionGroups: [
        {
          actionGroupId: actionGroupId
          webhookProperties: webhookProperties
        }
      ]
    }
  }
}

// Service Health incidents of Azure Data Share in the primary region (or Global). Only
// incidentType Incident can start a failover; no filter on stage, so Resolved/RCA updates
// reach the run record.
resource serviceHealth 'Microsoft.Insights/activityLogAlerts@2020-10-01' = {
  name: '${namePrefix}-servicehealth-${pairName}'
  location: 'Global'
  tags: tags
  properties: {
    description: 'datashare-dr: Service Health incidents of ${dataShareServiceName} in ${primaryRegionDisplayName} (pair ${pairName})'
    enabled: true
    scopes: [
      '/subscriptions/${subscription().subscriptionId}'
    ]
    condition: {
      allOf: [
        {
          field: 'category'
          equals: 'ServiceHealth'
        }
        {
          field: 'properties.incidentType'
          equals: 'Incident'
        }
        {
          field: 'properties.impactedServices[*].ServiceName'
          containsAny: [
            dataShareServiceName
          ]
        }
        {
          field: 'properties.impactedServices[*].ImpactedRegions[*].RegionName'
          containsAny: [
            primaryRegionDisplayName
            'Global'
          ]
        }
      ]
    }
    actions: {
      actionGroups: [
        {
          actionGroupId: actionGroupId
          webhookProperties: webhookProperties
        }
      ]
    }
  }
}

output resourceHealthRuleId string = resourceHealth.id
output serviceHealthRuleId string = serviceHealth.id
