# stripe-sync: nginx module + companion tool.
#
#   make            build the nginx module and the unit tests
#   make deps       install the Debian packages the build and tests need
#   make test       deps, build, then every test with prove
#   make test-asan  the unit tests under AddressSanitizer + UBSan
#   make test-valgrind  the integration tests with nginx under memcheck
#   make fuzz       libFuzzer runs (FUZZ_SECONDS each)
#   make run        Redis + nginx with the module on 127.0.0.1:8080
#   make bench      benchmarks (bench/), not tests; bench-deps adds what
#                   they need beyond deps (node and npm for the Node peer
#                   and the fake provider, procps for pgrep)
#   make bench-flood  good requests' latency under a bad-signature flood
#   make deb        Debian packages in build/deb/ (docs/packaging.md)

SHELL        := /bin/bash

BUILD        ?= build
NGINX_SRC    ?= /usr/share/nginx/src
CC           ?= cc
OPT          ?= -O2
CFLAGS       ?= $(OPT) -g
WARN          = -Wall -Wextra -Werror
XCFLAGS       = -std=gnu99 -D_GNU_SOURCE -Isrc -It/unit $(WARN) $(CPPFLAGS) \
                $(CFLAGS) $(SANITIZE)
LIBS          = -lhiredis -lcurl -lconfig -lyajl -lcrypto -lm
FUZZ_SECONDS ?= 20

# make install: the module where Debian keeps its own, the tool under PREFIX
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
DOCDIR       ?= $(PREFIX)/share/doc/stripe-sync
SYSCONFDIR   ?= /etc
NGX_MODULES  ?= /usr/lib/nginx/modules
NGX_MODS_AVAILABLE ?= /usr/share/nginx/modules-available
NGX_MODS_ENABLED   ?= $(SYSCONFDIR)/nginx/modules-enabled
UNITDIR      ?= $(SYSCONFDIR)/systemd/system
MANDIR       ?= $(PREFIX)/share/man
MAN_PAGES     = man/stripe-sync.1 man/stripe-sync.conf.5 \
                man/ngx_http_stripe_sync_module.8

MODULE_SO     = $(BUILD)/ngx_http_stripe_sync_module.so
MODULE_SRCS   = $(wildcard ngx_stripe_sync_module/*.c ngx_stripe_sync_module/*.h)

# Code shared by the module and the tool: no nginx in here.
SHARED_SRCS   = src/stripe_sig.c src/action.c src/json_tree.c
SHARED_HDRS   = src/stripe_sig.h src/action.h src/json_tree.h src/enqueue_script.h

# The tool: everything in src/, main.c being its entry point.
TOOL          = $(BUILD)/stripe-sync
TOOL_MAIN     = src/main.c
LIB_SRCS      = $(filter-out $(TOOL_MAIN),$(wildcard src/*.c))
LIB_HDRS      = $(wildcard src/*.h)
LIB_OBJS      = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB           = $(BUILD)/libstripesync.a

UNIT_SRCS     = $(wildcard t/unit/*.c)
UNIT_BINS     = $(patsubst t/unit/%.c,$(BUILD)/t/unit-%,$(UNIT_SRCS))

# json_yajl_ref.c is no target: fuzz-json's oracle, the yajl-based parser
FUZZ_SRCS     = $(filter-out t/fuzz/json_yajl_ref.c,$(wildcard t/fuzz/*.c))
FUZZ_BINS     = $(patsubst t/fuzz/%.c,$(BUILD)/fuzz/fuzz-%,$(FUZZ_SRCS))

DEB_PACKAGES  = build-essential dpkg-dev nginx nginx-dev libssl-dev \
                libyajl-dev libhiredis-dev libcurl4-openssl-dev libconfig-dev \
                redis-server redis-sentinel redis-tools perl clang libclang-rt-14-dev \
                valgrind wrk curl libnginx-mod-http-echo \
                debhelper lintian

BENCH_PACKAGES = nodejs procps

.PHONY: bench-deps bench-consume bench-micro bench-flood chaos install uninstall all module tool unit deps test test-unit test-integration test-asan \
        test-valgrind fuzz fuzz-short run bench clean deb

all: module tool unit

module: $(MODULE_SO)

# Configured exactly as Debian builds its own dynamic modules (SPEC 9).
$(BUILD)/nginx/Makefile: config
	@mkdir -p $(BUILD)/nginx
	cd $(NGINX_SRC) && . ./conf_flags && ./configure \
	    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC $$(dpkg-buildflags --get CPPFLAGS)" \
	    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(BUILD)/nginx \
	    > $(CURDIR)/$(BUILD)/nginx/configure.log

$(MODULE_SO): $(BUILD)/nginx/Makefile $(MODULE_SRCS) $(SHARED_SRCS) $(SHARED_HDRS)
	$(MAKE) -f $(CURDIR)/$(BUILD)/nginx/Makefile -C $(NGINX_SRC) modules
	cp $(BUILD)/nginx/ngx_http_stripe_sync_module.so $@.tmp
	mv -f $@.tmp $@     # a new inode: a running nginx keeps its mapping

$(BUILD)/obj/%.o: src/%.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

ifneq ($(wildcard $(TOOL_MAIN)),)
tool: $(TOOL)
else
tool:
endif

$(TOOL): $(TOOL_MAIN) $(LIB) $(LIB_HDRS)
	$(CC) $(XCFLAGS) $(LDFLAGS) -o $@ $(TOOL_MAIN) $(LIB) $(LIBS)

unit: $(UNIT_BINS)

$(BUILD)/t/unit-%: t/unit/%.c $(wildcard t/unit/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -o $@ $< $(LIB) $(LIBS)

# Idempotent: installs only what is missing.
# $(call apt_install,PACKAGES,EXTRA): apt-get install those of PACKAGES
# not installed; EXTRA is shell that may add to $$missing
define apt_install
missing=""; for p in $(1); do \
    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
        | grep -q 'install ok installed' || missing="$$missing $$p"; \
done; \
$(2) \
if [ -n "$$missing" ]; then \
    echo "installing:$$missing"; \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $$missing; \
else \
    echo "$@: all Debian packages present"; \
fi
endef

deps:
	@$(call apt_install,$(DEB_PACKAGES),)

# npm: a command, not a package name to ask for, since NodeSource's
# nodejs brings its own npm and conflicts with Debian's
bench-deps: deps
	@$(call apt_install,$(BENCH_PACKAGES),command -v npm >/dev/null || missing="$$missing npm";)

test: deps all fuzz-short
	prove $(addprefix ./,$(UNIT_BINS)) t/

test-unit: unit
	prove $(addprefix ./,$(UNIT_BINS))

test-integration: module tool
	prove t/

test-asan:
	$(MAKE) BUILD=$(BUILD)/asan OPT=-O1 \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    unit tool
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    prove $(addprefix ./$(BUILD)/asan/t/unit-,$(notdir $(UNIT_SRCS:.c=)))

test-valgrind: module tool
	STRIPE_SYNC_VALGRIND=1 prove t/

$(BUILD)/fuzz/fuzz-json: FUZZ_EXTRA = t/fuzz/json_yajl_ref.c
$(BUILD)/fuzz/fuzz-json: t/fuzz/json_yajl_ref.c

$(BUILD)/fuzz/fuzz-%: t/fuzz/%.c $(wildcard t/fuzz/*.h) $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(dir $@)
	clang -std=gnu99 -D_GNU_SOURCE -Isrc -g -O1 $(WARN) \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    -o $@ $< $(FUZZ_EXTRA) $(LIB_SRCS) $(LIBS)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	    t/fuzz/run $$f $(FUZZ_SECONDS) || exit 1; \
	done

fuzz-short: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	    t/fuzz/run $$f 20 || exit 1; \
	done

# With DESTDIR (packaging, tests) nothing outside it is touched: no user is
# created and no service manager is told.
install: module tool
	install -d $(DESTDIR)$(NGX_MODULES) $(DESTDIR)$(NGX_MODS_AVAILABLE) \
	    $(DESTDIR)$(NGX_MODS_ENABLED) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(MODULE_SO) $(DESTDIR)$(NGX_MODULES)/
	install -m 0644 etc/mod-http-stripe-sync.conf $(DESTDIR)$(NGX_MODS_AVAILABLE)/
	ln -sfn $(NGX_MODS_AVAILABLE)/mod-http-stripe-sync.conf \
	    $(DESTDIR)$(NGX_MODS_ENABLED)/50-mod-http-stripe-sync.conf
	install -m 0755 $(TOOL) $(DESTDIR)$(BINDIR)/stripe-sync
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	    etc/stripe-sync.service > $(BUILD)/stripe-sync.service
	install -m 0644 $(BUILD)/stripe-sync.service $(DESTDIR)$(UNITDIR)/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	for m in $(MAN_PAGES); do \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; \
	done
	install -m 0644 etc/stripe-sync.conf.example \
	    etc/nginx-stripe-sync.conf.example $(DESTDIR)$(DOCDIR)/examples/
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/stripe-sync
	test -e $(DESTDIR)$(SYSCONFDIR)/stripe-sync/stripe-sync.conf || \
	    install -m 0640 etc/stripe-sync.conf.example \
	        $(DESTDIR)$(SYSCONFDIR)/stripe-sync/stripe-sync.conf
	@if [ -z "$(DESTDIR)" ]; then \
	    getent group stripe-sync >/dev/null || groupadd --system stripe-sync; \
	    getent passwd stripe-sync >/dev/null || useradd --system \
	        --gid stripe-sync --home-dir /nonexistent --no-create-home \
	        --shell /usr/sbin/nologin stripe-sync; \
	    chgrp -R stripe-sync $(SYSCONFDIR)/stripe-sync; \
	    if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	    echo "installed: nginx -t && systemctl reload nginx;" \
	         "edit $(SYSCONFDIR)/stripe-sync/stripe-sync.conf, then" \
	         "systemctl enable --now stripe-sync"; \
	fi

# The configuration in $(SYSCONFDIR)/stripe-sync is the user's: kept.
uninstall:
	rm -f $(DESTDIR)$(NGX_MODS_ENABLED)/50-mod-http-stripe-sync.conf \
	    $(DESTDIR)$(NGX_MODS_AVAILABLE)/mod-http-stripe-sync.conf \
	    $(DESTDIR)$(NGX_MODULES)/ngx_http_stripe_sync_module.so \
	    $(DESTDIR)$(BINDIR)/stripe-sync $(DESTDIR)$(UNITDIR)/stripe-sync.service
	for m in $(MAN_PAGES); do \
	    rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m#man/}; \
	done
	rm -rf $(DESTDIR)$(DOCDIR)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	    systemctl daemon-reload; fi

run: deps module tool
	t/run-stack

bench: bench-deps module tool
	bench/run

bench-consume: bench-deps tool
	bench/consume

bench-micro: bench-deps module
	bench/normalize
	bench/ingest

# issue 6: 10,000 bad signatures must not slow good requests by more than 2x
# (docs/reliability.md); bench/flood --help for its options
bench-flood: bench-deps module
	bench/flood

# the fault-injection run of docs/reliability.md (CHAOS_EVENTS, CHAOS_SEED)
chaos: bench-deps module tool
	bench/chaos

# Debian packages (docs/packaging.md), built by debhelper from a copy of
# the tree in $(DEB_DIR)/src: the .deb files land in $(DEB_DIR).
DEB_DIR      ?= $(BUILD)/deb

deb: deps
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/src
	tar -c --exclude-vcs --exclude=./build --exclude=./run \
	    --exclude=./bench/peers/node_modules --exclude='*.o' -f - . \
	    | tar -x -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && DEB_BUILD_OPTIONS="noautodbgsym $$DEB_BUILD_OPTIONS" \
	    dpkg-buildpackage --no-sign -Jauto \
	    > ../dpkg-buildpackage.log 2>&1 \
	    || { tail -n 40 ../dpkg-buildpackage.log; exit 1; }
	rm -rf $(DEB_DIR)/src
	lintian --allow-root --fail-on error $(DEB_DIR)/*.changes
	@ls -1 $(DEB_DIR)/*.deb

clean:
	rm -rf $(BUILD)
