# pgmemctl — build, test, demo and benchmark entry points.
# Libraries come from pkg-config; everything is built out of tree under build/.

CC      ?= gcc
PREFIX  ?= /usr/local
PKGS    := libpq libcjson yaml-0.1 sqlite3 libcrypto libcurl
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
PKGCONFIG := pkg-config
BUILD_KIND := dynamic
# Recursive (=) so that pkg-config runs only when something is compiled, i.e. after `make deps`.
BASEFL   = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DPGMEMCTL_VERSION='"$(VERSION)"' \
           -DPGMEMCTL_BUILD='"$(BUILD_KIND)"' -pthread $(WARN) $(shell $(PKGCONFIG) --cflags $(PKGS)) -Isrc -Ibuild/gen
LIBS     = $(shell $(PKGCONFIG) --libs $(PKGS)) -lm -pthread

# Normal build: optimised with debug info. SAN=1: AddressSanitizer + UBSan (used by `make check`).
# STATIC=musl|glibc with STATIC_PREFIX=DIR: the static build, against the libraries scripts/build-static
# compiled into DIR (with DIR/bin/cc, the one compiler they were built with); `make static` sets both.
ifneq ($(STATIC),)
  OUT    := build/static-$(STATIC)
  CC     := $(STATIC_PREFIX)/bin/cc
  PKGCONFIG := PKG_CONFIG_LIBDIR=$(STATIC_PREFIX)/lib/pkgconfig pkg-config --static
  BUILD_KIND := static-$(STATIC)
  CFLAGS  = $(BASEFL) -O2 -g
  LDFL   := -static
else ifeq ($(FUZZ),1)
  # FUZZ=1: the fuzz targets under libFuzzer (`make fuzz`): clang, coverage instrumentation, ASan + UBSan.
  OUT    := build/fuzz
  CC     := clang
  CFLAGS  = $(BASEFL) -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
            -fno-sanitize-recover=undefined
  LDFL   := -fsanitize=fuzzer,address,undefined
else ifeq ($(SAN),1)
  OUT    := build/san
  CFLAGS  = $(BASEFL) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFL   := -fsanitize=address,undefined
else
  OUT    := build/rel
  CFLAGS  = $(BASEFL) -O2 -g
  LDFL   :=
endif

LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ  := $(patsubst src/%.c,$(OUT)/obj/%.o,$(LIB_SRC)) $(OUT)/obj/migrations_gen.o $(OUT)/obj/profiles_gen.o \
            $(OUT)/obj/sql_gen.o
MIG_SQL  := $(sort $(wildcard migrations/*.sql))
PROFILES := examples/verify/memory-store.yaml
SQL_FILES := $(sort $(wildcard sql/*.sql))
TOOLS    := $(patsubst src/sample/%.c,%,$(wildcard src/sample/*.c))
UNIT_SRC := $(wildcard tests/unit/*.c)
INT_SRC  := $(wildcard tests/integration/*.c)
TCOMMON  := $(wildcard tests/common/*.c)
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all check check-unit check-integration demo install clean lint bench-copy bench-verify bench-reembed bench-search bench-upgrade bench-upgrade-logical deps \
        static dist bench-static fuzz fuzz-build check-valgrind

all: bin/pgmemctl $(addprefix bin/,$(TOOLS))

# The release binary lives in bin/; the sanitizer binary in build/san/bin/.
bin/pgmemctl: $(OUT)/bin/pgmemctl
	@mkdir -p bin
	cp $< $@.tmp && mv -f $@.tmp $@

bin/%: $(OUT)/bin/%
	@mkdir -p bin
	cp $< $@.tmp && mv -f $@.tmp $@

$(OUT)/bin/pgmemctl: $(OUT)/obj/main.o $(OUT)/libpgmemctl.a
	@mkdir -p $(@D)
	$(CC) $(LDFL) -o $@ $^ $(LIBS)

$(OUT)/bin/%: $(OUT)/obj/sample/%.o $(OUT)/libpgmemctl.a
	@mkdir -p $(@D)
	$(CC) $(LDFL) -o $@ $^ $(LIBS)

$(OUT)/libpgmemctl.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/obj/%.o: src/%.c $(wildcard src/*.h) $(wildcard src/sample/*.h) build/gen/migrations_gen.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# migrations/*.sql are embedded into the binary through a generated C file.
build/gen/migrations_gen.c: $(MIG_SQL) scripts/embed-files build/gen/migrations_gen.h
	@mkdir -p $(@D)
	scripts/embed-files $(MIG_SQL) > $@.tmp && mv $@.tmp $@

build/gen/migrations_gen.h: scripts/embed-files
	@mkdir -p $(@D)
	scripts/embed-files --header > $@.tmp && mv $@.tmp $@

# verify's built-in profile is the example file itself, embedded the same way.
build/gen/profiles_gen.c: $(PROFILES) scripts/embed-files build/gen/migrations_gen.h
	@mkdir -p $(@D)
	scripts/embed-files --array embedded_profiles $(PROFILES) > $@.tmp && mv $@.tmp $@

# bench's queries (sql/*.sql: the hybrid RRF search and the others) and its scratch schema.
build/gen/sql_gen.c: $(SQL_FILES) scripts/embed-files build/gen/migrations_gen.h
	@mkdir -p $(@D)
	scripts/embed-files --array embedded_sql $(SQL_FILES) > $@.tmp && mv $@.tmp $@

$(OUT)/obj/%_gen.o: build/gen/%_gen.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# ---- tests -------------------------------------------------------------------------------
$(OUT)/tests/unit: $(UNIT_SRC) $(TCOMMON) $(OUT)/libpgmemctl.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests $(LDFL) -o $@ $(UNIT_SRC) $(TCOMMON) $(OUT)/libpgmemctl.a $(LIBS) -lcriterion

$(OUT)/tests/integration: $(INT_SRC) $(TCOMMON) $(OUT)/libpgmemctl.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests $(LDFL) -o $@ $(INT_SRC) $(TCOMMON) $(OUT)/libpgmemctl.a $(LIBS) -lcriterion

# The loopback embedding server the HTTP embedder tests run (libmicrohttpd; vectors from the
# builtin embedder in libpgmemctl.a).
$(OUT)/tests/embed-server: tests/fixtures/embed_server.c $(OUT)/libpgmemctl.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags libmicrohttpd) $(LDFL) -o $@ $< $(OUT)/libpgmemctl.a \
	  $(LIBS) $(shell pkg-config --libs libmicrohttpd)

# Fuzz targets (tests/fuzz/fuzz_NAME.c). $(OUT)/fuzz-replay/NAME: the target with replay.c's main, which
# runs it on files (make check replays tests/fuzz/corpus/NAME through the SAN=1 build);
# build/fuzz/fuzz/NAME (FUZZ=1): the target under libFuzzer, for `make fuzz`.
$(OUT)/fuzz-replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(OUT)/libpgmemctl.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests $(LDFL) -o $@ $< tests/fuzz/replay.c $(OUT)/libpgmemctl.a $(LIBS)

$(OUT)/fuzz/%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(OUT)/libpgmemctl.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests $(LDFL) -o $@ $< $(OUT)/libpgmemctl.a $(LIBS)

fuzz-build: $(addprefix $(OUT)/fuzz/,$(FUZZ_TARGETS))

# `make fuzz FUZZ_SECONDS=N`: each target under libFuzzer for N seconds (scripts/fuzz; findings in
# build/fuzz/findings/). FUZZ_TARGETS=NAME… runs only those.
FUZZ_SECONDS ?= 60
fuzz: deps
	scripts/install-deps --with-fuzz
	$(MAKE) FUZZ=1 fuzz-build
	scripts/fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

deps:
	scripts/install-deps

# `make check`: installs what it needs (PostgreSQL 17, 15.18 and 16.14 for the major-upgrade tests too, and the
# static build's libraries: the first time builds of several minutes, cached afterwards), builds with
# ASan/UBSan and the static binary (whose empty-root tests run with the others), runs unit tests, the
# replay of the fuzz corpus (tests/fuzz/corpus) and integration tests against throwaway PostgreSQL
# sandboxes that it starts and stops itself.
check: deps
	scripts/install-deps --with-pg17 --with-pg15-main --with-pg16 >/dev/null
	$(MAKE) SAN=1 check-build
	$(MAKE) static
	scripts/run-tests

.PHONY: check-build
check-build: $(OUT)/bin/pgmemctl $(addprefix $(OUT)/bin/,$(TOOLS)) $(OUT)/tests/unit $(OUT)/tests/integration \
             $(OUT)/tests/embed-server $(addprefix $(OUT)/fuzz-replay/,$(FUZZ_TARGETS))

# `make check-valgrind`: copy, verify and reembed (with the loopback embedding server) under valgrind's
# memcheck, against a throwaway sandbox (scripts/check-valgrind): fails on any memcheck error or
# definitely lost block. The release build, since valgrind cannot run the sanitizer one.
check-valgrind: deps
	scripts/install-deps --with-valgrind
	$(MAKE) all build/rel/tests/embed-server
	scripts/check-valgrind

# `make demo`: a real vestige store copied into a throwaway PostgreSQL with pgvector. The script
# installs the dependencies and builds by itself (so that it also runs where make is not installed yet).
demo:
	KEEP=$(KEEP) scripts/demo

bench-copy: deps
	$(MAKE) all
	scripts/bench-copy

bench-verify: deps
	$(MAKE) all
	scripts/bench-verify

# The loopback embedding server is built without sanitizers here, for the HTTP half.
bench-reembed: deps
	$(MAKE) all build/rel/tests/embed-server
	scripts/bench-reembed

# The search benchmark: scratch stores of 1,000 and 100,000 memories (768 dimensions).
bench-search: deps
	$(MAKE) all
	scripts/bench-search

# The major-upgrade benchmark: a 100,000-memory store upgraded 15 -> 17 by link, copy and dump.
bench-upgrade: deps
	scripts/install-deps --with-pg17 --with-pg15-main >/dev/null
	$(MAKE) all
	scripts/bench-upgrade
	scripts/bench-upgrade-logical

# The logical method alone: its downtime at 100,000 memories with a writer, against pg_upgrade --link.
bench-upgrade-logical: deps
	scripts/install-deps --with-pg17 --with-pg15-main >/dev/null
	$(MAKE) all
	scripts/bench-upgrade-logical

# `make static`: dist/pgmemctl, one fully static x86-64 executable (musl; every library built from Debian
# source packages by scripts/build-static and cached under /var/cache/pgmemctl/static), and the release
# tarball dist/pgmemctl-$(VERSION)-linux-x86_64.tar.gz with dist/SHA256SUMS.
static: dist

DIST_NAME := pgmemctl-$(VERSION)-linux-x86_64
dist:
	scripts/build-static --out dist/pgmemctl
	scripts/make-dist dist/pgmemctl $(DIST_NAME)

# The static builds (musl and glibc) against the dynamic one: copy at 100,000 memories, side by side.
bench-static: deps
	$(MAKE) all
	scripts/bench-static

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 bin/pgmemctl $(DESTDIR)$(PREFIX)/bin/pgmemctl
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

# cppcheck must be clean; clang-tidy (analyzer and bugprone checks, minus the stylistic ones)
# reports for review.
TIDY_CHECKS := -checks='-*,clang-analyzer-*,-clang-analyzer-security.insecureAPI.*,bugprone-*,\
-bugprone-easily-swappable-parameters,-bugprone-narrowing-conversions,-bugprone-reserved-identifier,\
-bugprone-assignment-in-if-condition,-bugprone-implicit-widening-of-multiplication-result'
lint: build/gen/migrations_gen.h
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
	  --suppress=missingIncludeSystem -Isrc src
	clang-tidy --quiet $(TIDY_CHECKS) $(LIB_SRC) src/main.c -- $(BASEFL)

clean:
	rm -rf build bin dist
