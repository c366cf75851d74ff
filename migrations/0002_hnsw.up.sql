-- 0002_hnsw: the HNSW index on memories.embedding (cosine distance, m = 16,
-- ef_construction = 64). HNSW needs the column's dimension (typmod); until the registry
-- gets its first model the column has none, so the build is deferred: pgmemctl calls
-- pgmemctl_ensure_hnsw() again after it stamps the dimension.
CREATE FUNCTION pgmemctl_ensure_hnsw() RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF to_regclass('idx_memories_embedding_hnsw') IS NOT NULL THEN
        RETURN false;
    END IF;
    IF (SELECT atttypmod FROM pg_attribute
         WHERE attrelid = 'memories'::regclass AND attname = 'embedding') <= 0 THEN
        RAISE NOTICE 'HNSW index deferred: memories.embedding has no dimension yet';
        RETURN false;
    END IF;
    CREATE INDEX idx_memories_embedding_hnsw ON memories
        USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
    RETURN true;
END
$$;

SELECT pgmemctl_ensure_hnsw();
