-- The admin user search (accounts::users::list) first walks the username order
-- and tests each row for the term; this index holds everything that test reads,
-- so the walk never touches the table. About 70 bytes a user.
create index users_list_search_idx on users (username_key, email, display_name);
