-- cnamed real-time changes from PostgreSQL: every change to `apps` goes into an outbox in
-- the same transaction; one publisher gives the committed rows positions in order and sends
-- them to the primary as UPDATEs whose serial is the position; an export is the state at the
-- position the primary acknowledged (export.sql). README, "Real-time changes from the database".
--
-- Why positions are not taken at insert: sequence values are handed out when a row is
-- written, but transactions commit in another order, so "every change up to N" is not
-- "every row numbered up to N" (row 11 can commit before row 10: a reader that moved past
-- 11 would skip 10 forever). The publisher numbers only rows that have committed, in one
-- transaction at a time, so the positions it gives are in the order changes became visible,
-- and a position covers everything before it. Two changes of one app are ordered anyway: the
-- second waits for the first's row lock before its trigger runs, so its id is greater.

CREATE TABLE cnamed_outbox (
    id       bigserial PRIMARY KEY, -- insert order (one app's changes: commit order)
    app_id   text NOT NULL,
    before   text,                  -- the app's cluster before the change; NULL: none
    after    text,                  -- after it; NULL: removed
    position bigint UNIQUE          -- given by the publisher; NULL until then
);
CREATE INDEX cnamed_outbox_waiting ON cnamed_outbox (id) WHERE position IS NULL;

-- The position the primary acknowledged: the zone's serial, and every export's.
CREATE TABLE cnamed_published (position bigint NOT NULL);
-- Start above every serial the fleet served before (here: the export sequence's next value).
INSERT INTO cnamed_published SELECT nextval('cnamed_serial');

CREATE FUNCTION cnamed_outbox_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO cnamed_outbox (app_id, before, after) VALUES (NEW.app_id, NULL, NEW.cluster);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO cnamed_outbox (app_id, before, after) VALUES (OLD.app_id, OLD.cluster, NULL);
    ELSIF OLD.app_id <> NEW.app_id THEN
        INSERT INTO cnamed_outbox (app_id, before, after)
            VALUES (OLD.app_id, OLD.cluster, NULL), (NEW.app_id, NULL, NEW.cluster);
    ELSIF OLD.cluster IS DISTINCT FROM NEW.cluster THEN
        INSERT INTO cnamed_outbox (app_id, before, after) VALUES (NEW.app_id, OLD.cluster, NEW.cluster);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER cnamed_outbox AFTER INSERT OR UPDATE OR DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION cnamed_outbox_record();
