# revenant — build, run, test, benchmark.  `make V=1` shows every command.
.DELETE_ON_ERROR:
.SECONDARY:
.DEFAULT_GOAL := build

CLANG   ?= clang
BPFTOOL ?= bpftool
SWIFT   ?= swift
CONFIG  ?= debug
ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

OUT      := build/bpf
GEN      := Sources/CRevenantBPF/generated
BTF      ?= /sys/kernel/btf/vmlinux
ABI      := Sources/CRevenantABI/include/revenant_abi.h
SKEL     := $(GEN)/revenant.skel.h $(GEN)/revenant_lsm.skel.h
BIN       = $(shell $(SWIFT) build -c $(CONFIG) --show-bin-path)/revenant
RUN_DIR  := build/run

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: deps bpf build run test bench clean

# The stamp is refreshed only when the installer succeeds; it re-checks every package.
build/.deps: scripts/install-deps.sh
	$(Q)mkdir -p build
	$(Q)scripts/install-deps.sh
	$(Q)touch $@

deps: build/.deps

# CO-RE types come from the running kernel's BTF at build time (see README: "Kernel types").
$(OUT)/vmlinux.h: | build/.deps
	$(Q)mkdir -p $(OUT)
	@echo "  BTF     $@"
	$(Q)$(BPFTOOL) btf dump file $(BTF) format c > $@

$(OUT)/%.bpf.o: bpf/%.bpf.c bpf/common.bpf.h $(ABI) $(OUT)/vmlinux.h
	@echo "  BPF     $@"
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wno-unknown-warning-option \
		-Wno-default-const-init-var-unsafe -I$(OUT) -ISources/CRevenantABI/include -c $< -o $@

$(GEN)/%.skel.h: $(OUT)/%.bpf.o
	$(Q)mkdir -p $(GEN)
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@

bpf: $(SKEL)

build: bpf
	$(Q)$(SWIFT) build -c $(CONFIG)

# The daemon with its embedded defaults: a local store and the sample policy.
run: build
	$(Q)mkdir -p $(RUN_DIR)
	$(Q)$(BIN) run --db $(RUN_DIR)/revenant.db --policy policy/sample.yaml --audit-log $(RUN_DIR)/audit.jsonl

test: bpf
	$(Q)$(SWIFT) build --build-tests
	$(Q)$(SWIFT) test --skip-build --no-parallel   # end-to-end tests share the kernel, PIDs and the CPUs

bench: bpf
	$(Q)$(SWIFT) build -c release
	$(Q)scripts/bench/run.sh "$$($(SWIFT) build -c release --show-bin-path)/revenant"

clean:
	$(Q)rm -rf build $(GEN) .build
