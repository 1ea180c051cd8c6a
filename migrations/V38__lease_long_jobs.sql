-- Long jobs (training) run in their own lane under a lease instead of inside the claiming
-- transaction: a transaction held open for minutes pins a pool connection and holds back
-- vacuum's horizon. A leased row stays 'pending' with `locked_until` in the future; the runner
-- extends it while it works, and a row whose runner died is claimable again once it passes.
ALTER TABLE jobs ADD COLUMN locked_until timestamptz;
