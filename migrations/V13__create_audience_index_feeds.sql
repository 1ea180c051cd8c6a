-- Feeds of the in-memory audience index (src/audience/index): it tails `events` by id and
-- `orders` by this sequence, re-reading the followers those rows name.
ALTER TABLE orders ADD COLUMN seq bigserial;
CREATE INDEX orders_seq ON orders (seq);

-- Bumped by changes to followers or tags that no event or order row announces (a dynamic tag's
-- scheduled pass, erasure, the follower import): every process's index is then rebuilt.
CREATE TABLE audience_epoch (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    epoch  bigint  NOT NULL DEFAULT 0
);
INSERT INTO audience_epoch DEFAULT VALUES;
