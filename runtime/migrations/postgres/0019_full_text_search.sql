-- Full-text search (`q=` on lists and views, docs/api.md "Full-text
-- search"). Each record carries a search document, `search_doc`, kept by a
-- trigger from the words of the fields its workflow searches (`search`, in
-- `search_fields`, written at each publish): the words of `pii` fields with
-- weight A, the others with weight D, so that a caller who may not see
-- personal data matches weight D only. The GIN index on it (`lf_search`) is
-- built CONCURRENTLY when a published version first searches a field.
--
-- Words: the `simple` configuration (no stemming, no stop words: the seeds
-- are Italian and Romanian, names and places are not dictionary words),
-- lower case, accents of Latin letters folded by `leadflow_fold` (a fixed
-- table, IMMUTABLE, so no extension is needed: `unaccent` must be created
-- by a superuser and its dictionary lookup is not immutable), ASCII
-- punctuation splitting words. A value with digits also gives one word of
-- its letters and digits without spaces and `+-.()/`, so
-- "+39 06 1234567" is found by 3906123.
CREATE FUNCTION leadflow_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT translate(t,
        'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžȘșȚț!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~',
        'aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzsstt                                ') $$;

CREATE FUNCTION leadflow_search_text(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT leadflow_fold(t) || CASE WHEN t ~ '[0-9]'
        THEN ' ' || translate(t, 'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžȘșȚț +-.()/', 'aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzsstt') ELSE '' END $$;

CREATE TABLE search_fields (
    tenant_id text NOT NULL REFERENCES tenants (id),
    workflow  text NOT NULL,
    field     text NOT NULL,
    pii       boolean NOT NULL,
    PRIMARY KEY (tenant_id, workflow, field)
);
ALTER TABLE search_fields ENABLE ROW LEVEL SECURITY;
ALTER TABLE search_fields FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON search_fields
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON search_fields TO leadflow_app;

-- The document of a record of `wf` in `tenant` with `f` as its fields
-- (NULL when the workflow searches none of the fields it has). STABLE: it
-- reads `search_fields` (under the session's tenant policy).
CREATE FUNCTION leadflow_search_doc(tenant text, wf text, f jsonb) RETURNS tsvector
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN count(*) > 0 THEN
        setweight(to_tsvector('simple', coalesce(string_agg(leadflow_search_text(f ->> s.field), ' ') FILTER (WHERE s.pii), '')), 'A')
        || to_tsvector('simple', coalesce(string_agg(leadflow_search_text(f ->> s.field), ' ') FILTER (WHERE NOT s.pii), ''))
        END
    FROM search_fields s
    WHERE s.tenant_id = tenant AND s.workflow = wf AND jsonb_typeof(f -> s.field) = 'string' $$;

ALTER TABLE records ADD COLUMN search_doc tsvector;

CREATE FUNCTION leadflow_search_doc_keep() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN
        NEW.search_doc := leadflow_search_doc(NEW.tenant_id, NEW.workflow, NEW.fields);
        RETURN NEW;
    END $$;

CREATE TRIGGER records_search_insert BEFORE INSERT ON records
    FOR EACH ROW EXECUTE FUNCTION leadflow_search_doc_keep();
CREATE TRIGGER records_search_update BEFORE UPDATE OF fields ON records
    FOR EACH ROW WHEN (OLD.fields IS DISTINCT FROM NEW.fields)
    EXECUTE FUNCTION leadflow_search_doc_keep();
