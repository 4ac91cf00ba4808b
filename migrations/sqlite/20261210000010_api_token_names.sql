-- A user's live tokens have distinct names, so a list, an audit event or a
-- revocation by name is never ambiguous. A revoked token frees its name.
create unique index api_tokens_live_name on api_tokens (user_id, name) where revoked_at is null;
