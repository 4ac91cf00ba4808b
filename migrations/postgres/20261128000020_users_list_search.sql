-- Same name as migrations/sqlite/20261128000020_users_list_search.sql, which
-- adds a covering index (username_key, email, display_name) so the admin user
-- search can walk the username order without reading the table.
--
-- PostgreSQL gets no index here: its search test is an expression over those
-- columns (strpos of users_search_trgm_idx's text), and PostgreSQL does not
-- answer such an expression from an index-only scan, so the index would only
-- cost space and writes. Measured in docs/benchmarks.md.
select 1;
