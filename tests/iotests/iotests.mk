# qemu-iotests, directly and under the open-hook broker (docs/iotests.md).
#
#   make check-iotests            quick group, raw and qcow2, build/bin
#   make check-iotests IOTESTS_BIN=build/base-bin
#                                 the same on the unpatched binaries
#   make iotests-baseline         ... and record it in tests/iotests/baseline
#   make check-iotests-brokered   quick group with every QEMU program under
#                                 open-hook-server, compared per test with
#                                 the recorded baseline
#   make check-iotests-subset     a brokered subset for CI (a few minutes)
#   make check-iotests-wrapper    unit tests of the broker wrapper (seconds)
#
# Standalone: make -f tests/iotests/iotests.mk check-iotests

IOTESTS_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TOP ?= $(abspath $(IOTESTS_DIR)/../..)
BUILD ?= $(TOP)/build
BIN ?= $(BUILD)/bin
JUNIT ?= $(BUILD)/junit
PYTHON ?= /usr/bin/python3
QEMU_BUILD ?= $(BUILD)/qemu-build

IOTESTS_CHECK ?= $(QEMU_BUILD)/tests/qemu-iotests/check
IOTESTS_BIN ?= $(BIN)
IOTESTS_BROKER ?= $(BIN)/open-hook-server
IOTESTS_FORMATS ?= raw qcow2
IOTESTS_OUT ?= $(BUILD)/iotests
IOTESTS_BASELINE := $(IOTESTS_DIR)/baseline
IOTESTS_EXCEPTIONS := $(IOTESTS_DIR)/brokered-exceptions.txt
IOTESTS_SUBSET := $(IOTESTS_DIR)/subset.txt

iotests_run := $(PYTHON) $(IOTESTS_DIR)/run-iotests.py --check $(IOTESTS_CHECK)
iotests_compare := $(PYTHON) $(IOTESTS_DIR)/compare.py

# Shell: "--baseline raw=FILE --baseline qcow2=FILE" for $(1) = --baseline
# or --result and $(2) = the directory of the <fmt>-summary.txt files.
iotests_pairs = $(foreach f,$(IOTESTS_FORMATS),$(1) $(f)=$(2)/$(f)-summary.txt)

# $(call iotests_vs_baseline,RESULT-DIR,JUNIT,SUITE,OPTIONS): compare the
# summaries in RESULT-DIR with the recorded baseline.
iotests_vs_baseline = $(iotests_compare) --baseline-label 'unpatched baseline' \
	$(call iotests_pairs,--baseline,$(IOTESTS_BASELINE)) \
	$(call iotests_pairs,--result,$(1)) --junit $(2) --suite $(3) $(4)

# $(call iotests_formats,BIN,WORK,JUNIT-PREFIX,RUN-OPTIONS): run every
# format, keep going after a failure, leave the combined status in $$rc.
# RUN-OPTIONS may use $$fmt.
define iotests_formats
rc=0; for fmt in $(IOTESTS_FORMATS); do \
	$(iotests_run) --format $$fmt --bin $(1) \
		--work $(2)/work/$$fmt --summary $(2)/$$fmt-summary.txt \
		--junit $(3)-$$fmt.xml --suite $(notdir $(3))-$$fmt $(4) || rc=1; \
done
endef

.PHONY: check-iotests iotests-baseline check-iotests-brokered \
	check-iotests-subset check-iotests-wrapper

check-iotests:
	@mkdir -p $(JUNIT) $(IOTESTS_OUT)
	@$(call iotests_formats,$(IOTESTS_BIN),$(IOTESTS_OUT),$(JUNIT)/iotests,); \
	echo "Compared with the unpatched baseline (for information):"; \
	$(call iotests_vs_baseline,$(IOTESTS_OUT),\
		$(IOTESTS_OUT)/compare-baseline.xml,iotests-vs-baseline,) || true; \
	exit $$rc

# Records the unpatched run as the baseline that the brokered runs are
# compared with.  Rerun only when the QEMU base changes.
iotests-baseline: base-bin
	@mkdir -p $(IOTESTS_OUT)/base $(IOTESTS_BASELINE)
	@$(call iotests_formats,$(BUILD)/base-bin,$(IOTESTS_OUT)/base,\
		$(IOTESTS_OUT)/base/iotests,); \
	for fmt in $(IOTESTS_FORMATS); do \
		cp $(IOTESTS_OUT)/base/$$fmt-summary.txt $(IOTESTS_BASELINE)/ \
			|| exit 1; \
	done; \
	echo "Recorded in $(IOTESTS_BASELINE)/"; \
	exit $$rc

# The verdict is the comparison: it exits non-zero only when a test
# differs from the baseline without an explanation in
# brokered-exceptions.txt (a test that fails at the baseline too, like
# 307, is no difference).
check-iotests-brokered:
	@mkdir -p $(JUNIT) $(IOTESTS_OUT)/brokered
	@$(call iotests_formats,$(IOTESTS_BIN),$(IOTESTS_OUT)/brokered,\
		$(JUNIT)/iotests-brokered,--brokered --broker $(IOTESTS_BROKER)); \
	$(call iotests_vs_baseline,$(IOTESTS_OUT)/brokered,\
		$(JUNIT)/iotests-brokered-compare.xml,iotests-brokered-compare,\
		--exceptions $(IOTESTS_EXCEPTIONS))

# subset.txt: "<format> <test>  # what it exercises".  Every test must pass
# at the baseline; its JUnit testcase fails when it does not pass brokered.
check-iotests-subset:
	@mkdir -p $(JUNIT) $(IOTESTS_OUT)/subset
	@$(call iotests_formats,$(IOTESTS_BIN),$(IOTESTS_OUT)/subset,\
		$(IOTESTS_OUT)/subset/iotests-brokered-subset,\
		--brokered --broker $(IOTESTS_BROKER) --subset $(IOTESTS_SUBSET)); \
	$(call iotests_vs_baseline,$(IOTESTS_OUT)/subset,\
		$(JUNIT)/iotests-brokered-subset.xml,iotests-brokered-subset,\
		--exceptions $(IOTESTS_EXCEPTIONS) --subset $(IOTESTS_SUBSET)) || rc=1; \
	exit $$rc

# broker-wrap against a stand-in broker, and against open-hook-server
# once it is built (skipped before).
check-iotests-wrapper:
	@mkdir -p $(JUNIT)
	@BIN=$(BIN) $(PYTHON) -m pytest -q -p no:cacheprovider \
		--junitxml=$(JUNIT)/iotests-wrapper.xml \
		$(IOTESTS_DIR)/test_broker_wrap.py
