//! Cursor paging for every list: `limit` (default 50, at most 500) and an
//! opaque `cursor`; the answer is `{"items": [...], "next": cursor or null}`.
//! A cursor is the last item's sort key, encoded; lists read `limit + 1`
//! rows after it, so there is no OFFSET and no COUNT.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use utoipa::{IntoParams, ToSchema};

use crate::{Error, Result};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// The paging half of a list's query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to answer, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 500"));
        }
        Ok(limit)
    }

    /// The sort key the cursor carries, if any.
    pub fn after<K: DeserializeOwned>(&self) -> Result<Option<K>> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let bad = || Error::invalid("cursor", "is not a cursor this list gave out");
        let bytes = hex::decode(cursor).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Makes a page from up to `limit + 1` rows read after the cursor: the
    /// extra row only says that there is a next page.
    pub fn of<K: Serialize>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Page<T> {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next = more
            .then(|| rows.last().map(|last| cursor_of(&key(last))))
            .flatten();
        Page { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

pub fn cursor_of<K: Serialize>(key: &K) -> String {
    hex::encode(serde_json::to_vec(key).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let page = Page::of(vec![1, 2, 3], 2, |n| ("k", *n));
        assert_eq!(page.items, vec![1, 2]);
        let q = PageQuery {
            limit: None,
            cursor: page.next.clone(),
        };
        assert_eq!(q.after::<(String, i64)>().unwrap(), Some(("k".into(), 2)));
        assert!(Page::of(vec![1, 2], 2, |n| *n).next.is_none());
        let forged = PageQuery {
            limit: Some(501),
            cursor: Some("zz".into()),
        };
        assert!(forged.after::<i64>().is_err());
        assert!(forged.limit().is_err());
    }
}
