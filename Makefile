# open-hook: QEMU opens files only through a trusted broker.
#
#   make                  set up, build the patched QEMU and the broker
#   make check            every test, ending in "N passed, N failed"
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

.PHONY: all deps qemu qemu-tree export-patches check-patches check-bisect \
	check check-qemu check-iotests clean-qemu-build

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
	@mkdir -p $(BIN)
	@for p in $(QEMU_PROGS); do ln -sf $(QEMU_BUILD)/$$p $(BIN)/$$(basename $$p); done
	@# Run from its build directory, QEMU looks for firmware below
	@# qemu-bundle/ (its relocatable install); point that at Debian's files.
	@for d in $(subst :, ,$(QEMU_FIRMWARE)); do \
		mkdir -p $(QEMU_BUILD)/qemu-bundle$$(dirname $$d) && \
		ln -sfn $$d $(QEMU_BUILD)/qemu-bundle$$d; done

clean-qemu-build:
	rm -rf $(QEMU_BUILD)
