//! "Did you mean": a close match for a mistyped subcommand, flag or value, added to clap's
//! usage error (`replciate` → `tip: a similar subcommand exists: 'replicate'`).
//!
//! clap's own suggestions need its `suggestions` feature (and one more crate); this does the
//! same with a small edit distance over the names the command line defines, at the level of
//! the subcommand the mistake was made in (`failover aprove` → `approve`).
//!
//! Pure: no IO. CLI glue, used only by `main`.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Adds a suggestion to `err` when the mistyped word has a close match; otherwise returns it
/// unchanged. `cmd` is the whole command line definition, `args` the process arguments
/// (program name first).
pub fn with_suggestion(
    mut err: clap::Error,
    cmd: &clap::Command,
    args: &[OsString],
) -> clap::Error {
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (kind, found) = match err.kind() {
        ErrorKind::InvalidSubcommand => (
            ContextKind::SuggestedSubcommand,
            context(ContextKind::InvalidSubcommand).and_then(|bad| {
                let at = deepest(cmd, &words, &bad);
                closest(
                    &bad,
                    at.get_subcommands()
                        .filter(|c| !c.is_hide_set())
                        .map(|c| c.get_name().to_owned()),
                )
            }),
        ),
        ErrorKind::UnknownArgument => (
            ContextKind::SuggestedArg,
            context(ContextKind::InvalidArg).and_then(|bad| {
                let flag = bad.split('=').next().unwrap_or(&bad).to_owned();
                let at = deepest(cmd, &words, &bad);
                closest(
                    &flag,
                    at.get_arguments()
                        .filter(|a| !a.is_hide_set())
                        .filter_map(|a| a.get_long().map(|l| format!("--{l}"))),
                )
            }),
        ),
        ErrorKind::InvalidValue => (
            ContextKind::SuggestedValue,
            context(ContextKind::InvalidValue).and_then(|bad| {
                match err.get(ContextKind::ValidValue) {
                    Some(ContextValue::Strings(valid)) => closest(&bad, valid.iter().cloned()),
                    _ => None,
                }
            }),
        ),
        _ => return err,
    };
    if let Some(s) = found
        && err.get(kind).is_none()
    {
        err.insert(kind, ContextValue::String(s));
    }
    err
}

/// The subcommand the user was in when `bad` was met: follows the subcommand names in
/// `words` up to `bad`.
fn deepest<'a>(cmd: &'a clap::Command, words: &[String], bad: &str) -> &'a clap::Command {
    let mut at = cmd;
    for w in words {
        if w == bad {
            break;
        }
        if let Some(sub) = at.find_subcommand(w) {
            at = sub;
        }
    }
    at
}

/// The candidate closest to `word` within a small edit distance (a third of its length, at
/// least 1), ties broken by order.
pub fn closest(word: &str, candidates: impl IntoIterator<Item = String>) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(word, &c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance with adjacent transpositions (optimal string alignment), case-insensitive.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_transposition_is_one_edit_and_finds_the_command() {
        assert_eq!(distance("replciate", "replicate"), 1);
        assert_eq!(
            closest("replciate", names(&["plan", "replicate", "check"])).as_deref(),
            Some("replicate")
        );
    }

    #[test]
    fn a_word_far_from_every_name_gets_no_suggestion() {
        assert_eq!(closest("xyz", names(&["sim", "plan", "check"])), None);
        assert_eq!(
            closest("nope", names(&["all", "readiness", "failover"])),
            None
        );
    }
}
