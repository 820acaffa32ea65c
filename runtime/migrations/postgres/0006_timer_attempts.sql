-- A timer item that fails when fired (an error or a panic) is recorded on
-- its row and retried with backoff; after the worker's `max_attempts` it is
-- parked: no claim picks it up until an operator retries it
-- (`POST /v1/timers/parked/{record}/{timer}/retry`). A new arming of the
-- timer resets all four columns. States: pending (all NULL/0), retrying
-- (`next_attempt_at` set), parked (`parked_at` set, `next_attempt_at` NULL).
ALTER TABLE timers
    ADD COLUMN attempts        int NOT NULL DEFAULT 0,
    ADD COLUMN last_error      text,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN parked_at       timestamptz;

-- The worker's next wake-up reads the earliest retry from here (few rows).
CREATE INDEX timers_retrying ON timers (tenant_id, next_attempt_at)
    WHERE fired_at IS NULL AND next_attempt_at IS NOT NULL;
CREATE INDEX timers_parked ON timers (tenant_id, parked_at)
    WHERE fired_at IS NULL AND parked_at IS NOT NULL;
