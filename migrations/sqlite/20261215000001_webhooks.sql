-- Signed webhooks: endpoints, the event types each takes, and a durable
-- outbox of deliveries written in the transaction of the change.

create table webhook_endpoints (
    endpoint_id integer primary key,
    url text not null,
    description text not null default '',
    -- `whsec_` and base64: the HMAC key, needed in clear to sign
    secret text not null,
    is_active integer not null default 1,
    created_by text not null,
    created_at bigint not null,
    updated_at bigint not null
);

create table webhook_subscriptions (
    endpoint_id bigint not null references webhook_endpoints (endpoint_id) on delete cascade,
    event_type text not null,
    primary key (event_type, endpoint_id)
);

-- One row per (event, endpoint). `message_id` is the event's, the same at
-- every endpoint and across retries (the receiver's idempotency key).
-- `subject` (`user:7`, `group:3`) orders deliveries: one waits while an
-- earlier one for the same subject at the same endpoint is pending.
create table webhook_deliveries (
    delivery_id integer primary key,
    endpoint_id bigint not null references webhook_endpoints (endpoint_id) on delete cascade,
    message_id text not null,
    event_type text not null,
    subject text not null,
    payload text not null,
    -- pending, delivered, failed
    state text not null,
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    claimed_until bigint,
    last_status bigint,
    last_error text,
    last_attempt_at bigint,
    delivered_at bigint,
    created_at bigint not null
);
create index webhook_deliveries_due on webhook_deliveries (state, next_attempt_at);
create index webhook_deliveries_order on webhook_deliveries (endpoint_id, subject, delivery_id) where state = 'pending';
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, delivery_id);
