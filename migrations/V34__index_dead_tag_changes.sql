-- The tags page tells operators which changes WeChat refused for good (state 'dead') and why; the
-- outbox can hold a million pending rows, so the dead ones get their own small index.
CREATE INDEX tag_outbox_dead_by_account ON tag_outbox (account_id, created_at) WHERE state = 'dead';
