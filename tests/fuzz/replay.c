/* replay.c — main() for a fuzz target without libFuzzer: runs LLVMFuzzerTestOneInput once on
 * each file named on the command line, or on each file of a named directory (sorted by name),
 * printing "ok FILE" after each. Built with ASan/UBSan by `make check`, which replays the whole
 * corpus of tests/fuzz/corpus/ through it. Exit 0 when every input ran, 1 when one could not be
 * read; a crash is the sanitizer's (or FUZZ_CHECK's) abort. */
#include "fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

static bool run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t len = 0, cap = 4096;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool ok = buf && !ferror(f);
    fclose(f);
    if (!ok) {
        fprintf(stderr, "replay: %s: cannot read it\n", path);
        free(buf);
        return false;
    }
    /* an exact-size copy, so that ASan sees a read past the input's end */
    unsigned char *in = malloc(len ? len : 1);
    if (!in) {
        free(buf);
        return false;
    }
    memcpy(in, buf, len);
    free(buf);
    fprintf(stderr, "replay: %s\n", path);
    LLVMFuzzerTestOneInput(in, len);
    free(in);
    printf("ok %s\n", path);
    fflush(stdout);
    return true;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

static bool run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return false;
    }
    char **names = NULL;
    size_t n = 0;
    bool ok = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *names);
        size_t plen = strlen(dir) + strlen(e->d_name) + 2;
        char *p = nn ? malloc(plen) : NULL;
        if (!p) {
            names = nn ? nn : names;
            ok = false;
            break;
        }
        names = nn;
        snprintf(p, plen, "%s/%s", dir, e->d_name);
        names[n++] = p;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        ok = ok && run_file(names[i]);
        free(names[i]);
    }
    free(names);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    bool ok = true;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            ok = run_dir(argv[i]) && ok;
        else
            ok = run_file(argv[i]) && ok;
    }
    return ok ? 0 : 1;
}
