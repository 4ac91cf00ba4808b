//! The `ladder` command line. Parses arguments, opens Ladder, runs one command.
//!
//! Exit codes: 0 done; 1 `check` found a permission denied; 2 bad input or a
//! refused change (one line on stderr, nothing changed); 3 Ladder itself failed.

mod acting;
mod commands;
mod groups;
mod output;
mod permissions;
mod seeding;
mod tokens;
mod users;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::{Error, config::Settings};

#[derive(Parser)]
#[command(
    name = "ladder",
    version,
    about = "Django's permission model as a standalone service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply database migrations and create newly declared permissions.
    Migrate,
    /// Create the one superuser (refused if one exists).
    Createsuperuser(CreateSuperuser),
    /// Move the superuser role to another active user, in one transaction.
    TransferSuperuser {
        /// The user who becomes the superuser.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage API tokens: made for a user, shown once, stored only as a hash.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Grant permissions to a user or a group.
    Grant(GrantArgs),
    /// Revoke permissions from a user or a group.
    Revoke(GrantArgs),
    /// Check permissions: prints allowed or denied with the reason; exits 1 if any is denied.
    Check {
        username: String,
        #[arg(required = true, value_name = "PERM")]
        perms: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// A user's effective permissions.
    Perms {
        username: String,
        /// Show where each permission comes from.
        #[arg(long)]
        explain: bool,
        #[arg(long)]
        json: bool,
    },
    /// The audit log, newest first.
    Audit {
        /// Only events where this user acted or was the target.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Serve the web app (admin console, blog, sign-in) on server.address.
    Serve {
        /// Seed the demo first when the database has no users, and print the accounts.
        #[arg(long)]
        demo: bool,
    },
    /// Run scheduled jobs by hand.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Seed the blog example (groups Writers, Senior Writers, Editors and five accounts).
    Demo,
    /// Bulk-create realistic users (no usable passwords) and pending promotion
    /// requests, for demos and benchmarks.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["users", "requests"])))]
    Seed {
        /// How many users to create.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        users: Option<u64>,
        /// How many pending requests to open on the first promotion track, from
        /// users who may ask (after the users above are created).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        requests: Option<u64>,
        /// Repeat an earlier run's data exactly: the seed it printed. Random
        /// when left out.
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Run one job once, now, and print what it did.
    Run {
        #[arg(value_enum)]
        job: crate::jobs::JobName,
    },
}

#[derive(Args)]
pub struct CreateSuperuser {
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: String,
    /// Never prompt: read the password from LADDER_SUPERUSER_PASSWORD or --password-stdin.
    #[arg(long)]
    pub no_input: bool,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. Without a password they cannot sign in until one is set.
    Add {
        username: String,
        /// Required, except for a service account.
        #[arg(long, required_unless_present = "service")]
        email: Option<String>,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "service")]
        password_stdin: bool,
        /// Make the user staff (superuser only).
        #[arg(long)]
        staff: bool,
        /// A service account: never signs in with a password, holds API
        /// tokens for other apps.
        #[arg(long)]
        service: bool,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// List users, ordered by username.
    List {
        /// Case-insensitive text in username, email or display name.
        #[arg(long)]
        search: Option<String>,
        /// Only members of this group.
        #[arg(long)]
        group: Option<String>,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show one user with groups and direct permissions.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a user: they keep their grants but hold no permissions.
    Deactivate {
        username: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Reactivate a user.
    Activate {
        username: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Set a user's password, read from the first line of standard input.
    SetPassword {
        username: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        name: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// List groups with member and permission counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a group's permissions and members.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a user to a group (grants every permission of the group).
    AddUser {
        group: String,
        username: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Remove a user from a group.
    RemoveUser {
        group: String,
        username: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make an API token for a user. The token is printed once, alone on the
    /// last line; Ladder keeps only its hash.
    Create {
        username: String,
        /// Tells the token apart; unique among the user's live tokens.
        #[arg(long)]
        name: String,
        /// Lifetime: a number and a unit, as 90d, 12h or 30m (default: no expiry).
        #[arg(long, value_name = "LIFETIME")]
        expires: Option<String>,
        /// Narrow the token to this permission, which the user must hold
        /// (repeat for more): it then holds only these, while the user does.
        #[arg(long = "perm", value_name = "PERM")]
        perms: Vec<String>,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// A user's tokens, newest first, revoked and expired ones included (never the secrets).
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id: it fails on its very next use.
    Revoke {
        token_id: i64,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false, id = "grantee")]
pub struct GranteeArg {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Args)]
pub struct GrantArgs {
    #[command(flatten)]
    pub grantee: GranteeArg,
    /// Permissions as app_label.codename.
    #[arg(required = true, value_name = "PERM")]
    pub perms: Vec<String>,
    #[command(flatten)]
    pub actor: ActorArg,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `--json` on a write: one JSON object, with the `revision` it committed.
#[derive(Args, Clone, Copy)]
pub struct JsonArg {
    /// Print one JSON object, with the revision the change committed.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ActorArg {
    /// Act as this user, so the delegation rules apply (default: the superuser).
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: Option<String>,
}

/// Runs the CLI and returns the process exit code.
pub async fn run() -> ExitCode {
    if !arguments_are_lines() {
        return ExitCode::from(2);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.to_string();
            // The first line, with the indented lines that finish it (the
            // missing arguments' names, say).
            let mut lines = rendered.lines();
            let mut first = lines.next().unwrap_or("invalid arguments").to_string();
            for more in lines.take_while(|l| l.starts_with(' ') && !l.trim().is_empty()) {
                first = format!("{first} {}", more.trim());
            }
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match commands::dispatch(cli.command, settings).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            if err.is_user_error() {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}

/// Every argument is one line of text: a control character is bad input
/// before it can reach a query or the terminal. Says which, on stderr.
fn arguments_are_lines() -> bool {
    for (n, arg) in std::env::args_os().enumerate().skip(1) {
        if let Some(c) =
            crate::text::forbidden_char(&arg.to_string_lossy(), crate::text::Lines::One)
        {
            eprintln!("error: argument {n} {}", crate::text::refusal(c));
            return false;
        }
    }
    true
}

fn one_line(err: &Error) -> String {
    err.to_string().replace('\n', " ")
}
