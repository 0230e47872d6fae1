//! A test issuer for Azure Monitor secure-webhook tokens (issue 15).
//!
//! Signs RS256 JWTs with the committed TEST-ONLY key tests/fixtures/auth/trusted-test-key.pem
//! (its public half is tests/fixtures/auth/jwks.json, kid `test-trusted-1`) and serves that JWKS
//! on loopback (127.0.0.1, a free port) for the life of the test process — bounded to
//! [`MAX_CONNECTIONS`] requests. `untrusted-test-key.pem` is a second key that is in no JWKS
//! (wrong-signature tests). [`trust`] adds the matching `[alerts]` trust settings to a DR config.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

pub const TENANT: &str = "7a6f3c4e-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
pub const AUDIENCE: &str = "api://datashare-dr-alerts-test";
pub const KID: &str = "test-trusted-1";
/// Azure Monitor's action-group app id (the default allowed caller).
pub const AZURE_MONITOR_APP_ID: &str = "461e8683-5575-4561-ac7f-899cc907d62a";
const MAX_CONNECTIONS: usize = 5000;
const SERVE_FOR: Duration = Duration::from_secs(1800);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

/// URL of the loopback JWKS (started on first use).
pub fn jwks_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let jwks = std::fs::read(fixture("jwks.json")).expect("tests/fixtures/auth/jwks.json");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let started = Instant::now();
            for conn in listener.incoming().take(MAX_CONNECTIONS) {
                if started.elapsed() > SERVE_FOR {
                    break;
                }
                let Ok(mut s) = conn else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() > 64 * 1024 {
                        break;
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    jwks.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&jwks);
            }
        });
        format!("http://127.0.0.1:{port}/discovery/v2.0/keys")
    })
    .clone()
}

/// The `[alerts]` trust lines for the test issuer.
pub fn trust_lines() -> String {
    format!(
        "tenant_id = \"{TENANT}\"\naudience = \"{AUDIENCE}\"\njwks_url = \"{}\"\n",
        jwks_url()
    )
}

/// `toml` with the test issuer trusted: the lines go right after its `[alerts]` header (one is
/// appended when there is none).
pub fn trust(toml: &str) -> String {
    match toml.find("[alerts]\n") {
        Some(i) => {
            let at = i + "[alerts]\n".len();
            format!("{}{}{}", &toml[..at], trust_lines(), &toml[at..])
        }
        None => format!("{toml}\n[alerts]\n{}", trust_lines()),
    }
}

/// Which key signs.
#[derive(Clone, Copy)]
pub enum Key {
    Trusted,
    /// Not in the JWKS; signs under the trusted kid (a forged signature).
    Untrusted,
}

fn key_pair(key: Key) -> ring::rsa::KeyPair {
    let file = match key {
        Key::Trusted => "trusted-test-key.pem",
        Key::Untrusted => "untrusted-test-key.pem",
    };
    let pem = std::fs::read_to_string(fixture(file)).expect("test key");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM base64");
    ring::rsa::KeyPair::from_pkcs8(&der).expect("PKCS#8 RSA key")
}

fn b64u(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Claims of a valid token, as Azure Monitor's secure webhook gets them (v1 issuer).
pub fn valid_claims() -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "aud": AUDIENCE,
        "appid": AZURE_MONITOR_APP_ID,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "tid": TENANT,
    })
}

/// A compact RS256 JWS of `claims`, signed with `key` under `kid`.
pub fn sign(claims: &Value, key: Key, kid: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let msg = format!(
        "{}.{}",
        b64u(header.to_string().as_bytes()),
        b64u(claims.to_string().as_bytes())
    );
    let kp = key_pair(key);
    let mut sig = vec![0u8; kp.public().modulus_len()];
    kp.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{msg}.{}", b64u(&sig))
}

/// `Bearer <valid token>` (also starts the JWKS server, so configs made after it trust it).
pub fn bearer() -> String {
    let _ = jwks_url();
    format!("Bearer {}", sign(&valid_claims(), Key::Trusted, KID))
}
