-- The row's last failure was WeChat's trouble (down, busy, rate-limited), not the row's: when a
-- call succeeds again, such rows are pulled forward instead of waiting out a backoff grown long
-- during the outage.
ALTER TABLE tag_outbox ADD COLUMN waits_on_wechat boolean NOT NULL DEFAULT false;
