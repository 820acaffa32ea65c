-- Outbox dead letters (issue 12): a message that cannot be delivered (a
-- template that does not render for its payload, an address that does not
-- parse, or max_attempts reached) is marked failed and never claimed again;
-- `note` records what was noticed on the way (the language a template fell
-- back to).
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
ALTER TABLE outbox ADD COLUMN note text;
