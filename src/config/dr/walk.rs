//! A small reader over toml's spanned document tree (`toml::de::DeTable`).
//!
//! Job: give the DR config loader typed access to keys *with* their dotted path and source span,
//! so every error can say `dr.toml:12:9 (pairs[0].secondary): …`. Serde's derive would lose the
//! path (toml keeps it private), so the loader walks the tree itself.
//!
//! Invariants: every reader records an issue instead of returning an error, so one load reports
//! all problems it can find; nothing here panics on any input (spans are clamped to the text).
//! Must not import anything of this crate outside `config::dr`.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigIssue;

/// Collects issues while walking one document.
pub(super) struct Ctx<'t> {
    source: String,
    text: &'t str,
    pub(super) issues: Vec<ConfigIssue>,
}

impl<'t> Ctx<'t> {
    pub(super) fn new(source: &str, text: &'t str) -> Self {
        Self {
            source: source.to_owned(),
            text,
            issues: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub(super) fn issue(&mut self, path: &str, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = self.line_col(span.start);
        self.issues.push(ConfigIssue {
            source: self.source.clone(),
            path: path.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }
}

/// Where a value sits: dotted key path and byte span.
#[derive(Debug, Clone)]
pub(super) struct Loc {
    pub(super) path: String,
    pub(super) span: Range<usize>,
}

impl Loc {
    pub(super) fn child(&self, key: &str, span: Range<usize>) -> Loc {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        Loc { path, span }
    }

    pub(super) fn index(&self, i: usize, span: Range<usize>) -> Loc {
        Loc {
            path: format!("{}[{i}]", self.path),
            span,
        }
    }
}

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// A TOML table being read, with the set of keys the schema allows there.
pub(super) struct Table<'a, 'i> {
    pub(super) loc: Loc,
    map: &'a DeTable<'i>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Levenshtein distance, for "did you mean" hints on unknown keys (and region names).
pub(super) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let v = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl<'a, 'i> Table<'a, 'i> {
    /// Opens `value` as a table, reporting unknown keys against `allowed`.
    pub(super) fn open(
        ctx: &mut Ctx<'_>,
        loc: Loc,
        value: &'a Value<'i>,
        allowed: &[&str],
    ) -> Option<Self> {
        match value.get_ref() {
            DeValue::Table(map) => {
                let t = Table { loc, map };
                t.check_keys(ctx, allowed);
                Some(t)
            }
            other => {
                ctx.issue(
                    &loc.path,
                    &value.span(),
                    format!("expected a table, got {}", type_name(other)),
                );
                None
            }
        }
    }

    pub(super) fn root(loc: Loc, map: &'a DeTable<'i>) -> Self {
        Table { loc, map }
    }

    pub(super) fn check_keys(&self, ctx: &mut Ctx<'_>, allowed: &[&str]) {
        for (k, _) in self.map.iter() {
            let key: &str = k.get_ref();
            if allowed.contains(&key) {
                continue;
            }
            let loc = self.loc.child(key, k.span());
            let hint = allowed
                .iter()
                .map(|a| (distance(key, a), *a))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, a)| format!("; did you mean `{a}`?"))
                .unwrap_or_default();
            ctx.issue(
                &loc.path,
                &loc.span,
                format!(
                    "unknown key `{key}`{hint} (allowed here: {})",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// The value under `key` and its location, if present.
    pub(super) fn get(&self, key: &str) -> Option<(&'a Value<'i>, Loc)> {
        self.map.iter().find_map(|(k, v)| {
            let name: &str = k.get_ref();
            (name == key).then(|| (v, self.loc.child(key, v.span())))
        })
    }

    /// Location to blame for a missing key: the table itself.
    fn missing(&self, ctx: &mut Ctx<'_>, key: &str) {
        let loc = self.loc.child(key, self.loc.span.clone());
        ctx.issue(&loc.path, &loc.span, "missing required key");
    }

    pub(super) fn opt_str(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<(String, Loc)> {
        let (v, loc) = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), loc)),
            other => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected a string, got {}", type_name(other)),
                );
                None
            }
        }
    }

    pub(super) fn req_str(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<(String, Loc)> {
        if self.get(key).is_none() {
            self.missing(ctx, key);
            return None;
        }
        self.opt_str(ctx, key)
    }

    pub(super) fn opt_bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let (v, loc) = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected true or false, got {}", type_name(other)),
                );
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn opt_int(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<(i64, Loc)> {
        let (v, loc) = self.get(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            other => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected an integer, got {}", type_name(other)),
                );
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some((n, loc)),
            _ => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected an integer between {min} and {max}"),
                );
                None
            }
        }
    }

    /// A number (integer or float) in `min..=max`.
    pub(super) fn opt_float(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        min: f64,
        max: f64,
    ) -> Option<(f64, Loc)> {
        let (v, loc) = self.get(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            other => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected a number, got {}", type_name(other)),
                );
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() && n >= min && n <= max => Some((n, loc)),
            _ => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected a number between {min} and {max}"),
                );
                None
            }
        }
    }

    /// An array whose items are handed to `item` one by one with their location.
    pub(super) fn opt_array(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
    ) -> Option<Vec<(&'a Value<'i>, Loc)>> {
        let (v, loc) = self.get(key)?;
        match v.get_ref() {
            DeValue::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (item, loc.index(i, item.span())))
                    .collect(),
            ),
            other => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected an array, got {}", type_name(other)),
                );
                None
            }
        }
    }

    /// An array of strings.
    pub(super) fn opt_str_array(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<(String, Loc)>> {
        let items = self.opt_array(ctx, key)?;
        let mut out = Vec::with_capacity(items.len());
        for (item, loc) in items {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), loc)),
                other => ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected a string, got {}", type_name(other)),
                ),
            }
        }
        Some(out)
    }

    /// A sub-table.
    pub(super) fn opt_table(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        allowed: &[&str],
    ) -> Option<Table<'a, 'i>> {
        let (v, loc) = self.get(key)?;
        Table::open(ctx, loc, v, allowed)
    }

    /// A sub-table whose keys are free-form (e.g. `tags`).
    pub(super) fn opt_free_table(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Table<'a, 'i>> {
        let (v, loc) = self.get(key)?;
        match v.get_ref() {
            DeValue::Table(map) => Some(Table { loc, map }),
            other => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected a table, got {}", type_name(other)),
                );
                None
            }
        }
    }

    /// An array of tables (`[[key]]`).
    pub(super) fn opt_tables(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        allowed: &[&str],
    ) -> Vec<Table<'a, 'i>> {
        let Some(items) = self.opt_array(ctx, key) else {
            return Vec::new();
        };
        items
            .into_iter()
            .filter_map(|(item, loc)| Table::open(ctx, loc, item, allowed))
            .collect()
    }

    /// The keys and values of a table whose keys are free-form (e.g. `tags`).
    pub(super) fn entries(&self) -> Vec<(String, &'a Value<'i>, Loc)> {
        self.map
            .iter()
            .map(|(k, v)| {
                let key: &str = k.get_ref();
                (key.to_owned(), v, self.loc.child(key, v.span()))
            })
            .collect()
    }
}

/// The string inside a value, or an issue.
pub(super) fn as_str(ctx: &mut Ctx<'_>, v: &Value<'_>, loc: &Loc) -> Option<String> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        other => {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("expected a string, got {}", type_name(other)),
            );
            None
        }
    }
}

/// The items of an array value, or an issue.
pub(super) fn as_array<'a, 'i>(
    ctx: &mut Ctx<'_>,
    v: &'a Value<'i>,
    loc: &Loc,
) -> Option<Vec<(&'a Value<'i>, Loc)>> {
    match v.get_ref() {
        DeValue::Array(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (item, loc.index(i, item.span())))
                .collect(),
        ),
        other => {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("expected an array, got {}", type_name(other)),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_columns_in_characters() {
        let ctx = Ctx::new("x.toml", "a = 1\nbé = 2\n");
        assert_eq!(ctx.line_col(0), (1, 1));
        assert_eq!(ctx.line_col(6), (2, 1));
        assert_eq!(ctx.line_col(9), (2, 3));
        assert_eq!(ctx.line_col(10_000), (3, 1));
    }

    #[test]
    fn suggests_the_nearest_allowed_key() {
        assert_eq!(distance("primry", "primary"), 1);
        assert_eq!(distance("", "abc"), 3);
    }
}
