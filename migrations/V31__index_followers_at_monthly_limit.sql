-- The campaign pages list who of an account already had WeChat's 4 mass messages this month
-- (they will be filtered out of the next send); without this the list reads every receipt row
-- of the account. 4 is WECHAT_MONTHLY_RECEIPTS.
CREATE INDEX follower_mass_receipts_at_limit ON follower_mass_receipts (account_id, month) WHERE count >= 4;
