//! Benchmarks for the permission core; see `docs/benchmarks.md`.
//!
//! Run with `cargo bench --bench permissions`.
//!
//! Every benchmark works on one SQLite database in a fresh temp dir, opened
//! through `Ladder::open` (WAL, the real migrations, the real catalog sync).
//! The subject user is in 5 groups and holds 50 distinct permissions: 10
//! granted directly and 8 through each group. Around them sit other users and
//! groups with their own grants, so the indexes have something to skip.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ladder::{
    Ladder,
    accounts::{Email, GroupName, User, Username, groups, users},
    actor::{Actor, Source},
    config::{ResourceSettings, Settings},
    permissions::{
        PermissionCache, PermissionName, effective,
        grants::{self, Grantee},
    },
};
use tokio::runtime::Runtime;

/// The app every benchmark permission lives in.
const APP: &str = "bench";
/// `bench.widget` gets the four defaults plus this many custom permissions.
const CUSTOM_PERMS: usize = 46;
const SUBJECT_GROUPS: usize = 5;
const PERMS_PER_SUBJECT_GROUP: usize = 8;
const SUBJECT_DIRECT: usize = 10;
/// Background data: other groups and users with their own grants.
const OTHER_GROUPS: usize = 20;
const OTHER_USERS: usize = 200;

/// A permission the subject holds (through the last group), and one it does not.
const HELD: &str = "bench.perm_45";
const NOT_HELD: &str = "blog.publish_post";

struct Fixture {
    rt: Runtime,
    ladder: Ladder,
    subject_id: i64,
    // Keeps the database directory alive for the whole run.
    _dir: tempfile::TempDir,
}

/// All 50 permission names of `bench.widget`, defaults first.
fn bench_perm_names() -> Vec<PermissionName> {
    let mut names: Vec<PermissionName> = ["add", "change", "delete", "view"]
        .iter()
        .map(|verb| PermissionName::from_parts(APP, &format!("{verb}_widget")))
        .collect();
    names.extend(
        (0..CUSTOM_PERMS).map(|i| PermissionName::from_parts(APP, &format!("perm_{i:02}"))),
    );
    names
}

fn setup() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut settings = Settings::with_database_url(&url);
    settings.resources.push(ResourceSettings {
        app: APP.into(),
        model: "widget".into(),
        permissions: (0..CUSTOM_PERMS)
            .map(|i| (format!("perm_{i:02}"), format!("Can do thing {i}")))
            .collect(),
    });

    let (ladder, subject_id) = rt.block_on(async {
        let ladder = Ladder::open(settings).await.expect("open ladder");
        let subject_id = populate(&ladder).await;
        (ladder, subject_id)
    });
    Fixture {
        rt,
        ladder,
        subject_id,
        _dir: dir,
    }
}

async fn new_user(conn: &mut ladder::db::Conn, actor: &Actor, name: &str, now: i64) -> User {
    users::create(
        conn,
        actor,
        users::NewUser {
            username: Username::parse(name).expect("username"),
            email: Email::parse(&format!("{name}@example.com")).expect("email"),
            display_name: String::new(),
            password: None,
            is_staff: false,
            is_service: false,
        },
        now,
    )
    .await
    .expect("create user")
}

/// Builds the data in one transaction; returns the subject's user id.
async fn populate(ladder: &Ladder) -> i64 {
    let actor = Actor::system(Source::Cli);
    let now = ladder.clock.now();
    let perms = bench_perm_names();
    assert_eq!(perms.len(), 50);
    let mut tx = ladder.db.pool().begin().await.expect("begin");

    // The subject: 10 direct permissions, then 8 more through each of 5 groups.
    let subject = new_user(&mut tx, &actor, "subject", now).await;
    grants::grant(
        &mut *tx,
        &actor,
        Grantee::User(&subject),
        &perms[..SUBJECT_DIRECT],
        now,
    )
    .await
    .expect("grant direct");
    for g in 0..SUBJECT_GROUPS {
        let name = GroupName::parse(&format!("team-{g}")).expect("group name");
        let group = groups::create(&mut *tx, &actor, &name, now)
            .await
            .expect("create group");
        let start = SUBJECT_DIRECT + g * PERMS_PER_SUBJECT_GROUP;
        grants::grant(
            &mut *tx,
            &actor,
            Grantee::Group(&group),
            &perms[start..start + PERMS_PER_SUBJECT_GROUP],
            now,
        )
        .await
        .expect("grant group");
        groups::add_member(&mut *tx, &actor, &group, &subject, now)
            .await
            .expect("add member");
    }

    // Background: other groups with overlapping grants, other users in them.
    let mut others = Vec::with_capacity(OTHER_GROUPS);
    for g in 0..OTHER_GROUPS {
        let name = GroupName::parse(&format!("other-{g}")).expect("group name");
        let group = groups::create(&mut *tx, &actor, &name, now)
            .await
            .expect("create group");
        let picked: Vec<PermissionName> = (0..10)
            .map(|k| perms[(g * 7 + k * 3) % 50].clone())
            .collect();
        grants::grant(&mut *tx, &actor, Grantee::Group(&group), &picked, now)
            .await
            .expect("grant group");
        others.push(group);
    }
    for u in 0..OTHER_USERS {
        let user = new_user(&mut tx, &actor, &format!("user-{u:04}"), now).await;
        let picked: Vec<PermissionName> = (0..3)
            .map(|k| perms[(u * 11 + k * 17) % 50].clone())
            .collect();
        grants::grant(&mut *tx, &actor, Grantee::User(&user), &picked, now)
            .await
            .expect("grant user");
        for k in 0..2 {
            let group = &others[(u + k * 7) % OTHER_GROUPS];
            groups::add_member(&mut *tx, &actor, group, &user, now)
                .await
                .expect("add member");
        }
    }
    tx.commit().await.expect("commit");
    subject.user_id
}

fn benches(c: &mut Criterion) {
    let fx = setup();
    let rt = &fx.rt;
    // sqlx spawns a task when a pooled connection is dropped; keep a runtime
    // context for drops that happen outside `block_on`.
    let _rt_guard = rt.enter();
    let uid = fx.subject_id;

    // One connection held for the whole run, as a request handler would hold
    // one for the request; pool acquisition is measured separately below.
    let mut conn = rt.block_on(fx.ladder.db.acquire()).expect("acquire");

    // Check the data shape before timing anything.
    let loaded = rt.block_on(effective::load(&mut conn, uid)).expect("load");
    assert_eq!(loaded.granted().len(), 50, "subject holds 50 permissions");
    assert!(loaded.has_perm(HELD));
    assert!(!loaded.has_perm(NOT_HELD));
    let group_count = rt
        .block_on(users::group_names(&mut conn, uid))
        .expect("groups")
        .len();
    assert_eq!(group_count, SUBJECT_GROUPS);

    // 1. In-memory checks on a snapshot: no I/O at all.
    let snapshot = rt
        .block_on(fx.ladder.permissions.snapshot(&mut conn, uid))
        .expect("snapshot");
    let mut group = c.benchmark_group("cached_has_perm");
    group.bench_function("has_perm_hit", |b| {
        b.iter(|| snapshot.has_perm(black_box(HELD)))
    });
    group.bench_function("has_perm_miss", |b| {
        b.iter(|| snapshot.has_perm(black_box(NOT_HELD)))
    });

    // 1b. The cache's normal path: read the epoch row from SQLite, find the
    // entry in memory, then check. The epoch read dominates.
    let cache = &fx.ladder.permissions;
    group.bench_function("snapshot_then_has_perm", |b| {
        b.iter(|| {
            rt.block_on(async {
                let perms = cache
                    .snapshot(&mut conn, black_box(uid))
                    .await
                    .expect("snapshot");
                perms.has_perm(black_box(HELD))
            })
        })
    });
    // Nothing writes during the run, so the epoch never moved: one entry, all hits.
    assert_eq!(cache.len(), 1, "one cached user");

    // 1c. The same, plus taking a connection from the pool, as a request that
    // checks once and returns its connection would pay.
    let pool = &fx.ladder.db;
    group.bench_function("acquire_snapshot_then_has_perm", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut conn = pool.acquire().await.expect("acquire");
                let perms = cache
                    .snapshot(&mut conn, black_box(uid))
                    .await
                    .expect("snapshot");
                perms.has_perm(black_box(HELD))
            })
        })
    });
    group.finish();

    // 2. Effective permissions from the database: two queries, 50 rows.
    let mut group = c.benchmark_group("effective_from_db");
    group.bench_function("load_5_groups_50_perms", |b| {
        b.iter(|| {
            rt.block_on(effective::load(&mut conn, black_box(uid)))
                .expect("load")
        })
    });

    // 2b. A check with the cache disabled (cache_size = 0): epoch read + load.
    let uncached = PermissionCache::new(0);
    group.bench_function("uncached_snapshot_then_has_perm", |b| {
        b.iter(|| {
            rt.block_on(async {
                let perms = uncached
                    .snapshot(&mut conn, black_box(uid))
                    .await
                    .expect("snapshot");
                perms.has_perm(black_box(HELD))
            })
        })
    });
    group.finish();

    let db = fx.ladder.db.clone();
    rt.block_on(async move {
        drop(conn);
        db.close().await;
    });
}

criterion_group!(permissions, benches);
criterion_main!(permissions);
