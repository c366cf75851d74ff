-- bench_overhead.sql — the statement pgmemctl bench runs both itself and through `pgbench -f`
-- to measure its own client overhead: the vector top-k query with its query vector read from
-- the table (the ($1 + 1)-th memory with a vector, by id), so both clients send the same two
-- integers and the server does the same work. pgbench's script replaces $1 and $2 with :n, :k.
--   $1  0-based query number (pgmemctl bench: 0 .. --queries - 1)   $2  k
SELECT id, content
FROM memories
ORDER BY embedding <=> (SELECT embedding FROM memories WHERE embedding IS NOT NULL
                        ORDER BY id OFFSET $1 LIMIT 1)
LIMIT $2;
