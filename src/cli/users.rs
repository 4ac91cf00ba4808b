//! `ladder createsuperuser`, `transfer-superuser` and `user …`.

use std::io::BufRead;

use super::{ActorArg, CreateSuperuser, UserCommand, acting::resolve_actor, output};
use crate::{
    Error, Ladder, Result,
    accounts::{
        Email, NewPassword, Username, groups, parse_display_name,
        user_changes::{self, CreateUser, Flag, SetFlag, SetPassword, TransferSuperuser},
        users::{self, NewUser, UserFilter},
    },
    actor::{Actor, Source},
    permissions::catalog,
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
    let user = ladder.db.run(create).await?;
    println!("Superuser {} created.", user.username);
    Ok(())
}

pub(super) async fn transfer_superuser(ladder: &Ladder, to: String) -> Result<()> {
    let actor = Actor::system(Source::Cli);
    let now = ladder.clock.now();
    let user = ladder.db.run(TransferSuperuser { actor, to, now }).await?;
    println!("{} is now the superuser", user.username);
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
            actor,
        } => {
            let new = new_user(&username, &email, &display_name, password_stdin, staff).await?;
            let actor = resolve_actor(ladder, &actor).await?;
            let now = ladder.clock.now();
            let user = ladder
                .db
                .run(CreateUser {
                    actor,
                    new,
                    active: true,
                    now,
                })
                .await?;
            println!("User {} created.", user.username);
        }
        UserCommand::List {
            search,
            group,
            limit,
            json,
        } => list(ladder, search, group, limit, json).await?,
        UserCommand::Show { username, json } => show(ladder, &username, json).await?,
        UserCommand::Deactivate { username, actor } => {
            set_active(ladder, username, &actor, false).await?;
        }
        UserCommand::Activate { username, actor } => {
            set_active(ladder, username, &actor, true).await?;
        }
        UserCommand::SetPassword { username, actor } => {
            set_password(ladder, username, &actor).await?;
        }
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

/// `user add`'s arguments as a new user, the password hashed.
async fn new_user(
    username: &str,
    email: &str,
    display_name: &str,
    password_stdin: bool,
    staff: bool,
) -> Result<NewUser> {
    let username = Username::parse(username)?;
    let email = Email::parse(email)?;
    let display_name = parse_display_name(display_name)?;
    let password = match password_stdin {
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
        is_staff: staff,
        is_service: false,
    })
}

async fn set_password(ladder: &Ladder, username: String, actor: &ActorArg) -> Result<()> {
    let raw = read_stdin_line()?;
    let target = {
        let mut conn = ladder.db.acquire().await?;
        users::get_by_username(&mut conn, &username).await?
    };
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
    let target = ladder.db.run(change).await?;
    println!("Password set for {}.", target.username);
    Ok(())
}

async fn set_active(
    ladder: &Ladder,
    username: String,
    actor: &ActorArg,
    active: bool,
) -> Result<()> {
    let change = SetFlag {
        actor: resolve_actor(ladder, actor).await?,
        username,
        flag: Flag::Active(active),
        now: ladder.clock.now(),
    };
    let target = ladder.db.run(change).await?;
    let word = if active { "activated" } else { "deactivated" };
    println!("User {} {word}.", target.username);
    Ok(())
}
