-- The row's last failure was WeChat's trouble (down, busy, rate-limited), not the row's: when a
-- call succeeds again, such rows are pulled forward instead of waiting out a backoff grown long
-- during the outage. `pulled_forward_at` keeps that to once in a while per row, so a change that
-- keeps failing while others succeed (a flaky or rate-limited WeChat) still backs off.
ALTER TABLE tag_outbox
    ADD COLUMN waits_on_wechat boolean NOT NULL DEFAULT false,
    ADD COLUMN pulled_forward_at timestamptz;
