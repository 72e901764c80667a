# tests/e2e/e2e.mk: the tiny guest, the end-to-end tests and the demo.
# Included by the top-level Makefile; standalone: make -f tests/e2e/e2e.mk TARGET
#
#   make guest       build/guest/: Debian cloud kernel + busybox initramfs
#   make check-e2e   pytest tests/e2e -> $(JUNIT)/e2e.xml
#   make demo        build what is missing, then boot a confined guest
#
# E2E_ACCEL=kvm|tcg skips the KVM probe; E2E_ARGS passes options to pytest
# (E2E_ARGS="-k snapshot -x").

E2E_MK_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TOP ?= $(abspath $(E2E_MK_DIR)/../..)
BUILD ?= $(TOP)/build
BIN ?= $(BUILD)/bin
JUNIT ?= $(BUILD)/junit
PYTHON ?= /usr/bin/python3
export TOP BUILD BIN

GUEST_DIR := $(BUILD)/guest
GUEST_SOURCES := $(TOP)/tests/guest/build-guest.py $(TOP)/tests/guest/init

.PHONY: guest check-e2e demo

# The .debs are cached in ~/.cache/qemu-open-hook/guest; rebuilding the
# initramfs from them takes a few seconds.
$(GUEST_DIR)/guest.json: $(GUEST_SOURCES)
	@$(PYTHON) $(TOP)/tests/guest/build-guest.py --out $(GUEST_DIR)

guest: $(GUEST_DIR)/guest.json

check-e2e: guest
	@mkdir -p $(JUNIT)
	@cd $(TOP) && $(PYTHON) -m pytest tests/e2e -ra --durations=5 \
		--junitxml=$(JUNIT)/e2e.xml $(E2E_ARGS)

demo: all guest
	@$(PYTHON) $(TOP)/tests/e2e/demo.py
