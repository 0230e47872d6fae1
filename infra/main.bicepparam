// Example parameters for infra/main.bicep (docs/deploy.md). Replace the ids with yours.
// The pair names and account ids must match the DR config (dr-config.toml) shipped in the
// package; the region display name is how Service Health spells the primary region.
using './main.bicep'

param namePrefix = 'dsdr'

param location = 'northeurope'

param hostingPlan = 'FlexConsumption'

param role = 'provider'

param pairs = [
  {
    name: 'sales'
    primaryAccountId: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/sales-weu'
    secondaryAccountId: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-neu/providers/Microsoft.DataShare/accounts/sales-neu'
    primaryRegionDisplayName: 'West Europe'
  }
]

param stores = [
  {
    id: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-neu/providers/Microsoft.Storage/storageAccounts/rawneu'
    side: 'secondary'
    dataShareAccountId: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-neu/providers/Microsoft.DataShare/accounts/sales-neu'
  }
  {
    id: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-neu/providers/Microsoft.Sql/servers/sql-sales-neu'
    side: 'secondary'
  }
  {
    id: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-weu/providers/Microsoft.Storage/storageAccounts/rawweu'
    side: 'primary'
  }
]

param drConfigPath = 'dr-config.toml'

param replicateSchedule = '0 */15 * * * *'

param readinessSchedule = '0 5,35 * * * *'

param rustLog = 'info'

// First deployment: false. After `scripts/package` + the package upload, deploy again with true.
param enableAlerting = false

param alertEmailReceivers = [
  'oncall@contoso.com'
]

// Secure webhook (default): ids printed by scripts/create-alert-receiver-app.
param aadWebhookObjectId = '00000000-0000-0000-0000-000000000000'

param aadWebhookIdentifierUri = 'api://datashare-dr-alerts'

// Planned failback only (docs/deploy.md "Failback role").
param grantFailbackRole = false

param tags = {
  owner: 'data-platform'
}
