-- Data for scripts/bench-kpi.sh: :leads ASLM leads of tenant `aslm` over
-- 2025 with about ten events each, and :oplead Oplead project leads of
-- tenant `oplead` (a fifth closed with a sale, with its close_sale event).
-- Run as the schema owner (RLS is lifted for the load, forced again after).
\set ON_ERROR_STOP on
ALTER TABLE records NO FORCE ROW LEVEL SECURITY;
ALTER TABLE events NO FORCE ROW LEVEL SECURITY;
SET synchronous_commit = off;
-- The open-record counters (actor_loads) are kept by row triggers; a bulk
-- insert would update the same 70 counter rows a million times in one
-- transaction (quadratic: the rows' versions cannot be pruned until it
-- commits). They are switched off for the load and the counters computed
-- once at the end.
ALTER TABLE records DISABLE TRIGGER USER;

-- ASLM: assigned through 2025 (Rome), 40 dealers, 7 sources. A lead gets a
-- first contact attempt after 2-47 h, most a final status after 1-19 days;
-- its state follows (closed with a sale, without, appointment, open).
CREATE TEMP TABLE g AS
SELECT i AS id,
       timestamptz '2025-01-01 00:00:00+01' + ((i::bigint * 7919) % 31536000) * interval '1 second' AS assigned_at,
       'dealer-' || (i % 40) AS dealer,
       (ARRAY['web_form','owner_app','service_reminder','warranty_end_reminder','seasonal_promo','extended_warranty','accessories'])[1 + i % 7] AS source,
       (i * 31) % 48 AS contact_h,
       (i * 17) % 20 AS final_d,
       CASE WHEN i % 10 < 3 THEN 'closed_sale' WHEN i % 10 < 6 THEN 'closed_no_sale'
            WHEN i % 10 < 8 THEN 'appointment_set' ELSE 'assigned' END AS state
FROM generate_series(1, :leads) AS i;

INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
SELECT 'aslm', g.id, 'aslm', (SELECT hash FROM workflow_versions WHERE tenant_id = 'aslm' AND workflow = 'aslm' LIMIT 1),
       g.state, g.state IN ('closed_sale', 'closed_no_sale'),
       jsonb_build_object(
         'first_name', 'Mario', 'last_name', 'Rossi ' || g.id, 'province', 'RM', 'model', 'Ghibli',
         'source', g.source, 'assigned_at', to_char(g.assigned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
         'first_contact_attempt_at', CASE WHEN g.contact_h > 0 THEN to_char((g.assigned_at + g.contact_h * interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END,
         'final_status_at', CASE WHEN g.state <> 'assigned' THEN to_char((g.assigned_at + (1 + g.final_d) * interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END),
       g.dealer, 10, g.assigned_at, g.assigned_at, g.assigned_at
FROM g;

-- Ten events per lead: the creation, contact attempts and edits (state
-- unchanged), and the final move when the lead has one.
INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee)
SELECT 'aslm', g.id, r, 'aslm', g.assigned_at + r * interval '1 hour',
       CASE WHEN r = 1 THEN 'create' ELSE 'transition' END, g.dealer,
       CASE WHEN r = 1 THEN NULL WHEN r = 10 AND g.state <> 'assigned' THEN
            CASE g.state WHEN 'closed_sale' THEN 'close_sale' WHEN 'closed_no_sale' THEN 'close_no_sale' ELSE 'make_appointment' END
            ELSE 'log_contact_attempt' END,
       CASE WHEN r = 1 THEN NULL ELSE 'assigned' END,
       CASE WHEN r = 10 THEN g.state ELSE 'assigned' END,
       g.dealer
FROM g, generate_series(1, 10) AS r;

-- Oplead project leads over 2025, 30 Experts; a fifth sold (half above
-- 500 EUR), each with its close_sale event.
INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
SELECT 'oplead', i, 'oplead_project', (SELECT hash FROM workflow_versions WHERE tenant_id = 'oplead' AND workflow = 'oplead_project' LIMIT 1),
       CASE WHEN i % 5 = 0 THEN 'closed_sale' ELSE 'in_progress' END, i % 5 = 0,
       jsonb_build_object('town', 'Milano', 'sale_amount', CASE WHEN i % 5 = 0 THEN 300 + (i % 2) * 400 END),
       'exp-' || (i % 30), 6,
       timestamptz '2025-01-01 00:00:00+01' + ((i::bigint * 7919) % 31536000) * interval '1 second',
       timestamptz '2025-01-01 00:00:00+01' + ((i::bigint * 7919) % 31536000) * interval '1 second',
       timestamptz '2025-01-01 00:00:00+01' + ((i::bigint * 7919) % 31536000) * interval '1 second'
FROM generate_series(1, :oplead) AS i;
INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee)
SELECT 'oplead', i, 6, 'oplead_project',
       timestamptz '2025-01-01 00:00:00+01' + ((i::bigint * 7919) % 31536000 + 86400 * 9) * interval '1 second',
       'transition', 'exp-' || (i % 30), 'close_sale', 'in_progress', 'closed_sale', 'exp-' || (i % 30)
FROM generate_series(1, :oplead) AS i WHERE i % 5 = 0;

ALTER TABLE records ENABLE TRIGGER USER;
INSERT INTO actor_loads (tenant_id, actor, open_records)
SELECT tenant_id, assignee, count(*) FROM records
WHERE NOT is_final AND assignee IS NOT NULL AND tenant_id IN ('aslm', 'oplead')
GROUP BY tenant_id, assignee
ON CONFLICT (tenant_id, actor) DO UPDATE SET open_records = EXCLUDED.open_records;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
VACUUM ANALYZE records;
VACUUM ANALYZE events;
