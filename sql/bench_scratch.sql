-- bench_scratch.sql — the scratch store of `pgmemctl bench --scratch`: memories as in
-- migrations/0001_init (same columns, generated full-text column and secondary indexes), created
-- in the scratch schema, which pgmemctl puts first on search_path before running this script.
-- pgmemctl then stamps embedding's dimension, loads the rows with binary COPY and builds the
-- HNSW index (as migrations/0002_hnsw does) on its own, to time each step.
CREATE FUNCTION tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT array_to_string(tags, ' ') $$;

CREATE TABLE memories (
    id            uuid PRIMARY KEY,
    content       text NOT NULL,
    node_type     text NOT NULL DEFAULT 'fact',
    tags          text[] NOT NULL DEFAULT '{}',
    domains       text[] NOT NULL DEFAULT '{}',
    domain_scores jsonb NOT NULL DEFAULT '{}',
    embedding     vector,
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    search_vec    tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector('english', content), 'A') ||
                      setweight(to_tsvector('english', node_type), 'B') ||
                      setweight(to_tsvector('english', coalesce(tags_text(tags), '')), 'C')
                  ) STORED
);
CREATE INDEX idx_memories_search_vec ON memories USING gin (search_vec);
CREATE INDEX idx_memories_domains ON memories USING gin (domains);
CREATE INDEX idx_memories_tags ON memories USING gin (tags);
CREATE INDEX idx_memories_node_type ON memories (node_type);
CREATE INDEX idx_memories_created_at ON memories (created_at);
CREATE INDEX idx_memories_updated_at ON memories (updated_at);
