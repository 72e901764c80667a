# open-hook-server: included by the top-level Makefile.
#   make broker        build build/broker, link build/bin/open-hook-server
#   make check-broker  unit, attack, launcher and (with clang) fuzz tests;
#                      JUnit result in $(JUNIT)/broker.xml

BROKER_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
TOP ?= $(abspath $(BROKER_MK_DIR)/..)
BUILD ?= $(TOP)/build
BIN ?= $(BUILD)/bin
JUNIT ?= $(BUILD)/junit

BROKER_SRC := $(TOP)/broker
BROKER_BUILD := $(BUILD)/broker
# Each fuzzer's share of check-broker, in seconds.
BROKER_FUZZ_SECONDS ?= 20

.PHONY: broker check-broker

$(BROKER_BUILD)/build.ninja:
	meson setup $(BROKER_BUILD) $(BROKER_SRC) -Dfuzz=enabled \
		-Dfuzz_seconds=$(BROKER_FUZZ_SECONDS)

broker: $(BROKER_BUILD)/build.ninja
	ninja -C $(BROKER_BUILD) -j2
	@mkdir -p $(BIN)
	ln -sf $(BROKER_BUILD)/open-hook-server $(BIN)/open-hook-server

# meson test runs the fuzzers two at a time beside the unit tests; the
# attack suite runs alone because it measures CPU time and latency.
check-broker: broker
	@mkdir -p $(JUNIT)
	@cd $(BROKER_BUILD) && meson configure -Dfuzz_seconds=$(BROKER_FUZZ_SECONDS) . >/dev/null
	@rc=0; meson test -C $(BROKER_BUILD) --num-processes 2 --print-errorlogs || rc=$$?; \
	cp $(BROKER_BUILD)/meson-logs/testlog.junit.xml $(JUNIT)/broker.xml || rc=1; \
	exit $$rc
