//! Azure Storage implementations of [`BlobStore`] and [`Queue`] over the official SDK crates.
//!
//! Authentication: managed identity (Entra token, https only) in production; with a connection
//! string an account SAS is signed in-process from the key and appended to the service URL (the
//! SDK takes no shared keys). The SAS is re-signed before it expires.
//!
//! Nothing touches the network or builds an HTTP client at construction: clients are built on
//! first use (cold start matters for the custom handler). Errors carry redacted messages only
//! (no SAS signature, no key). Imports only the store's own types.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::HeaderName;
use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, StatusCode, Transport,
    Url,
};
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobClientDownloadOptions, BlobClientUploadOptions,
    BlobContainerClientListBlobsOptions,
};
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use azure_storage_queue::models::{
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions, QueueMessage,
};
use azure_storage_queue::{QueueServiceClient, QueueServiceClientOptions};
use futures::TryStreamExt as _;
use time::OffsetDateTime;

use super::sas::account_sas;
use super::settings::{StorageAuth, StorageSettings};
use super::{
    BlobEntry, BlobStore, ETag, MessageEncoding, Precondition, Queue, ReceivedMessage, RemoteError,
    StoreError, StoreFuture, Versioned, redact_sas, visibility_secs,
};

/// Lifetime of a signed account SAS, and the age at which clients are rebuilt with a fresh one.
const SAS_LIFETIME: time::Duration = time::Duration::hours(24);
const SAS_REFRESH_AFTER: Duration = Duration::from_secs(12 * 3600);

/// Shared connection state for one storage account: settings, one HTTP transport, a cached
/// credential, and the SDK service clients (rebuilt when the SAS is due for renewal).
struct Account {
    settings: StorageSettings,
    transport: OnceLock<Transport>,
    credential: OnceLock<Arc<dyn TokenCredential>>,
    blob: Mutex<Option<(Instant, Arc<BlobServiceClient>)>>,
    queue: Mutex<Option<(Instant, Arc<QueueServiceClient>)>>,
}

impl Account {
    fn new(settings: &StorageSettings) -> Arc<Self> {
        Arc::new(Self {
            settings: settings.clone(),
            transport: OnceLock::new(),
            credential: OnceLock::new(),
            blob: Mutex::new(None),
            queue: Mutex::new(None),
        })
    }

    fn client_options(&self) -> ClientOptions {
        let transport = self
            .transport
            .get_or_init(|| {
                // reqwest is built without a default TLS provider; install ring (idempotent).
                let _ = rustls::crypto::ring::default_provider().install_default();
                Transport::new(azure_core::http::new_http_client(None))
            })
            .clone();
        ClientOptions {
            transport: Some(transport),
            // Bounded: callers (queue stages) retry at their own level.
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(100),
                max_retries: 3,
                max_total_elapsed: azure_core::time::Duration::seconds(10),
                max_delay: azure_core::time::Duration::seconds(2),
            }),
            ..Default::default()
        }
    }

    /// The service URL (with SAS when key/SAS based) and the credential (when identity based).
    fn endpoint(&self, base: &Url) -> Result<(Url, Option<Arc<dyn TokenCredential>>), StoreError> {
        let mut url = base.clone();
        // The SDK appends path segments; a trailing '/' after an account path would double it.
        if url.path() != "/" && url.path().ends_with('/') {
            let trimmed = url.path().trim_end_matches('/').to_owned();
            url.set_path(&trimmed);
        }
        match &self.settings.auth {
            StorageAuth::SharedKey { account, key } => {
                let now = OffsetDateTime::now_utc();
                url.set_query(Some(&account_sas(account, key, now, now + SAS_LIFETIME)?));
                Ok((url, None))
            }
            StorageAuth::Sas(token) => {
                url.set_query(Some(token.expose()));
                Ok((url, None))
            }
            StorageAuth::ManagedIdentity { client_id } => {
                if let Some(c) = self.credential.get() {
                    return Ok((url, Some(c.clone())));
                }
                let options = azure_identity::ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id
                        .clone()
                        .map(azure_identity::UserAssignedId::ClientId),
                    client_options: self.client_options(),
                };
                let cred: Arc<dyn TokenCredential> =
                    azure_identity::ManagedIdentityCredential::new(Some(options)).map_err(|e| {
                        StoreError::BuildClient {
                            endpoint: base.to_string(),
                            source: remote(&e),
                        }
                    })?;
                Ok((url, Some(self.credential.get_or_init(|| cred).clone())))
            }
        }
    }

    fn stale(&self, built: Instant) -> bool {
        !matches!(self.settings.auth, StorageAuth::ManagedIdentity { .. })
            && built.elapsed() > SAS_REFRESH_AFTER
    }

    fn blob_service(&self) -> Result<Arc<BlobServiceClient>, StoreError> {
        let mut slot = self
            .blob
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built, client)) = slot.as_ref()
            && !self.stale(*built)
        {
            return Ok(client.clone());
        }
        let (url, credential) = self.endpoint(&self.settings.blob_endpoint)?;
        let options = BlobServiceClientOptions {
            client_options: self.client_options(),
            ..Default::default()
        };
        let client = Arc::new(
            BlobServiceClient::new(url, credential, Some(options)).map_err(|e| {
                StoreError::BuildClient {
                    endpoint: self.settings.blob_endpoint.to_string(),
                    source: remote(&e),
                }
            })?,
        );
        *slot = Some((Instant::now(), client.clone()));
        Ok(client)
    }

    fn queue_service(&self) -> Result<Arc<QueueServiceClient>, StoreError> {
        let mut slot = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built, client)) = slot.as_ref()
            && !self.stale(*built)
        {
            return Ok(client.clone());
        }
        let (url, credential) = self.endpoint(&self.settings.queue_endpoint)?;
        let options = QueueServiceClientOptions {
            client_options: self.client_options(),
            ..Default::default()
        };
        let client = Arc::new(
            QueueServiceClient::new(url, credential, Some(options)).map_err(|e| {
                StoreError::BuildClient {
                    endpoint: self.settings.queue_endpoint.to_string(),
                    source: remote(&e),
                }
            })?,
        );
        *slot = Some((Instant::now(), client.clone()));
        Ok(client)
    }
}

/// Converts an SDK error into a redacted [`RemoteError`].
fn remote(e: &azure_core::Error) -> RemoteError {
    let status = e.http_status().map(u16::from);
    let code = match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
        _ => None,
    };
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    let transient = match status {
        Some(s) => s == 408 || s == 429 || s >= 500,
        None => matches!(
            e.kind(),
            azure_core::error::ErrorKind::Io | azure_core::error::ErrorKind::Connection
        ),
    };
    RemoteError {
        status,
        code,
        message: redact_sas(&message),
        transient,
    }
}

fn status_of(e: &azure_core::Error) -> Option<StatusCode> {
    e.http_status()
}

fn code_of(e: &azure_core::Error) -> Option<&str> {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

/// [`BlobStore`] on one Azure Storage blob container.
#[derive(Clone)]
pub struct AzureBlobStore {
    account: Arc<Account>,
    container: String,
}

impl std::fmt::Debug for AzureBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlobStore")
            .field("endpoint", &self.account.settings.blob_endpoint.as_str())
            .field("container", &self.container)
            .finish()
    }
}

impl AzureBlobStore {
    /// A store on `container` (normally [`super::CONTAINER`]). No I/O happens here.
    pub fn new(settings: &StorageSettings, container: &str) -> Result<Self, StoreError> {
        validate_name("container", container)?;
        Ok(Self {
            account: Account::new(settings),
            container: container.to_owned(),
        })
    }

    /// The container this store writes to.
    pub fn container(&self) -> &str {
        &self.container
    }

    fn container_missing(&self) -> StoreError {
        StoreError::NotFound {
            resource: format!("container {}", self.container),
        }
    }
}

/// Checks an Azure container/queue name (3–63 chars, lowercase letters, digits, single '-').
fn validate_name(kind: &str, name: &str) -> Result<(), StoreError> {
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidSettings {
            key: format!("{kind} name"),
            reason: format!(
                "{name:?} is not a valid Azure {kind} name (3-63 lowercase letters, digits and single hyphens)"
            ),
        })
    }
}

impl BlobStore for AzureBlobStore {
    fn ensure_container(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let client = self
                .account
                .blob_service()?
                .blob_container_client(&self.container);
            match client.create(None).await {
                Ok(_) => Ok(()),
                Err(e) if status_of(&e) == Some(StatusCode::Conflict) => Ok(()),
                Err(e) => Err(StoreError::EnsureContainer {
                    container: self.container.clone(),
                    source: remote(&e),
                }),
            }
        })
    }

    fn get<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let client = self
                .account
                .blob_service()?
                .blob_client(&self.container, path);
            let options = BlobClientDownloadOptions {
                parallel: Some(std::num::NonZero::<usize>::MIN),
                ..Default::default()
            };
            let err = |e: &azure_core::Error| StoreError::GetBlob {
                path: path.to_owned(),
                source: remote(e),
            };
            match client.download(Some(options)).await {
                Ok(result) => {
                    let etag =
                        result
                            .properties
                            .etag
                            .clone()
                            .ok_or_else(|| StoreError::GetBlob {
                                path: path.to_owned(),
                                source: RemoteError {
                                    status: None,
                                    code: None,
                                    message: "response carried no ETag".into(),
                                    transient: false,
                                },
                            })?;
                    let bytes = result.body.collect().await.map_err(|e| err(&e))?;
                    Ok(Some(Versioned {
                        bytes: bytes.to_vec(),
                        etag: ETag::new(etag.to_string()),
                    }))
                }
                Err(e) if status_of(&e) == Some(StatusCode::NotFound) => {
                    if code_of(&e) == Some("ContainerNotFound") {
                        Err(self.container_missing())
                    } else {
                        Ok(None)
                    }
                }
                Err(e) => Err(err(&e)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        path: &'a str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> StoreFuture<'a, ETag> {
        Box::pin(async move {
            let client = self
                .account
                .blob_service()?
                .blob_client(&self.container, path);
            let mut options = BlobClientUploadOptions {
                blob_content_type: Some(
                    if path.ends_with(".json") {
                        "application/json"
                    } else {
                        "application/octet-stream"
                    }
                    .to_owned(),
                ),
                ..Default::default()
            };
            match &precondition {
                Precondition::None => {}
                Precondition::IfMatch(etag) => options.if_match = Some(etag.as_str().into()),
                Precondition::IfNoneMatchAny => options = options.if_not_exists(),
            }
            match client
                .upload(RequestContent::from(bytes), Some(options))
                .await
            {
                Ok(result) => match result.etag {
                    Some(etag) => Ok(ETag::new(etag.to_string())),
                    None => Err(StoreError::PutBlob {
                        path: path.to_owned(),
                        source: RemoteError {
                            status: None,
                            code: None,
                            message: "response carried no ETag".into(),
                            transient: false,
                        },
                    }),
                },
                Err(e) => {
                    let status = status_of(&e);
                    let code = code_of(&e);
                    if code == Some("ContainerNotFound") {
                        return Err(self.container_missing());
                    }
                    match (&precondition, status) {
                        (
                            Precondition::IfNoneMatchAny,
                            Some(StatusCode::Conflict | StatusCode::PreconditionFailed),
                        ) => Err(StoreError::AlreadyExists { path: path.into() }),
                        (
                            Precondition::IfMatch(_),
                            Some(StatusCode::PreconditionFailed | StatusCode::NotFound),
                        ) => Err(StoreError::PreconditionFailed { path: path.into() }),
                        _ => Err(StoreError::PutBlob {
                            path: path.to_owned(),
                            source: remote(&e),
                        }),
                    }
                }
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<BlobEntry>> {
        Box::pin(async move {
            let client = self
                .account
                .blob_service()?
                .blob_container_client(&self.container);
            let err = |e: &azure_core::Error| {
                if code_of(e) == Some("ContainerNotFound") {
                    self.container_missing()
                } else {
                    StoreError::ListBlobs {
                        prefix: prefix.to_owned(),
                        source: remote(e),
                    }
                }
            };
            let options = BlobContainerClientListBlobsOptions {
                prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                ..Default::default()
            };
            let mut pager = client.list_blobs(Some(options)).map_err(|e| err(&e))?;
            let mut out = Vec::new();
            while let Some(item) = pager.try_next().await.map_err(|e| err(&e))? {
                let Some(path) = item.name else { continue };
                let props = item.properties.unwrap_or_default();
                out.push(BlobEntry {
                    path,
                    etag: ETag::new(props.etag.map(|e| e.to_string()).unwrap_or_default()),
                    len: props.content_length.unwrap_or(0),
                });
            }
            out.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(out)
        })
    }

    fn delete<'a>(&'a self, path: &'a str, if_match: Option<&'a ETag>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let client = self
                .account
                .blob_service()?
                .blob_client(&self.container, path);
            let options = BlobClientDeleteOptions {
                if_match: if_match.map(|e| e.as_str().into()),
                ..Default::default()
            };
            match client.delete(Some(options)).await {
                Ok(_) => Ok(true),
                Err(e) if status_of(&e) == Some(StatusCode::NotFound) => {
                    if code_of(&e) == Some("ContainerNotFound") {
                        Err(self.container_missing())
                    } else {
                        Ok(false)
                    }
                }
                Err(e) if status_of(&e) == Some(StatusCode::PreconditionFailed) => {
                    Err(StoreError::PreconditionFailed { path: path.into() })
                }
                Err(e) => Err(StoreError::DeleteBlob {
                    path: path.to_owned(),
                    source: remote(&e),
                }),
            }
        })
    }
}

/// [`Queue`] on an Azure Storage queue service, with an explicit [`MessageEncoding`] that must
/// match host.json `extensions.queues.messageEncoding`.
#[derive(Clone)]
pub struct AzureQueue {
    account: Arc<Account>,
    encoding: MessageEncoding,
}

impl std::fmt::Debug for AzureQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureQueue")
            .field("endpoint", &self.account.settings.queue_endpoint.as_str())
            .field("encoding", &self.encoding)
            .finish()
    }
}

fn x_ms_popreceipt() -> HeaderName {
    HeaderName::from_static("x-ms-popreceipt")
}

fn missing_field(queue: &str, what: &str) -> StoreError {
    StoreError::ReceiveMessages {
        queue: queue.to_owned(),
        source: RemoteError {
            status: None,
            code: None,
            message: format!("a received message has no {what}"),
            transient: false,
        },
    }
}

impl AzureQueue {
    /// A queue service client using `encoding` for message text. No I/O happens here.
    pub fn new(settings: &StorageSettings, encoding: MessageEncoding) -> Result<Self, StoreError> {
        Ok(Self {
            account: Account::new(settings),
            encoding,
        })
    }

    /// The message encoding in use.
    pub fn encoding(&self) -> MessageEncoding {
        self.encoding
    }

    fn client(&self, queue: &str) -> Result<azure_storage_queue::QueueClient, StoreError> {
        validate_name("queue", queue)?;
        self.account
            .queue_service()?
            .queue_client(queue)
            .map_err(|e| StoreError::BuildClient {
                endpoint: format!("{} queue {queue}", self.account.settings.queue_endpoint),
                source: remote(&e),
            })
    }

    fn queue_missing(queue: &str) -> StoreError {
        StoreError::NotFound {
            resource: format!("queue {queue}"),
        }
    }
}

/// Builds a blob store and a queue that share one account connection (one HTTP transport).
pub fn connect(
    settings: &StorageSettings,
    container: &str,
    encoding: MessageEncoding,
) -> Result<(AzureBlobStore, AzureQueue), StoreError> {
    validate_name("container", container)?;
    let account = Account::new(settings);
    Ok((
        AzureBlobStore {
            account: account.clone(),
            container: container.to_owned(),
        },
        AzureQueue { account, encoding },
    ))
}

impl Queue for AzureQueue {
    fn ensure_queue<'a>(&'a self, queue: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match self.client(queue)?.create(None).await {
                Ok(_) => Ok(()),
                Err(e) if status_of(&e) == Some(StatusCode::Conflict) => Ok(()),
                Err(e) => Err(StoreError::EnsureQueue {
                    queue: queue.to_owned(),
                    source: remote(&e),
                }),
            }
        })
    }

    fn send<'a>(
        &'a self,
        queue: &'a str,
        text: &'a str,
        visibility_delay: Option<Duration>,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let client = self.client(queue)?;
            let err = |e: &azure_core::Error| StoreError::SendMessage {
                queue: queue.to_owned(),
                source: remote(e),
            };
            let stored = self.encoding.encode(text);
            let delay = visibility_delay.map(visibility_secs).filter(|s| *s > 0);
            let mut created = false;
            loop {
                let message = QueueMessage {
                    message_text: Some(stored.clone()),
                };
                let content = message.try_into().map_err(|e| err(&e))?;
                let options = QueueClientSendMessageOptions {
                    visibility_timeout: delay.map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
                    ..Default::default()
                };
                match client.send_message(content, Some(options)).await {
                    Ok(rsp) => {
                        let sent = rsp
                            .into_model()
                            .and_then(|m| m.into_message())
                            .map_err(|e| err(&e))?;
                        return Ok(sent.message_id.unwrap_or_default());
                    }
                    Err(e)
                        if !created
                            && status_of(&e) == Some(StatusCode::NotFound)
                            && code_of(&e) == Some("QueueNotFound") =>
                    {
                        self.ensure_queue(queue).await?;
                        created = true;
                    }
                    Err(e) => return Err(err(&e)),
                }
            }
        })
    }

    fn receive<'a>(
        &'a self,
        queue: &'a str,
        max: u32,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, Vec<ReceivedMessage>> {
        Box::pin(async move {
            let client = self.client(queue)?;
            let err = |e: &azure_core::Error| {
                if status_of(e) == Some(StatusCode::NotFound) {
                    Self::queue_missing(queue)
                } else {
                    StoreError::ReceiveMessages {
                        queue: queue.to_owned(),
                        source: remote(e),
                    }
                }
            };
            let options = QueueClientReceiveMessagesOptions {
                number_of_messages: Some(max.clamp(1, 32) as i32),
                visibility_timeout: Some(visibility_secs(visibility_timeout).max(1) as i32),
                ..Default::default()
            };
            let rsp = client
                .receive_messages(Some(options))
                .await
                .map_err(|e| err(&e))?;
            let items = rsp
                .into_model()
                .map_err(|e| err(&e))?
                .items
                .unwrap_or_default();
            let mut out = Vec::with_capacity(items.len());
            for m in items {
                let stored = m.message_text.unwrap_or_default();
                let (text, decoding_failed) = match self.encoding.decode(&stored) {
                    Some(t) => (t, false),
                    None => (stored, true),
                };
                out.push(ReceivedMessage {
                    id: m.message_id.ok_or_else(|| missing_field(queue, "id"))?,
                    pop_receipt: m
                        .pop_receipt
                        .ok_or_else(|| missing_field(queue, "pop receipt"))?,
                    dequeue_count: m
                        .dequeue_count
                        .and_then(|c| u32::try_from(c).ok())
                        .ok_or_else(|| missing_field(queue, "dequeue count"))?,
                    insertion_time: m
                        .insertion_time
                        .ok_or_else(|| missing_field(queue, "insertion time"))?,
                    expiration_time: m
                        .expiration_time
                        .ok_or_else(|| missing_field(queue, "expiration time"))?,
                    next_visible_time: m
                        .time_next_visible
                        .ok_or_else(|| missing_field(queue, "next visible time"))?,
                    text,
                    decoding_failed,
                });
            }
            Ok(out)
        })
    }

    fn delete<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match self
                .client(queue)?
                .delete_message(id, pop_receipt, None)
                .await
            {
                Ok(_) => Ok(()),
                Err(e)
                    if matches!(
                        status_of(&e),
                        Some(StatusCode::NotFound | StatusCode::BadRequest)
                    ) && code_of(&e) != Some("AuthenticationFailed") =>
                {
                    Err(StoreError::NotFound {
                        resource: format!("message {id} (with that pop receipt) in queue {queue}"),
                    })
                }
                Err(e) => Err(StoreError::DeleteMessage {
                    queue: queue.to_owned(),
                    id: id.to_owned(),
                    source: remote(&e),
                }),
            }
        })
    }

    fn update_visibility<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let secs = i32::try_from(visibility_secs(visibility_timeout)).unwrap_or(i32::MAX);
            match self
                .client(queue)?
                .update_message(id, pop_receipt, secs, None)
                .await
            {
                Ok(rsp) => rsp
                    .headers()
                    .get_optional_str(&x_ms_popreceipt())
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError::UpdateVisibility {
                        queue: queue.to_owned(),
                        id: id.to_owned(),
                        source: RemoteError {
                            status: None,
                            code: None,
                            message: "response carried no x-ms-popreceipt".into(),
                            transient: false,
                        },
                    }),
                Err(e)
                    if matches!(
                        status_of(&e),
                        Some(StatusCode::NotFound | StatusCode::BadRequest)
                    ) && code_of(&e) != Some("AuthenticationFailed") =>
                {
                    Err(StoreError::NotFound {
                        resource: format!("message {id} (with that pop receipt) in queue {queue}"),
                    })
                }
                Err(e) => Err(StoreError::UpdateVisibility {
                    queue: queue.to_owned(),
                    id: id.to_owned(),
                    source: remote(&e),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_queue_and_container_names() {
        for bad in [
            "ab",
            "Upper",
            "has_underscore",
            "-lead",
            "trail-",
            "dou--ble",
        ] {
            assert!(validate_name("queue", bad).is_err(), "{bad}");
        }
        for good in [
            "failover-stages",
            "failover-stages-poison",
            "datashare-dr",
            "q01",
        ] {
            assert!(validate_name("queue", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn building_a_store_does_no_io_and_hides_the_key() {
        let settings =
            StorageSettings::from_connection_string("UseDevelopmentStorage=true").unwrap();
        let (blobs, queue) = connect(&settings, "datashare-dr", MessageEncoding::Base64).unwrap();
        let text = format!("{blobs:?} {queue:?}");
        assert!(!text.contains("Eby8"), "{text}");
        assert!(blobs.account.blob.lock().unwrap().is_none());
    }
}
