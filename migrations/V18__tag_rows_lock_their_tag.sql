-- `follower_tags` and `tag_outbox` keep naming tags by id, but without foreign keys: their
-- triggers locked the tag once per inserted row (11 % of Postgres's time in a profile of the
-- callback tagging a new follower per push). The statements that add such rows lock each tag
-- they name once instead (`FOR KEY SHARE`, the lock the trigger took; src/store/tags.rs), so
-- deleting a tag waits for them.
ALTER TABLE follower_tags DROP CONSTRAINT follower_tags_tag_id_fkey;
ALTER TABLE tag_outbox DROP CONSTRAINT tag_outbox_tag_id_fkey;

-- What `ON DELETE CASCADE` did, once per statement: whoever deletes tags (tagcast, the previous
-- release during a rolling upgrade or after a rollback, an operator in psql) deletes their rows
-- with them. It runs after the tags are gone, with a fresh snapshot, so it also sees the rows of
-- a batch the delete waited for. The previous release's tagging takes no such lock: a tag deleted
-- at the very moment one of its instances tags with it can leave that batch's rows behind. Tag
-- ids are never reused and readers look tags up by id, so such rows change no audience, but an
-- outbox row would stay pending in `tagcast_outbox_depth`; docs/deploy.md says how to clear them.
CREATE FUNCTION delete_rows_of_deleted_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM follower_tags WHERE tag_id IN (SELECT id FROM gone);
    DELETE FROM tag_outbox WHERE tag_id IN (SELECT id FROM gone);
    RETURN NULL;
END
$$;
CREATE TRIGGER tags_take_their_rows_along AFTER DELETE ON tags REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION delete_rows_of_deleted_tags();
