# agentcell build. `make` builds build/agentcell with $(CC) (gcc by default);
# `make CC=clang`, `make SAN=1` (ASan+UBSan) build into their own directories.
ifeq ($(origin CC),default)
  CC := gcc
endif
SAN ?= 0
PKGS := jansson libseccomp
# Headers only: these are loaded with dlopen when used (src/base/dl.h).
DL_PKGS := libmicrohttpd libcurl libarchive yaml-0.1 openssl
ifeq ($(SAN),1)
  BUILD ?= build/$(notdir $(CC))-san
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  OPT := -O1 -g
else
  BUILD ?= build/$(notdir $(CC))
  SANFLAGS :=
  OPT := -O2 -g
endif

# bubblewrap's habit: warnings the tree is clean of are errors so that it stays clean.
# -Wno-unused-parameter stays: backend ops, CLI option callbacks and cmocka tests take
# parameters they do not all use (hundreds of hits).
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-Werror=missing-prototypes -Werror=missing-declarations -Werror=strict-prototypes \
	-Werror=old-style-definition -Werror=null-dereference \
	-Wno-unused-parameter -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE \
	-Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) $(DL_PKGS))
ifneq ($(findstring clang,$(CC)),clang)
  CFLAGS_BASE += -Wno-format-truncation
endif
CFLAGS_ALL := $(CFLAGS_BASE) $(OPT) $(SANFLAGS) $(CFLAGS)
LDFLAGS_ALL := -pie -Wl,-z,now -Wl,-z,relro $(SANFLAGS) $(LDFLAGS)
# Static jansson and libseccomp: the CLI is started for every exec, and resolving a
# shared library's symbols costs more than the exec itself.
LIBS := -Wl,-Bstatic -ljansson -lseccomp -Wl,-Bdynamic -lm -lpthread

LIB_SRCS := $(wildcard src/base/*.c src/store/*.c src/image/*.c src/core/*.c src/runtime/*.c src/backends/*.c src/backends/*/*.c src/net/*.c src/api/*.c src/mcp/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)

LIB_ASM := src/api/openapi.S
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_ASM:%.S=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all unit fuzz libfuzzer clean format check-format analyze shellcheck lint install uninstall
all: $(BUILD)/agentcell $(UNIT_BINS) $(TOOL_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The OpenAPI document is assembled into the library (.incbin).
$(BUILD)/obj/src/api/openapi.o: src/api/openapi.S docs/openapi.json
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/libagentcell.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/agentcell: $(CLI_OBJS) $(BUILD)/libagentcell.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJS) $(BUILD)/libagentcell.a $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libagentcell.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libagentcell.a $(LIBS) -lcmocka

# Helpers of the test suite (tests/tools/): small programs, no library.
$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIBS)

# netproxy_drive starts the network proxy through the library (and is the proxy: it
# dispatches __netproxy itself).
$(BUILD)/tools/netproxy_drive: tests/tools/netproxy_drive.c $(BUILD)/libagentcell.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libagentcell.a $(LIBS)

# Fuzz targets: with any compiler, a replay driver that runs each target over its corpus
# (used by the test suite). `make libfuzzer` builds real libFuzzer binaries with clang into
# build/libfuzzer/fuzz/ (library instrumented too); run it on a scratch copy of the corpus
# (libFuzzer adds what it finds to the first directory given), e.g.
#   mkdir -p /tmp/new && build/libfuzzer/fuzz/fuzz_api -max_total_time=300 /tmp/new \
#       tests/fuzz/corpus/fuzz_api
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/libagentcell.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< tests/fuzz/replay.c $(BUILD)/libagentcell.a $(LIBS)
fuzz: $(FUZZ_BINS)

LIBFUZZER_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
libfuzzer:
	$(MAKE) CC=clang SAN=0 BUILD=build/libfuzzer \
		CFLAGS="-fsanitize=fuzzer-no-link $(LIBFUZZER_SAN)" build/libfuzzer/libagentcell.a
	@mkdir -p build/libfuzzer/fuzz
	for f in $(FUZZ_SRCS); do \
		clang $(filter-out -Wno-format-truncation,$(CFLAGS_BASE)) -O1 -g -fsanitize=fuzzer $(LIBFUZZER_SAN) -o \
		    build/libfuzzer/fuzz/$$(basename $$f .c) $$f build/libfuzzer/libagentcell.a \
		    $(LIBS) || exit 1; \
	done

unit: $(UNIT_BINS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
check-format:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

# Static analysis: `clang --analyze` over every src/**/*.c with the project's flags, one
# result file per source (rebuilt when the source or a header it includes changes). Fails
# on any diagnostic. A false positive is fixed by restructuring the code, or as a last
# resort by an `#ifdef __clang_analyzer__` with a comment saying why.
ANALYZE_SRCS := $(sort $(shell find src -name '*.c'))
ANALYZE_OUTS := $(ANALYZE_SRCS:%.c=$(BUILD)/analyze/%.txt)
ANALYZE_FLAGS := $(filter-out -Wno-format-truncation,$(CFLAGS_BASE)) -O2 \
	-Xanalyzer -analyzer-output=text
$(BUILD)/analyze/%.txt: %.c
	@mkdir -p $(dir $@)
	@echo "analyze $<"
	@clang --analyze $(ANALYZE_FLAGS) -MMD -MP -MF $(@:.txt=.d) -MT $@ -o /dev/null $< \
		>$@.tmp 2>&1; rc=$$?; cat $@.tmp; \
	if [ $$rc != 0 ] || grep -q 'warning:' $@.tmp; then rm -f $@.tmp; exit 1; fi; mv $@.tmp $@
analyze: $(ANALYZE_OUTS)

# shellcheck over every shell script (*.sh and files with a sh/bash shebang).
shellcheck:
	bash scripts/lint-shell.sh

lint: shellcheck analyze check-format

# `make install [PREFIX=/usr/local] [DESTDIR=...]`: the binary, and the name agentkernel
# linked to it (invoked so, it speaks agentkernel's command line).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
install: $(BUILD)/agentcell
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/agentcell $(DESTDIR)$(BINDIR)/agentcell
	ln -sf agentcell $(DESTDIR)$(BINDIR)/agentkernel

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/agentkernel $(DESTDIR)$(BINDIR)/agentcell

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
