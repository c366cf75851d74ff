-- search_fts.sql — full-text top-k over memories.search_vec (GIN index idx_memories_search_vec),
-- ranked by ts_rank_cd (cover density). pgmemctl bench kind: fts.
--   $1  query text, websearch_to_tsquery syntax   $2  k
SELECT m.id, ts_rank_cd(m.search_vec, q) AS rank, m.content
FROM memories m, websearch_to_tsquery('english', $1) AS q
WHERE m.search_vec @@ q
ORDER BY rank DESC, m.id
LIMIT $2;
