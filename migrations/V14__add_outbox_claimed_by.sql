-- The backend (pg_backend_pid) whose session claimed an outbox row. A claim lapses as soon as that
-- session is gone (its process was killed), not only when its lease runs out, so a killed worker's
-- tag changes are taken over in the next round instead of a minute later. Nullable: rows claimed
-- by a process of the previous release keep only the lease.
ALTER TABLE tag_outbox ADD COLUMN claimed_by integer;
