//! `ladder seed --users N`: realistic, unique, searchable users with a group
//! mix, recorded as one audit event and one permission-epoch bump; and
//! `--requests M`: pending requests from users who may ask.

use std::collections::{HashMap, HashSet};

use ladder::{
    accounts::{
        Email, Username,
        users::{self, UserFilter, UserSort},
    },
    seed,
};

use crate::helpers::{TestLadder, stderr, stdout};

on_both_backends!(
    seed_creates_realistic_unique_searchable_users,
    seed_refuses_bad_counts_with_exit_2_and_changes_nothing,
    search_pages_agree_with_a_brute_force_search,
    seed_requests_opens_pending_requests_for_users_who_may_ask,
);

#[derive(sqlx::FromRow)]
struct Row {
    username: String,
    username_key: String,
    email: String,
    display_name: String,
    password_hash: Option<String>,
    created_at: i64,
}

async fn epoch(t: &TestLadder) -> i64 {
    sqlx::query_scalar("select version from permission_epoch")
        .fetch_one(t.ladder.db.pool())
        .await
        .unwrap()
}

async fn scalar(t: &TestLadder, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.ladder.db.pool())
        .await
        .unwrap()
}

/// The seeded data is random but repeatable: every test seeds from this, and
/// says so in its output, which a failing test prints.
const SEED: &str = "42";

async fn seed_creates_realistic_unique_searchable_users(t: TestLadder) {
    eprintln!("random data from --seed {SEED}");
    let out = t.cli(&["seed", "--users", "500", "--seed", SEED]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Seeded 500 users"), "{text}");
    assert!(text.contains("no usable password"), "{text}");
    // No progress bar when stderr is not a terminal.
    assert!(stderr(&out).trim().is_empty(), "{}", stderr(&out));
    assert_eq!(t.count("users").await, 500);

    let rows: Vec<Row> = sqlx::query_as(
        "select username, username_key, email, display_name, password_hash, created_at from users",
    )
    .fetch_all(t.ladder.db.pool())
    .await
    .unwrap();
    let names: HashSet<&str> = rows.iter().map(|r| r.username.as_str()).collect();
    assert_eq!(names.len(), 500, "usernames are unique");
    let now = t.now();
    let mut domains = HashSet::new();
    for r in &rows {
        assert_eq!(Username::parse(&r.username).unwrap().key(), r.username_key);
        assert_eq!(
            r.username, r.username_key,
            "generated usernames are lower case"
        );
        let (local, domain) = r.email.split_once('@').unwrap();
        assert_eq!(local, r.username);
        assert_eq!(domain, domain.to_lowercase());
        assert_eq!(Email::parse(&r.email).unwrap().as_str(), r.email);
        domains.insert(domain.to_string());
        assert_eq!(r.display_name.split(' ').count(), 2, "{}", r.display_name);
        assert!(r.password_hash.is_none(), "seeded users have no password");
        assert!(r.created_at <= now);
    }
    assert!(domains.len() >= 5, "several email domains: {domains:?}");
    let oldest = rows.iter().map(|r| r.created_at).min().unwrap();
    assert!(oldest < now - 365 * 24 * 3600, "created_at spans years");

    // The group mix: ~70% Writers, ~10% Senior Writers, ~3% Editors, the rest none.
    let mix: Vec<(String, i64)> = sqlx::query_as(
        "select g.name, count(*) from user_groups ug join groups g on g.group_id = ug.group_id \
         group by g.name",
    )
    .fetch_all(t.ladder.db.pool())
    .await
    .unwrap();
    let mix: HashMap<String, i64> = mix.into_iter().collect();
    assert!((280..=420).contains(&mix["Writers"]), "{mix:?}");
    assert!((20..=90).contains(&mix["Senior Writers"]), "{mix:?}");
    assert!((3..=35).contains(&mix["Editors"]), "{mix:?}");
    let grouped = scalar(&t, "select count(distinct user_id) from user_groups").await;
    assert_eq!(grouped, mix.values().sum::<i64>(), "one group at most each");
    assert!(
        (40..=130).contains(&(500 - grouped)),
        "some in no group: {mix:?}"
    );
    let direct = scalar(&t, "select count(*) from user_permissions").await;
    assert!(
        (5..=55).contains(&direct),
        "some hold blog.view_post directly: {direct}"
    );
    // The groups hold the demo's permissions, so membership means something.
    let writer = sqlx::query_scalar::<_, i64>(
        "select ug.user_id from user_groups ug join groups g on g.group_id = ug.group_id \
         where g.name = 'Writers' limit 1",
    )
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let writer = users::find_by_id(&mut conn, writer).await.unwrap().unwrap();
    drop(conn);
    assert_eq!(
        t.has_perm(&writer, "blog.add_post").await,
        writer.is_active,
        "{}",
        writer.username
    );

    // One audit event for the whole seed.
    let (after,): (String,) = sqlx::query_as(
        "select after_state from audit_events where action = 'user.seed' and source = 'cli'",
    )
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after["users"], 500);

    // Search finds a seeded surname (the trigram index is in step).
    let person = rows
        .iter()
        .find(|r| r.display_name.split(' ').nth(1).unwrap().chars().count() >= 4)
        .unwrap();
    let surname = person.display_name.split(' ').nth(1).unwrap().to_string();
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let found = users::list(
        &mut conn,
        t.ladder.db.backend(),
        &UserFilter {
            search: Some(surname.to_uppercase()),
            limit: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .users;
    assert!(
        found.iter().any(|u| u.username == person.username),
        "searching {surname} finds {}",
        person.username
    );
    assert!(found.iter().all(|u| {
        format!("{} {} {}", u.username, u.email, u.display_name)
            .to_lowercase()
            .contains(&surname.to_lowercase())
    }));
    drop(conn);

    // A second seed adds to the first: one more audit event, one epoch bump.
    let epoch_before = epoch(&t).await;
    let audit_before = t.count("audit_events").await;
    let out = t.cli(&["seed", "--users", "300", "--seed", SEED]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.count("users").await, 800);
    assert_eq!(
        scalar(&t, "select count(distinct username_key) from users").await,
        800
    );
    assert_eq!(epoch(&t).await, epoch_before + 1);
    assert_eq!(t.count("audit_events").await, audit_before + 1);
}

async fn seed_refuses_bad_counts_with_exit_2_and_changes_nothing(t: TestLadder) {
    let before = t.fingerprint().await;
    for args in [
        &["seed", "--users", "0"][..],
        &["seed", "--users", "-5"],
        &["seed", "--users", "lots"],
        &["seed"],
        &["seed", "--requests", "0"],
        // No user may ask yet: refused before anything is written.
        &["seed", "--requests", "5"],
    ] {
        let out = t.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line, got: {err}");
    }
    assert_eq!(t.fingerprint().await, before);
}

/// `users::list` answers a search either by testing rows in sort order or
/// through the trigram index (see its doc); with more users than it tests,
/// both run. Every page, in every order, must be what a brute-force search gives.
async fn search_pages_agree_with_a_brute_force_search(t: TestLadder) {
    seed::seed_users(&t.ladder.db, 6_000, t.now(), 42, |_| {})
        .await
        .unwrap();
    #[derive(sqlx::FromRow)]
    struct Row {
        user_id: i64,
        username_key: String,
        email: String,
        display_name: String,
        created_at: i64,
    }
    let rows: Vec<Row> =
        sqlx::query_as("select user_id, username_key, email, display_name, created_at from users")
            .fetch_all(t.ladder.db.pool())
            .await
            .unwrap();
    let writers: HashSet<i64> = sqlx::query_scalar::<_, i64>(
        "select ug.user_id from user_groups ug join groups g on g.group_id = ug.group_id \
         where g.name = 'Writers'",
    )
    .fetch_all(t.ladder.db.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    let rare = rows[4321].username_key.clone();
    let terms = [
        "smith",
        "gmail.com",
        "son",
        "mia",
        &rare,
        "zzqx",
        "jo",
        "ØDEG",
        "o'b",
    ];
    for term in terms {
        let needle = term.to_lowercase();
        for sort in [
            UserSort::Username,
            UserSort::UsernameDesc,
            UserSort::Joined,
            UserSort::JoinedDesc,
        ] {
            let mut ordered: Vec<&Row> = rows.iter().collect();
            ordered.sort_by(|a, b| match sort {
                UserSort::Username => a.username_key.cmp(&b.username_key),
                UserSort::UsernameDesc => b.username_key.cmp(&a.username_key),
                UserSort::Joined => (a.created_at, a.user_id).cmp(&(b.created_at, b.user_id)),
                UserSort::JoinedDesc => (b.created_at, b.user_id).cmp(&(a.created_at, a.user_id)),
            });
            let cursor = |r: &Row| match sort {
                UserSort::Username | UserSort::UsernameDesc => r.username_key.clone(),
                UserSort::Joined | UserSort::JoinedDesc => {
                    format!("{}:{}", r.created_at, r.user_id)
                }
            };
            for group in [None, Some("Writers")] {
                // From the first page, and from a cursor near the end of the order.
                for start in [0, ordered.len() - 150] {
                    let after = (start > 0).then(|| cursor(ordered[start - 1]));
                    let expected: Vec<i64> = ordered[start..]
                        .iter()
                        .filter(|r| group.is_none() || writers.contains(&r.user_id))
                        .filter(|r| {
                            if needle.chars().count() < 3 {
                                r.username_key.starts_with(&needle)
                            } else {
                                [&r.username_key, &r.email, &r.display_name]
                                    .iter()
                                    .any(|c| c.to_lowercase().contains(&needle))
                            }
                        })
                        .map(|r| r.user_id)
                        .collect();
                    let got = walk(&t, term, sort, group, after, PAGES).await;
                    assert_eq!(
                        got,
                        expected[..got.len()],
                        "{term:?} {sort:?} {group:?} from {start}"
                    );
                    assert!(
                        got.len() == expected.len() || got.len() == PAGES * 7,
                        "{term:?} {sort:?} {group:?} from {start}: {} of {}",
                        got.len(),
                        expected.len()
                    );
                }
            }
        }
    }
}

const PAGES: usize = 6;

/// Follows `next` for up to `pages` pages of 7.
async fn walk(
    t: &TestLadder,
    term: &str,
    sort: UserSort,
    group: Option<&str>,
    mut after: Option<String>,
    pages: usize,
) -> Vec<i64> {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..pages {
        let page = users::list(
            &mut conn,
            t.ladder.db.backend(),
            &UserFilter {
                search: Some(term.to_string()),
                group: group.map(str::to_string),
                sort,
                after: after.clone(),
                limit: 7,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        ids.extend(page.users.iter().map(|u| u.user_id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    ids
}

async fn seed_requests_opens_pending_requests_for_users_who_may_ask(t: TestLadder) {
    eprintln!("random data from --seed {SEED}");
    let out = t.cli(&[
        "seed",
        "--users",
        "400",
        "--requests",
        "100",
        "--seed",
        SEED,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Seeded 400 users"), "{text}");
    assert!(
        text.contains("Seeded 100 pending requests on track senior-writer"),
        "{text}"
    );
    let eligible_pending = "select count(distinct r.requester_id) from promotion_requests r \
         join users u on u.user_id = r.requester_id \
         join user_groups f on f.user_id = u.user_id \
         join groups fg on fg.group_id = f.group_id and fg.name = 'Writers' \
         where r.state = 'pending' and r.track = 'senior-writer' and u.is_active = true \
           and not exists (select 1 from user_groups s join groups sg on sg.group_id = s.group_id \
                           where s.user_id = u.user_id and sg.name = 'Senior Writers')";
    assert_eq!(t.count("promotion_requests").await, 100);
    assert_eq!(scalar(&t, eligible_pending).await, 100);
    // All reminded "now" (the seed's time), created before it, expiring after it.
    assert_eq!(
        scalar(
            &t,
            "select count(distinct last_reminded_at) from promotion_requests"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &t,
            "select count(*) from promotion_requests \
             where created_at <= last_reminded_at and expires_at > last_reminded_at"
        )
        .await,
        100
    );
    // Seeded requests mail nobody.
    assert_eq!(t.count("mail_outbox").await, 0);
    assert_eq!(
        scalar(
            &t,
            "select count(*) from audit_events where action = 'promotion.seed'"
        )
        .await,
        1
    );

    // Again: other users, never a second open request for anyone.
    let out = t.cli(&["seed", "--requests", "100", "--seed", SEED]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(scalar(&t, eligible_pending).await, 200);

    // More than may ask: one line, exit 2, nothing written.
    let before = t.count("promotion_requests").await;
    let out = t.cli(&["seed", "--requests", "100000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("can ask on track senior-writer"), "{err}");
    assert_eq!(t.count("promotion_requests").await, before);
}
