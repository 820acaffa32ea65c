-- Transitions update a record in place: the same row gets a new state,
-- fields, revision and updated_at. With updated_at in an index, every such
-- update had to insert a new entry into each of the table's indexes (no HOT
-- update possible), and the indexes grew with every transition until vacuum.
-- Open records are still found by workflow (the auto-close bulk operation,
-- SOC-9, filters their updated_at in that scan); a transition that keeps
-- workflow, assignee and the open/final flag now writes no index entry.
DROP INDEX records_open_idle;
CREATE INDEX records_open ON records (tenant_id, workflow) WHERE NOT is_final;
