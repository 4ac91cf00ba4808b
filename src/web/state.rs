//! What every handler can reach.

use std::{ops::Deref, sync::Arc};

use crate::{Ladder, Result, permissions::catalog};

/// What every handler can reach. Every extractor and middleware clones the
/// state, so it is one `Arc`: a clone per request costs one counter, not
/// one per field of `Ladder`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub ladder: Ladder,
    /// Every permission name, for what the superuser holds on pages.
    pub catalog: Arc<Vec<String>>,
    /// API tokens' rate limits and last use, in this process.
    pub token_use: Arc<super::api_auth::TokenUse>,
}

impl AppState {
    pub async fn new(ladder: Ladder) -> Result<AppState> {
        let mut conn = ladder.db.acquire().await?;
        let names = catalog::all(&mut conn)
            .await?
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        Ok(AppState(Arc::new(Shared {
            ladder,
            catalog: Arc::new(names),
            token_use: Arc::default(),
        })))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
