-- A per-user counter beside the global permission_epoch. A change to one
-- user's groups or direct permissions bumps only theirs, so that it no longer
-- makes every process reload every cached permission set; changes that reach
-- many users (a group's permissions, a deleted group) still bump the epoch.
-- See src/permissions/cache.rs.
alter table users add column perm_version bigint not null default 0;
