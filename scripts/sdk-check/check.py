"""Drive the official azure-mgmt-datashare SDK against the simulator (see run.sh)."""
import json
import sys
import urllib.request

from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.datashare import DataShareManagementClient
from azure.mgmt.datashare import models as m

URL = sys.argv[1]
SUB = "5f1c1d9e-0000-4000-8000-0000000050d1"
RG = "rg-sdk"


class StaticCredential:
    """TokenCredential that is never asked for a token (the policy below sets the header)."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("sim", 4102444800)


class LoopbackBearer(SansIOHTTPPolicy):
    """Sets the simulator's static token; the SDK's bearer policy refuses plain http."""

    def on_request(self, request):
        request.http_request.headers["Authorization"] = "Bearer sim"


def arm_put(path, body):
    req = urllib.request.Request(
        f"{URL}{path}?api-version=2023-01-01", data=json.dumps(body).encode(), method="PUT",
        headers={"Authorization": "Bearer sim", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


client = DataShareManagementClient(
    credential=StaticCredential(), subscription_id=SUB, base_url=URL,
    authentication_policy=LoopbackBearer(), polling_interval=0)

arm_put(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/sdkstore",
        {"location": "westeurope"})

acct = client.accounts.begin_create(RG, "sdkacct", m.Account(location="westeurope", identity=m.Identity(type="SystemAssigned"))).result()
assert acct.provisioning_state == "Succeeded", acct.provisioning_state
assert acct.identity.principal_id, "principalId"
assert client.accounts.get(RG, "sdkacct").name == "sdkacct"
assert [a.name for a in client.accounts.list_by_resource_group(RG)] == ["sdkacct"]

share = client.shares.create(RG, "sdkacct", "share1", m.Share(description="sdk", share_kind="CopyBased"))
assert share.share_kind == "CopyBased" and share.created_at is not None
ds = client.data_sets.create(RG, "sdkacct", "share1", "ds1", m.BlobDataSet(
    container_name="c", file_path="f.csv", subscription_id=SUB, resource_group=RG, storage_account_name="sdkstore"))
assert isinstance(ds, m.BlobDataSet) and ds.data_set_id, ds
inv = client.invitations.create(RG, "sdkacct", "share1", "inv1", m.Invitation(target_email="someone@fabrikam.example"))
assert inv.invitation_status == "Pending" and inv.invitation_id
ss = client.synchronization_settings.create(RG, "sdkacct", "share1", "daily", m.ScheduledSynchronizationSetting(
    recurrence_interval="Day", synchronization_time="2024-01-01T02:00:00Z"))
assert isinstance(ss, m.ScheduledSynchronizationSetting), ss

for i in range(2, 8):
    client.shares.create(RG, "sdkacct", f"share{i}", m.Share())
names = [s.name for s in client.shares.list_by_account(RG, "sdkacct")]  # pages of 5 (nextLink)
assert len(names) == 7, names
assert [d.name for d in client.data_sets.list_by_share(RG, "sdkacct", "share1")] == ["ds1"]
assert [i.name for i in client.invitations.list_by_share(RG, "sdkacct", "share1")] == ["inv1"]
assert [s.name for s in client.synchronization_settings.list_by_share(RG, "sdkacct", "share1")] == ["daily"]
assert client.invitations.get(RG, "sdkacct", "share1", "inv1").invitation_id == inv.invitation_id

client.invitations.delete(RG, "sdkacct", "share1", "inv1")
client.synchronization_settings.begin_delete(RG, "sdkacct", "share1", "daily").result()
client.data_sets.begin_delete(RG, "sdkacct", "share1", "ds1").result()
client.shares.begin_delete(RG, "sdkacct", "share1").result()
client.accounts.begin_delete(RG, "sdkacct").result()
assert list(client.accounts.list_by_resource_group(RG)) == []
print("sdk-check: OK (account, share, data set, invitation, synchronization setting: create/get/list/delete)")
