//! Where the app's storage account is and how to authenticate to it.
//!
//! Two forms, matching the Functions host's own `AzureWebJobsStorage` conventions:
//! - identity-based (production): `AzureWebJobsStorage__blobServiceUri`, `__queueServiceUri`,
//!   optional `__clientId` of a user-assigned managed identity; https only;
//! - a connection string (local / Azurite): `UseDevelopmentStorage=true`, or
//!   `DefaultEndpointsProtocol=..;AccountName=..;AccountKey=..;BlobEndpoint=..;QueueEndpoint=..`
//!   (endpoints default to `<protocol>://<account>.<service>.<EndpointSuffix>`), or a
//!   `SharedAccessSignature=` instead of the key.
//!
//! The account key is a secret: it is held in [`AccountKey`], whose `Debug` prints `***`, and it
//! never appears in an error message. This module imports nothing else of the crate except the
//! store's error type.

use std::fmt;

use url::Url;

use super::StoreError;

/// Azurite's well-known development account (public, documented by Microsoft).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, documented by Microsoft).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A storage account key (base64). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountKey(String);

impl AccountKey {
    /// Wraps a base64 account key after checking it decodes.
    pub fn new(base64_key: &str) -> Result<Self, StoreError> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(base64_key.trim())
            .map_err(|_| StoreError::InvalidSettings {
                key: "AccountKey".into(),
                reason: "is not valid base64".into(),
            })?;
        Ok(Self(base64_key.trim().to_owned()))
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A SAS token (query string without `?`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken(String);

impl SasToken {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How requests to the account are authorised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageAuth {
    /// Shared key: an account SAS is signed from it in-process (the SDK accepts no shared keys).
    SharedKey { account: String, key: AccountKey },
    /// A fixed SAS from the connection string.
    Sas(SasToken),
    /// Entra token from a managed identity (user-assigned when a client id is given).
    ManagedIdentity { client_id: Option<String> },
}

/// Endpoints of the app's storage account plus how to authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageSettings {
    /// Blob service endpoint, e.g. `https://acct.blob.core.windows.net/` or
    /// `http://127.0.0.1:10000/devstoreaccount1/` (always ends with `/`).
    pub blob_endpoint: Url,
    /// Queue service endpoint (always ends with `/`).
    pub queue_endpoint: Url,
    pub auth: StorageAuth,
}

impl StorageSettings {
    /// Identity-based settings (production): both service URIs must be https.
    pub fn identity(
        blob_service_uri: &str,
        queue_service_uri: &str,
        client_id: Option<&str>,
    ) -> Result<Self, StoreError> {
        let blob_endpoint =
            parse_endpoint("AzureWebJobsStorage__blobServiceUri", blob_service_uri)?;
        let queue_endpoint =
            parse_endpoint("AzureWebJobsStorage__queueServiceUri", queue_service_uri)?;
        for (key, url) in [
            ("AzureWebJobsStorage__blobServiceUri", &blob_endpoint),
            ("AzureWebJobsStorage__queueServiceUri", &queue_endpoint),
        ] {
            if url.scheme() != "https" {
                return Err(StoreError::InvalidSettings {
                    key: key.into(),
                    reason: format!(
                        "identity-based access needs an https endpoint, got {}",
                        url.scheme()
                    ),
                });
            }
        }
        let client_id = client_id.map(str::trim).filter(|c| !c.is_empty());
        Ok(Self {
            blob_endpoint,
            queue_endpoint,
            auth: StorageAuth::ManagedIdentity {
                client_id: client_id.map(str::to_owned),
            },
        })
    }

    /// Parses a storage connection string (see the module docs for the accepted forms).
    pub fn from_connection_string(conn: &str) -> Result<Self, StoreError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (index, segment) in conn.split(';').enumerate() {
            let segment = segment.trim();
            if segment.is_empty() {
                continue;
            }
            let Some((key, value)) = segment.split_once('=') else {
                return Err(invalid(format!(
                    "segment {} has no '=' (expected Key=Value pairs separated by ';')",
                    index + 1
                )));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(invalid(format!("segment {} has an empty key", index + 1)));
            }
            if pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Err(invalid(format!("key {key} appears twice")));
            }
            pairs.push((key.to_owned(), value.trim().to_owned()));
        }
        if pairs.is_empty() {
            return Err(invalid("is empty".into()));
        }
        let get = |name: &str| -> Option<&str> {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };

        if let Some(dev) = get("UseDevelopmentStorage") {
            if !dev.eq_ignore_ascii_case("true") {
                return Err(invalid(format!(
                    "UseDevelopmentStorage must be true when present, got {dev:?}"
                )));
            }
            if get("DevelopmentStorageProxyUri").is_some() {
                return Err(invalid(
                    "DevelopmentStorageProxyUri is not supported".into(),
                ));
            }
            return Ok(Self {
                blob_endpoint: dev_endpoint(10000)?,
                queue_endpoint: dev_endpoint(10001)?,
                auth: StorageAuth::SharedKey {
                    account: DEV_ACCOUNT.into(),
                    key: AccountKey::new(DEV_ACCOUNT_KEY)?,
                },
            });
        }

        let known = [
            "DefaultEndpointsProtocol",
            "AccountName",
            "AccountKey",
            "BlobEndpoint",
            "QueueEndpoint",
            "TableEndpoint",
            "FileEndpoint",
            "EndpointSuffix",
            "SharedAccessSignature",
        ];
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, _)| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
        {
            return Err(invalid(format!("unknown key {k}")));
        }

        let protocol = get("DefaultEndpointsProtocol").unwrap_or("https");
        if protocol != "https" && protocol != "http" {
            return Err(invalid(format!(
                "DefaultEndpointsProtocol must be http or https, got {protocol:?}"
            )));
        }
        let account = get("AccountName").filter(|a| !a.is_empty());
        let suffix = get("EndpointSuffix").unwrap_or("core.windows.net");
        let endpoint = |key: &str, service: &str| -> Result<Url, StoreError> {
            match get(key) {
                Some(v) => parse_endpoint(key, v),
                None => match account {
                    Some(a) => {
                        parse_endpoint(key, &format!("{protocol}://{a}.{service}.{suffix}/"))
                    }
                    None => Err(invalid(format!(
                        "{key} is missing and there is no AccountName to derive it from"
                    ))),
                },
            }
        };
        let blob_endpoint = endpoint("BlobEndpoint", "blob")?;
        let queue_endpoint = endpoint("QueueEndpoint", "queue")?;

        let auth = match (get("AccountKey"), get("SharedAccessSignature")) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "has both AccountKey and SharedAccessSignature; give one".into(),
                ));
            }
            (Some(key), None) => {
                let Some(account) = account else {
                    return Err(invalid("AccountKey needs AccountName".into()));
                };
                StorageAuth::SharedKey {
                    account: account.to_owned(),
                    key: AccountKey::new(key)?,
                }
            }
            (None, Some(sas)) => {
                let sas = sas.trim_start_matches('?');
                if sas.is_empty() {
                    return Err(invalid("SharedAccessSignature is empty".into()));
                }
                StorageAuth::Sas(SasToken(sas.to_owned()))
            }
            (None, None) => {
                return Err(invalid(
                    "has neither AccountKey nor SharedAccessSignature".into(),
                ));
            }
        };
        Ok(Self {
            blob_endpoint,
            queue_endpoint,
            auth,
        })
    }

    /// Chooses settings from the app settings the Functions host uses: identity-based
    /// (`AzureWebJobsStorage__blobServiceUri` + `__queueServiceUri`, optional `__clientId`) wins
    /// over a connection string in `AzureWebJobsStorage`. `Ok(None)` when neither is set.
    pub fn from_app_settings(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, StoreError> {
        let non_empty = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let blob = non_empty("AzureWebJobsStorage__blobServiceUri");
        let queue = non_empty("AzureWebJobsStorage__queueServiceUri");
        match (blob, queue) {
            (Some(b), Some(q)) => {
                let client_id = non_empty("AzureWebJobsStorage__clientId");
                return Self::identity(&b, &q, client_id.as_deref()).map(Some);
            }
            (Some(_), None) => {
                return Err(StoreError::InvalidSettings {
                    key: "AzureWebJobsStorage__queueServiceUri".into(),
                    reason: "is missing while AzureWebJobsStorage__blobServiceUri is set".into(),
                });
            }
            (None, Some(_)) => {
                return Err(StoreError::InvalidSettings {
                    key: "AzureWebJobsStorage__blobServiceUri".into(),
                    reason: "is missing while AzureWebJobsStorage__queueServiceUri is set".into(),
                });
            }
            (None, None) => {}
        }
        match non_empty("AzureWebJobsStorage") {
            Some(conn) => Self::from_connection_string(&conn).map(Some),
            None => Ok(None),
        }
    }
}

fn invalid(reason: String) -> StoreError {
    StoreError::InvalidSettings {
        key: "AzureWebJobsStorage".into(),
        reason: format!("connection string {reason}"),
    }
}

fn dev_endpoint(port: u16) -> Result<Url, StoreError> {
    parse_endpoint(
        "UseDevelopmentStorage",
        &format!("http://127.0.0.1:{port}/{DEV_ACCOUNT}/"),
    )
}

/// Parses an endpoint URL and normalises it to end with `/` (no query, no fragment).
fn parse_endpoint(key: &str, value: &str) -> Result<Url, StoreError> {
    let mut url = Url::parse(value.trim()).map_err(|e| StoreError::InvalidSettings {
        key: key.into(),
        reason: format!("is not a valid URL ({e}): {value:?}"),
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(StoreError::InvalidSettings {
            key: key.into(),
            reason: format!("must be an http(s) URL, got scheme {:?}", url.scheme()),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(StoreError::InvalidSettings {
            key: key.into(),
            reason: format!("has no host: {value:?}"),
        });
    }
    if url.query().is_some() {
        return Err(StoreError::InvalidSettings {
            key: key.into(),
            reason: "must not carry a query string (put a SAS in SharedAccessSignature)".into(),
        });
    }
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPLICIT: &str = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:41000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1;";

    fn reason(err: StoreError) -> String {
        err.to_string()
    }

    #[test]
    fn parses_use_development_storage() {
        let s = StorageSettings::from_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            s.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/"
        );
        assert_eq!(
            s.queue_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/"
        );
        assert!(
            matches!(s.auth, StorageAuth::SharedKey { ref account, .. } if account == DEV_ACCOUNT)
        );
    }

    #[test]
    fn parses_an_explicit_azurite_connection_string() {
        let s = StorageSettings::from_connection_string(EXPLICIT).unwrap();
        assert_eq!(
            s.blob_endpoint.as_str(),
            "http://127.0.0.1:41000/devstoreaccount1/"
        );
        assert_eq!(
            s.queue_endpoint.as_str(),
            "http://127.0.0.1:41001/devstoreaccount1/"
        );
    }

    #[test]
    fn derives_endpoints_from_account_name_and_suffix() {
        let s = StorageSettings::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=AAAA;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(
            s.blob_endpoint.as_str(),
            "https://acct.blob.core.chinacloudapi.cn/"
        );
        assert_eq!(
            s.queue_endpoint.as_str(),
            "https://acct.queue.core.windows.net/".replace("windows.net", "chinacloudapi.cn")
        );
    }

    #[test]
    fn never_shows_the_account_key_in_debug_or_errors() {
        let s = StorageSettings::from_connection_string(EXPLICIT).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("Eby8vdM02x"), "{debug}");
        let bad = "AccountName=a;AccountKey=not*base64*secretvalue;BlobEndpoint=http://x/;QueueEndpoint=http://x/";
        let err = reason(StorageSettings::from_connection_string(bad).unwrap_err());
        assert!(!err.contains("secretvalue"), "{err}");
        assert!(err.contains("AccountKey"), "{err}");
    }

    #[test]
    fn rejects_malformed_connection_strings_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("AccountName", "no '='"),
            ("AccountName=a;AccountName=b;AccountKey=AAAA", "twice"),
            ("UseDevelopmentStorage=false", "must be true"),
            (
                "AccountName=a",
                "neither AccountKey nor SharedAccessSignature",
            ),
            (
                "AccountName=a;AccountKey=AAAA;Colour=blue",
                "unknown key Colour",
            ),
            (
                "AccountKey=AAAA;BlobEndpoint=http://x/;QueueEndpoint=http://x/",
                "needs AccountName",
            ),
            (
                "AccountName=a;AccountKey=AAAA;BlobEndpoint=not a url",
                "BlobEndpoint",
            ),
            (
                "DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=AAAA",
                "http or https",
            ),
            (
                "AccountName=a;AccountKey=AAAA;SharedAccessSignature=sv=1",
                "both",
            ),
        ];
        for (conn, expected) in cases {
            let err = reason(StorageSettings::from_connection_string(conn).unwrap_err());
            assert!(err.contains(expected), "{conn:?}: {err}");
        }
    }

    #[test]
    fn identity_settings_require_https() {
        let s = StorageSettings::identity(
            "https://acct.blob.core.windows.net",
            "https://acct.queue.core.windows.net",
            Some("1111-2222"),
        )
        .unwrap();
        assert_eq!(
            s.auth,
            StorageAuth::ManagedIdentity {
                client_id: Some("1111-2222".into())
            }
        );
        let err = reason(StorageSettings::identity("http://x/", "https://y/", None).unwrap_err());
        assert!(
            err.contains("blobServiceUri") && err.contains("https"),
            "{err}"
        );
    }

    #[test]
    fn app_settings_prefer_identity_and_flag_half_configured_identity() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let both = StorageSettings::from_app_settings(env(&[
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            (
                "AzureWebJobsStorage__blobServiceUri",
                "https://a.blob.core.windows.net",
            ),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://a.queue.core.windows.net",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert!(matches!(
            both.auth,
            StorageAuth::ManagedIdentity { client_id: None }
        ));
        let none = StorageSettings::from_app_settings(env(&[])).unwrap();
        assert!(none.is_none());
        let half = StorageSettings::from_app_settings(env(&[(
            "AzureWebJobsStorage__blobServiceUri",
            "https://a.blob.core.windows.net",
        )]))
        .unwrap_err();
        assert!(reason(half).contains("queueServiceUri"));
    }
}
