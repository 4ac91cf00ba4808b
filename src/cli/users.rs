//! `ladder createsuperuser`, `transfer-superuser` and `user …`.

use std::io::BufRead;

use serde_json::json;

use super::{ActorArg, CreateSuperuser, JsonArg, UserCommand, acting::resolve_actor, output};
use crate::{
    Error, Ladder, Result,
    accounts::{
        Email, NewPassword, Username, groups, parse_display_name,
        user_changes::{self, CreateUser, Flag, SetFlag, SetPassword, TransferSuperuser},
        users::{self, NewUser, UserFilter},
    },
    actor::{Actor, Source},
    permissions::{catalog, revision::WithRevision},
};

fn read_stdin_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::invalid("password", format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The new superuser's password: from standard input, the environment
/// (with --no-input) or a prompt, typed twice.
fn superuser_password(args: &CreateSuperuser) -> Result<String> {
    if args.password_stdin {
        return read_stdin_line();
    }
    if args.no_input {
        return std::env::var("LADDER_SUPERUSER_PASSWORD").map_err(|_| {
            Error::invalid(
                "password",
                "with --no-input, set LADDER_SUPERUSER_PASSWORD or pass --password-stdin",
            )
        });
    }
    let prompt = |text| {
        rpassword::prompt_password(text)
            .map_err(|e| Error::invalid("password", format!("cannot prompt: {e}")))
    };
    let first = prompt("Password: ")?;
    if first != prompt("Password (again): ")? {
        return Err(Error::invalid("password", "the two passwords differ"));
    }
    Ok(first)
}

pub(super) async fn createsuperuser(ladder: &Ladder, args: CreateSuperuser) -> Result<()> {
    let username = Username::parse(&args.username)?;
    let email = Email::parse(&args.email)?;
    {
        // Refuse before asking for a password that would be thrown away.
        let mut conn = ladder.db.acquire().await?;
        if let Some(existing) = users::superuser(&mut conn).await? {
            return Err(Error::Conflict(format!(
                "a superuser already exists ({}); Ladder has exactly one — use transfer-superuser to move it",
                existing.username
            )));
        }
    }
    let raw = superuser_password(&args)?;
    let password = NewPassword::parse(&raw, username.as_str())?.hash().await?;
    let create = user_changes::CreateSuperuser {
        actor: Actor::system(Source::Cli),
        username,
        email,
        password,
        now: ladder.clock.now(),
    };
    let (user, revision) = ladder.db.run(WithRevision(create)).await?;
    let text = format!("Superuser {} created.", user.username);
    output::written(args.json.json, &text, output::user_json(&user), revision);
    Ok(())
}

pub(super) async fn transfer_superuser(ladder: &Ladder, to: String, json: JsonArg) -> Result<()> {
    let actor = Actor::system(Source::Cli);
    let now = ladder.clock.now();
    let change = TransferSuperuser { actor, to, now };
    let (user, revision) = ladder.db.run(WithRevision(change)).await?;
    let text = format!("{} is now the superuser", user.username);
    output::written(json.json, &text, output::user_json(&user), revision);
    Ok(())
}

pub(super) async fn user(ladder: &Ladder, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add {
            username,
            email,
            display_name,
            password_stdin,
            staff,
            service,
            actor,
            json,
        } => {
            let kind = Kind {
                password_stdin,
                staff,
                service,
            };
            let email = email.as_deref().unwrap_or_default();
            let new = new_user(&username, email, &display_name, kind).await?;
            let actor = resolve_actor(ladder, &actor).await?;
            let now = ladder.clock.now();
            let change = CreateUser {
                actor,
                new,
                active: true,
                now,
            };
            let (user, revision) = ladder.db.run(WithRevision(change)).await?;
            let text = match user.is_service {
                true => format!(
                    "Service account {} created; give it tokens with `ladder token create`.",
                    user.username
                ),
                false => format!("User {} created.", user.username),
            };
            output::written(json.json, &text, output::user_json(&user), revision);
        }
        UserCommand::List {
            search,
            group,
            limit,
            json,
        } => list(ladder, search, group, limit, json).await?,
        UserCommand::Show { username, json } => show(ladder, &username, json).await?,
        UserCommand::Deactivate {
            username,
            actor,
            json,
        } => set_active(ladder, username, &actor, false, json).await?,
        UserCommand::Activate {
            username,
            actor,
            json,
        } => set_active(ladder, username, &actor, true, json).await?,
        UserCommand::SetPassword {
            username,
            actor,
            json,
        } => set_password(ladder, username, &actor, json).await?,
    }
    Ok(())
}

async fn list(
    ladder: &Ladder,
    search: Option<String>,
    group: Option<String>,
    limit: i64,
    json: bool,
) -> Result<()> {
    let mut conn = ladder.db.acquire().await?;
    if let Some(g) = &group {
        groups::get_by_name(&mut conn, g).await?;
    }
    let filter = UserFilter {
        search,
        group,
        limit,
        ..Default::default()
    };
    let found = users::list(&mut conn, ladder.db.backend(), &filter).await?;
    output::user_list(&found.users, json);
    Ok(())
}

async fn show(ladder: &Ladder, username: &str, json: bool) -> Result<()> {
    let mut conn = ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, username).await?;
    let group_names = users::group_names(&mut conn, user.user_id).await?;
    let direct = catalog::of_user(&mut conn, user.user_id).await?;
    output::user_show(&user, &group_names, &direct, json);
    Ok(())
}

/// What kind of account `user add` makes.
struct Kind {
    password_stdin: bool,
    staff: bool,
    service: bool,
}

/// `user add`'s arguments as a new user, the password hashed. A service
/// account may have no email (`""`): it is never mailed a link to sign in.
async fn new_user(username: &str, email: &str, display_name: &str, kind: Kind) -> Result<NewUser> {
    let username = Username::parse(username)?;
    let email = match (kind.service, email.trim()) {
        (true, "") => Email::none(),
        _ => Email::parse(email)?,
    };
    let display_name = parse_display_name(display_name)?;
    let password = match kind.password_stdin {
        true => Some(NewPassword::parse(&read_stdin_line()?, username.as_str())?),
        false => None,
    };
    let password = match password {
        Some(pw) => Some(pw.hash().await?),
        None => None,
    };
    Ok(NewUser {
        username,
        email,
        display_name,
        password,
        is_staff: kind.staff,
        is_service: kind.service,
    })
}

async fn set_password(
    ladder: &Ladder,
    username: String,
    actor: &ActorArg,
    json: JsonArg,
) -> Result<()> {
    let target = {
        let mut conn = ladder.db.acquire().await?;
        users::get_by_username(&mut conn, &username).await?
    };
    // Said before reading a password that would be thrown away; the domain refuses it too.
    users::may_have_password(&target)?;
    let raw = read_stdin_line()?;
    let password = NewPassword::parse(&raw, &target.username)?.hash().await?;
    let actor = resolve_actor(ladder, actor).await?;
    let now = ladder.clock.now();
    // The transaction reads the user again: the rules judge the account as it is now.
    let change = SetPassword {
        actor,
        username,
        password,
        now,
    };
    let (target, revision) = ladder.db.run(WithRevision(change)).await?;
    let text = format!("Password set for {}.", target.username);
    let value = json!({ "username": target.username });
    output::written(json.json, &text, value, revision);
    Ok(())
}

async fn set_active(
    ladder: &Ladder,
    username: String,
    actor: &ActorArg,
    active: bool,
    json: JsonArg,
) -> Result<()> {
    let change = SetFlag {
        actor: resolve_actor(ladder, actor).await?,
        username,
        flag: Flag::Active(active),
        now: ladder.clock.now(),
    };
    let (target, revision) = ladder.db.run(WithRevision(change)).await?;
    let word = if active { "activated" } else { "deactivated" };
    let text = format!("User {} {word}.", target.username);
    output::written(json.json, &text, output::user_json(&target), revision);
    Ok(())
}
