//! `ladder grant`, `revoke`, `check`, `perms` and `audit`.

use std::process::ExitCode;

use serde_json::json;

use super::{GrantArgs, acting::resolve_actor, output};
use crate::{
    Ladder, Result,
    accounts::{groups::GroupRef, users},
    audit::{self, AuditFilter},
    permissions::{
        PermissionName, catalog, effective,
        grants::{ChangePermissions, Holder, HolderRef},
        revision::WithRevision,
    },
};

pub(super) async fn grant(ladder: &Ladder, args: GrantArgs, grant: bool) -> Result<()> {
    let perms = PermissionName::parse_all(&args.perms)?;
    let holder = match (args.grantee.user, args.grantee.group) {
        (Some(name), _) => HolderRef::User(name),
        (None, Some(name)) => HolderRef::Group(GroupRef::Name(name)),
        (None, None) => unreachable!("clap requires --user or --group"),
    };
    let change = ChangePermissions {
        actor: resolve_actor(ladder, &args.actor).await?,
        holder,
        perms,
        grant,
        now: ladder.clock.now(),
    };
    let ((holder, changed), revision) = ladder.db.run(WithRevision(change)).await?;
    let (whom, user, group) = match holder {
        Holder::User(user) => (format!("user {}", user.username), Some(user.username), None),
        Holder::Group(group) => (format!("group {:?}", group.name), None, Some(group.name)),
    };
    let names: Vec<&str> = changed.iter().map(PermissionName::as_str).collect();
    let text = if names.is_empty() {
        format!("Nothing to change for {whom}.")
    } else {
        let (verb, prep) = if grant {
            ("Granted", "to")
        } else {
            ("Revoked", "from")
        };
        format!("{verb} {} {prep} {whom}.", names.join(", "))
    };
    let value = json!({
        "action": if grant { "grant" } else { "revoke" },
        "user": user,
        "group": group,
        "changed": names,
    });
    output::written(args.json.json, &text, value, revision);
    Ok(())
}

pub(super) async fn check(
    ladder: &Ladder,
    username: &str,
    perms: &[String],
    json: bool,
) -> Result<ExitCode> {
    // Validate every argument before answering, so a typo is an error, not a denial.
    for p in perms {
        PermissionName::parse(p)?;
    }
    let mut conn = ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, username).await?;
    let snapshot = ladder.permissions.snapshot(&mut conn, user.user_id).await?;
    let explanations: Vec<_> = perms.iter().map(|p| snapshot.explain(p)).collect();
    output::check(&user, &explanations, json);
    Ok(if explanations.iter().all(|e| e.allowed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) async fn perms(
    ladder: &Ladder,
    username: &str,
    explain: bool,
    json: bool,
) -> Result<()> {
    let mut conn = ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, username).await?;
    let effective = effective::load(&mut conn, user.user_id).await?;
    let all = catalog::all(&mut conn).await?;
    output::perms(&user, &effective, &all, explain, json);
    Ok(())
}

pub(super) async fn audit(
    ladder: &Ladder,
    user: Option<String>,
    limit: i64,
    json: bool,
) -> Result<()> {
    let mut conn = ladder.db.acquire().await?;
    let user_id = match user {
        Some(name) => Some(users::get_by_username(&mut conn, &name).await?.user_id),
        None => None,
    };
    let filter = AuditFilter {
        user_id,
        limit,
        ..Default::default()
    };
    let events = audit::list(&mut conn, &filter).await?;
    output::audit(&events, json);
    Ok(())
}
