//! Restarting the Azurite of the test run (chaos tests: "storage went away and came back").
//!
//! `scripts/test` runs Azurite with its data in a `--location` directory and exports what a
//! restart needs: `DSDR_TEST_AZURITE_PID`, `DSDR_TEST_BLOB_PORT`, `DSDR_TEST_QUEUE_PORT`,
//! `DSDR_TEST_TABLE_PORT`, `DSDR_TEST_AZURITE_LOCATION` and `DSDR_TEST_AZURITE_PIDFILE`.
//! [`restart_azurite`] stops the running Azurite by pid (SIGTERM, so it flushes its data; SIGKILL
//! only if it does not stop within 15 s), waits until both ports refuse connections, starts a
//! new Azurite on the same ports with the same location, waits until both ports answer, and
//! writes the new pid to the pid file (which `scripts/test` reads when it stops Azurite).
//!
//! Only one test of a run may call this, and only when no other test uses Azurite at the same
//! time (cargo runs test binaries one after another; keep the caller alone in its binary or
//! serialised). Never touches any process but the recorded Azurite pid.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a restart needs, from `scripts/test`'s environment.
#[derive(Clone, Debug)]
pub struct AzuriteProcess {
    pub pid: u32,
    pub blob_port: u16,
    pub queue_port: u16,
    pub table_port: u16,
    pub location: PathBuf,
    pub pid_file: PathBuf,
}

fn env_var(key: &str) -> Result<String, String> {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("{key} is not set (run the test through scripts/test)"))
}

fn env_port(key: &str) -> Result<u16, String> {
    let v = env_var(key)?;
    v.trim()
        .parse()
        .map_err(|_| format!("{key}={v:?} is not a port"))
}

impl AzuriteProcess {
    /// The Azurite `scripts/test` started (or the last restart left running).
    pub fn from_env() -> Result<AzuriteProcess, String> {
        let pid_file = PathBuf::from(env_var("DSDR_TEST_AZURITE_PIDFILE")?);
        let from_file = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        let pid = match from_file {
            Some(p) => p,
            None => {
                let v = env_var("DSDR_TEST_AZURITE_PID")?;
                v.trim()
                    .parse()
                    .map_err(|_| format!("DSDR_TEST_AZURITE_PID={v:?} is not a pid"))?
            }
        };
        Ok(AzuriteProcess {
            pid,
            blob_port: env_port("DSDR_TEST_BLOB_PORT")?,
            queue_port: env_port("DSDR_TEST_QUEUE_PORT")?,
            table_port: env_port("DSDR_TEST_TABLE_PORT")?,
            location: PathBuf::from(env_var("DSDR_TEST_AZURITE_LOCATION")?),
            pid_file,
        })
    }
}

/// Whether `env` has everything a restart needs (else the caller skips the restart step).
pub fn restart_available() -> bool {
    AzuriteProcess::from_env().is_ok()
}

fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// `true` while the process exists and is not a zombie (an exited Azurite stays a zombie until
/// `scripts/test`, its parent, reaps it).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) S ...`: the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            !matches!(state, "Z" | "X")
        }
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill -{sig} {pid}: {e}"))?;
    if status.success() || !alive(pid) {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid} failed: {status}"))
    }
}

/// The Azurite entry point installed by `scripts/test`.
fn azurite_js() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".local/azurite/node_modules/azurite/dist/src/azurite.js")
}

/// Stops Azurite and starts it again on the same ports and data; returns the new pid and how
/// long storage was unavailable.
pub fn restart_azurite() -> Result<(u32, Duration), String> {
    let az = AzuriteProcess::from_env()?;
    let started = Instant::now();
    if alive(az.pid) {
        signal(az.pid, "TERM")?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while alive(az.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(az.pid) {
            signal(az.pid, "KILL")?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while (port_answers(az.blob_port) || port_answers(az.queue_port)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if port_answers(az.blob_port) || port_answers(az.queue_port) {
        return Err(format!(
            "Azurite (pid {}) still answers on {}/{} after it was stopped",
            az.pid, az.blob_port, az.queue_port
        ));
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(az.location.with_extension("restart.log"))
        .map_err(|e| format!("Azurite restart log: {e}"))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("Azurite restart log: {e}"))?;
    let cwd = az
        .location
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let child = Command::new("node")
        .arg(azurite_js())
        .args([
            "--silent",
            "--loose",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ])
        .arg("--location")
        .arg(&az.location)
        .args(["--blobHost", "127.0.0.1", "--blobPort"])
        .arg(az.blob_port.to_string())
        .args(["--queueHost", "127.0.0.1", "--queuePort"])
        .arg(az.queue_port.to_string())
        .args(["--tableHost", "127.0.0.1", "--tablePort"])
        .arg(az.table_port.to_string())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("starting Azurite again: {e}"))?;
    let pid = child.id();
    // Record it at once: scripts/test stops this pid even if the rest of the test fails.
    std::fs::write(&az.pid_file, format!("{pid}\n"))
        .map_err(|e| format!("writing {}: {e}", az.pid_file.display()))?;
    // The child is not waited for: it outlives this test and is stopped by scripts/test.
    drop(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(port_answers(az.blob_port) && port_answers(az.queue_port)) {
        if Instant::now() >= deadline || !alive(pid) {
            return Err(format!(
                "Azurite did not come back on {}/{} (see {})",
                az.blob_port,
                az.queue_port,
                az.location.with_extension("restart.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((pid, started.elapsed()))
}
