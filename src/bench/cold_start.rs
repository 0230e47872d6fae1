//! Cold-start benchmark: process start → first answered `GET /` for `datashare-dr serve`,
//! against a bare `std::net` listener answering one request (the hidden
//! `datashare-dr bench-baseline-listener` subcommand of the same binary), measured in the same
//! run, interleaved, median and p90 over ≥ 15 runs each. Target: median within 2.5× of the
//! baseline's.
//!
//! Fairness: both sides are the same executable (same size, same dynamic loading), spawned the
//! same way with the same environment, probed by the same client loop (a TCP connect +
//! `GET / HTTP/1.1` retried every 100 µs until a status line arrives). `serve` gets a real DR
//! config file and Azurite-style storage settings, i.e. everything it parses at start-up.
//!
//! CLI glue: `anyhow` is allowed here.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Row;
use crate::cli::BenchArgs;
use crate::config::ENV_KEYS;

/// Runs per side (warm-up runs excluded). The issue asks for at least 15.
pub const RUNS: usize = 31;
/// Runs per side with `--quick`.
pub const QUICK_RUNS: usize = 15;
/// Target: serve's median within this factor of the bare listener's median.
pub const TARGET_RATIO: f64 = 2.5;
const WARMUP: usize = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A small but complete DR config (what `serve` loads at start-up).
pub const BENCH_DR_CONFIG: &str = r#"# written by `datashare-dr bench cold-start`
[arm]
endpoint = "http://127.0.0.1:9"
auth = "none"

[alerts]
allowed_sources = ["/subscriptions/00000000-0000-0000-0000-000000000000"]

[[pairs]]
name = "bench"
primary = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/bench-weu"
secondary = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-neu/providers/Microsoft.DataShare/accounts/bench-neu"
primary_region = "westeurope"
secondary_region = "northeurope"
shares = ["*"]

[pairs.stores.defaults.storage]
replace = [["rg-weu", "rg-neu"], ["weu", "neu"]]
"#;

/// Median and 90th percentile of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median_ms: f64,
    pub p90_ms: f64,
}

/// Median (mean of the two middle values for even counts) and nearest-rank p90.
pub fn summarize(samples: &[Duration]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return Summary {
            median_ms: f64::NAN,
            p90_ms: f64::NAN,
        };
    }
    let n = ms.len();
    let median_ms = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    Summary {
        median_ms,
        p90_ms: ms[rank - 1],
    }
}

/// Runs the benchmark and returns its table row.
pub fn run(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let exe = std::env::current_exe().context("cannot locate the datashare-dr executable")?;
    let runs = if args.quick { QUICK_RUNS } else { RUNS };
    let dir = tempfile_dir()?;
    let dr_path = dir.join("dr.toml");
    std::fs::write(&dr_path, BENCH_DR_CONFIG)
        .with_context(|| format!("cannot write {}", dr_path.display()))?;

    let mut serve = Vec::with_capacity(runs);
    let mut baseline = Vec::with_capacity(runs);
    for i in 0..runs + WARMUP {
        let s = measure(&exe, "serve", &dr_path).context("serve did not answer GET /")?;
        let b = measure(&exe, "bench-baseline-listener", &dr_path)
            .context("the baseline listener did not answer GET /")?;
        if i >= WARMUP {
            serve.push(s);
            baseline.push(b);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let s = summarize(&serve);
    let b = summarize(&baseline);
    Ok(vec![Row {
        name: format!("cold start: spawn serve -> first GET / ({runs} runs)"),
        measured: format!("median {:.2} ms", s.median_ms),
        detail: format!("p90 {:.2} ms", s.p90_ms),
        reference: format!(
            "bare std::net listener {:.2} ms (p90 {:.2})",
            b.median_ms, b.p90_ms
        ),
        ratio: s.median_ms / b.median_ms,
        target_ratio: TARGET_RATIO,
    }])
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "datashare-dr-bench-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// A currently free loopback port (bind 0, read, release).
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a probe port")?;
    Ok(l.local_addr()?.port())
}

/// Spawns `exe subcommand` with a fresh port and times spawn → first HTTP status line on `GET /`.
fn measure(exe: &Path, subcommand: &str, dr_path: &Path) -> anyhow::Result<Duration> {
    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut cmd = Command::new(exe);
    cmd.arg(subcommand);
    for key in ENV_KEYS {
        cmd.env_remove(key);
    }
    cmd.env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("DR_CONFIG_PATH", dr_path)
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot spawn {}", exe.display()))?;
    let result = wait_until_answers(&mut child, addr, start);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn wait_until_answers(
    child: &mut Child,
    addr: SocketAddr,
    start: Instant,
) -> anyhow::Result<Duration> {
    loop {
        if probe(addr) {
            return Ok(start.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the process exited with {status} before answering");
        }
        if start.elapsed() > READY_TIMEOUT {
            anyhow::bail!("no answer on {addr} within {READY_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// True when `GET /` on `addr` returns an HTTP status line.
fn probe(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_nodelay(true);
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < 9 {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    buf.starts_with(b"HTTP/1.")
}

/// The baseline: a bare `std::net` listener on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT that
/// answers every request with an empty 404 (any answer means "ready" to the host). Runs until
/// killed. Returns an exit code (64 for a missing/bad port).
pub fn baseline_listener() -> i32 {
    let port = match std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
    {
        Some(p) => p,
        None => {
            eprintln!("error: FUNCTIONS_CUSTOMHANDLER_PORT is not set to a port number");
            return crate::cli::EXIT_USAGE;
        }
    };
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
            return 1;
        }
    };
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let mut buf = [0u8; 1024];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16 * 1024 {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_dr_config_is_a_valid_dr_config() {
        crate::config::dr::DrConfig::from_toml_str(BENCH_DR_CONFIG, "bench").unwrap();
    }

    #[test]
    fn median_and_p90_follow_the_usual_definitions() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        let s = summarize(&ms(&[5, 1, 3, 2, 4]));
        assert_eq!(s.median_ms, 3.0);
        assert_eq!(s.p90_ms, 5.0);
        let s = summarize(&ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        assert_eq!(s.median_ms, 5.5);
        assert_eq!(s.p90_ms, 9.0);
    }
}
