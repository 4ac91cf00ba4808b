//! Ladder: Django's permission model as a standalone service.
//!
//! `Ladder::open` connects, migrates and syncs the permission catalog; every
//! front end (CLI, web, API) works through the domain modules below.

pub mod accounts;
pub mod actor;
pub mod admin;
pub mod api;
pub mod audit;
pub mod blog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod jobs;
pub mod mail;
pub mod permissions;
pub mod promotions;
pub mod secret;
pub mod seed;
pub mod templates;
pub mod text;
pub mod web;
pub mod webhooks;

use std::sync::Arc;

/// mimalloc rather than the system allocator: a request allocates and frees
/// across threads, which glibc's malloc serves with locks and consolidation
/// (about a tenth of the workflow benchmark's CPU time went to it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use error::{Error, Result};

use crate::{
    clock::Clock,
    config::Settings,
    db::{Db, Finish, Sql, Transaction},
    permissions::{PermissionCache, catalog::SyncReport},
};

/// An open, migrated Ladder database with its settings, clock and permission cache.
#[derive(Clone)]
pub struct Ladder {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub permissions: Arc<PermissionCache>,
    /// What `consistency=cached` checks answer from (`permissions::revision`).
    pub live: Arc<permissions::revision::Live>,
    /// The promotion tracks from config, parsed.
    pub tracks: Arc<Vec<promotions::Track>>,
    /// Wakes this process's email worker after a commit queued mail.
    pub mail_wake: Arc<tokio::sync::Notify>,
    /// Wakes this process's webhook worker (a delivery queued again by hand).
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Keys session fingerprints and anonymous CSRF tokens; see `secret`.
    pub secret: secret::ServerSecret,
}

impl Ladder {
    /// Connects and migrates, so no command ever meets a missing table.
    pub async fn open(settings: Settings) -> Result<Ladder> {
        let (ladder, _) = Ladder::open_reporting(settings, Clock::system()).await?;
        Ok(ladder)
    }

    /// Like `open`, with a chosen clock, and says what the catalog sync did.
    pub async fn open_reporting(settings: Settings, clock: Clock) -> Result<(Ladder, SyncReport)> {
        // Settings know nothing of the domain; the domain checks its parts here,
        // before anything connects, so a bad value is one line naming its key.
        jobs::check_schedules(&settings.jobs).map_err(|e| Error::invalid("jobs", e))?;
        for resource in &settings.resources {
            permissions::catalog::check_resource(resource)
                .map_err(|e| Error::invalid("resources", e))?;
        }
        let db = Db::connect(&settings.database).await?;
        // The schema first: the secret lives in it.
        db.migrate().await?;
        let secret = db
            .run(LoadSecret {
                configured: settings.server.secret_key.clone(),
                now: clock.now(),
            })
            .await?;
        let tracks = promotions::Track::parse_all(&settings.promotions)
            .map_err(|e| Error::invalid("promotions", e))?;
        let mut ladder = Ladder {
            db,
            tracks: Arc::new(tracks),
            mail_wake: Arc::new(tokio::sync::Notify::new()),
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            secret,
            permissions: Arc::new(PermissionCache::new(settings.permissions.cache_size)),
            live: Arc::new(permissions::revision::Live::new(
                settings.permissions.cache_size,
            )),
            settings: Arc::new(settings),
            clock,
        };
        let report = ladder.migrate().await?;
        for orphan in &report.orphaned {
            tracing::warn!(permission = %orphan, "permission is no longer declared in config; kept");
        }
        ladder.bind_tracks(None).await?;
        Ok((ladder, report))
    }

    /// Applies schema migrations, then creates any newly declared permissions.
    /// It creates no groups: see `setup_tracks`.
    pub async fn migrate(&self) -> Result<SyncReport> {
        self.db.migrate().await?;
        self.db
            .run(SyncPermissions {
                resources: self.settings.resources.clone(),
                now: self.clock.now(),
            })
            .await
    }

    /// Binds the promotion tracks to their groups by id (`promotions::track::bind`).
    async fn bind_tracks(&mut self, setup: Option<&actor::Actor>) -> Result<Vec<String>> {
        let binding = self
            .db
            .run(BindTracks {
                tracks: self.tracks.to_vec(),
                setup: setup.cloned(),
                now: self.clock.now(),
            })
            .await?;
        self.tracks = Arc::new(binding.tracks);
        Ok(binding.done)
    }

    /// Binds the tracks again as a start does (creating nothing), after a
    /// command made groups of its own (`ladder seed`).
    pub async fn rebind_tracks(&mut self) -> Result<()> {
        self.bind_tracks(None).await.map(|_| ())
    }

    /// The explicit setup of the promotion tracks (`ladder migrate`, `ladder
    /// demo`, `serve --demo`): creates each group a track names that does not
    /// exist (empty) and binds the tracks to the groups their config names.
    /// Returns what it did, one line each ("created group Editors for track
    /// senior-writer"). Nothing else ever creates a track's group.
    pub async fn setup_tracks(&mut self) -> Result<Vec<String>> {
        let system = actor::Actor::system(actor::Source::System);
        self.bind_tracks(Some(&system)).await
    }

    /// Every promotion track's problem, one line each, naming the track: a
    /// group that is missing or no longer the one bound, or approvers who lack
    /// a permission that approval grants. Such a track refuses approvals
    /// until it is fixed; `serve` warns about each at start but still starts.
    pub async fn check_tracks(&self) -> Result<Vec<String>> {
        let mut conn = self.db.acquire().await?;
        let mut problems = Vec::new();
        for track in self.tracks.iter() {
            match promotions::track::check_open(&mut conn, track).await {
                Ok(()) => {}
                Err(Error::Conflict(why)) => problems.push(why),
                Err(e) => return Err(e),
            }
        }
        Ok(problems)
    }

    pub fn track(&self, name: &str) -> Result<&promotions::Track> {
        self.tracks
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::NotFound(format!("promotion track {name:?}")))
    }
}

/// Reads the server secret, or makes and stores one on first start.
struct LoadSecret {
    configured: String,
    now: i64,
}

impl Transaction for LoadSecret {
    type Output = secret::ServerSecret;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<secret::ServerSecret>> {
        let loaded = secret::ServerSecret::load(sql, &self.configured, self.now).await?;
        Ok(Finish::Commit(loaded))
    }
}

/// Creates the permissions newly declared in config.
struct SyncPermissions {
    resources: Vec<config::ResourceSettings>,
    now: i64,
}

impl Transaction for SyncPermissions {
    type Output = SyncReport;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<SyncReport>> {
        let report = permissions::catalog::sync(sql, &self.resources, self.now).await?;
        Ok(Finish::Commit(report))
    }
}

/// Binds the tracks to their groups (`promotions::track::bind`).
struct BindTracks {
    tracks: Vec<promotions::Track>,
    setup: Option<actor::Actor>,
    now: i64,
}

impl Transaction for BindTracks {
    type Output = promotions::track::Binding;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<promotions::track::Binding>> {
        let binding =
            promotions::track::bind(sql, &self.tracks, self.setup.as_ref(), self.now).await?;
        Ok(Finish::Commit(binding))
    }
}
