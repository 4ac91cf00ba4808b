//! One integration-test binary (each binary links separately, so one is faster).
//! Every database-facing test runs on SQLite and, when LADDER_TEST_POSTGRES_URL
//! is set, on PostgreSQL.

#[macro_use]
mod helpers;
mod api_anonymous;
mod api_audit;
mod api_caller;
mod api_catalog;
mod api_check;
mod api_client;
mod api_create_keys;
mod api_groups;
mod api_idempotency;
mod api_matrix;
mod api_promotions;
mod api_user_access;
mod api_users;
mod audit;
mod browser;
mod cli;
mod console;
mod cookies;
mod csrf;
mod db;
mod decisions;
mod escaping;
mod headers;
mod inputs;
mod instances;
mod mailbox;
mod mutants;
mod permission_core;
mod promotions;
mod refusals;
mod route_matrix;
mod route_reader;
mod schemathesis;
mod security;
mod seed;
mod serve;
mod sessions;
mod sign_in;
mod superuser;
mod token_pages;
mod token_use;
mod tokens;
mod tracks;
mod web_helpers;
mod webhooks;
