//! Least privilege in infra/ (issue 15): lists each custom role's actions and where each role is
//! assigned, and fails if any action that writes (`*/write`, `*/delete`, a wildcard, revoke,
//! reinstate, adjust, synchronize, any other `/action` but `list*/action`) is assigned BY DEFAULT
//! on a primary Data Share account or a primary store.
//!
//! The Bicep is read as text: role definitions in infra/modules/datashare-roles.bicep
//! (`resource <sym> '…roleDefinitions…'` with `actions: <var>` or an inline list; a `var`'s
//! quoted strings are its actions, conditional parts included — the worst case), assignments in
//! infra/main.bicep (modules over `primaryAccountIds` / `secondaryAccountIds` / `stores` passing
//! `roles.outputs.<x>RoleGuid`, with their `if (<param>)` condition and that parameter's default).

use std::collections::BTreeMap;
use std::path::PathBuf;

fn read(rel: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn quoted(text: &str) -> Vec<String> {
    text.split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .filter(|s| s.starts_with("Microsoft."))
        .collect()
}

/// Text of a top-level block starting at `start` (up to the next line that starts a new
/// declaration).
fn block(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    let mut end = rest.len();
    for (i, _) in rest.match_indices("\n") {
        let next = &rest[i + 1..];
        if i > 0
            && (next.starts_with("var ")
                || next.starts_with("resource ")
                || next.starts_with("module ")
                || next.starts_with("output ")
                || next.starts_with("param ")
                || next.starts_with("@"))
        {
            end = i;
            break;
        }
    }
    &rest[..end]
}

fn is_write(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    let last = a.rsplit('/').nth(1).unwrap_or("");
    if a.ends_with("/read") {
        return false;
    }
    if a.ends_with("/action") && last.starts_with("list") {
        return false;
    }
    a.ends_with("/write")
        || a.ends_with("/delete")
        || a.ends_with("/*")
        || ["revoke", "reinstate", "adjust", "synchronize"]
            .iter()
            .any(|w| a.contains(w))
        || a.ends_with("/action")
}

/// role output name (e.g. `operatorRoleGuid`) → (role symbol, actions).
fn roles() -> BTreeMap<String, (String, Vec<String>)> {
    let text = read("infra/modules/datashare-roles.bicep");
    let mut vars = BTreeMap::new();
    for (i, _) in text.match_indices("\nvar ") {
        let b = block(&text, i + 1);
        let name = b[4..].split_whitespace().next().unwrap().to_owned();
        vars.insert(name, quoted(b));
    }
    let mut defs = BTreeMap::new();
    for (i, _) in text.match_indices("\nresource ") {
        let b = block(&text, i + 1);
        if !b.contains("roleDefinitions@") {
            continue;
        }
        let sym = b[9..].split_whitespace().next().unwrap().to_owned();
        let line = b
            .lines()
            .find(|l| l.trim_start().starts_with("actions:"))
            .unwrap_or_else(|| panic!("role {sym}: no `actions:` line"));
        let value = line.trim_start()["actions:".len()..].trim();
        let actions = if value.starts_with('[') {
            quoted(&b[b.find("actions:").unwrap()..])
        } else {
            // `cond ? varA : varB` or `var`: the union (worst case).
            value
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .filter_map(|w| vars.get(w))
                .flatten()
                .cloned()
                .collect()
        };
        assert!(!actions.is_empty(), "role {sym}: no actions found");
        defs.insert(sym, actions);
    }
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("output ")) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let sym = w[4].trim_end_matches(".name");
        if let Some(actions) = defs.get(sym) {
            out.insert(w[1].to_owned(), (sym.to_owned(), actions.clone()));
        }
    }
    out
}

fn param_default(main: &str, name: &str) -> Option<String> {
    main.lines()
        .find(|l| l.starts_with(&format!("param {name} ")))
        .and_then(|l| l.split_once('=').map(|(_, v)| v.trim().to_owned()))
}

struct Assignment {
    module: String,
    over: String,
    condition: Option<String>,
    role_output: String,
    store_side_rule: Option<String>,
}

fn assignments(main: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    for (i, _) in main.match_indices("\nmodule ") {
        let b = block(main, i + 1);
        let module = b[7..].split_whitespace().next().unwrap().to_owned();
        let Some(role_line) = b.lines().find(|l| l.contains("roles.outputs.")) else {
            continue;
        };
        let role_output = role_line
            .split("roles.outputs.")
            .nth(1)
            .unwrap()
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap()
            .to_owned();
        let header = b.lines().next().unwrap();
        let over = header
            .split(" in ")
            .nth(1)
            .map(|r| r.split(':').next().unwrap().trim().to_owned())
            .unwrap_or_else(|| "(single)".into());
        let condition = header
            .split(": if (")
            .nth(1)
            .map(|c| c.trim_end_matches(['{', ' ', ')']).to_owned());
        let store_side_rule = (over == "stores").then(|| role_line.trim().to_owned());
        out.push(Assignment {
            module,
            over,
            condition,
            role_output,
            store_side_rule,
        });
    }
    out
}

#[test]
fn no_writing_action_is_assigned_by_default_on_a_primary_account_or_store() {
    let main = read("infra/main.bicep");
    let roles = roles();
    println!("custom roles:");
    for (output, (sym, actions)) in &roles {
        println!("  {sym} ({output}):");
        for a in actions {
            println!("    {a}{}", if is_write(a) { "   [writes]" } else { "" });
        }
    }
    let mut problems = Vec::new();
    let list = assignments(&main);
    println!("assignments (infra/main.bicep):");
    for a in &list {
        let Some((sym, actions)) = roles.get(&a.role_output) else {
            continue;
        };
        println!(
            "  {sym} by module {} over {}{}",
            a.module,
            a.over,
            a.condition
                .as_deref()
                .map(|c| format!(" if ({c})"))
                .unwrap_or_default()
        );
        let writes: Vec<&String> = actions.iter().filter(|x| is_write(x)).collect();
        if writes.is_empty() {
            continue;
        }
        // Off by default? Only a condition on a parameter whose default is false counts.
        let off_by_default = a
            .condition
            .as_deref()
            .is_some_and(|c| param_default(&main, c.trim()).as_deref() == Some("false"));
        let on_primary = match a.over.as_str() {
            "primaryAccountIds" | "accountIds" => true,
            "secondaryAccountIds" => false,
            "stores" => {
                // The store linker must be given to SECONDARY stores only, with a default of
                // `primary` for a store whose side is not stated.
                let rule = a.store_side_rule.as_deref().unwrap_or("");
                !(rule.contains("== 'secondary'") && rule.contains(": 'primary')"))
            }
            other => {
                problems.push(format!(
                    "module {}: cannot tell which accounts `{other}` holds; extend tests/infra_roles.rs",
                    a.module
                ));
                false
            }
        };
        if on_primary && !off_by_default {
            problems.push(format!(
                "module {} assigns {sym} over {} by default, which writes: {:?}",
                a.module, a.over, writes
            ));
        }
    }
    for required in [
        "primaryReaderRoleGuid",
        "failbackRoleGuid",
        "operatorRoleGuid",
    ] {
        assert!(
            list.iter().any(|a| a.role_output == required),
            "no module assigns {required}"
        );
    }
    // Primary stores: the app gets the built-in Reader only (store-access.bicep).
    let store = read("infra/modules/store-access.bicep");
    assert!(
        store.contains("storeLinkerRoleGuid: string = ''")
            || store.contains("param storeLinkerRoleGuid string = ''"),
        "the store linker must be optional per store"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_write_classifier_follows_the_issue() {
    assert!(is_write("Microsoft.DataShare/accounts/shares/write"));
    assert!(is_write(
        "Microsoft.DataShare/accounts/shares/dataSets/delete"
    ));
    assert!(is_write(
        "Microsoft.DataShare/accounts/shares/providerShareSubscriptions/*"
    ));
    assert!(is_write(
        "Microsoft.DataShare/accounts/shares/providerShareSubscriptions/revoke/action"
    ));
    assert!(is_write(
        "Microsoft.DataShare/accounts/shareSubscriptions/synchronize/action"
    ));
    assert!(!is_write(
        "Microsoft.DataShare/accounts/shares/listSynchronizations/action"
    ));
    assert!(!is_write("Microsoft.DataShare/accounts/read"));
}
