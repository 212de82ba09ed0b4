# Streampai build. Sources are discovered, so adding a module never edits this file:
#   src/**/*.c          -> the streampai binary (src/main.c holds main())
#   tests/unit/**/*.c   -> one Criterion binary, linked against every src object but main
#   fuzz/fuzz_*.c       -> one libFuzzer binary each (clang), same objects
.DEFAULT_GOAL := release
SHELL := /bin/bash

PKGS    := libuv libcurl openssl jansson sqlite3 libpq libjwt libsodium hiredis
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lwslay -lm -lpthread
WARN    := -Wall -Wextra -Werror -Wno-format-zero-length -Wshadow -Wpointer-arith -Wvla -Wformat=2
STD     := -std=c11 -D_GNU_SOURCE
# Headers are included by path from src/ ("net/sp_http.h"), so every #include shows the
# dependency direction that `make lint` checks.
INC     := -Isrc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
BASE_CFLAGS := $(STD) $(WARN) $(INC) $(PKG_CFLAGS) -DSP_VERSION=\"$(VERSION)\" -MMD -MP

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
TEST_SRCS := $(shell find tests/unit -name '*.c' 2>/dev/null | sort)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
MIGRATIONS := $(shell find src/store/migrations -name '*.sql' 2>/dev/null | sort)
# The list of sources, rewritten only when a file is added or removed: binaries depend on it,
# so a deleted source (a test, a module) is never left linked into a stale binary.
SRCLIST := build/.srclist
_ := $(shell mkdir -p build && echo '$(SRCS) $(TEST_SRCS) $(FUZZ_SRCS)' > $(SRCLIST).new && \
       (cmp -s $(SRCLIST).new $(SRCLIST) || mv $(SRCLIST).new $(SRCLIST)); rm -f $(SRCLIST).new)

# ---- release ---------------------------------------------------------------
REL_DIR  := build/release
REL_OBJS := $(SRCS:%.c=$(REL_DIR)/%.o)
# Hardened: fortify, stack protector, PIE, full RELRO. No test hooks (SP_TEST_HOOKS).
HARDEN_CFLAGS  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
$(REL_DIR)/%.o: %.c
	@mkdir -p $(@D)
	@echo '  CC      $<'
	@$(CC) $(BASE_CFLAGS) -O2 -g $(HARDEN_CFLAGS) -c $< -o $@
$(REL_DIR)/streampai: $(REL_OBJS) $(SRCLIST)
	$(CC) $(HARDEN_LDFLAGS) -o $@ $(REL_OBJS) $(PKG_LIBS)
release: $(REL_DIR)/streampai
	@ln -sf $(REL_DIR)/streampai streampai

# ---- asan (ASan + UBSan + LSan) ----------------------------------------------
ASAN_DIR   := build/asan
# Test hooks (/api/_test/*, ?test_user, ws flood/publish) exist only in the asan and fuzz
# builds, and there only with TEST_MODE=true.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_DEFS  := -DSP_TEST_HOOKS
ASAN_OBJS  := $(SRCS:%.c=$(ASAN_DIR)/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:%.c=$(ASAN_DIR)/%.o)
TEST_OBJS  := $(TEST_SRCS:%.c=$(ASAN_DIR)/%.o)
$(ASAN_DIR)/%.o: %.c
	@mkdir -p $(@D)
	@echo '  CC-ASAN $<'
	@$(CC) $(BASE_CFLAGS) $(ASAN_FLAGS) $(ASAN_DEFS) $(if $(filter tests/%,$<),-I$(dir $<)) -c $< -o $@
$(ASAN_DIR)/streampai: $(ASAN_OBJS) $(SRCLIST)
	$(CC) $(ASAN_FLAGS) -o $@ $(ASAN_OBJS) $(PKG_LIBS)
$(ASAN_DIR)/unit_tests: $(ASAN_LIB_OBJS) $(TEST_OBJS) $(SRCLIST)
	$(CC) $(ASAN_FLAGS) -o $@ $(ASAN_LIB_OBJS) $(TEST_OBJS) $(PKG_LIBS) $(shell pkg-config --libs criterion 2>/dev/null)
asan: $(ASAN_DIR)/streampai $(ASAN_DIR)/unit_tests

# ---- fuzz (clang libFuzzer) ----------------------------------------------------
FUZZ_DIR   := build/fuzz
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_DIR)/%.o)
FUZZ_BINS  := $(FUZZ_SRCS:fuzz/%.c=$(FUZZ_DIR)/bin/%)
$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(@D)
	@echo '  CC-FUZZ $<'
	@clang $(BASE_CFLAGS) -DSP_TEST_HOOKS -Wno-unused-command-line-argument $(FUZZ_FLAGS) -c $< -o $@
$(FUZZ_DIR)/bin/%: fuzz/%.c $(FUZZ_LIB_OBJS) $(SRCLIST)
	@mkdir -p $(@D)
	clang $(STD) $(INC) $(PKG_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined $< $(FUZZ_LIB_OBJS) -o $@ $(PKG_LIBS)
fuzz: $(FUZZ_BINS)
# Keep the fuzz objects: as prerequisites of a pattern rule make treats them as intermediate and
# deleted them after every link, so each `make fuzz` recompiled the whole tree.
.SECONDARY: $(FUZZ_LIB_OBJS)

# ---- entry points ------------------------------------------------------------------
deps:
	@scripts/deps.sh
test-deps:
	@scripts/deps.sh --test
run: deps release
	@scripts/run.sh
lint:
	@scripts/lint.sh
test: test-deps
	@$(MAKE) --no-print-directory asan fuzz release
	@scripts/test.sh
bench: test-deps release
	@scripts/bench.sh
clean:
	rm -rf build streampai

# ---- campaigns (not part of `make test`; each bounded in time, one summary line; docs/campaigns.md)
chaos: test-deps release
	@tests/campaigns/chaos.sh
fuzz-long: fuzz
	@tests/campaigns/fuzz_long.sh
soak: test-deps release
	@tests/campaigns/soak.sh
slow-readers: test-deps release
	@tests/campaigns/slow_readers.sh

.PHONY: release asan fuzz deps test-deps run test bench clean lint chaos fuzz-long soak slow-readers
-include $(shell find build -name '*.d' 2>/dev/null)
