-- The group each promotion track's role (from_group, to_group, approver_group)
-- is bound to. Written at start from the config's names (see
-- src/promotions/track.rs); from then on a track follows its groups by id, so
-- renaming groups cannot move a track to another group. Deleting a group
-- deletes its bindings, and the track is refused until the config is fixed.
create table promotion_track_groups (
    track text not null,
    role text not null,
    group_id bigint not null references groups (group_id) on delete cascade,
    created_at bigint not null,
    primary key (track, role)
);
create index promotion_track_groups_group_id_idx on promotion_track_groups (group_id);
