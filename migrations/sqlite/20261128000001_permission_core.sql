-- The permission core: users, groups, permissions, their joins, the audit log.
-- Flags are integers (0/1) because SQLite has no boolean type; timestamps are unix seconds.

create table users (
    user_id integer primary key,
    username text not null,
    -- lower-cased in Rust so both backends fold case the same way
    username_key text not null,
    email text not null,
    display_name text not null default '',
    -- null means the user has no usable password and cannot sign in
    password_hash text,
    is_active integer not null default 1,
    is_staff integer not null default 0,
    is_superuser integer not null default 0,
    last_login bigint,
    created_at bigint not null
);
create unique index users_username_key on users (username_key);
-- Ladder has exactly one superuser: the database refuses a second.
create unique index users_one_superuser on users (is_superuser) where is_superuser = 1;

create table groups (
    group_id integer primary key,
    name text not null,
    created_at bigint not null
);
create unique index groups_name_key on groups (name);

create table permissions (
    permission_id integer primary key,
    app_label text not null,
    model text not null,
    codename text not null,
    name text not null,
    created_at bigint not null
);
create unique index permissions_app_label_codename_key on permissions (app_label, codename);

create table user_groups (
    user_id bigint not null references users (user_id) on delete cascade,
    group_id bigint not null references groups (group_id) on delete cascade,
    created_at bigint not null,
    primary key (user_id, group_id)
);
create index user_groups_group_id_idx on user_groups (group_id);

create table user_permissions (
    user_id bigint not null references users (user_id) on delete cascade,
    permission_id bigint not null references permissions (permission_id) on delete cascade,
    created_at bigint not null,
    primary key (user_id, permission_id)
);
create index user_permissions_permission_id_idx on user_permissions (permission_id);

create table group_permissions (
    group_id bigint not null references groups (group_id) on delete cascade,
    permission_id bigint not null references permissions (permission_id) on delete cascade,
    created_at bigint not null,
    primary key (group_id, permission_id)
);
create index group_permissions_permission_id_idx on group_permissions (permission_id);

-- Bumped in the same transaction as every change that can alter anyone's
-- effective permissions; caches compare it before trusting an entry.
create table permission_epoch (
    permission_epoch_id integer primary key check (permission_epoch_id = 1),
    version bigint not null,
    created_at bigint not null
);
insert into permission_epoch (permission_epoch_id, version, created_at) values (1, 0, 0);

create table audit_events (
    audit_event_id integer primary key,
    actor_id bigint,
    actor_name text not null,
    action text not null,
    target_type text not null,
    target_id bigint,
    target_name text not null,
    before_state text,
    after_state text,
    source text not null,
    created_at bigint not null
);
create index audit_events_actor_id_idx on audit_events (actor_id, audit_event_id);
create index audit_events_target_idx on audit_events (target_type, target_id, audit_event_id);

create trigger audit_events_no_update before update on audit_events
begin
    select raise(abort, 'audit_events is append-only');
end;
create trigger audit_events_no_delete before delete on audit_events
begin
    select raise(abort, 'audit_events is append-only');
end;
