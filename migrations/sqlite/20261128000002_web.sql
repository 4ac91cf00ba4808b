-- The web app: server-side sessions, login attempts for rate limiting, the blog,
-- and a trigram index so the admin console can search a million users.

create table sessions (
    session_id text primary key,
    data text not null,
    expires_at bigint not null,
    created_at bigint not null
);
create index sessions_expires_at_idx on sessions (expires_at);

create table login_attempts (
    login_attempt_id integer primary key,
    attempt_key text not null,
    created_at bigint not null
);
create index login_attempts_key_idx on login_attempts (attempt_key, created_at);
create index login_attempts_created_at_idx on login_attempts (created_at);

create table posts (
    post_id integer primary key,
    author_id bigint not null references users (user_id) on delete cascade,
    title text not null,
    body text not null,
    state text not null check (state in ('draft', 'published')),
    is_featured integer not null default 0,
    published_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create index posts_state_published_at_idx on posts (state, published_at);
create index posts_author_id_idx on posts (author_id, post_id);

create index users_created_at_idx on users (created_at, user_id);

-- Substring search over username, email and display name (case-insensitive).
create virtual table users_search using fts5 (
    username_key, email, display_name,
    content = 'users', content_rowid = 'user_id', tokenize = 'trigram'
);
create trigger users_search_insert after insert on users begin
    insert into users_search (rowid, username_key, email, display_name)
    values (new.user_id, new.username_key, new.email, new.display_name);
end;
create trigger users_search_delete after delete on users begin
    insert into users_search (users_search, rowid, username_key, email, display_name)
    values ('delete', old.user_id, old.username_key, old.email, old.display_name);
end;
create trigger users_search_update after update of username_key, email, display_name on users begin
    insert into users_search (users_search, rowid, username_key, email, display_name)
    values ('delete', old.user_id, old.username_key, old.email, old.display_name);
    insert into users_search (rowid, username_key, email, display_name)
    values (new.user_id, new.username_key, new.email, new.display_name);
end;
insert into users_search (users_search) values ('rebuild');
