-- 测试粉丝: followers an admin marked as testers, offered when a campaign is previewed (WeChat's
-- preview reaches only real followers, so a typed openid fails where a picked one cannot).
-- Erasing the follower deletes the mark with the rest of their data.
CREATE TABLE test_followers (
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    openid      text        NOT NULL,
    -- Who the tester is, for the operators (e.g. 小王的手机).
    note        text        NOT NULL DEFAULT '' CHECK (char_length(note) <= 40),
    added_by    text        NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, openid)
);

-- The simulator's followers (openid prefix `test_`), most recently active first, for the preview
-- picker. Partial, so it holds only those few rows and serves whatever the database's collation;
-- building it reads `followers` once (about a second at 1M rows), while only the tagging consumer,
-- never the callback, waits on that table's lock.
CREATE INDEX followers_simulated_recent ON followers (account_id, last_seen_at DESC)
    WHERE starts_with(openid, 'test_');
