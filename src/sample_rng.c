/* sample_rng.c — SplitMix64 streams and random UUIDs for generated sample data (see
 * sample_rng.h). */
#include "sample_rng.h"

uint64_t sample_rng_next(sample_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

sample_rng sample_rng_stream(uint64_t seed, uint64_t stream)
{
    sample_rng r = {seed ^ (stream * 0xd1b54a32d192ed03ULL)};
    sample_rng_next(&r);
    return r;
}

double sample_rng_unit(sample_rng *r)
{
    return (double) (sample_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t sample_rng_below(sample_rng *r, uint64_t n)
{
    return n ? sample_rng_next(r) % n : 0;
}

double sample_rng_range(sample_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * sample_rng_unit(r);
}

int64_t sample_rng_range_i64(sample_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t) sample_rng_below(r, (uint64_t) (hi - lo) + 1);
}

void sample_uuid(sample_rng *r, char out[37])
{
    unsigned char b[16];
    uint64_t hi = sample_rng_next(r), lo = sample_rng_next(r);
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char) (hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char) (lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 0x0f];
    }
    *o = '\0';
}
