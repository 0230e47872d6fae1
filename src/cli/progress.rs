//! Progress for a person at a terminal: what is being read and how far it got, on stderr.
//!
//! Shown only when stdout *and* stderr are both terminals and the output is not `--json`; a
//! pipe, a file, a CI log or a machine reader gets nothing extra. One status line is redrawn in
//! place (`\r` + erase to end of line) and cleared before the command prints its result, so
//! the result on stdout reads the same as without progress.
//!
//! Guarantees: when [`Progress::enabled`] is false nothing at all is written, and the wrapped
//! futures run exactly as without it (no task is spawned, no timer is polled).
//! Caveats: a redrawn line longer than the terminal wraps; lines are kept short for that.
//!
//! CLI glue: must not be imported by domain modules, handlers or host.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a waiting status line is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// Status lines on stderr for people (see the module doc for when it is on).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    on: bool,
}

impl Progress {
    /// On when stdout and stderr are both terminals and `json` (the `--json` flag) is off.
    pub fn for_terminal(json: bool) -> Progress {
        Progress {
            on: !json && std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// Never shows anything (library callers, tests).
    pub fn off() -> Progress {
        Progress { on: false }
    }

    pub fn enabled(&self) -> bool {
        self.on
    }

    /// Redraws the status line with `msg` (no newline).
    pub fn status(&self, msg: &str) {
        if !self.on {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[K{msg}");
        let _ = e.flush();
    }

    /// Replaces the status line with `msg` and ends it (the line stays on screen).
    pub fn line(&self, msg: &str) {
        if !self.on {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "\r\x1b[K{msg}");
        let _ = e.flush();
    }

    /// Erases the status line (before the result is printed).
    pub fn clear(&self) {
        if !self.on {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[K");
        let _ = e.flush();
    }

    /// Runs `work`, redrawing `label` with the ARM reads counted so far (`reads()` minus its
    /// value at the start) and the elapsed time, every [`TICK`] until it ends.
    pub async fn reading<F: Future>(
        &self,
        label: &str,
        reads: &(dyn Fn() -> u64 + Sync),
        work: F,
    ) -> F::Output {
        let base = reads();
        self.watch(work, |elapsed| {
            let n = reads().saturating_sub(base);
            Some(format!("{label} ({n} ARM reads, {})", secs(elapsed)))
        })
        .await
    }

    /// Runs `work`, redrawing the line `status(elapsed)` returns (when `Some`) every [`TICK`].
    pub async fn watch<F: Future>(
        &self,
        work: F,
        mut status: impl FnMut(Duration) -> Option<String>,
    ) -> F::Output {
        if !self.on {
            return work.await;
        }
        let started = Instant::now();
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    if let Some(msg) = status(started.elapsed()) {
                        self.status(&msg);
                    }
                }
            }
        }
    }
}

/// `1.2 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_off_progress_runs_the_work_and_asks_for_no_status() {
        let p = Progress::off();
        let out = p
            .watch(async { 7 }, |_| panic!("no status line when off"))
            .await;
        assert_eq!(out, 7);
    }
}
