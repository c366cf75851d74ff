-- 0001_init: the memory-store schema (mirrors vestige's PostgreSQL design) and the
-- bookkeeping tables pgmemctl copy uses to resume and to report rejected rows.
CREATE EXTENSION IF NOT EXISTS vector;

-- array_to_string is only STABLE, and a generated column needs an IMMUTABLE expression;
-- joining text with a fixed separator is immutable in fact, so say so.
CREATE FUNCTION pgmemctl_tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT array_to_string(tags, ' ') $$;

CREATE TABLE memories (
    id            uuid PRIMARY KEY,
    content       text NOT NULL,
    node_type     text NOT NULL DEFAULT 'fact',
    tags          text[] NOT NULL DEFAULT '{}',
    domains       text[] NOT NULL DEFAULT '{}',
    domain_scores jsonb NOT NULL DEFAULT '{}',
    embedding     vector,          -- typmod stamped when the registry gets its first model
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    search_vec    tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector('english', content), 'A') ||
                      setweight(to_tsvector('english', node_type), 'B') ||
                      setweight(to_tsvector('english', coalesce(pgmemctl_tags_text(tags), '')), 'C')
                  ) STORED
);
CREATE INDEX idx_memories_search_vec ON memories USING gin (search_vec);
CREATE INDEX idx_memories_domains ON memories USING gin (domains);
CREATE INDEX idx_memories_tags ON memories USING gin (tags);
CREATE INDEX idx_memories_node_type ON memories (node_type);
CREATE INDEX idx_memories_created_at ON memories (created_at);
CREATE INDEX idx_memories_updated_at ON memories (updated_at);

-- updated_at follows every change, unless the statement sets it itself (a copy that brings a
-- row up to date with its source keeps the source's updated_at).
CREATE FUNCTION pgmemctl_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER memories_touch_updated_at BEFORE UPDATE ON memories
    FOR EACH ROW EXECUTE FUNCTION pgmemctl_touch_updated_at();

-- FSRS state per memory (Free Spaced Repetition Scheduler).
CREATE TABLE scheduling (
    memory_id      uuid PRIMARY KEY REFERENCES memories (id) ON DELETE CASCADE,
    stability      double precision NOT NULL DEFAULT 1.0,
    difficulty     double precision NOT NULL DEFAULT 5.0,
    retrievability double precision,
    state          text NOT NULL DEFAULT 'new',
    last_review    timestamptz,
    next_review    timestamptz,
    reps           integer NOT NULL DEFAULT 0,
    lapses         integer NOT NULL DEFAULT 0,
    scheduled_days integer NOT NULL DEFAULT 0,
    elapsed_days   integer NOT NULL DEFAULT 0
);
CREATE INDEX idx_scheduling_next_review ON scheduling (next_review);

-- The memory graph. The primary key's leading column serves lookups by source.
CREATE TABLE edges (
    source_id  uuid NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    target_id  uuid NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    edge_type  text NOT NULL,
    weight     double precision NOT NULL DEFAULT 1.0,
    created_at timestamptz NOT NULL DEFAULT now(),
    metadata   jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (source_id, target_id, edge_type)
);
CREATE INDEX idx_edges_target ON edges (target_id);
CREATE INDEX idx_edges_type ON edges (edge_type);

CREATE TABLE review_events (
    id          bigserial PRIMARY KEY,
    memory_id   uuid NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    rating      smallint NOT NULL,
    prior_state jsonb,
    new_state   jsonb
);
CREATE INDEX idx_review_events_memory ON review_events (memory_id);
CREATE INDEX idx_review_events_timestamp ON review_events ("timestamp");

CREATE TABLE domains (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL UNIQUE,
    description  text,
    centroid     vector,
    memory_count integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Which model produced the stored vectors; exactly one row is active.
CREATE TABLE embedding_model (
    name       text PRIMARY KEY,
    dimension  integer NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
    hash       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    active     boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX embedding_model_one_active ON embedding_model (active) WHERE active;

-- pgmemctl copy: one checkpoint per (source store, source table), committed with each batch.
CREATE TABLE pgmemctl_copy_progress (
    source_id    text NOT NULL,
    source_table text NOT NULL,
    last_rowid   bigint NOT NULL DEFAULT 0,
    rows_copied  bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, source_table)
);

-- pgmemctl copy: every rejected source row (or rejected field), committed with its batch.
CREATE TABLE pgmemctl_copy_rejects (
    source_id    text NOT NULL,
    source_table text NOT NULL,
    source_rowid bigint NOT NULL,
    source_key   text,
    field        text NOT NULL,
    reason       text NOT NULL,
    action       text NOT NULL,     -- row_skipped, embedding_nulled, scheduling_skipped, edge_skipped, orphan_skipped
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, source_table, source_rowid, field)
);

-- pgmemctl copy: indexes dropped for a bulk load, to be rebuilt even after a crash.
CREATE TABLE pgmemctl_copy_index_rebuilds (
    index_name text PRIMARY KEY,
    definition text NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now()
);
