//! `ladder seed --users N`: bulk-generates realistic users for demos and benchmarks.
//!
//! Each person comes from `names` (a weighted name, a username like
//! `jsmith4821`, a sign-up time over the past four years). About 70% join
//! Writers, 10% Senior Writers, 3% Editors (the demo's groups, created when
//! missing and given the demo's permissions when they hold none), the rest no
//! group; 5% also hold `blog.view_post` directly; 2% are inactive.
//!
//! Seeded users have no usable password (`password_hash` is NULL): hashing a
//! million Argon2 passwords would take hours. They cannot sign in until a
//! password is set.
//!
//! Speed: rows go in as multi-row INSERTs of [`BATCH_ROWS`] rows, all in one
//! transaction, so the whole seed, its one `user.seed` audit event and its one
//! permission-epoch bump commit together or not at all. On SQLite the FTS5
//! triggers keep `users_search` in step row by row; that is fast enough
//! (see docs/benchmarks.md), so they are left alone.

use std::collections::HashSet;

use serde_json::json;

use super::{demo, names::Generated, names::Names, rng::Rng};
use crate::{
    Error, Result,
    accounts::groups,
    actor::{Actor, Source},
    audit::{self, AuditEntry},
    binds,
    db::{Backend, Conn, Db, Flag, Sql},
    permissions::{self, PermissionName, grants},
};

/// Rows per users INSERT. A row binds [`SQLITE_PARAMS_PER_ROW`] values on
/// SQLite, which allows at most 32766 bound parameters per statement, and
/// [`PG_PARAMS_PER_ROW`] on PostgreSQL (at most 65535).
pub const BATCH_ROWS: usize = 5_000;
const SQLITE_PARAMS_PER_ROW: usize = 6;
const PG_PARAMS_PER_ROW: usize = 5;
const _: () = assert!(BATCH_ROWS * SQLITE_PARAMS_PER_ROW <= 32_766);
const _: () = assert!(BATCH_ROWS * PG_PARAMS_PER_ROW <= 65_535);

/// SQLite page cache (KiB) for the loading connection; the default is 2 MiB.
const SQLITE_CACHE_KIB: u32 = 256 * 1024;

/// The seeded groups (the demo's) and their share of users in per mille. A
/// group that is missing or holds no permissions gets the demo's
/// ([`demo::permissions_of`]).
const GROUPS: &[(&str, u32)] = &[("Writers", 700), ("Senior Writers", 100), ("Editors", 30)];
/// Share (per mille) of users granted [`DIRECT_PERM`] directly.
const DIRECT_PER_MILLE: u32 = 50;
const DIRECT_PERM: &str = "blog.view_post";

/// What a seed did.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub users: u64,
    /// (group name, members added), in [`GROUPS`] order.
    pub groups: Vec<(String, u64)>,
    /// Users in no group.
    pub no_group: u64,
    /// Users granted `blog.view_post` directly.
    pub direct: u64,
    pub inactive: u64,
    /// Groups this seed had to create.
    pub created_groups: Vec<String>,
    /// Groups that held no permissions and were given the demo's.
    pub granted_groups: Vec<String>,
    pub first_user_id: Option<i64>,
    pub last_user_id: Option<i64>,
}

impl SeedReport {
    pub fn direct_permission(&self) -> &'static str {
        DIRECT_PERM
    }
}

/// Creates `count` users in one transaction, calling `progress(created_so_far)`
/// after each batch. `rng_seed` makes the generated data repeatable.
pub async fn seed_users(
    db: &Db,
    count: u64,
    now: i64,
    rng_seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport> {
    if count == 0 {
        return Err(Error::invalid("users", "must be at least 1"));
    }
    let backend = db.backend();
    let mut conn = db.acquire().await?;
    let mut cache_size = None;
    if backend == Backend::Sqlite {
        // A bigger page cache for this connection while it loads: index pages
        // stay in memory instead of spilling to the WAL and being read back.
        let sql: &mut dyn Sql = &mut conn;
        let old: i64 = sql.fetch_one("pragma cache_size", binds![]).await?;
        cache_size = Some(old);
        sql.execute(
            &format!("pragma cache_size = -{SQLITE_CACHE_KIB}"),
            binds![],
        )
        .await?;
    }
    let result = seed_in(&mut conn, backend, count, now, rng_seed, &mut progress).await;
    if let Some(old) = cache_size {
        let _ = Sql::execute(&mut conn, &format!("pragma cache_size = {old}"), binds![]).await;
    }
    drop(conn);
    let report = result?;
    if backend == Backend::Postgres {
        // After a bulk load: fresh statistics, so the planner knows how common
        // a search term is, and the visibility map and the trigram index's
        // pending list done now rather than by autovacuum under live traffic.
        let mut conn = db.acquire().await?;
        Sql::execute(
            &mut conn,
            "vacuum (analyze) users, user_groups, user_permissions",
            binds![],
        )
        .await?;
    }
    Ok(report)
}

async fn seed_in(
    conn: &mut Conn,
    backend: Backend,
    count: u64,
    now: i64,
    rng_seed: u64,
    progress: &mut impl FnMut(u64),
) -> Result<SeedReport> {
    use sqlx::Connection;
    let system = Actor::system(Source::Cli);
    // A transaction of this connection's own (`Sql` has none): the cache_size
    // set above applies to it. As Db::begin: on SQLite take the write lock up front.
    let mut tx = conn
        .begin_with(match backend {
            Backend::Sqlite => "begin immediate",
            Backend::Postgres => "begin",
        })
        .await?;

    let mut report = SeedReport {
        users: 0,
        groups: GROUPS.iter().map(|(n, _)| (n.to_string(), 0)).collect(),
        no_group: 0,
        direct: 0,
        inactive: 0,
        created_groups: Vec::new(),
        granted_groups: Vec::new(),
        first_user_id: None,
        last_user_id: None,
    };
    let mut group_ids = Vec::with_capacity(GROUPS.len());
    let mut made = Vec::with_capacity(GROUPS.len());
    for (name, _) in GROUPS {
        let (group, created) = groups::find_or_create(&mut *tx, &system, name, now).await?;
        if created {
            report.created_groups.push(group.name.clone());
        }
        group_ids.push(group.group_id);
        made.push(group);
    }
    // A group that holds nothing (new, or made by a track's setup) gets the
    // demo's permissions; one with permissions is left as it is. Editors (the
    // last) first: a track's approvers must already hold what approval grants.
    let mut granted = Vec::new();
    for ((name, _), group) in GROUPS.iter().zip(&made).rev() {
        if permissions::catalog::of_group(&mut *tx, group.group_id)
            .await?
            .is_empty()
        {
            let perms = demo::permissions_of(name)?;
            grants::grant(
                &mut *tx,
                &system,
                grants::Grantee::Group(group),
                &perms,
                now,
            )
            .await?;
            granted.push(group.name.clone());
        }
    }
    granted.reverse();
    report.granted_groups = granted;
    let direct_perm_id =
        permissions::catalog::resolve(&mut *tx, &[PermissionName::parse(DIRECT_PERM)?]).await?[0]
            .permission_id;

    // Names already taken, so generation never proposes one twice. ON CONFLICT
    // below still covers a user created by someone else meanwhile.
    let mut taken: HashSet<String> = {
        let sql: &mut dyn Sql = &mut *tx;
        sql.fetch_all::<String>("select username_key from users", binds![])
            .await?
            .into_iter()
            .collect()
    };

    let mut rng = Rng::new(rng_seed);
    let names = Names::new();
    let full_sql = users_insert_sql(backend, BATCH_ROWS);
    let mut batch: Vec<Generated> = Vec::with_capacity(BATCH_ROWS);
    let mut empty_batches = 0;
    while report.users < count {
        let rows = (count - report.users).min(BATCH_ROWS as u64) as usize;
        batch.clear();
        while batch.len() < rows {
            let person = names.generate(&mut rng, now);
            if taken.insert(person.username.clone()) {
                batch.push(person);
            }
        }
        let partial_sql;
        let sql = if rows == BATCH_ROWS {
            &full_sql
        } else {
            partial_sql = users_insert_sql(backend, rows);
            &partial_sql
        };
        // Not through `Sql`, which takes `$n` only: see `users_insert_sql`.
        let mut query = sqlx::query_as::<_, (i64, i64, Flag)>(sql);
        for person in batch.drain(..) {
            if backend == Backend::Sqlite {
                // `?` placeholders are positional: the key is bound as well.
                query = query.bind(person.username.clone());
            }
            query = query
                .bind(person.username)
                .bind(person.email)
                .bind(person.display_name)
                .bind(person.is_active)
                .bind(person.created_at);
        }
        let inserted = query.fetch_all(&mut *tx).await?;
        if inserted.is_empty() {
            empty_batches += 1;
            if empty_batches >= 3 {
                return Err(Error::Conflict(
                    "could not find free usernames; is another seed running?".into(),
                ));
            }
            continue;
        }
        empty_batches = 0;

        let mut memberships = String::new();
        let mut direct = String::new();
        for &(user_id, created_at, Flag(active)) in &inserted {
            if !active {
                report.inactive += 1;
            }
            report.first_user_id = Some(report.first_user_id.map_or(user_id, |f| f.min(user_id)));
            report.last_user_id = Some(report.last_user_id.map_or(user_id, |l| l.max(user_id)));
            match pick_group(&mut rng) {
                Some(i) => {
                    push_row(&mut memberships, [user_id, group_ids[i], created_at]);
                    report.groups[i].1 += 1;
                }
                None => report.no_group += 1,
            }
            if rng.per_mille() < DIRECT_PER_MILLE {
                push_row(&mut direct, [user_id, direct_perm_id, created_at]);
                report.direct += 1;
            }
        }
        // Integer literals of our own making: no injection, no parameter limit.
        // Not through `Sql`: each statement is new, so it stays out of the
        // connection's statement cache (`persistent(false)`).
        if !memberships.is_empty() {
            sqlx::query(&format!(
                "insert into user_groups (user_id, group_id, created_at) values {memberships}"
            ))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        }
        if !direct.is_empty() {
            sqlx::query(&format!(
                "insert into user_permissions (user_id, permission_id, created_at) values {direct}"
            ))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        }
        report.users += inserted.len() as u64;
        progress(report.users);
    }

    permissions::bump_epoch(&mut *tx).await?;
    audit::record(
        &mut *tx,
        &system,
        AuditEntry::new(
            "user.seed",
            "user",
            None,
            &format!("{} seeded users", report.users),
        )
        .after(report.audit_state()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

impl SeedReport {
    fn audit_state(&self) -> serde_json::Value {
        let groups: serde_json::Map<String, serde_json::Value> = self
            .groups
            .iter()
            .map(|(name, n)| (name.clone(), json!(n)))
            .collect();
        json!({
            "users": self.users,
            "first_user_id": self.first_user_id,
            "last_user_id": self.last_user_id,
            "groups": groups,
            "no_group": self.no_group,
            "direct_permissions": { DIRECT_PERM: self.direct },
            "inactive": self.inactive,
            "created_groups": self.created_groups,
            "granted_groups": self.granted_groups,
            "password": "none (password_hash is NULL; cannot sign in)",
        })
    }
}

/// The multi-row users INSERT for `rows` rows; it skips a name taken meanwhile
/// and returns what it inserted. Generated usernames are lower-case ASCII, so
/// the username is its own key.
///
/// PostgreSQL gets `$n` placeholders (the username's used twice). SQLite gets
/// plain `?`, binding the username twice: sqlx resolves every `$n` through
/// `sqlite3_bind_parameter_name`, which scans SQLite's list of parameter names
/// linearly, so a statement with P named parameters costs O(P²) to bind. At
/// 25,000 parameters that made a 1M-user seed take 333 s instead of about 30 s.
fn users_insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = String::with_capacity(200 + rows * 48);
    sql.push_str(
        "insert into users (username, username_key, email, display_name, password_hash, \
         is_active, is_staff, is_superuser, created_at) values ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        match backend {
            Backend::Sqlite => sql.push_str("(?,?,?,?,null,?,false,false,?)"),
            Backend::Postgres => {
                let b = r * PG_PARAMS_PER_ROW;
                sql.push_str(&format!(
                    "(${u},${u},${e},${d},null,${a},false,false,${c})",
                    u = b + 1,
                    e = b + 2,
                    d = b + 3,
                    a = b + 4,
                    c = b + 5
                ));
            }
        }
    }
    sql.push_str(" on conflict (username_key) do nothing returning user_id, created_at, is_active");
    sql
}

fn push_row(values: &mut String, row: [i64; 3]) {
    use std::fmt::Write;
    if !values.is_empty() {
        values.push(',');
    }
    let _ = write!(values, "({},{},{})", row[0], row[1], row[2]);
}

/// Index into [`GROUPS`], or None for no group.
fn pick_group(rng: &mut Rng) -> Option<usize> {
    let mut roll = rng.per_mille();
    for (i, (_, share)) in GROUPS.iter().enumerate() {
        if roll < *share {
            return Some(i);
        }
        roll -= share;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_mix_is_close_to_the_shares() {
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[pick_group(&mut rng).unwrap_or(3)] += 1;
        }
        for (count, expected) in counts.iter().zip([70_000, 10_000, 3_000, 17_000]) {
            assert!((*count as i64 - expected).abs() < 1_000, "{counts:?}");
        }
    }

    #[test]
    fn every_seeded_group_is_a_demo_group() {
        for (name, _) in GROUPS {
            assert!(
                demo::permissions_of(name).is_ok_and(|p| !p.is_empty()),
                "{name}"
            );
        }
    }

    #[test]
    fn a_full_batch_stays_under_the_parameter_limits() {
        let sql = users_insert_sql(Backend::Postgres, BATCH_ROWS);
        assert!(sql.contains(&format!("${}", BATCH_ROWS * PG_PARAMS_PER_ROW)));
        assert!(!sql.contains(&format!("${}", BATCH_ROWS * PG_PARAMS_PER_ROW + 1)));
        let sql = users_insert_sql(Backend::Sqlite, BATCH_ROWS);
        assert_eq!(sql.matches('?').count(), BATCH_ROWS * SQLITE_PARAMS_PER_ROW);
        assert!(!sql.contains('$'));
    }
}
