# Tessera - plain Makefile.  `make`, `make test`, `make test-asan`, `make fuzz`,
# `make install`.
# Every src/**/*.c except src/cli/main.c goes into build/libtessera.a; the
# binary and each tests/unit/t_*.c link against it.

PREFIX ?= /usr/local
# mount(8) looks for its helpers in /sbin; systemd units go to /etc.
SBINDIR ?= /sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= /etc/systemd/system
BUILD ?= build
CC ?= cc
PKGS := fuse3 sqlite3 libcurl libcrypto liblz4 libzstd libxxhash jansson hiredis libpq libmariadb liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT ?= -O2 -g
WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
# CRASH_POINTS=0 compiles the test-only crash points out (src/util/crash.h).
CRASH_POINTS ?= 1
ifeq ($(CRASH_POINTS),0)
CRASH_DEF := -DTESSERA_NO_CRASH_POINTS
endif
CFLAGS += $(OPT) $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread \
	-Isrc $(PKG_CFLAGS) $(SAN) $(CRASH_DEF)
LDLIBS += $(PKG_LIBS) -pthread -lm $(SAN)

SRCS := $(shell find src -name '*.c' ! -path 'src/cli/main.c' | sort)
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/cli/main.o
LIB := $(BUILD)/libtessera.a
BIN := $(BUILD)/tessera
UNIT_SRCS := $(sort $(wildcard tests/unit/t_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 20

all: $(BIN) tessera $(BUILD)/man/tessera.1

# Man pages from the help texts of src/cli/main.c (scripts/mkman.sh).
$(BUILD)/man/tessera.1: $(BIN) scripts/mkman.sh
	scripts/mkman.sh $(BIN) $(BUILD)/man

tessera: $(BIN)
	ln -sf $(BIN) tessera

$(BIN): $(MAIN_OBJ) $(LIB)
	$(CC) -o $@ $^ $(LDLIBS)

$(LIB): $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LIB) $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)

# libFuzzer targets: the library is built by clang with coverage hooks into
# build-fuzz/, each tests/fuzz/fuzz_*.c links libFuzzer's main.
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests -o $@ $< $(LIB) $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

# Helpers of bench/ scripts written in C (not tests, not installed).
$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Seed inputs that need real encoded objects (frames, segment, snapshot).
$(BUILD)/fuzz/mkcorpus: tests/fuzz/mkcorpus.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

fuzz-corpus: $(BUILD)/fuzz/mkcorpus
	mkdir -p tests/fuzz/corpus/frame tests/fuzz/corpus/repl_seg \
		tests/fuzz/corpus/repl_snap
	$(BUILD)/fuzz/mkcorpus tests/fuzz/corpus

test: all unit
	-tests/lib/services.sh start
	BUILD=$(BUILD) tests/run

test-unit: all unit
	BUILD=$(BUILD) tests/run --unit

test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		build-asan/tessera unit
	-tests/lib/services.sh start
	BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		tests/run --smoke

fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
		fuzz-bins
	tests/fuzz/run build-fuzz $(FUZZ_SECONDS)

bench: all
	bench/run --quick

install: all
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tessera
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR)
	for h in mount.tessera mount.fuse.tessera umount.fuse.tessera; do \
		ln -sf $(PREFIX)/bin/tessera $(DESTDIR)$(SBINDIR)/$$h; done
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	sed 's|@BINDIR@|$(PREFIX)/bin|g' dist/tessera@.service.in \
		>$(DESTDIR)$(UNITDIR)/tessera@.service

fmt:
	clang-format -i $(SRCS) src/cli/main.c $(wildcard src/*/*.h) $(UNIT_SRCS)

fmt-check:
	clang-format --dry-run --Werror $(SRCS) src/cli/main.c $(wildcard src/*/*.h)

clean:
	rm -rf build build-asan build-fuzz tessera

.PHONY: all unit fuzz-bins fuzz fuzz-corpus test test-unit test-asan bench install fmt fmt-check clean

-include $(OBJS:.o=.d) $(MAIN_OBJ:.o=.d)
