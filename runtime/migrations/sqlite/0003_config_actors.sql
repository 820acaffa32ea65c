-- The actors (and their unavailability periods) the tenant's config defined
-- at the last daemon start, as JSON text {"actor id": [{"from", "until"}, ...]}.
-- The next start merges the config into the stored directory with it: an
-- actor or period the config dropped since is removed, while actors and
-- periods added through the API are kept. NULL: not known yet.
ALTER TABLE tenants ADD COLUMN config_actors TEXT;
