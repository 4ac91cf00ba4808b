-- The promotion workflow, the email outbox and the scheduler's run ledger.

create table promotion_requests (
    request_id integer primary key,
    track text not null,
    requester_id bigint not null references users (user_id) on delete cascade,
    justification text not null,
    -- pending, approved, rejected, withdrawn, expired, ended (see promotions::State)
    state text not null,
    decided_by bigint references users (user_id) on delete set null,
    decided_at bigint,
    decision_reason text,
    -- when a pending request expires
    expires_at bigint,
    -- when a time-bound grant ends (null: permanent)
    grant_ends_at bigint,
    ended_at bigint,
    warned_at bigint,
    last_reminded_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
-- One open request per person and track; the database refuses a second.
create unique index promotion_requests_one_open on promotion_requests (requester_id, track)
    where state = 'pending';
create index promotion_requests_state_created_idx on promotion_requests (state, created_at, request_id);
create index promotion_requests_requester_idx on promotion_requests (requester_id, request_id);
create index promotion_requests_grant_ends_idx on promotion_requests (state, grant_ends_at);

create table promotion_approvals (
    request_id bigint not null references promotion_requests (request_id) on delete cascade,
    approver_id bigint not null references users (user_id) on delete cascade,
    comment text not null default '',
    created_at bigint not null,
    primary key (request_id, approver_id)
);

-- Every email is a row here first, written in the transaction that causes it.
create table mail_outbox (
    outbox_id integer primary key,
    message_id text not null,
    -- optional: the same key is never queued twice (e.g. one digest a day)
    dedupe_key text,
    template text not null,
    recipient text not null,
    subject text not null,
    body_text text not null,
    body_html text not null,
    -- pending, sent, failed
    state text not null,
    attempts bigint not null default 0,
    last_error text,
    next_attempt_at bigint not null,
    -- a worker's claim; another may take the row after this time
    claimed_until bigint,
    sent_at bigint,
    created_at bigint not null
);
create unique index mail_outbox_message_id_key on mail_outbox (message_id);
create unique index mail_outbox_dedupe_key on mail_outbox (dedupe_key);
create index mail_outbox_due_idx on mail_outbox (state, next_attempt_at);

-- One row per scheduled run: the unique key lets exactly one instance run each tick.
create table job_runs (
    job_run_id integer primary key,
    job text not null,
    slot bigint not null,
    summary text,
    created_at bigint not null
);
create unique index job_runs_job_slot_key on job_runs (job, slot);
