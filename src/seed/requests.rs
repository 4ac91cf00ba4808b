//! Bulk pending requests for demos and benchmarks (`ladder seed --requests M`):
//! a review queue of realistic size, from users who could really have asked.

use serde_json::json;

use crate::{
    Error, Ladder, Result,
    actor::{Actor, Source},
    audit::{self, AuditEntry},
    binds,
    db::{Backend, Sql},
    seed::Rng,
};

/// Rows per INSERT: four parameters each, well under every backend's limit.
const BATCH_ROWS: usize = 250;
/// Seeded requests are spread over this much of the past (or less, so that
/// none is already due to expire).
const MAX_AGE: i64 = 10 * 86_400;

const JUSTIFICATIONS: &[&str] = &[
    "I have been writing for the section for a year and would like to publish my own pieces.",
    "I cover the evening desk and often wait for someone to publish breaking stories.",
    "My editor suggested I ask: I have filed over a hundred posts this year.",
    "I run the weekly newsletter and need to publish it on schedule.",
    "I am taking over the features section from a colleague who is leaving.",
    "I would like to publish corrections to my own posts without waiting.",
];

/// What a request seed did.
#[derive(Debug, Clone)]
pub struct RequestSeedReport {
    pub track: String,
    pub requests: u64,
    /// The age of the oldest seeded request, in seconds.
    pub oldest_age: i64,
}

/// Opens `count` pending requests on the first configured track, one per
/// eligible user (active, in the track's from_group, not in its to_group,
/// nothing open on the track), in one transaction. No email is queued, and
/// the requests count as just reminded, so that the next scheduler run does
/// not mail the approvers about the whole queue at once.
pub async fn seed_requests(
    ladder: &Ladder,
    count: u64,
    rng_seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<RequestSeedReport> {
    if count == 0 {
        return Err(Error::invalid("requests", "must be at least 1"));
    }
    let track = ladder
        .tracks
        .first()
        .ok_or_else(|| Error::invalid("requests", "no promotion track is configured"))?;
    let now = ladder.clock.now();
    let span = track
        .pending_expires_after
        .map_or(MAX_AGE, |d| (d * 3 / 4).min(MAX_AGE))
        .max(1);
    // A bulk load, like `seed::users`: a transaction of its own on one
    // connection, with statements too many and too large for the write thread.
    let mut conn = ladder.db.acquire().await?;
    let mut tx = sqlx::Connection::begin_with(
        &mut *conn,
        match ladder.db.backend() {
            Backend::Sqlite => "begin immediate",
            Backend::Postgres => "begin",
        },
    )
    .await?;
    let ids = track.bound()?;
    let limit = i64::try_from(count).map_err(|_| Error::invalid("requests", "is too large"))?;
    let sql: &mut dyn Sql = &mut *tx;
    let requesters = sql
        .fetch_i64s(
            "select u.user_id from users u \
             join user_groups f on f.user_id = u.user_id and f.group_id = $1 \
             where u.is_active = $2 \
               and not exists (select 1 from user_groups t where t.user_id = u.user_id and t.group_id = $3) \
               and not exists (select 1 from promotion_requests r \
                               where r.requester_id = u.user_id and r.track = $4 and r.state = 'pending') \
             order by u.user_id limit $5",
            binds![ids.from, true, ids.to, &track.name, limit],
        )
        .await?;
    if (requesters.len() as u64) < count {
        return Err(Error::invalid(
            "requests",
            format!(
                "only {} users can ask on track {} (active members of {} who are not in {} and have nothing open); seed more users first",
                requesters.len(),
                track.name,
                track.from_group,
                track.to_group
            ),
        ));
    }

    let mut rng = Rng::new(rng_seed);
    let mut oldest_age = 0;
    let mut done = 0;
    for chunk in requesters.chunks(BATCH_ROWS) {
        let mut insert = String::from(
            "insert into promotion_requests (track, requester_id, justification, state, \
             expires_at, last_reminded_at, created_at, updated_at) values ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, &user_id) in chunk.iter().enumerate() {
            let age = rng.below(span as u64) as i64;
            oldest_age = oldest_age.max(age);
            let created = now - age;
            let justification = JUSTIFICATIONS[rng.below(JUSTIFICATIONS.len() as u64) as usize];
            if i > 0 {
                insert.push(',');
            }
            let p = i * 4;
            insert.push_str(&format!(
                "(${}, ${}, ${}, 'pending', ${}, {now}, {created}, {created})",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            ));
            rows.push((
                user_id,
                justification,
                track.pending_expires_after.map(|d| created + d),
            ));
        }
        // Not through `Sql`: every statement is new (its literals differ), so
        // it is not kept in the connection's statement cache.
        let mut query = sqlx::query(&insert).persistent(false);
        for (user_id, justification, expires_at) in rows {
            query = query
                .bind(&track.name)
                .bind(user_id)
                .bind(justification)
                .bind(expires_at);
        }
        query.execute(&mut *tx).await?;
        done += chunk.len() as u64;
        progress(done);
    }
    audit::record(
        &mut *tx,
        &Actor::system(Source::Cli),
        AuditEntry::new(
            "promotion.seed",
            "promotion",
            None,
            &format!("{done} seeded requests on {}", track.name),
        )
        .after(json!({ "track": track.name, "requests": done, "emails": 0 })),
        now,
    )
    .await?;
    tx.commit().await?;
    drop(conn);
    if ladder.db.backend() == Backend::Postgres {
        // Fresh statistics after a bulk load: without them the planner takes
        // the review queue for a handful of rows and reads all of it (170 ms
        // for a dashboard page over 100,000 pending requests, 2 ms after).
        let mut conn = ladder.db.acquire().await?;
        Sql::execute(&mut conn, "analyze promotion_requests", binds![]).await?;
    }
    Ok(RequestSeedReport {
        track: track.name.clone(),
        requests: done,
        oldest_age,
    })
}
