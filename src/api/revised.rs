//! What every write answers: the thing as changed, and the revision the
//! change committed at, so the caller can check with `at_least=REVISION`
//! and never see an answer from before its own change.

use serde::Serialize;
use utoipa::ToSchema;

use crate::{Result, db::Transaction, permissions::revision::WithRevision, web::state::AppState};

/// The answer's own fields, and `revision` beside them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revised<T> {
    #[serde(flatten)]
    pub value: T,
    /// The revision this change committed at (for a change to no one's
    /// permissions, the latest before it): pass it as `at_least` to a check.
    pub revision: i64,
}

impl<T> Revised<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Revised<U> {
        Revised {
            value: f(self.value),
            revision: self.revision,
        }
    }
}

/// Runs a domain change and answers its output with the revision it committed at.
pub async fn run<X: Transaction>(state: &AppState, change: X) -> Result<Revised<X::Output>> {
    let (value, revision) = state.ladder.db.run(WithRevision(change)).await?;
    Ok(Revised { value, revision })
}
