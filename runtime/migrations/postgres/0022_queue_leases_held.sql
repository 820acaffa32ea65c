-- "The record this actor holds in this queue" reads only the leases that
-- have not expired: a lease row stays after its record moved on (one row per
-- record ever pulled), so an operator's expired leases pile up over a day of
-- calls. `expires_at` last in the index bounds the read to the live ones.
DROP INDEX IF EXISTS queue_leases_actor;
CREATE INDEX queue_leases_held ON queue_leases (tenant_id, workflow, queue, actor, expires_at);
