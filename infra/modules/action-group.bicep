// Action group whose webhook calls the AlertWebhook function (POST /api/alerts) with the
// common alert schema, plus optional e-mail receivers for the on-call people.
//
// Authentication choice (docs/reference azure-monitor-alerts.md section 7, docs/deploy.md):
//  * default: plain webhook with the AlertWebhook FUNCTION key (not the host key) in `code=`.
//    The host rejects a wrong key with 401 before the handler runs. The key is read from the
//    deployed function with listKeys, so it never appears in parameters; a leaked URL lets an
//    attacker post alerts to this one function only, and the handler's allow-list (subscription,
//    primary account id, rule) still refuses alerts that do not concern a configured pair.
//    Rotation: regenerate the key, then re-run the deployment (the action has to be updated;
//    action groups keep the URL verbatim).
//  * useAadAuth = true: "secure webhook". The action group additionally presents an Entra token
//    of Microsoft's "AzNS AAD Webhook" app for the given app registration (Application ID URI
//    required). The function key stays in the URL because AlertWebhook uses authLevel function
//    (the host still demands it) as a second factor; the handler verifies the token itself
//    (issue 15, src/failover/alert_auth.rs). This is the DEFAULT of main.bicep.
// The function must exist when this runs: deploy with enableAlerting = true AFTER the package
// upload (docs/deploy.md, step 5).

@description('Action group resource name.')
param name string

@maxLength(12)
@description('Action group short name (SMS/e-mail sender name), at most 12 characters.')
param shortName string

@description('Name of the Function App.')
param functionAppName string

@description('Default host name of the Function App (<app>.azurewebsites.net).')
param functionAppHostName string

@description('E-mail addresses that also receive every alert (people on call). May be empty.')
param emailReceivers array = []

@description('Use the Entra-secured webhook (see header).')
param useAadAuth bool = false

@description('Secure webhook: object id of the app registration representing the receiver.')
param aadWebhookObjectId string = ''

@description('Secure webhook: Application ID URI of that app registration.')
param aadWebhookIdentifierUri string = ''

@description('Tags applied to the action group.')
param tags object = {}

// The receiver app registration is created by scripts/create-alert-receiver-app (Bicep cannot
// create Entra applications). Without its ids the deployment stops here with this message
// (json() of a non-JSON text fails the deployment and shows the text).
var missingReceiverApp = useAadAuth && (empty(aadWebhookObjectId) || empty(aadWebhookIdentifierUri))
var receiverAppCheck = missingReceiverApp ? json('aadWebhookObjectId / aadWebhookIdentifierUri are empty: run scripts/create-alert-receiver-app and pass the ids it prints (docs/deploy.md, Secure webhook), or set useAadAuthWebhook = false') : 'ok'

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// Function-scoped key of AlertWebhook (function folder name = ARCHITECTURE.md function name).
var alertWebhookKey = listKeys('${site.id}/functions/AlertWebhook', '2024-04-01').default
var serviceUri = 'https://${functionAppHostName}/api/alerts?code=${alertWebhookKey}'

var plainReceiver = {
  name: 'datashare-dr-alertwebhook'
  serviceUri: serviceUri
  useCommonAlertSchema: true
  useAadAuth: false
}
var secureReceiver = {
  name: 'datashare-dr-alertwebhook'
  serviceUri: serviceUri
  useCommonAlertSchema: true
  useAadAuth: true
  objectId: aadWebhookObjectId
  identifierUri: aadWebhookIdentifierUri
  tenantId: tenant().tenantId
}
var receiver = receiverAppCheck == 'ok' ? (useAadAuth ? secureReceiver : plainReceiver) : plainReceiver

// Service Health alerts require a Global action group.
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: name
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: shortName
    enabled: true
    webhookReceivers: [
      receiver
    ]
    emailReceivers: [for (address, i) in emailReceivers: {
      name: 'oncall-${i}'
      emailAddress: address
      useCommonAlertSchema: true
    }]
  }
}

output id string = actionGroup.id
