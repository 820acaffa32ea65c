-- KPIs read "reached a state" and "entered a state at" from the events
-- that enter their state (a create, or a move from another state); see
-- the PostgreSQL migration of the same name.
CREATE INDEX events_entered ON events (tenant_id, to_state, record_id, at)
    WHERE from_state IS NOT to_state;
