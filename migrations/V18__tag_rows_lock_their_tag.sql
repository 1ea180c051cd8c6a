-- `follower_tags` and `tag_outbox` keep naming tags by id, but without foreign keys: their
-- triggers locked the tag once per inserted row (11 % of Postgres's time in a profile of the
-- callback tagging a new follower per push). The statements that add such rows lock each tag
-- they name once instead (`FOR KEY SHARE`, the lock the trigger took), and deleting a tag
-- deletes its rows after the tag itself (src/store/tags.rs), so no row outlives its tag.
ALTER TABLE follower_tags DROP CONSTRAINT follower_tags_tag_id_fkey;
ALTER TABLE tag_outbox DROP CONSTRAINT tag_outbox_tag_id_fkey;
