/* sample_rng.h — the seeded, deterministic pseudo-random numbers behind generated sample data
 * (pgmemctl-sample's vestige stores, bench's generated scratch stores): SplitMix64 streams and
 * random UUIDs. The same seed and stream give the same numbers on every platform and build. */
#ifndef PGMEMCTL_SAMPLE_RNG_H
#define PGMEMCTL_SAMPLE_RNG_H

#include <stdint.h>

/* One stream's state; plain value, copy freely. */
typedef struct {
    uint64_t s;
} sample_rng;

/* SplitMix64 (Steele, Lea and Flood, "Fast Splittable Pseudorandom Number Generators",
 * OOPSLA 2014; constants as in Vigna's reference splitmix64.c): the next 64 bits of r. */
uint64_t sample_rng_next(sample_rng *r);

/* An independent stream for one purpose: streams of one seed that differ in `stream` never
 * share a state (the stream number is multiplied by an odd constant), so adding rows to one
 * table, or one generated memory, never reshuffles another. */
sample_rng sample_rng_stream(uint64_t seed, uint64_t stream);

/* Uniform double in [0, 1) from the top 53 bits (exact in IEEE-754 arithmetic). */
double sample_rng_unit(sample_rng *r);

/* Integer in [0, n); n > 0 (0 gives 0). The modulo bias is below n / 2^64. */
uint64_t sample_rng_below(sample_rng *r, uint64_t n);

/* Double in [lo, hi). */
double sample_rng_range(sample_rng *r, double lo, double hi);

/* Integer in [lo, hi] (lo when hi <= lo). */
int64_t sample_rng_range_i64(sample_rng *r, int64_t lo, int64_t hi);

/* A version 4 UUID from 128 bits of r, RFC 9562 section 5.4, as lower-case 8-4-4-4-12 text in
 * out (NUL-terminated). */
void sample_uuid(sample_rng *r, char out[37]);

#endif
