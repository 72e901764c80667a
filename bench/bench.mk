# Benchmarks of the open-hook broker (see docs/performance.md).
#
#   make bench                     full run, prints one table (several minutes)
#   make bench BENCH_SIZE=tiny     the same table on a tiny setting (seconds)
#   make check-bench               tiny run + JUnit XML $(JUNIT)/bench-smoke.xml
#   make bench-profile             where the broker's time goes (perf, strace)
#
# Works inside the top-level Makefile or alone: make -f bench/bench.mk bench

TOP ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
BUILD ?= $(TOP)/build
BIN ?= $(BUILD)/bin
JUNIT ?= $(BUILD)/junit
PYTHON ?= /usr/bin/python3

BENCH_SIZE ?= full
# Extra arguments for bench/run_bench.py, e.g. BENCH_ARGS="--rounds 3".
BENCH_ARGS ?=
BENCH_SRC := $(TOP)/bench
BENCH_OUT := $(BUILD)/bench
BENCH_CC ?= cc
BENCH_CFLAGS ?= -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wformat=2
BENCH_PROGS := $(BENCH_OUT)/ipc-floor-server $(BENCH_OUT)/bench-client
BENCH_RUN := $(PYTHON) $(BENCH_SRC)/run_bench.py --bin $(BIN) \
	--tools $(BENCH_OUT) --work $(BENCH_OUT)

.PHONY: bench bench-tools check-bench bench-profile

bench-tools: $(BENCH_PROGS)

$(BENCH_OUT)/ipc-floor-server: $(BENCH_SRC)/ipc_floor_server.c \
		$(BENCH_SRC)/open_hook_wire.c $(BENCH_SRC)/open_hook_wire.h
	@mkdir -p $(@D)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $(filter %.c,$^)

$(BENCH_OUT)/bench-client: $(BENCH_SRC)/bench_client.c \
		$(BENCH_SRC)/open_hook_wire.c $(BENCH_SRC)/latency.c \
		$(BENCH_SRC)/open_hook_wire.h $(BENCH_SRC)/latency.h
	@mkdir -p $(@D)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $(filter %.c,$^)

bench: bench-tools
	$(BENCH_RUN) --size $(BENCH_SIZE) $(BENCH_ARGS)

# Not a timing assertion: checks that the table is complete and sane.
check-bench: bench-tools
	@mkdir -p $(JUNIT)
	$(BENCH_RUN) --size tiny --junit $(JUNIT)/bench-smoke.xml $(BENCH_ARGS)

# BENCH_BROKER=path profiles another build; BENCH_CLIENTS=16 under load.
bench-profile: bench-tools
	$(BENCH_SRC)/profile_broker.sh $(or $(BENCH_BROKER),$(BIN)/open-hook-server) \
		$(or $(BENCH_CLIENTS),1)
