-- Issue 15 point 2: an approval is for the audience as approved. What it covered (the audience,
-- the content and the definitions of every tag and segment reached) is kept with it, so a send
-- can tell when any of it changed since. Rows from before have neither: they count as lapsed,
-- which only ever asks for a second look.
ALTER TABLE campaign_approvals
    ADD COLUMN covered     jsonb,
    ADD COLUMN fingerprint text;

-- 驳回: the last rejection (the audit log keeps all of them), and the last time an approval
-- lapsed and why; both shown to the creator until the campaign is approved again.
ALTER TABLE campaigns
    ADD COLUMN rejected_by       text,
    ADD COLUMN rejected_at       timestamptz,
    ADD COLUMN rejection_reason  text,
    ADD COLUMN approval_lapsed_at timestamptz,
    ADD COLUMN approval_lapse    jsonb;
