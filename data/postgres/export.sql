-- The whole mapping as a cnamed dump, at the position the primary acknowledged: changes the
-- publisher has not sent yet (no position, or one past it) are taken back to the cluster the
-- app had before the first of them. One statement, so one snapshot of apps, outbox and
-- position: the dump is exactly the zone the primary served at that serial, and a primary
-- that has taken more UPDATEs since replays its journal on it (README, "Full exports and
-- UPDATEs"). Serials are 32 bits (RFC 1982): positions are taken modulo 2^32.
WITH published AS (SELECT position FROM cnamed_published),
waiting AS (
    SELECT DISTINCT ON (lower(o.app_id)) lower(o.app_id) AS app_id, o.before
    FROM cnamed_outbox o, published p
    WHERE o.position IS NULL OR o.position > p.position
    ORDER BY lower(o.app_id), o.id),
state AS (
    SELECT app_id, cluster FROM apps
    WHERE lower(app_id) NOT IN (SELECT app_id FROM waiting)
    UNION ALL
    SELECT app_id, before FROM waiting WHERE before IS NOT NULL)
SELECT json_build_object(
    'serial', (SELECT position % 4294967296 FROM published),
    'apps', json_object_agg(app_id, cluster))
FROM state;
