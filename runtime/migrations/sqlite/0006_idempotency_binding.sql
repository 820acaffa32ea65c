-- Idempotency keys are bound to their request: `request` is the SHA-256 hex
-- of method, path and body as the HTTP layer saw them; the same key with
-- another request is refused (E_IDEMPOTENCY_MISMATCH). Rows from before
-- this migration have '' and replay as before until they expire.
-- Keys are kept 24 hours (backend::IDEMPOTENCY_RETENTION): the index lets
-- each keyed write delete a few expired rows of its tenant.
ALTER TABLE idempotency ADD COLUMN request TEXT NOT NULL DEFAULT '';
CREATE INDEX idempotency_created ON idempotency (tenant_id, created_at);
