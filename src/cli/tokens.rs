//! `ladder token create`, `list` and `revoke`.
//!
//! `create` prints the token alone on its last line, so a script can take it
//! with `tail -1`; it is shown this once and Ladder keeps only its hash.

use serde_json::{Value, json};

use super::{ActorArg, JsonArg, TokenCommand, acting::resolve_actor, output};
use crate::{
    Ladder, Result,
    accounts::{
        User,
        tokens::{self, CreateToken, RevokeToken, Token},
        users,
    },
    clock::rfc3339,
    permissions::{PermissionName, revision::WithRevision},
};

pub(super) async fn token(ladder: &Ladder, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            username,
            name,
            expires,
            perms,
            actor,
            json,
        } => create(ladder, username, &name, expires, &perms, &actor, json).await,
        TokenCommand::List { username, json } => list(ladder, &username, json).await,
        TokenCommand::Revoke {
            token_id,
            actor,
            json,
        } => revoke(ladder, token_id, &actor, json).await,
    }
}

async fn create(
    ladder: &Ladder,
    owner: String,
    name: &str,
    expires: Option<String>,
    perms: &[String],
    actor: &ActorArg,
    json: JsonArg,
) -> Result<()> {
    // Every argument is parsed before anything is written.
    let name = tokens::parse_name(name)?;
    let lifetime = expires.as_deref().map(tokens::parse_lifetime).transpose()?;
    let scope = match perms {
        [] => None,
        perms => Some(PermissionName::parse_all(perms)?),
    };
    let now = ladder.clock.now();
    let change = CreateToken {
        actor: resolve_actor(ladder, actor).await?,
        owner,
        name,
        expires_at: lifetime.map(|secs| now + secs),
        scope,
        now,
    };
    let (made, revision) = ladder.db.run(WithRevision(change)).await?;
    let (token, secret, owner) = (&made.token, &made.secret, &made.owner.username);
    if json.json {
        let mut value = token_json(token, owner, now);
        value["token"] = secret.as_str().into();
        value["revision"] = revision.into();
        output::print_json(&value);
        return Ok(());
    }
    let expiry = match token.expires_at {
        Some(at) => format!("expires {}", rfc3339(at)),
        None => "never expires".into(),
    };
    let scope = match token.scope() {
        Some(scope) => format!("; narrowed to {}", scope.join(", ")),
        None => String::new(),
    };
    println!(
        "Token {} ({:?}) created for {owner}: {expiry}{scope}.",
        token.token_id, token.name
    );
    println!(
        "It is shown this once; Ladder keeps only its hash. Send it as `Authorization: Bearer <token>`."
    );
    println!("{secret}");
    Ok(())
}

async fn list(ladder: &Ladder, username: &str, json: bool) -> Result<()> {
    let mut conn = ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, username).await?;
    let all = tokens::of_user(&mut conn, user.user_id).await?;
    let now = ladder.clock.now();
    if json {
        let items = all.iter().map(|t| token_json(t, &user.username, now));
        output::print_json(&Value::Array(items.collect()));
        return Ok(());
    }
    print_table(&user, &all, now);
    Ok(())
}

async fn revoke(ladder: &Ladder, token_id: i64, actor: &ActorArg, json: JsonArg) -> Result<()> {
    let change = RevokeToken {
        actor: resolve_actor(ladder, actor).await?,
        token_id,
        owned_by: None,
        now: ladder.clock.now(),
    };
    let (done, revision) = ladder.db.run(WithRevision(change)).await?;
    let (token, owner) = (&done.token, &done.owner.username);
    let text = match (done.changed, token.revoked_at) {
        (true, _) => format!(
            "Revoked token {} ({:?}) of {owner}.",
            token.token_id, token.name
        ),
        (false, at) => format!(
            "Token {} ({:?}) of {owner} was already revoked, at {}.",
            token.token_id,
            token.name,
            at.map_or_else(String::new, rfc3339)
        ),
    };
    let mut value = token_json(token, owner, ladder.clock.now());
    value["changed"] = done.changed.into();
    output::written(json.json, &text, value, revision);
    Ok(())
}

/// A token as `--json` shows it: never the secret (only `create` adds it).
fn token_json(token: &Token, owner: &str, now: i64) -> Value {
    json!({
        "token_id": token.token_id,
        "user": owner,
        "name": token.name,
        "hint": token.hint,
        "scope": token.scope(),
        "created_by": token.created_by,
        "created_at": rfc3339(token.created_at),
        "expires_at": token.expires_at.map(rfc3339),
        "last_used_at": token.last_used_at.map(rfc3339),
        "revoked_at": token.revoked_at.map(rfc3339),
        "status": token.status(now),
    })
}

fn print_table(user: &User, all: &[Token], now: i64) {
    if all.is_empty() {
        println!("{} has no tokens.", user.username);
        return;
    }
    let rows: Vec<[String; 8]> = all
        .iter()
        .map(|t| {
            [
                t.token_id.to_string(),
                t.name.clone(),
                format!("{}…", t.hint),
                t.scope().map_or_else(|| "all".into(), |s| s.join(" ")),
                rfc3339(t.created_at),
                t.expires_at.map_or_else(|| "never".into(), rfc3339),
                t.last_used_at.map_or_else(|| "never".into(), rfc3339),
                t.status(now).to_string(),
            ]
        })
        .collect();
    let header = [
        "id",
        "name",
        "hint",
        "scope",
        "created",
        "expires",
        "last used",
        "status",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
}
