//! `dispatch`: opens Ladder and runs one command, each area's in its own
//! module (`users`, `groups`, `tokens`, `permissions`, `seeding`).

use std::process::ExitCode;

use super::{Command, groups, output, permissions, seeding, tokens, users};
use crate::{Ladder, Result, binds, clock::Clock, config::Settings, db::Sql, seed::demo};

pub async fn dispatch(command: Command, settings: Settings) -> Result<ExitCode> {
    let (mut ladder, report) = Ladder::open_reporting(settings, Clock::system()).await?;
    match command {
        Command::Migrate => {
            output::migrate_report(&report);
            seeding::setup_tracks(&mut ladder).await
        }
        Command::Createsuperuser(args) => users::createsuperuser(&ladder, args).await,
        Command::TransferSuperuser { to, json } => {
            users::transfer_superuser(&ladder, to, json).await
        }
        Command::User(cmd) => users::user(&ladder, cmd).await,
        Command::Group(cmd) => groups::group(&ladder, cmd).await,
        Command::Token(cmd) => tokens::token(&ladder, cmd).await,
        Command::Grant(args) => permissions::grant(&ladder, args, true).await,
        Command::Revoke(args) => permissions::grant(&ladder, args, false).await,
        Command::Check {
            username,
            perms,
            json,
        } => return permissions::check(&ladder, &username, &perms, json).await,
        Command::Perms {
            username,
            explain,
            json,
        } => permissions::perms(&ladder, &username, explain, json).await,
        Command::Audit { user, limit, json } => {
            permissions::audit(&ladder, user, limit, json).await
        }
        Command::Serve { demo } => serve(ladder, demo).await,
        Command::Jobs(super::JobsCommand::Run { job }) => run_job(&ladder, job).await,
        Command::Demo => seeding::demo(&mut ladder).await,
        Command::Seed {
            users,
            requests,
            seed,
        } => seeding::seed_all(&mut ladder, users, requests, seed).await,
    }
    .map(|()| ExitCode::SUCCESS)
}

/// `ladder jobs run JOB`: one scheduled job, now.
async fn run_job(ladder: &Ladder, job: crate::jobs::JobName) -> Result<()> {
    let transport = crate::mail::transport::Transport::from_settings(&ladder.settings.mail)?;
    let summary = crate::jobs::run_once(ladder, job, &transport).await?;
    println!("{job}: {summary}");
    Ok(())
}

async fn serve(mut ladder: Ladder, demo: bool) -> Result<()> {
    if demo {
        let mut conn = ladder.db.acquire().await?;
        let sql: &mut dyn Sql = &mut conn;
        let has_users = sql
            .fetch_i64("select user_id from users limit 1", binds![])
            .await?;
        drop(conn);
        if has_users.is_none() {
            let fixed = seeding::demo_password();
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
