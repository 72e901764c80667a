# open-hook: QEMU opens files only through a trusted broker.
#
#   make                  set up, build the patched QEMU and the broker
#   make check            the test suites, ending in "N passed, N failed, N skipped"
#   make demo             a confined guest on a brokered disk (the main job)
#   make qemu-tree        fresh build/qemu = base + patches/series
#   make export-patches   build/qemu base..HEAD -> patches/
#   make check-patches    series applies with git am; checkpatch.pl is clean
#   make check-bisect     every prefix of the series builds (slow)
#   make check-iotests    qemu-iotests quick group, raw and qcow2
#   make bench            benchmarks (bench/), one table
#
# Binaries: build/bin/ (qemu-system-x86_64, qemu-img, qemu-io, qemu-nbd,
# qemu-storage-daemon, open-hook-server).

SHELL := /bin/bash
TOP := $(CURDIR)
BUILD := $(TOP)/build
QEMU_TREE := $(BUILD)/qemu
QEMU_BUILD := $(BUILD)/qemu-build
BIN := $(BUILD)/bin
JUNIT := $(BUILD)/junit
# Debian's interpreter: the tests use its pytest and QEMU's python/ package.
PYTHON := /usr/bin/python3
export PATH := /usr/lib/ccache:/usr/bin:$(PATH)
# Let a fresh clone in another folder (CI) reuse the compiler cache.
export CCACHE_BASEDIR := $(TOP)
export CCACHE_NOHASHDIR := true
export TOP BUILD BIN JUNIT PYTHON

QEMU_PROGS := qemu-system-x86_64 qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon

QEMU_FIRMWARE := /usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu

# Only what the mission needs, to keep the build short: x86_64 system
# emulation with KVM and TCG, the tools, and the image formats we test.
QEMU_CONFIGURE := \
	--target-list=x86_64-softmmu \
	--without-default-features \
	--enable-kvm --enable-tcg --enable-tools \
	--enable-fdt=system --enable-linux-aio \
	--enable-vvfat --enable-vdi --enable-qcow1 --enable-qed \
	--enable-parallels --enable-bochs --enable-cloop --enable-dmg \
	--disable-docs --disable-install-blobs \
	--firmwarepath=$(QEMU_FIRMWARE)

# Tests of the areas the series touches (util, block, monitor), run by
# make check through meson; open-hook-test is the series' own qtest.
QEMU_UNIT_TESTS := test-open-hook test-cutils test-qemu-opts test-keyval \
	test-util-sockets test-coroutine test-aio test-bdrv-drain \
	test-block-backend test-image-locking test-qmp-cmds
QEMU_QTESTS := open-hook-test qmp-test qmp-cmd-test drive_del-test

# Every suite make check runs; each writes $(JUNIT)/<suite>.xml.
CHECK_SUITES := check-patches patch-roundtrip pipeline qemu broker e2e \
	iotests-wrapper iotests-brokered-subset bench-smoke
CHECK_TARGETS := check-patches check-roundtrip check-pipeline check-qemu check-broker \
	check-e2e check-iotests-wrapper check-iotests-subset check-bench

.PHONY: all deps qemu qemu-tree export-patches check-patches check-roundtrip check-pipeline \
	check-bisect check check-qemu base-bin clean-qemu-build

all: qemu broker
	@echo "Binaries are in build/bin/:"; ls $(BIN)

deps:
	@$(TOP)/scripts/install-deps.sh

# build/qemu is created once; afterwards it is the developer's tree and is
# only ever rebuilt incrementally, never re-created behind their back.
$(QEMU_TREE)/.git:
	@$(TOP)/scripts/install-deps.sh
	@$(TOP)/scripts/patch-queue.sh tree

qemu-tree:
	@$(TOP)/scripts/patch-queue.sh tree

export-patches:
	@$(TOP)/scripts/patch-queue.sh export

$(QEMU_BUILD)/build.ninja: | $(QEMU_TREE)/.git
	@$(TOP)/scripts/install-deps.sh
	rm -rf $(QEMU_BUILD) && mkdir -p $(QEMU_BUILD)
	cd $(QEMU_BUILD) && $(QEMU_TREE)/configure $(QEMU_CONFIGURE)

qemu: $(QEMU_BUILD)/build.ninja
	@start=$$(date +%s); \
	ninja -C $(QEMU_BUILD) $(QEMU_PROGS) && \
	echo "qemu: built in $$(( $$(date +%s) - start )) s"
	@$(TOP)/scripts/patch-queue.sh status >/dev/null || echo "note: build/qemu" \
		"differs from patches/: 'make export-patches' saves your work," \
		"'make qemu-tree' takes patches/ (it refuses to drop unexported work)"
	@mkdir -p $(BIN)
	@for p in $(QEMU_PROGS); do ln -sf $(QEMU_BUILD)/$$p $(BIN)/$$(basename $$p); done
	@# Run from its build directory, QEMU looks for firmware below
	@# qemu-bundle/ (its relocatable install); point that at Debian's files.
	@for d in $(subst :, ,$(QEMU_FIRMWARE)); do \
		mkdir -p $(QEMU_BUILD)/qemu-bundle$$(dirname $$d) && \
		ln -sfn $$d $(QEMU_BUILD)/qemu-bundle$$d; done

# Unpatched binaries, for the iotests baseline: the pristine source built
# apart, then copied out of the build tree (so that they find Debian's
# firmware at its configured path).
QEMU_BASE_BUILD := $(BUILD)/qemu-base-build

base-bin: | $(QEMU_TREE)/.git
	@mkdir -p $(QEMU_BASE_BUILD) $(BUILD)/base-bin
	@[ -f $(QEMU_BASE_BUILD)/build.ninja ] || { cd $(QEMU_BASE_BUILD) && \
		$(BUILD)/qemu-pristine/configure $(QEMU_CONFIGURE); }
	ninja -C $(QEMU_BASE_BUILD) $(QEMU_PROGS)
	@for p in $(QEMU_PROGS); do cp $(QEMU_BASE_BUILD)/$$p $(BUILD)/base-bin/; done

clean-qemu-build:
	rm -rf $(QEMU_BUILD)

check-patches:
	@$(PYTHON) $(TOP)/scripts/checks.py patches $(JUNIT)

check-roundtrip:
	@$(PYTHON) $(TOP)/scripts/checks.py roundtrip $(JUNIT)

# Bad input to the build pipeline: dirty tree, unexported work, a patch
# that does not apply, a wrong checksum.
check-pipeline:
	@$(PYTHON) -m pytest -q -p no:cacheprovider --junitxml=$(JUNIT)/pipeline.xml \
		-o junit_suite_name=pipeline $(TOP)/tests/pipeline

check-bisect:
	@$(TOP)/scripts/check-bisect.sh

check-qemu: qemu
	ninja -C $(QEMU_BUILD) $(QEMU_UNIT_TESTS:%=tests/unit/%) \
		$(QEMU_QTESTS:%=tests/qtest/%)
	@mkdir -p $(JUNIT)
	@cd $(QEMU_BUILD) && { meson test --no-rebuild --print-errorlogs \
		$(QEMU_UNIT_TESTS) $(QEMU_QTESTS:%=qtest-x86_64/%); rc=$$?; \
		cp meson-logs/testlog.junit.xml $(JUNIT)/qemu.xml; exit $$rc; }

# The test suites, ending in one line "N passed, N failed, N skipped".  Suites keep going
# when one fails (-k) so that the summary counts every one of them.
check: all
	@rm -rf $(JUNIT) && mkdir -p $(JUNIT)
	@$(MAKE) --no-print-directory -k $(CHECK_TARGETS) || true
	@$(PYTHON) $(TOP)/scripts/checks.py summary $(JUNIT) $(CHECK_SUITES)

include $(wildcard $(TOP)/broker/broker.mk $(TOP)/tests/e2e/e2e.mk \
	$(TOP)/tests/iotests/iotests.mk $(TOP)/bench/bench.mk)

# For scripts that configure a QEMU tree the same way (check-bisect).
print-qemu-configure:
	@echo $(QEMU_CONFIGURE)
