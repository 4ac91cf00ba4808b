-- The admin user search's text, stored. A search tests it row by row in
-- username order (users::list's scan) and rechecks trigram matches against
-- it; computing lower() and the concatenation for every row tested was most
-- of a search's time (about 3 us a row). Same name as the SQLite migration,
-- which needs no change (its covering index already holds the three columns).
alter table users add column search_text text
    generated always as (username_key || ' ' || lower(email) || ' ' || lower(display_name)) stored;
drop index users_search_trgm_idx;
create index users_search_trgm_idx on users using gin (search_text public.gin_trgm_ops);
-- Lets the scan walk the username order and test the text without reading
-- the table (an index-only scan, once autovacuum has marked pages visible).
create index users_username_search_idx on users (username_key) include (search_text);
