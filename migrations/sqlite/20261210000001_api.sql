-- The JSON API: tokens, service accounts, revisions and idempotent creates.

-- A service account holds tokens for other apps and never signs in with a password.
alter table users add column is_service integer not null default 0;

-- An API token. Only its SHA-256 is kept (a token is 256 random bits, so a
-- fast hash is enough, and a check must not cost an argon2 run). `scope`,
-- when set, is a space-separated list of permissions the token is narrowed to.
create table api_tokens (
    token_id integer primary key,
    user_id bigint not null references users (user_id) on delete cascade,
    name text not null,
    -- the first characters of the token, to tell tokens apart in lists
    hint text not null,
    token_hash text not null,
    scope text,
    created_by text not null,
    created_at bigint not null,
    expires_at bigint,
    last_used_at bigint,
    revoked_at bigint
);
create unique index api_tokens_hash on api_tokens (token_hash);
create index api_tokens_user on api_tokens (user_id, token_id);

-- One counter for every change to who holds what; a write answers with the
-- revision it committed and a check can ask to see at least that revision.
create table revisions (
    revision_id integer primary key check (revision_id = 1),
    revision bigint not null
);
insert into revisions (revision_id, revision) values (1, 0);

-- What each revision touched (a user, or everyone when user_id is null), so
-- every process's cached checks drop exactly what changed.
create table revision_changes (
    revision bigint primary key,
    user_id bigint
);

-- The audit trail names the token a change came through.
alter table audit_events add column token_name text;

-- First answers to POSTs that carried an Idempotency-Key, kept for 24 hours.
create table idempotency_keys (
    user_id bigint not null,
    idem_key text not null,
    request_hash text not null,
    status integer not null,
    body text not null,
    created_at bigint not null,
    primary key (user_id, idem_key)
);
create index idempotency_keys_created on idempotency_keys (created_at);
