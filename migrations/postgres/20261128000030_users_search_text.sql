-- The admin user search's text, stored. A search tests it row by row in
-- username order (users::list's scan) and rechecks trigram matches against
-- it; computing lower() and the concatenation for every row tested was most
-- of a search's time (5,000 rows tested: 8-15 ms before, 5 ms after, warm).
-- Same name as the SQLite migration, which needs no change (its covering
-- index already holds the three columns).
alter table users add column search_text text
    generated always as (username_key || ' ' || lower(email) || ' ' || lower(display_name)) stored;
drop index users_search_trgm_idx;
create index users_search_trgm_idx on users using gin (search_text public.gin_trgm_ops);
