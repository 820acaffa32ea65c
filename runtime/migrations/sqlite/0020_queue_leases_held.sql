-- As PostgreSQL's 0022_queue_leases_held.sql: the held-lease lookup reads
-- only the leases that have not expired.
DROP INDEX IF EXISTS queue_leases_actor;
CREATE INDEX queue_leases_held ON queue_leases (tenant_id, workflow, queue, actor, expires_at);
