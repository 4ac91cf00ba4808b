//! One function per command: parse input into domain types, act, print.

use std::{io::BufRead, process::ExitCode};

use super::{ActorArg, Command, CreateSuperuser, GrantArgs, GroupCommand, UserCommand, output};
use crate::{
    Error, Ladder, Result,
    accounts::{
        Email, GroupName, NewPassword, Username, groups, parse_display_name,
        users::{self, NewUser, UserFilter},
    },
    actor::{Actor, Source},
    audit::{self, AuditFilter},
    clock::Clock,
    config::Settings,
    db::Conn,
    permissions::{
        PermissionName, catalog,
        effective::{self},
        grants::{self, Grantee},
    },
    seed::demo,
};

pub async fn dispatch(command: Command, settings: Settings) -> Result<ExitCode> {
    let (mut ladder, report) = Ladder::open_reporting(settings, Clock::system()).await?;
    let ok = Ok(ExitCode::SUCCESS);
    match command {
        Command::Migrate => {
            output::migrate_report(&report);
            setup_tracks(&mut ladder).await?;
            ok
        }
        Command::Createsuperuser(args) => createsuperuser(&ladder, args).await.and(ok),
        Command::TransferSuperuser { to } => {
            let mut tx = ladder.db.begin().await?;
            let to = users::get_by_username(&mut tx, &to).await?;
            let actor = Actor::system(Source::Cli);
            let user = users::transfer_superuser(&mut tx, &actor, &to, ladder.clock.now()).await?;
            tx.commit().await?;
            println!("{} is now the superuser", user.username);
            ok
        }
        Command::User(cmd) => user(&ladder, cmd).await.and(ok),
        Command::Group(cmd) => group(&ladder, cmd).await.and(ok),
        Command::Grant(args) => grant(&ladder, args, true).await.and(ok),
        Command::Revoke(args) => grant(&ladder, args, false).await.and(ok),
        Command::Check {
            username,
            perms,
            json,
        } => check(&ladder, &username, &perms, json).await,
        Command::Perms {
            username,
            explain,
            json,
        } => {
            let mut conn = ladder.db.acquire().await?;
            let user = users::get_by_username(&mut conn, &username).await?;
            let effective = effective::load(&mut conn, user.user_id).await?;
            let all = catalog::all(&mut conn).await?;
            output::perms(&user, &effective, &all, explain, json);
            ok
        }
        Command::Audit { user, limit, json } => {
            let mut conn = ladder.db.acquire().await?;
            let user_id = match user {
                Some(name) => Some(users::get_by_username(&mut conn, &name).await?.user_id),
                None => None,
            };
            let events = audit::list(
                &mut conn,
                &AuditFilter {
                    user_id,
                    limit,
                    ..Default::default()
                },
            )
            .await?;
            output::audit(&events, json);
            ok
        }
        Command::Serve { demo } => serve(ladder, demo).await.and(ok),
        Command::Jobs(super::JobsCommand::Run { job }) => {
            let transport =
                crate::mail::transport::Transport::from_settings(&ladder.settings.mail)?;
            let summary = crate::jobs::run_once(&ladder, job, &transport).await?;
            println!("{job}: {summary}");
            ok
        }
        Command::Demo => {
            let fixed = std::env::var("LADDER_DEMO_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty());
            setup_tracks(&mut ladder).await?;
            let accounts = demo::seed(&ladder, fixed.as_deref()).await?;
            output::demo(&accounts, fixed.is_some());
            ok
        }
        Command::Seed {
            users,
            requests,
            seed: chosen,
        } => {
            let rng_seed = chosen.unwrap_or_else(crate::seed::random_seed);
            println!("Seed {rng_seed} (--seed {rng_seed} repeats this data).");
            if let Some(count) = users {
                seed(&ladder, count, rng_seed).await?;
                // The seed may have made the track's groups: bind to them as a start would.
                ladder.rebind_tracks().await?;
            }
            if let Some(count) = requests {
                seed_requests(&ladder, count, rng_seed).await?;
            }
            ok
        }
    }
}

/// The explicit setup of the promotion tracks: says what it did ("created
/// group X for track Y"), then warns of any track still closed.
async fn setup_tracks(ladder: &mut Ladder) -> Result<()> {
    for line in ladder.setup_tracks().await? {
        println!("{line}");
    }
    for problem in ladder.check_tracks().await? {
        eprintln!("warning: {problem}");
    }
    Ok(())
}

/// `--as USER`, else the superuser, else Ladder itself (no superuser exists yet).
async fn resolve_actor(conn: &mut Conn, arg: &ActorArg) -> Result<Actor> {
    let user = match &arg.actor {
        Some(name) => Some(users::get_by_username(conn, name).await?),
        None => users::superuser(conn).await?,
    };
    Ok(match user {
        Some(user) => Actor::user(user, Source::Cli),
        None => Actor::system(Source::Cli),
    })
}

fn read_stdin_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::invalid("password", format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn createsuperuser(ladder: &Ladder, args: CreateSuperuser) -> Result<()> {
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
    let raw = if args.password_stdin {
        read_stdin_line()?
    } else if args.no_input {
        std::env::var("LADDER_SUPERUSER_PASSWORD").map_err(|_| {
            Error::invalid(
                "password",
                "with --no-input, set LADDER_SUPERUSER_PASSWORD or pass --password-stdin",
            )
        })?
    } else {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| Error::invalid("password", format!("cannot prompt: {e}")))?;
        let again = rpassword::prompt_password("Password (again): ")
            .map_err(|e| Error::invalid("password", format!("cannot prompt: {e}")))?;
        if first != again {
            return Err(Error::invalid("password", "the two passwords differ"));
        }
        first
    };
    let password = NewPassword::parse(&raw, username.as_str())?.hash().await?;
    let mut tx = ladder.db.begin().await?;
    let actor = Actor::system(Source::Cli);
    let user = users::create_superuser(
        &mut tx,
        &actor,
        username,
        email,
        password,
        ladder.clock.now(),
    )
    .await?;
    tx.commit().await?;
    println!("Superuser {} created.", user.username);
    Ok(())
}

async fn user(ladder: &Ladder, cmd: UserCommand) -> Result<()> {
    let now = ladder.clock.now();
    match cmd {
        UserCommand::Add {
            username,
            email,
            display_name,
            password_stdin,
            staff,
            actor,
        } => {
            let username = Username::parse(&username)?;
            let email = Email::parse(&email)?;
            let display_name = parse_display_name(&display_name)?;
            let password = if password_stdin {
                let pw = NewPassword::parse(&read_stdin_line()?, username.as_str())?;
                Some(pw.hash().await?)
            } else {
                None
            };
            let mut tx = ladder.db.begin().await?;
            let actor = resolve_actor(&mut tx, &actor).await?;
            let new = NewUser {
                username,
                email,
                display_name,
                password,
                is_staff: staff,
            };
            let user = users::create(&mut tx, &actor, new, now).await?;
            tx.commit().await?;
            println!("User {} created.", user.username);
        }
        UserCommand::List {
            search,
            group,
            limit,
            json,
        } => {
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
            let found = users::list(&mut conn, ladder.db.backend(), &filter)
                .await?
                .users;
            output::user_list(&found, json);
        }
        UserCommand::Show { username, json } => {
            let mut conn = ladder.db.acquire().await?;
            let user = users::get_by_username(&mut conn, &username).await?;
            let group_names = users::group_names(&mut conn, user.user_id).await?;
            let direct = catalog::of_user(&mut conn, user.user_id).await?;
            output::user_show(&user, &group_names, &direct, json);
        }
        UserCommand::Deactivate { username, actor } => {
            set_active(ladder, &username, &actor, false).await?;
        }
        UserCommand::Activate { username, actor } => {
            set_active(ladder, &username, &actor, true).await?;
        }
        UserCommand::SetPassword { username, actor } => {
            let raw = read_stdin_line()?;
            let target = {
                let mut conn = ladder.db.acquire().await?;
                users::get_by_username(&mut conn, &username).await?
            };
            let password = NewPassword::parse(&raw, &target.username)?.hash().await?;
            let mut tx = ladder.db.begin().await?;
            // Read again inside the transaction: the rules judge the account as it is now.
            let target = users::get_by_username(&mut tx, &username).await?;
            let actor = resolve_actor(&mut tx, &actor).await?;
            users::set_password(&mut tx, &actor, &target, password, now).await?;
            tx.commit().await?;
            println!("Password set for {}.", target.username);
        }
    }
    Ok(())
}

async fn set_active(ladder: &Ladder, username: &str, actor: &ActorArg, active: bool) -> Result<()> {
    let mut tx = ladder.db.begin().await?;
    let target = users::get_by_username(&mut tx, username).await?;
    let actor = resolve_actor(&mut tx, actor).await?;
    users::set_active(&mut tx, &actor, &target, active, ladder.clock.now()).await?;
    tx.commit().await?;
    let word = if active { "activated" } else { "deactivated" };
    println!("User {} {word}.", target.username);
    Ok(())
}

async fn group(ladder: &Ladder, cmd: GroupCommand) -> Result<()> {
    let now = ladder.clock.now();
    match cmd {
        GroupCommand::Add { name, actor } => {
            let name = GroupName::parse(&name)?;
            let mut tx = ladder.db.begin().await?;
            let actor = resolve_actor(&mut tx, &actor).await?;
            let group = groups::create(&mut tx, &actor, &name, now).await?;
            tx.commit().await?;
            println!("Group {:?} created.", group.name);
        }
        GroupCommand::List { json } => {
            let mut conn = ladder.db.acquire().await?;
            output::group_list(&groups::list(&mut conn).await?, json);
        }
        GroupCommand::Show { name, json } => {
            let mut conn = ladder.db.acquire().await?;
            let group = groups::get_by_name(&mut conn, &name).await?;
            let perms = catalog::of_group(&mut conn, group.group_id).await?;
            let members = groups::member_names(&mut conn, group.group_id).await?;
            output::group_show(&group, &perms, &members, json);
        }
        GroupCommand::AddUser {
            group,
            username,
            actor,
        } => membership(ladder, &group, &username, &actor, true).await?,
        GroupCommand::RemoveUser {
            group,
            username,
            actor,
        } => membership(ladder, &group, &username, &actor, false).await?,
    }
    Ok(())
}

async fn membership(
    ladder: &Ladder,
    group: &str,
    username: &str,
    actor: &ActorArg,
    add: bool,
) -> Result<()> {
    let mut tx = ladder.db.begin().await?;
    let group = groups::get_by_name(&mut tx, group).await?;
    let user = users::get_by_username(&mut tx, username).await?;
    let actor = resolve_actor(&mut tx, actor).await?;
    let now = ladder.clock.now();
    let changed = if add {
        groups::add_member(&mut tx, &actor, &group, &user, now).await?
    } else {
        groups::remove_member(&mut tx, &actor, &group, &user, now).await?
    };
    tx.commit().await?;
    let message = match (add, changed) {
        (true, true) => format!("Added {} to {:?}.", user.username, group.name),
        (true, false) => format!("{} is already in {:?}.", user.username, group.name),
        (false, true) => format!("Removed {} from {:?}.", user.username, group.name),
        (false, false) => format!("{} was not in {:?}.", user.username, group.name),
    };
    println!("{message}");
    Ok(())
}

async fn grant(ladder: &Ladder, args: GrantArgs, is_grant: bool) -> Result<()> {
    let perms = PermissionName::parse_all(&args.perms)?;
    let mut tx = ladder.db.begin().await?;
    let actor = resolve_actor(&mut tx, &args.actor).await?;
    let now = ladder.clock.now();
    let (changed, whom) = match (&args.grantee.user, &args.grantee.group) {
        (Some(name), _) => {
            let user = users::get_by_username(&mut tx, name).await?;
            let changed = if is_grant {
                grants::grant(&mut tx, &actor, Grantee::User(&user), &perms, now).await?
            } else {
                grants::revoke(&mut tx, &actor, Grantee::User(&user), &perms, now).await?
            };
            (changed, format!("user {}", user.username))
        }
        (None, Some(name)) => {
            let group = groups::get_by_name(&mut tx, name).await?;
            let changed = if is_grant {
                grants::grant(&mut tx, &actor, Grantee::Group(&group), &perms, now).await?
            } else {
                grants::revoke(&mut tx, &actor, Grantee::Group(&group), &perms, now).await?
            };
            (changed, format!("group {:?}", group.name))
        }
        (None, None) => unreachable!("clap requires --user or --group"),
    };
    tx.commit().await?;
    let verb = if is_grant { "Granted" } else { "Revoked" };
    if changed.is_empty() {
        println!("Nothing to change for {whom}.");
    } else {
        let names: Vec<&str> = changed.iter().map(PermissionName::as_str).collect();
        let prep = if is_grant { "to" } else { "from" };
        println!("{verb} {} {prep} {whom}.", names.join(", "));
    }
    Ok(())
}

async fn check(ladder: &Ladder, username: &str, perms: &[String], json: bool) -> Result<ExitCode> {
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

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn progress_bar(count: u64, what: &str) -> Result<indicatif::ProgressBar> {
    use std::io::IsTerminal;

    use indicatif::{ProgressBar, ProgressStyle};

    if !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    Ok(ProgressBar::new(count).with_style(
        ProgressStyle::with_template(&format!(
            "seeding {what} [{{bar:40}}] {{human_pos}}/{{human_len}} {{per_sec}} eta {{eta}}"
        ))
        .map_err(|e| anyhow::anyhow!(e))?
        .progress_chars("=> "),
    ))
}

/// `ladder seed --requests M`: pending requests on the first track.
async fn seed_requests(ladder: &Ladder, count: u64, rng_seed: u64) -> Result<()> {
    let bar = progress_bar(count, "requests")?;
    let started = std::time::Instant::now();
    let report =
        crate::seed::seed_requests(ladder, count, rng_seed, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "Seeded {} pending requests on track {} in {:.1} s (the oldest {} days old).",
        report.requests,
        report.track,
        started.elapsed().as_secs_f64(),
        report.oldest_age / 86_400
    );
    println!(
        "No emails were queued for them, and approvers are first reminded a full remind_after from now."
    );
    Ok(())
}

/// `ladder seed --users N`: a progress bar on stderr (only on a terminal), a summary on stdout.
async fn seed(ladder: &Ladder, count: u64, rng_seed: u64) -> Result<()> {
    let bar = progress_bar(count, "users")?;
    let started = std::time::Instant::now();
    let report = crate::seed::seed_users(&ladder.db, count, ladder.clock.now(), rng_seed, |done| {
        bar.set_position(done)
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "Seeded {} users in {secs:.1} s ({:.0} users/s).",
        report.users,
        report.users as f64 / secs
    );
    for (name, members) in &report.groups {
        println!("  {name}: {members}");
    }
    println!("  no group: {}", report.no_group);
    println!(
        "  {} directly: {}; inactive: {}",
        report.direct_permission(),
        report.direct,
        report.inactive
    );
    if !report.created_groups.is_empty() {
        println!("Created groups: {}.", report.created_groups.join(", "));
    }
    if !report.granted_groups.is_empty() {
        println!(
            "Gave the demo's permissions to groups that held none: {}.",
            report.granted_groups.join(", ")
        );
    }
    println!(
        "Seeded users have no usable password (password_hash is NULL) and cannot sign in; \
         set one with `ladder user set-password`."
    );
    Ok(())
}

async fn serve(mut ladder: Ladder, demo: bool) -> Result<()> {
    if demo {
        let mut conn = ladder.db.acquire().await?;
        let has_users: Option<i64> = sqlx::query_scalar("select user_id from users limit 1")
            .fetch_optional(&mut *conn)
            .await?;
        drop(conn);
        if has_users.is_none() {
            let fixed = std::env::var("LADDER_DEMO_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty());
            for line in ladder.setup_tracks().await? {
                println!("{line}");
            }
            let accounts = demo::seed(&ladder, fixed.as_deref()).await?;
            output::demo(&accounts, fixed.is_some());
        } else {
            println!("The database already has users; the demo was not seeded again.");
        }
    }
    // A broken track does not stop the server: it refuses approvals until fixed.
    for problem in ladder.check_tracks().await? {
        tracing::warn!(%problem, "promotion track refuses approvals");
        eprintln!("warning: {problem}");
    }
    crate::web::serve(ladder).await
}
