//! `ladder seed` and `ladder demo`: data for demos and benchmarks.

use super::output;
use crate::{Ladder, Result, seed::demo};

/// `ladder demo`: the blog example's groups and accounts.
pub(super) async fn demo(ladder: &mut Ladder) -> Result<()> {
    let fixed = demo_password();
    setup_tracks(ladder).await?;
    let accounts = demo::seed(ladder, fixed.as_deref()).await?;
    output::demo(&accounts, fixed.is_some());
    Ok(())
}

/// `LADDER_DEMO_PASSWORD`, when set: every demo account's password.
pub(super) fn demo_password() -> Option<String> {
    std::env::var("LADDER_DEMO_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
}

/// `ladder seed`: users, then requests, from one printed seed.
pub(super) async fn seed_all(
    ladder: &mut Ladder,
    users: Option<u64>,
    requests: Option<u64>,
    chosen: Option<u64>,
) -> Result<()> {
    let rng_seed = chosen.unwrap_or_else(crate::seed::random_seed);
    println!("Seed {rng_seed} (--seed {rng_seed} repeats this data).");
    if let Some(count) = users {
        seed(ladder, count, rng_seed).await?;
        // The seed may have made the track's groups: bind to them as a start would.
        ladder.rebind_tracks().await?;
    }
    if let Some(count) = requests {
        seed_requests(ladder, count, rng_seed).await?;
    }
    Ok(())
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

/// The explicit setup of the promotion tracks: says what it did ("created
/// group X for track Y"), then warns of any track still closed.
pub(super) async fn setup_tracks(ladder: &mut Ladder) -> Result<()> {
    for line in ladder.setup_tracks().await? {
        println!("{line}");
    }
    for problem in ladder.check_tracks().await? {
        eprintln!("warning: {problem}");
    }
    Ok(())
}
