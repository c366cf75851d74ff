-- search_vector.sql — vector top-k by cosine distance (served by the HNSW index
-- idx_memories_embedding_hnsw, vector_cosine_ops). pgmemctl bench kind: vector.
--   $1  query vector, pgvector text form   $2  k
SELECT id, embedding <=> $1::vector AS distance, content
FROM memories
ORDER BY embedding <=> $1::vector
LIMIT $2;
