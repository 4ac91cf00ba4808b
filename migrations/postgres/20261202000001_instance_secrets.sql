-- Secrets that every instance on this database shares, generated on first
-- start unless server.secret_key is set: the key for session fingerprints and
-- anonymous CSRF tokens (see src/secret.rs).
create table instance_secrets (
    name text primary key,
    value text not null,
    created_at bigint not null
);
