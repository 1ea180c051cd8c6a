-- PIPL art. 24: a follower may refuse marketing decided by automated profiling. 删除我的标签 sets
-- this (允许推测 clears it): no intent tag and no purchase score is kept for them meanwhile.
ALTER TABLE followers ADD COLUMN profiling_refused_at timestamptz;
