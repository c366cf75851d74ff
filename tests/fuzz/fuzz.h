/* fuzz.h — what every fuzz target (tests/fuzz/fuzz_*.c) defines and may use. Each target is
 * linked either with libFuzzer (`make fuzz`, clang) or with replay.c, which feeds it the files of
 * its corpus (`make check`, gcc with ASan/UBSan): the same code runs in both. */
#ifndef PGMEMCTL_FUZZ_H
#define PGMEMCTL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* libFuzzer's entry points. Initialize runs once before the first input; TestOneInput runs once
 * per input (data[0, size), not NUL-terminated, not to be kept) and returns 0. A finding is a
 * crash: a sanitizer report, a leak, or FUZZ_CHECK failing. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: prints where and aborts (the fuzzer records the input). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
