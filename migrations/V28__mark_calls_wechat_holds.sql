-- A campaign call WeChat answered 45066 for: it holds the call's clientmsgid (an earlier attempt
-- whose answer was lost reached it), but the job's msg_id is only learned past WeChat's minute.
-- Such a call went out: a cancel meanwhile must not skip it nor give its cap slot back, and the
-- sender keeps asking until WeChat names the job. Adding a nullable column takes no table
-- rewrite; the lock is brief, and waits at most 5 s for it.
SET LOCAL lock_timeout = '5s';
ALTER TABLE campaign_chunks ADD COLUMN taken_at timestamptz;
