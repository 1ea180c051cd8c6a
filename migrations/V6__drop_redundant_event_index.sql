-- events (openid, kind, occurred_at) serves every per-follower lookup that (openid, occurred_at)
-- did; one index fewer to maintain on the callback's hottest insert.
DROP INDEX IF EXISTS events_openid_occurred_at;
