-- Field values an index condition can use under row-level security
-- (docs/security.md, "Indexes under row-level security").
--
-- The daemon's sessions are `leadflow_app`, bound by RLS. PostgreSQL checks
-- a query's own conditions only after the policy's unless they are
-- leakproof: a condition such as `leadflow_ts((fields -> 'callback_at')) <=
-- $1` calls `->` on the row, which is not leakproof, so it could not be an
-- index condition and a range over an indexed field read every row of the
-- tenant (a phone-prefix lookup on 100,000 records: 122 ms as leadflow_app,
-- 0.07 ms without RLS). These functions take the whole `fields` document and
-- the field's name, never raise an error whatever the document holds (a
-- value of another type, an impossible date: NULL), and are plpgsql so the
-- planner keeps them as one call (an SQL function would be inlined into
-- operators that are not leakproof). Marking a function LEAKPROOF needs a
-- superuser: a migration run by one marks them; otherwise the daemon warns
-- at start and a superuser runs the ALTER FUNCTION lines below once.
-- Values read as in 0014_record_queries.sql.

CREATE FUNCTION leadflow_days_in(y int, m int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN m = 2 THEN CASE WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0 THEN 29 ELSE 28 END
                      WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END $$;

CREATE FUNCTION leadflow_text_of(f jsonb, k text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$ BEGIN
        RETURN CASE WHEN jsonb_typeof(f -> k) = 'string' THEN f ->> k END;
    END $$;

CREATE FUNCTION leadflow_num_of(f jsonb, k text) RETURNS numeric
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$ DECLARE s text; BEGIN
        CASE jsonb_typeof(f -> k)
            WHEN 'number' THEN RETURN (f ->> k)::numeric;
            WHEN 'string' THEN
                s := f ->> k;
                IF length(s) <= 1000 AND s ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN
                    RETURN s::numeric;
                END IF;
            ELSE NULL;
        END CASE;
        RETURN NULL;
    END $$;

CREATE FUNCTION leadflow_bool_of(f jsonb, k text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$ BEGIN
        RETURN CASE WHEN jsonb_typeof(f -> k) = 'boolean' THEN (f ->> k) = 'true' END;
    END $$;

-- Dates and instants: the shape by a regular expression, then every part
-- in range, in one expression (plpgsql evaluates a single expression fast),
-- so the cast cannot fail. `->>` of a value that is not a string does not
-- have the shape.
CREATE FUNCTION leadflow_date_of(f jsonb, k text) RETURNS date
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$ DECLARE s text := f ->> k; BEGIN
        IF s IS NULL OR s !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN RETURN NULL; END IF;
        RETURN CASE WHEN substr(s, 1, 4) <> '0000'
                     AND substr(s, 6, 2)::int BETWEEN 1 AND 12
                     AND substr(s, 9, 2)::int BETWEEN 1 AND leadflow_days_in(substr(s, 1, 4)::int, substr(s, 6, 2)::int)
                    THEN s::date END;
    END $$;

CREATE FUNCTION leadflow_ts_of(f jsonb, k text) RETURNS timestamptz
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$ DECLARE s text := f ->> k; BEGIN
        IF s IS NULL OR s !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$' THEN
            RETURN NULL;
        END IF;
        RETURN CASE WHEN substr(s, 1, 4) <> '0000'
                     AND substr(s, 6, 2)::int BETWEEN 1 AND 12
                     AND substr(s, 9, 2)::int BETWEEN 1 AND leadflow_days_in(substr(s, 1, 4)::int, substr(s, 6, 2)::int)
                     AND substr(s, 12, 2)::int <= 23 AND substr(s, 15, 2)::int <= 59 AND substr(s, 18, 2)::int <= 59
                     AND (right(s, 1) = 'Z' OR (substr(right(s, 6), 2, 2)::int <= 15 AND right(s, 2)::int <= 59))
                    THEN s::timestamptz END;
    END $$;

DO $$ BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER FUNCTION leadflow_text_of(jsonb, text) LEAKPROOF;
        ALTER FUNCTION leadflow_num_of(jsonb, text) LEAKPROOF;
        ALTER FUNCTION leadflow_bool_of(jsonb, text) LEAKPROOF;
        ALTER FUNCTION leadflow_date_of(jsonb, text) LEAKPROOF;
        ALTER FUNCTION leadflow_ts_of(jsonb, text) LEAKPROOF;
    END IF;
END $$;
