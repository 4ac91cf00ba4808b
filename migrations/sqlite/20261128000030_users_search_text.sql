-- Same name as migrations/postgres/20261128000030_users_search_text.sql, which
-- stores the admin search text on PostgreSQL. SQLite needs nothing: the scan
-- tests users_list_search_idx's columns directly and FTS5 keeps its own copy.
select 1;
