-- search_hybrid.sql — hybrid memory search: full-text and vector candidates fused by Reciprocal
-- Rank Fusion (Cormack, Clarke and Buettcher, SIGIR 2009): score = sum over both lists of
-- 1 / (60 + rank), a memory missing from one list scoring 0 there. One statement; each side
-- over-fetches $4 candidates so that a memory ranked lower on one side can still win.
-- pgmemctl bench measures this statement as it is (`pgmemctl bench` kinds hybrid and
-- hybrid_domain); copy it into your application.
--
--   $1  query vector, pgvector text form '[0.12,-0.5,...]' (the dimension of memories.embedding)
--   $2  query text, websearch_to_tsquery syntax: words, "a phrase", or, -word
--   $3  k: memories returned
--   $4  candidates fetched by each side (pgmemctl bench: 4 * k); with HNSW the vector side
--       returns at most hnsw.ef_search of them unless hnsw.iterative_scan is on
--   $5  domain filter, text[]: only memories whose domains overlap it; NULL for none
WITH fts AS (
    SELECT id, row_number() OVER (ORDER BY rank_cd DESC, id) AS rank
    FROM (SELECT m.id, ts_rank_cd(m.search_vec, q) AS rank_cd
          FROM memories m, websearch_to_tsquery('english', $2) AS q
          WHERE m.search_vec @@ q
            AND ($5::text[] IS NULL OR m.domains && $5::text[])
          ORDER BY rank_cd DESC, m.id
          LIMIT $4) AS f
),
vec AS (
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank
    FROM (SELECT m.id, m.embedding <=> $1::vector AS distance
          FROM memories m
          WHERE ($5::text[] IS NULL OR m.domains && $5::text[])
          ORDER BY m.embedding <=> $1::vector
          LIMIT $4) AS v
),
fused AS (
    SELECT coalesce(fts.id, vec.id) AS id,
           coalesce(1.0::float8 / (60 + fts.rank), 0) + coalesce(1.0::float8 / (60 + vec.rank), 0) AS score
    FROM fts FULL OUTER JOIN vec ON fts.id = vec.id
    ORDER BY score DESC, id
    LIMIT $3
)
SELECT fused.id, fused.score, m.content
FROM fused JOIN memories m ON m.id = fused.id
ORDER BY fused.score DESC, fused.id;
