//! Request ids. Ladder always makes its own (a UUID, in the `request` span and
//! the `X-Request-Id` response header): a client's id is never taken as ours,
//! so a client cannot forge or collide with another request's log lines. A
//! client's own id is logged beside ours, as `client_request_id`, only when
//! it is short and made of safe characters; otherwise it is dropped.

use axum::{extract::Request, http::HeaderValue};

pub const HEADER: &str = "x-request-id";

/// The id a client sent, once it passed `well_formed`.
#[derive(Clone, Debug)]
pub struct ClientRequestId(pub String);

/// Takes the client's `X-Request-Id` off the request (so that the layer after
/// this one always makes a new id) and keeps it aside if it is well formed.
pub fn take_client_id<B>(mut req: Request<B>) -> Request<B> {
    let sent = req.headers_mut().remove(HEADER);
    if let Some(id) = sent.as_ref().and_then(well_formed) {
        req.extensions_mut().insert(ClientRequestId(id));
    }
    req
}

/// 1–64 ASCII letters, digits and `-_.:`, as UUIDs, ULIDs and trace ids are.
pub fn well_formed(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"-_.:".contains(b);
    (!bytes.is_empty() && bytes.len() <= 64 && bytes.iter().all(safe))
        .then(|| String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_ids_of_safe_characters_are_kept() {
        for ok in [
            "a",
            "0f8e2c4a-1b2c-4d5e-8f90-123456789abc",
            "trace:01HZX.v2_x",
        ] {
            assert_eq!(
                well_formed(&HeaderValue::from_static(ok)).as_deref(),
                Some(ok)
            );
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "two words",
            "x\ty",
            "<script>",
            "a\"b",
            "é",
            long.as_str(),
        ] {
            let value = HeaderValue::from_bytes(bad.as_bytes()).unwrap();
            assert_eq!(well_formed(&value), None, "{bad:?}");
        }
    }

    #[test]
    fn the_clients_id_is_taken_off_the_request() {
        let req = Request::builder()
            .header(HEADER, "client-chosen")
            .body(())
            .unwrap();
        let req = take_client_id(req);
        assert!(req.headers().get(HEADER).is_none());
        assert_eq!(
            req.extensions().get::<ClientRequestId>().unwrap().0,
            "client-chosen"
        );
    }
}
