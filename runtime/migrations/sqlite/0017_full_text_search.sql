-- Full-text search (`q=` on lists and views, docs/api.md "Full-text
-- search"): an FTS5 index of the words of the fields each workflow searches
-- (`search`, in `search_fields`, written at each publish), kept by triggers
-- on `records`. `search_docs` holds each record's words, `pub` from the
-- fields that are not `pii` and `pii` from the others, under a docid of
-- its own (an INTEGER PRIMARY KEY: VACUUM keeps it, unlike the implicit
-- rowid of `records`); `record_search` indexes it as external content.
-- Tokens: unicode61, lower case, diacritics removed, punctuation splitting
-- words (the same words PostgreSQL's `simple` configuration and
-- `leadflow_fold` give). A value with digits also gives one word of its
-- letters and digits without spaces and `+-.()/`, so "+39 06 1234567" is
-- found by 3906123.
CREATE TABLE search_fields (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    workflow  TEXT NOT NULL,
    field     TEXT NOT NULL,
    pii       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, workflow, field)
) WITHOUT ROWID;

CREATE TABLE search_docs (
    docid     INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    id        INTEGER NOT NULL,
    pub       TEXT,
    pii       TEXT,
    UNIQUE (tenant_id, id)
);

CREATE VIRTUAL TABLE record_search USING fts5(
    pub, pii, content = 'search_docs', content_rowid = 'docid',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER search_docs_insert AFTER INSERT ON search_docs BEGIN
    INSERT INTO record_search (rowid, pub, pii) VALUES (NEW.docid, NEW.pub, NEW.pii);
END;
CREATE TRIGGER search_docs_delete AFTER DELETE ON search_docs BEGIN
    INSERT INTO record_search (record_search, rowid, pub, pii) VALUES ('delete', OLD.docid, OLD.pub, OLD.pii);
END;
CREATE TRIGGER search_docs_update AFTER UPDATE ON search_docs BEGIN
    INSERT INTO record_search (record_search, rowid, pub, pii) VALUES ('delete', OLD.docid, OLD.pub, OLD.pii);
    INSERT INTO record_search (rowid, pub, pii) VALUES (NEW.docid, NEW.pub, NEW.pii);
END;

-- The words of each record as its workflow's search fields give them.
CREATE VIEW search_doc_of AS
SELECT r.tenant_id, r.id, r.workflow,
    (SELECT group_concat(j.value || CASE WHEN j.value GLOB '*[0-9]*' THEN ' ' ||
            replace(replace(replace(replace(replace(replace(replace(j.value,
                ' ', ''), '+', ''), '-', ''), '.', ''), '(', ''), ')', ''), '/', '')
            ELSE '' END, ' ')
     FROM json_each(r.fields) AS j
     JOIN search_fields AS s ON s.tenant_id = r.tenant_id AND s.workflow = r.workflow AND s.field = j.key
     WHERE j.type = 'text' AND s.pii = 0) AS pub,
    (SELECT group_concat(j.value || CASE WHEN j.value GLOB '*[0-9]*' THEN ' ' ||
            replace(replace(replace(replace(replace(replace(replace(j.value,
                ' ', ''), '+', ''), '-', ''), '.', ''), '(', ''), ')', ''), '/', '')
            ELSE '' END, ' ')
     FROM json_each(r.fields) AS j
     JOIN search_fields AS s ON s.tenant_id = r.tenant_id AND s.workflow = r.workflow AND s.field = j.key
     WHERE j.type = 'text' AND s.pii = 1) AS pii
FROM records AS r;

CREATE TRIGGER records_search_insert AFTER INSERT ON records
WHEN EXISTS (SELECT 1 FROM search_fields WHERE tenant_id = NEW.tenant_id AND workflow = NEW.workflow)
BEGIN
    INSERT INTO search_docs (tenant_id, id, pub, pii)
    SELECT tenant_id, id, pub, pii FROM search_doc_of WHERE tenant_id = NEW.tenant_id AND id = NEW.id
    ON CONFLICT (tenant_id, id) DO UPDATE SET pub = excluded.pub, pii = excluded.pii
        WHERE pub IS NOT excluded.pub OR pii IS NOT excluded.pii;
END;
CREATE TRIGGER records_search_update AFTER UPDATE OF fields ON records
WHEN OLD.fields IS NOT NEW.fields
    AND EXISTS (SELECT 1 FROM search_fields WHERE tenant_id = NEW.tenant_id AND workflow = NEW.workflow)
BEGIN
    INSERT INTO search_docs (tenant_id, id, pub, pii)
    SELECT tenant_id, id, pub, pii FROM search_doc_of WHERE tenant_id = NEW.tenant_id AND id = NEW.id
    ON CONFLICT (tenant_id, id) DO UPDATE SET pub = excluded.pub, pii = excluded.pii
        WHERE pub IS NOT excluded.pub OR pii IS NOT excluded.pii;
END;
