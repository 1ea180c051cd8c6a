-- Fair claiming between accounts (issue 17): workers take due jobs account by account in turn,
-- each account's oldest first, which this index answers with a short range scan whatever one
-- account's backlog. The jobs table holds only background work, so building it is brief.
CREATE INDEX jobs_due_by_account ON jobs (account_id, run_at) WHERE state = 'pending';

-- The outbox claims a share of each account's due rows per round; without this, claiming for a
-- small account would scan past a large account's backlog in `tag_outbox_due` (run_at only).
-- The outbox holds only undelivered changes, so it is small whenever WeChat is reachable.
CREATE INDEX tag_outbox_due_by_account ON tag_outbox (account_id, run_at) WHERE state = 'pending';
