-- Plaintext-mode pushes: WeChat's `signature` covers the token, timestamp and nonce but not the
-- body, so a captured query string could carry any body for as long as its timestamp is fresh.
-- Each signature is accepted once; it is written in the same statement as the push's event row,
-- so the check costs no round trip and holds across instances. Rows are needed only while their
-- timestamp is inside the replay window; the inbox deletes older ones.
CREATE TABLE callback_signatures (
    signature  bytea       PRIMARY KEY,
    seen_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX callback_signatures_seen_at ON callback_signatures (seen_at);
