//! The blog example: three groups and five accounts, seeded idempotently.

use crate::{
    Error, Ladder, Result,
    accounts::{Email, NewPassword, PasswordHash, Username, groups, password, users},
    actor::{Actor, Source},
    db::{Finish, Sql, Transaction},
    permissions::{PermissionName, grants},
};

/// The demo's groups and their permissions: the one definition that `ladder
/// demo` and `ladder seed --users` both grant from. Editors first, the order
/// they are granted in: a track's approvers must already hold what approval grants.
pub const GROUPS: &[(&str, &[&str])] = &[
    (
        "Editors",
        &[
            "blog.add_post",
            "blog.change_post",
            "blog.delete_post",
            "blog.view_post",
            "blog.publish_post",
            "blog.feature_post",
            "auth.view_user",
        ],
    ),
    (
        "Writers",
        &["blog.add_post", "blog.change_post", "blog.view_post"],
    ),
    (
        "Senior Writers",
        &[
            "blog.add_post",
            "blog.change_post",
            "blog.view_post",
            "blog.publish_post",
        ],
    ),
];

/// The permissions [`GROUPS`] gives the demo group `name`.
pub fn permissions_of(name: &str) -> Result<Vec<PermissionName>> {
    let (_, perms) = GROUPS
        .iter()
        .find(|(group, _)| *group == name)
        .ok_or_else(|| Error::NotFound(format!("demo group {name:?}")))?;
    PermissionName::parse_all(perms)
}

/// (username, group, superuser)
const ACCOUNTS: &[(&str, Option<&str>, bool)] = &[
    ("admin", None, true),
    ("alice", Some("Writers"), false),
    ("bob", Some("Writers"), false),
    ("erin", Some("Editors"), false),
    ("ed", Some("Editors"), false),
];

/// One demo account and, when it was set by this run, its password.
pub struct DemoAccount {
    pub username: String,
    pub role: String,
    pub password: Option<String>,
}

/// Seeds the demo. `fixed_password` (from `LADDER_DEMO_PASSWORD`) is given to
/// every demo account; otherwise new accounts get generated passwords and
/// existing ones are left alone.
pub async fn seed(ladder: &Ladder, fixed_password: Option<&str>) -> Result<Vec<DemoAccount>> {
    let now = ladder.clock.now();
    let system = Actor::system(Source::Cli);
    // Every password is chosen and hashed before the transaction opens
    // (argon2 is slow); one that ends up unused costs only its hash.
    let mut passwords = Vec::new();
    for (name, _, _) in ACCOUNTS {
        let chosen = fixed_password.map_or_else(password::generate, str::to_string);
        let hash = NewPassword::parse(&chosen, name)?.hash().await?;
        passwords.push((chosen, hash));
    }
    ladder
        .db
        .run(Demo {
            system,
            passwords,
            fixed: fixed_password.is_some(),
            now,
        })
        .await
}

/// The demo's groups and accounts, in one transaction; passwords hashed before.
struct Demo {
    system: Actor,
    passwords: Vec<(String, PasswordHash)>,
    /// Every account's password was fixed (`LADDER_DEMO_PASSWORD`): existing ones get it too.
    fixed: bool,
    now: i64,
}

impl Transaction for Demo {
    type Output = Vec<DemoAccount>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Vec<DemoAccount>>> {
        let Demo {
            system,
            passwords,
            fixed,
            now,
        } = self;

        for (name, perms) in GROUPS {
            let (group, _) = groups::find_or_create(sql, &system, name, now).await?;
            let perms = PermissionName::parse_all(perms)?;
            grants::grant(sql, &system, grants::Grantee::Group(&group), &perms, now).await?;
        }

        let mut accounts = Vec::new();
        for ((name, group, superuser), prepared) in ACCOUNTS.iter().zip(passwords) {
            let existing = users::find_by_username(sql, name).await?;
            let user = match existing {
                Some(user) => user,
                None => {
                    if *superuser && let Some(other) = users::superuser(sql).await? {
                        accounts.push(DemoAccount {
                            username: other.username,
                            role: "superuser (already existed; no demo admin created)".into(),
                            password: None,
                        });
                        continue;
                    }
                    let (chosen, pw) = prepared;
                    let username = Username::parse(name)?;
                    let email = Email::parse(&format!("{name}@example.com"))?;
                    let user = if *superuser {
                        users::create_superuser(sql, &system, username, email, pw, now).await?
                    } else {
                        users::create(
                            sql,
                            &system,
                            users::NewUser {
                                username,
                                email,
                                display_name: capitalised(name),
                                password: Some(pw),
                                is_staff: false,
                                is_service: false,
                            },
                            now,
                        )
                        .await?
                    };
                    accounts.push(DemoAccount {
                        username: user.username.clone(),
                        role: role(*group, *superuser),
                        password: Some(chosen),
                    });
                    add_to_group(sql, &system, &user, *group, now).await?;
                    continue;
                }
            };
            // An existing account keeps its password unless one was fixed.
            let shown = if fixed {
                let (chosen, hash) = prepared;
                users::set_password(sql, &system, &user, hash, now).await?;
                Some(chosen)
            } else {
                None
            };
            add_to_group(sql, &system, &user, *group, now).await?;
            accounts.push(DemoAccount {
                username: user.username,
                role: role(*group, *superuser),
                password: shown,
            });
        }
        Ok(Finish::Commit(accounts))
    }
}

async fn add_to_group(
    sql: &mut dyn Sql,
    actor: &Actor,
    user: &users::User,
    group: Option<&str>,
    now: i64,
) -> Result<()> {
    if let Some(group) = group {
        let group = groups::get_by_name(sql, group).await?;
        groups::add_member(sql, actor, &group, user, now).await?;
    }
    Ok(())
}

fn role(group: Option<&str>, superuser: bool) -> String {
    match (group, superuser) {
        (_, true) => "superuser".into(),
        (Some(g), _) => g.into(),
        (None, _) => "no group".into(),
    }
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
