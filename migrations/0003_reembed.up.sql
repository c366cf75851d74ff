-- 0003_reembed: what `pgmemctl reembed` needs.

-- updated_at follows changes of the memory itself. Re-encoding its vector under another model
-- (embedding, or the shadow column embedding_next during a re-embed) is not one.
CREATE OR REPLACE FUNCTION pgmemctl_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
       AND (NEW.id, NEW.content, NEW.node_type, NEW.tags, NEW.domains, NEW.domain_scores, NEW.metadata,
            NEW.created_at)
           IS DISTINCT FROM
           (OLD.id, OLD.content, OLD.node_type, OLD.tags, OLD.domains, OLD.domain_scores, OLD.metadata,
            OLD.created_at) THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

-- One re-embed at a time: its target model and how far it got, committed with each batch, so
-- an interrupted run resumes and a different target is refused until it is finished or aborted.
CREATE TABLE pgmemctl_reembed_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode          text NOT NULL CHECK (mode IN ('shadow', 'in-place')),
    model         text NOT NULL,
    dimension     integer NOT NULL,
    hash          text,
    old_model     text,
    old_dimension integer,
    phase         text NOT NULL DEFAULT 'backfill' CHECK (phase IN ('backfill', 'index', 'swap')),
    last_id       uuid,               -- in-place: the keyset position of the last committed batch
    index_opclass text,               -- in-place: the dropped HNSW index's opclass, m and
    index_m       integer,            -- ef_construction, to rebuild it the same way after a resume
    index_ef_construction integer,
    rows_done     bigint NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Shadow mode: a memory whose content changes while its new vector is being computed loses that
-- vector, so the backfill embeds it again. pgmemctl reembed creates the trigger (on
-- memories.embedding_next, which exists only during a shadow re-embed) and drops it at the swap.
CREATE FUNCTION pgmemctl_reembed_invalidate() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.embedding_next := NULL;
    RETURN NEW;
END
$$;
