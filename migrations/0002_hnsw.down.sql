-- 0002_hnsw (down): drops the HNSW index and its helper.
DROP INDEX IF EXISTS idx_memories_embedding_hnsw;
DROP FUNCTION pgmemctl_ensure_hnsw();
