# divsim: build, test, demo. `make help` lists the targets.

CC       ?= cc
OPT      ?= -O2
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wold-style-definition -Wpointer-arith \
            -Wcast-qual -Wwrite-strings -Wformat=2 -Wvla
VERSION  := $(shell git describe --always --dirty --tags 2>/dev/null || echo 0.1.0)
PKGS     := gsl sqlite3
DEPS_OK  := $(shell pkg-config --exists $(PKGS) check inih 2>/dev/null && echo yes)

CFLAGS   ?= $(OPT) -g
CFLAGS   += $(WARN) -D_POSIX_C_SOURCE=200809L -MMD -MP
ifneq ($(DEPS_OK),)
CFLAGS   += $(shell pkg-config --cflags $(PKGS) inih)
# GSL's BLAS calls go to OpenBLAS, not the slow reference -lgslcblas.
LDLIBS   := $(filter-out -lgslcblas,$(shell pkg-config --libs $(PKGS) inih)) -lopenblas -lm
TESTLIBS := $(shell pkg-config --libs check)
endif

ifdef SANITIZE
# Sanitized builds are the debug builds: the environments check their invariants.
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all \
            -DDIVSIM_DEBUG_INVARIANTS
LDFLAGS  += -fsanitize=$(SANITIZE)
BUILD    := build/sanitize
else
BUILD    := build/release
endif
CFLAGS   += -DDIVSIM_VERSION='"$(VERSION)"' -DDIVSIM_CFLAGS='"$(OPT)$(if $(SANITIZE), -fsanitize=$(SANITIZE))"'

# The version is compiled into sim/version.o: rebuild it whenever it changes.
VERSION_STAMP := $(BUILD)/version.txt
$(shell mkdir -p $(BUILD) && (echo '$(VERSION)' | cmp -s - $(VERSION_STAMP) || echo '$(VERSION)' > $(VERSION_STAMP)))

LIB_SRC  := $(wildcard sim/*.c envs/*.c agents/*.c)
LIB_SRC  := $(filter-out sim/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libdivsim.a
TEST_SRC := $(wildcard tests/check_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
PROGRAM  := $(if $(SANITIZE),$(BUILD)/divsim,divsim)

DEBIAN_PACKAGES := libgsl-dev libopenblas-dev libsqlite3-dev libinih-dev check \
                   pkg-config gnuplot-nox sqlite3 parallel

.PHONY: all deps test unit e2e demo bench clean help fuzz valgrind pretrain-finetune

all: $(PROGRAM)

$(PROGRAM): $(BUILD)/sim/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LIB): $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/sim/version.o: $(VERSION_STAMP)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(TESTLIBS) $(LDLIBS)

# Installs the Debian packages when any is missing (needs root or sudo).
deps:
	@if pkg-config --exists $(PKGS) check inih && ls /usr/lib/*/libopenblas.so >/dev/null 2>&1 \
	    && command -v gnuplot >/dev/null && command -v sqlite3 >/dev/null \
	    && command -v parallel >/dev/null; then \
	    echo "deps: all packages present"; \
	else \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    echo "deps: installing $(DEBIAN_PACKAGES)"; \
	    $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $(DEBIAN_PACKAGES); \
	fi

# The tests are rebuilt by a sub-make so that flags read after `deps` installed
# the packages take effect on a fresh machine.
test: deps
	@$(MAKE) --no-print-directory unit e2e

unit: $(TEST_BIN) $(PROGRAM)
	@status=0; for t in $(TEST_BIN); do \
	    CK_DEFAULT_TIMEOUT=600 ./$$t || status=1; done; exit $$status

e2e: $(PROGRAM)
	@DIVSIM=./$(PROGRAM) DIVSIM_E2E_FULL=$(if $(SANITIZE),0,1) sh tests/e2e.sh
	@DIVSIM=./$(PROGRAM) sh tests/e2e_plot.sh
	@DIVSIM=./$(PROGRAM) sh tests/e2e_errors.sh
	@DIVSIM=./$(PROGRAM) sh tests/e2e_crash.sh

demo: deps
	@$(MAKE) --no-print-directory $(PROGRAM)
	./$(PROGRAM) run experiments/quickstart.ini -o results/quickstart.db
	./$(PROGRAM) compare results/quickstart.db
	./$(PROGRAM) plot results/quickstart.db --format png,pdf > /dev/null
	@echo "results: results/quickstart.db (SQLite; schema in README.md)"
	@echo "figures: plots/quickstart/ (PNG and PDF; templates in plots/*.gp)"

# The pretraining pipeline of experiments/pretrain-finetune.ini: cf's logs,
# one checkpoint per seed's world, then the fine-tuning comparison (about an
# hour on two cores). Finished runs are kept if it is stopped and run again.
PRETRAIN_SEEDS := 1 2 3 4 5
pretrain-finetune: $(PROGRAM)
	./$(PROGRAM) run experiments/pretrain-logs.ini -o results/pretrain-logs.db
	for s in $(PRETRAIN_SEEDS); do \
	    ./$(PROGRAM) pretrain results/pretrain-logs.db -o results/pretrain-logs-$$s.ckpt \
	        --agent cf --run-seed $$s -q || exit 1; done
	./$(PROGRAM) run experiments/pretrain-finetune.ini -o results/pretrain-finetune.db
	./$(PROGRAM) compare results/pretrain-finetune.db --phase eval --by agent \
	    --by experiment.train_episodes

# libFuzzer on the experiment-file parser and validator (needs clang), with
# ASan, UBSan and leak detection, for FUZZ_SECONDS; fails on any finding. The
# seeds are tests/fuzz/corpus plus every experiment and fixture file; new
# inputs go to build/fuzz/corpus. See tests/fuzz/README.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_CFLAGS  := $(filter-out -fsanitize=%,$(CFLAGS)) -O1 -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ     := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o)

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_DIR)/fuzz_config
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds
	@cp experiments/*.ini tests/fixtures/*.ini $(FUZZ_DIR)/seeds/
	$(FUZZ_DIR)/fuzz_config -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 \
	    -artifact_prefix=$(FUZZ_DIR)/ \
	    -max_len=8192 -dict=tests/fuzz/config.dict -print_final_stats=1 \
	    $(FUZZ_DIR)/corpus tests/fuzz/corpus $(FUZZ_DIR)/seeds

# valgrind on a small sweep of every agent, in one process and with two
# workers (each worker checked too): fails on any leak or invalid access.
VALGRIND := valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
            --error-exitcode=1 --track-origins=yes
valgrind: $(PROGRAM)
	@rm -f $(BUILD)/valgrind.db*
	$(VALGRIND) ./$(PROGRAM) run tests/fixtures/valgrind.ini -o $(BUILD)/valgrind.db -j 1 -q
	@rm -f $(BUILD)/valgrind.db*
	$(VALGRIND) ./$(PROGRAM) run tests/fixtures/valgrind.ini -o $(BUILD)/valgrind.db -j 2 -q
	@echo "valgrind: no leaks, no invalid accesses"

# Throughput, memory and scaling figures of this machine (a few minutes).
bench: $(PROGRAM)
	./$(PROGRAM) bench

clean:
	rm -rf build divsim

help:
	@echo "make          build ./divsim and $(LIB)"
	@echo "make deps     install missing Debian packages"
	@echo "make test     unit (Check) and end-to-end tests"
	@echo "make demo     run experiments/quickstart.ini and print the comparison"
	@echo "make pretrain-finetune  logs, pretraining and fine-tuning (experiments/pretrain-*.ini)"
	@echo "make bench    throughput, memory and scaling figures (divsim bench)"
	@echo "make SANITIZE=address,undefined test   the tests under sanitizers"
	@echo "make fuzz     fuzz the experiment-file parser for FUZZ_SECONDS (60; needs clang)"
	@echo "make valgrind run a small sweep of every agent under valgrind (a few minutes)"
	@echo "make clean    remove build products"

-include $(LIB_OBJ:.o=.d) $(BUILD)/sim/main.d $(wildcard $(FUZZ_DIR)/*/*.d)
