-- Fair claiming between accounts (issue 17): workers take due jobs account by account in turn,
-- each account's oldest first, which this index answers with a short range scan whatever one
-- account's backlog. The jobs table holds only background work, so building it is brief.
CREATE INDEX jobs_due_by_account ON jobs (account_id, run_at) WHERE state = 'pending';
