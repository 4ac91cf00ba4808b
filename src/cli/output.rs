//! What the CLI prints. `--json` shapes are stable and documented in docs/cli.md.

use serde_json::{Value, json};

use crate::{
    accounts::{Group, User, groups::GroupSummary},
    audit::AuditEvent,
    clock::rfc3339,
    permissions::{
        EffectivePermissions, Explanation,
        catalog::{Permission, SyncReport},
    },
    seed::DemoAccount,
};

pub(super) fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("json"));
}

/// What a write prints: with `--json`, `value` and the `revision` the write
/// committed, as one object; otherwise the sentence `text`.
pub fn written(json: bool, text: &str, mut value: Value, revision: i64) {
    if json {
        value["revision"] = revision.into();
        print_json(&value);
    } else {
        println!("{text}");
    }
}

pub fn user_json(user: &User) -> Value {
    json!({
        "id": user.user_id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "has_password": user.password_hash.is_some(),
        "is_service": user.is_service,
        "date_joined": rfc3339(user.created_at),
        "last_login": user.last_login.map(rfc3339),
    })
}

fn flags(user: &User) -> String {
    let mut f = vec![];
    if user.is_superuser {
        f.push("superuser");
    }
    if user.is_staff {
        f.push("staff");
    }
    if user.is_service {
        f.push("service");
    }
    if !user.is_active {
        f.push("inactive");
    }
    f.join(",")
}

pub fn migrate_report(report: &SyncReport) {
    println!("Migrations applied.");
    if report.created.is_empty() {
        println!("Permissions: up to date.");
    } else {
        println!("Permissions created: {}", report.created.len());
        for p in &report.created {
            println!("  + {p}");
        }
    }
    for p in &report.orphaned {
        println!(
            "  ! {p} is no longer declared in config; kept (delete it by hand if it is really gone)"
        );
    }
}

pub fn user_list(users: &[User], json: bool) {
    if json {
        print_json(&Value::Array(users.iter().map(user_json).collect()));
        return;
    }
    if users.is_empty() {
        println!("No users found.");
        return;
    }
    let width = users
        .iter()
        .map(|u| u.username.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    println!(
        "{:width$}  {:30}  {:24}  flags",
        "username", "email", "display name"
    );
    for u in users {
        println!(
            "{:width$}  {:30}  {:24}  {}",
            u.username,
            u.email,
            u.display_name,
            flags(u)
        );
    }
}

pub fn user_show(user: &User, groups: &[String], direct: &[Permission], json: bool) {
    let direct_names: Vec<String> = direct.iter().map(|p| p.name().to_string()).collect();
    if json {
        let mut v = user_json(user);
        v["groups"] = json!(groups);
        v["permissions"] = json!(direct_names);
        print_json(&v);
        return;
    }
    println!("username:     {}", user.username);
    println!("email:        {}", user.email);
    println!("display name: {}", user.display_name);
    println!("active:       {}", yes_no(user.is_active));
    println!("staff:        {}", yes_no(user.is_staff));
    println!("superuser:    {}", yes_no(user.is_superuser));
    println!(
        "password:     {}",
        match (user.is_service, user.password_hash.is_some()) {
            (true, _) => "none: a service account (it uses API tokens only)",
            (false, true) => "set",
            (false, false) => "not set",
        }
    );
    println!("date joined:  {}", rfc3339(user.created_at));
    println!(
        "last login:   {}",
        user.last_login
            .map(rfc3339)
            .unwrap_or_else(|| "never".into())
    );
    println!("groups:       {}", list_or_none(groups));
    println!("permissions:  {}", list_or_none(&direct_names));
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

pub fn group_list(groups: &[GroupSummary], json: bool) {
    if json {
        let v: Vec<Value> = groups
            .iter()
            .map(|g| json!({ "id": g.group_id, "name": g.name, "members": g.members, "permissions": g.permissions }))
            .collect();
        print_json(&Value::Array(v));
        return;
    }
    if groups.is_empty() {
        println!("No groups.");
        return;
    }
    for g in groups {
        println!(
            "{}  ({} members, {} permissions)",
            g.name, g.members, g.permissions
        );
    }
}

pub fn group_show(group: &Group, perms: &[Permission], members: &[String], json: bool) {
    let names: Vec<String> = perms.iter().map(|p| p.name().to_string()).collect();
    if json {
        print_json(&json!({
            "id": group.group_id,
            "name": group.name,
            "permissions": names,
            "members": members,
            "created_at": rfc3339(group.created_at),
        }));
        return;
    }
    println!("group:       {}", group.name);
    println!("permissions: {}", list_or_none(&names));
    println!("members:     {}", list_or_none(members));
}

fn explanation_json(e: &Explanation) -> Value {
    json!({
        "permission": e.permission,
        "allowed": e.allowed,
        "sources": e.sources.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "reason": e.denial.map(|d| d.as_str()),
    })
}

fn explanation_text(e: &Explanation) -> String {
    if e.allowed {
        let sources: Vec<String> = e.sources.iter().map(ToString::to_string).collect();
        format!("allowed  {}  via {}", e.permission, sources.join(", "))
    } else {
        format!(
            "denied   {}  ({})",
            e.permission,
            e.denial.map_or("not granted", |d| d.as_str())
        )
    }
}

pub fn check(user: &User, explanations: &[Explanation], json: bool) {
    if json {
        print_json(&json!({
            "username": user.username,
            "allowed": explanations.iter().all(|e| e.allowed),
            "results": explanations.iter().map(explanation_json).collect::<Vec<_>>(),
        }));
        return;
    }
    for e in explanations {
        println!("{}", explanation_text(e));
    }
}

pub fn perms(
    user: &User,
    effective: &EffectivePermissions,
    catalog: &[Permission],
    explain: bool,
    json: bool,
) {
    // A superuser holds every permission in the catalog; others what was granted.
    let names: Vec<String> = if effective.is_active && effective.is_superuser {
        catalog.iter().map(|p| p.name().to_string()).collect()
    } else {
        effective.granted().keys().map(|k| k.to_string()).collect()
    };
    let explained: Vec<Explanation> = names.iter().map(|n| effective.explain(n)).collect();
    if json {
        print_json(&json!({
            "username": user.username,
            "is_active": user.is_active,
            "is_superuser": user.is_superuser,
            "permissions": explained.iter().map(|e| json!({
                "permission": e.permission,
                "sources": e.sources.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    if !user.is_active {
        println!("{} is inactive and holds no permissions.", user.username);
        return;
    }
    if explained.is_empty() {
        println!("{} holds no permissions.", user.username);
        return;
    }
    for e in &explained {
        if explain {
            let sources: Vec<String> = e.sources.iter().map(ToString::to_string).collect();
            println!("{}  via {}", e.permission, sources.join(", "));
        } else {
            println!("{}", e.permission);
        }
    }
}

pub fn audit(events: &[AuditEvent], json: bool) {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .unwrap_or(Value::Null)
    };
    if json {
        let v: Vec<Value> = events
            .iter()
            .map(|e| {
                json!({
                    "id": e.audit_event_id,
                    "time": rfc3339(e.created_at),
                    "actor": e.actor_name,
                    "actor_id": e.actor_id,
                    "action": e.action,
                    "target_type": e.target_type,
                    "target_id": e.target_id,
                    "target": e.target_name,
                    "before": parse(&e.before_state),
                    "after": parse(&e.after_state),
                    "source": e.source,
                })
            })
            .collect();
        print_json(&Value::Array(v));
        return;
    }
    if events.is_empty() {
        println!("No audit events.");
        return;
    }
    for e in events {
        let after = e.after_state.as_deref().unwrap_or("");
        println!(
            "{}  {:4}  {:12}  {:24}  {} {}  {}",
            rfc3339(e.created_at),
            e.source,
            e.actor_name,
            e.action,
            e.target_type,
            e.target_name,
            after
        );
    }
}

pub fn demo(accounts: &[DemoAccount], fixed: bool) {
    println!("Demo ready. Accounts (email <name>@example.com):");
    for a in accounts {
        let pw = match (&a.password, fixed) {
            (Some(p), false) => format!("password: {p}"),
            (Some(_), true) => "password: $LADDER_DEMO_PASSWORD".into(),
            (None, _) => "password unchanged".into(),
        };
        println!("  {:8} {:32} {pw}", a.username, a.role);
    }
    if !fixed && accounts.iter().any(|a| a.password.is_some()) {
        println!("These passwords are shown once. Set LADDER_DEMO_PASSWORD to choose one for all.");
    }
}
