-- Issue 20: every console page shows approvers how many campaigns wait for them (the nav badge).
-- A partial index keeps that count to the waiting rows of one account, however many campaigns
-- the account has sent.
CREATE INDEX campaigns_pending_approval ON campaigns (account_id) WHERE status = 'pending_approval';
