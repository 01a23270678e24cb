# Cairn build. `make run` and `make test` are the two entry points (README.md).
# Sanitizer builds go to their own directory: make SAN=address,undefined BUILD=build-asan
BUILD   ?= build
SAN     ?=
CC      ?= cc
OPT     ?= -O2 -g
CFLAGS  ?= $(OPT)
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
           -Isrc -MMD -MP -pthread
LDLIBS  += -pthread -lz -lsnappy -llz4 -lzstd -lraft
# The HTTP front end (src/http): Node's http_parser, jansson, libcurl (webhooks) (ARCHITECTURE.md).
LDLIBS  += -lhttp_parser -ljansson -lcurl
# TLS on every listener, SCRAM (issue 13): OpenSSL 3 (ARCHITECTURE.md).
LDLIBS  += -lssl -lcrypto
# ssl.principal.mapping.rules (Kafka's regular expressions): PCRE2 (ARCHITECTURE.md).
LDLIBS  += -lpcre2-8
# Power-loss simulation build (src/util/fault.h): make BUILD=build-fault FAULT=1 build-fault/cairn
ifneq ($(FAULT),)
CFLAGS  += -DCAIRN_FAULT
endif
ifneq ($(SAN),)
CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif
PY      := /usr/bin/python3
# The web console (src/http/console) embedded as a generated, committed C file
# (tools/embed_console.py); regenerated when a console file changes.
CONSOLE_SRC := $(sort $(wildcard src/http/console/*))
CONSOLE_C   := src/http/gen/console_assets.c

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path src/main.c) $(CONSOLE_C))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tools/*.c))
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)

.PHONY: layers all deps run test unit sim sim-long integration crash-smoke crash-long nemesis-smoke nemesis fuzz-smoke asan-test asan-unit bench-smoke valgrind-test gen gen-check clean bench deps-bench
all: $(BUILD)/cairn $(UNIT_BIN) $(TOOL_BIN)

deps:
	@bash scripts/install-deps.sh

deps-bench:
	@bash scripts/install-deps.sh bench

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(CONSOLE_C): $(CONSOLE_SRC) tools/embed_console.py
	$(PY) tools/embed_console.py src/http/console $@

$(BUILD)/libcairn.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/cairn: $(BUILD)/obj/src/main.o $(BUILD)/libcairn.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A unit test may link one more library (UNIT_LIBS_<test>).
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcairn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libcairn.a $(LDLIBS) $(UNIT_LIBS_$*) -lcmocka

# Every tool links the shared load-generator code and its own client library.
LG_COMMON          := tools/lg/lg_common.c
TOOL_LIBS_loadgen  := -lrdkafka
TOOL_LIBS_lg_redis := -lhiredis
TOOL_LIBS_lg_nats  := -lnats
TOOL_LIBS_lg_amqp  := -lrabbitmq
$(BUILD)/tools/%: tools/%.c $(LG_COMMON) tools/lg/lg_common.h $(BUILD)/libcairn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itools $(LDFLAGS) -o $@ $< $(LG_COMMON) $(BUILD)/libcairn.a $(LDLIBS) $(TOOL_LIBS_$*)

run: deps
	@$(MAKE) --no-print-directory $(BUILD)/cairn
	./$(BUILD)/cairn

# Every test: generated-code check, module floors, the release and fault-injection builds
# (integration tests that simulate a power loss run build-fault/cairn, so it must be
# current before the first integration stage), unit tests, the ASan+UBSan build of unit
# and integration tests, fuzz smoke, benchmark smoke, the integration tests
# with real clients against the release build, then the crash harness smoke.
test: deps
	@$(MAKE) --no-print-directory gen-check
	@$(MAKE) --no-print-directory layers
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build-fault FAULT=1 build-fault/cairn
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory sim
	@$(MAKE) --no-print-directory asan-test
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory bench-smoke
	@$(MAKE) --no-print-directory valgrind-test
	@$(MAKE) --no-print-directory crash-smoke
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory nemesis-smoke

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Unit tests and the integration suite against a broker built with
# AddressSanitizer and UndefinedBehaviorSanitizer (any report aborts the
# broker or fails its clean-exit check).
asan-test:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=address,undefined OPT="-O1 -g" asan-unit

asan-unit: unit $(BUILD)/cairn
	@CAIRN_BIN=$(BUILD)/cairn bash tests/integration/run.sh $(BUILD)

# A subset of the integration suite with the broker under Valgrind memcheck.
VALGRIND_TESTS := test_kcat.py test_bad_input.py test_groups_wire.py test_topic_behaviour.py \
                  test_restart.py
valgrind-test: $(BUILD)/cairn
	@cd tests/integration/py && CAIRN_REAL_BIN=$(CURDIR)/$(BUILD)/cairn \
	  CAIRN_BIN=$(CURDIR)/tests/integration/valgrind-cairn.sh $(PY) -m pytest -q $(VALGRIND_TESTS)

bench-smoke: $(BUILD)/cairn $(TOOL_BIN)
	@bash bench/quick.sh smoke
	@BUILD=$(BUILD) $(PY) bench/run.py smoke

integration: $(BUILD)/cairn
	@bash tests/integration/run.sh $(BUILD)

# Crash harness (tests/crash/crash.py, docs/testing.md): a bounded number of
# kill -9 cycles, then power-loss cycles with the fault-injection build.
CRASH_CYCLES ?= 12
crash-smoke: $(BUILD)/cairn
	@$(MAKE) --no-print-directory BUILD=build-fault FAULT=1 build-fault/cairn
	@$(PY) tests/crash/crash.py --bin $(BUILD)/cairn --cycles $(CRASH_CYCLES) --max-load 1.0
	@$(PY) tests/crash/crash.py --power-loss --bin build-fault/cairn --cycles $(CRASH_CYCLES) --max-load 1.0

# Deterministic simulation of the replication groups (tests/sim/sim_repl.c,
# docs/testing.md "Simulation"), built with CAIRN_FAULT so that a simulated
# crash loses what was not fsynced. sim: the smoke (40 seeds, 3 and 5
# nodes); sim-long: 1000 longer runs. SIM_ARGS adds options (--seed S ...).
$(BUILD)/tests/sim_repl: tests/sim/sim_repl.c $(BUILD)/libcairn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcairn.a $(LDLIBS)
sim:
	@$(MAKE) --no-print-directory BUILD=build-fault FAULT=1 build-fault/tests/sim_repl
	@build-fault/tests/sim_repl $(SIM_ARGS)
sim-long:
	@$(MAKE) --no-print-directory BUILD=build-fault FAULT=1 build-fault/tests/sim_repl
	@build-fault/tests/sim_repl --seeds 1000-1999 --steps 30000 $(SIM_ARGS)

# Nemesis harness (tests/nemesis, docs/testing.md "Nemesis"): real 3- and 5-node
# clusters with every node-to-node connection through a per-pair proxy, seeded
# faults (kills, pauses, partitions, one-way, slow links, restarts), an acks=all
# idempotent workload and a checker, or (--txn) transactional producers and a
# read_committed checker (long mode with --txn-ctp 2: two consume-transform-produce
# workers in one group, each record processed once, G1a and G1c checks), or (--retention)
# Raft snapshots all through the faults.
# nemesis-smoke: 2 seeds of 16 s of faults on 3 nodes plus 1 transactional seed
# and 1 retention seed (about 130 s); nemesis: the long mode (about 1.7 h: 20
# seeds on 3 nodes and 10 on 5, then 10 transactional seeds on 3 nodes and 5 on
# 5, then 10 retention seeds on 3 nodes, 90 s of faults each). Transactions there abort only after a flush (the
# lost-record bug of docs/testing.md "Nemesis", tests/nemesis/repro_notleader.py,
# is fixed; unflushed aborts are left to --txn-unflushed-aborts). Moves and
# power loss: the fault-injection build on 5 nodes, replication factor 3
# (smoke: 1 seed; long mode: 10 seeds, then 5 seeds of power loss on 3 nodes).
# Wall-clock skew (libfaketime): in the smoke's 5-node seed; long mode: 5
# plain and 3 transactional seeds of clock faults among kills and partitions.
# AMQP (--amqp, tests/nemesis/amqpwl.py): confirmed publishes to a durable
# queue and acking consumers, nothing confirmed may be lost: smoke seed 4;
# long mode seeds 900-909, then 910-912 with power loss (fault build).
# NEMESIS_ARGS adds options.
NEMESIS_ARGS ?=
NEMESIS_MOVE_KINDS := move,move-kill-leader,move-pause-leader,power-random,power-leader,$\
  power-minority,power-all,kill-leader,part-leader,clock-random,clock-leader,clock-all
NEMESIS_AMQP_POWER_KINDS := power-random,power-leader,power-minority,power-all,kill-leader,$\
  pause-leader,part-leader
NEMESIS_CLOCK_KINDS := clock-random,clock-leader,clock-all,kill-leader,pause-leader,part-leader,$\
  part-halves
nemesis-smoke: $(BUILD)/cairn
	@$(MAKE) --no-print-directory BUILD=build-fault FAULT=1 build-fault/cairn
	@$(PY) tests/nemesis/test_checker.py
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --seeds 1-2 --nodes 3 --duration 16 \
	  --fault-min 1.5 --fault-max 4 --heal-min 0.5 --heal-max 2 \
	  --time-limit 100 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --txn --txn-unflushed-aborts 0 \
	  --seeds 1 --nodes 3 --duration 16 \
	  --fault-min 1.5 --fault-max 4 --heal-min 0.5 --heal-max 2 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --retention --seeds 2 --nodes 3 \
	  --duration 16 --fault-min 1.5 --fault-max 4 --heal-min 0.5 --heal-max 2 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin build-fault/cairn --seeds 3 --nodes 5 --rf 3 \
	  --duration 16 --fault-min 1.5 --fault-max 4 --heal-min 0.5 --heal-max 2 \
	  --kinds $(NEMESIS_MOVE_KINDS) $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --amqp --seeds 4 --nodes 3 --duration 16 \
	  --fault-min 1.5 --fault-max 4 --heal-min 0.5 --heal-max 2 $(NEMESIS_ARGS)
nemesis: $(BUILD)/cairn
	@$(MAKE) --no-print-directory BUILD=build-fault FAULT=1 build-fault/cairn
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --seeds 100-119 --nodes 3 --duration 90 \
	  --fault-max 10 --heal-max 6 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --seeds 200-209 --nodes 5 --duration 90 \
	  --fault-max 10 --heal-max 6 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --txn --txn-unflushed-aborts 0 --txn-ctp 2 \
	  --seeds 300-309 --nodes 3 --duration 90 --fault-max 10 --heal-max 6 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --txn --txn-unflushed-aborts 0 --txn-ctp 2 \
	  --seeds 400-404 --nodes 5 --duration 90 --fault-max 10 --heal-max 6 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --retention \
	  --seeds 500-509 --nodes 3 --duration 90 --fault-max 10 --heal-max 6 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin build-fault/cairn --seeds 600-609 --nodes 5 --rf 3 \
	  --duration 90 --fault-max 10 --heal-max 6 --kinds $(NEMESIS_MOVE_KINDS) $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin build-fault/cairn --seeds 700-704 --nodes 3 \
	  --duration 90 --fault-max 10 --heal-max 6 \
	  --kinds power-random,power-leader,power-minority,power-all $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --seeds 800-804 --nodes 3 \
	  --duration 90 --fault-max 10 --heal-max 6 --kinds $(NEMESIS_CLOCK_KINDS) $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --txn --txn-unflushed-aborts 0 --txn-ctp 2 \
	  --seeds 810-812 --nodes 3 --duration 90 --fault-max 10 --heal-max 6 \
	  --kinds $(NEMESIS_CLOCK_KINDS) $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin $(BUILD)/cairn --amqp --seeds 900-909 --nodes 3 \
	  --duration 90 --fault-max 10 --heal-max 6 $(NEMESIS_ARGS)
	@$(PY) tests/nemesis/nemesis.py --bin build-fault/cairn --amqp --seeds 910-912 --nodes 3 \
	  --duration 90 --fault-max 10 --heal-max 6 --kinds $(NEMESIS_AMQP_POWER_KINDS) $(NEMESIS_ARGS)

# Long mode: 1000 cycles of each kind (about 30 minutes each).
crash-long: $(BUILD)/cairn
	@$(MAKE) --no-print-directory BUILD=build-fault FAULT=1 build-fault/cairn
	@$(PY) tests/crash/crash.py --bin $(BUILD)/cairn --cycles 1000
	@$(PY) tests/crash/crash.py --power-loss --bin build-fault/cairn --cycles 1000

fuzz-smoke:
	@bash fuzz/run.sh smoke

# Module floors (ARCHITECTURE.md "Modules and floors"): includes go down only,
# and no core module includes a front end.
layers:
	@$(PY) tools/layers.py

# Codec generation (output committed): Kafka from ../shared/protocol/kafka/messages
# (docs/codec.md), AMQP 0-9-1 from ../shared/protocol/amqp (docs/amqp-codec.md);
# the web console's files into $(CONSOLE_C) (tools/embed_console.py).
SCHEMAS   ?= ../shared/protocol/kafka/messages
AMQP_SPEC ?= ../shared/protocol/amqp/amqp-rabbitmq-0.9.1.json
gen:
	$(PY) tools/kafka_gen.py $(SCHEMAS) src/proto/kafka/gen
	$(PY) tools/amqp_gen.py $(AMQP_SPEC) src/proto/amqp/gen
	$(PY) tools/embed_console.py src/http/console $(CONSOLE_C)
gen-check:
	@if [ -d $(SCHEMAS) ]; then \
	  tmp=$$(mktemp -d); $(PY) tools/kafka_gen.py $(SCHEMAS) $$tmp && \
	  diff -r -q $$tmp src/proto/kafka/gen && echo "gen-check: generated codec is up to date"; \
	  rc=$$?; rm -rf $$tmp; exit $$rc; \
	else echo "gen-check: $(SCHEMAS) absent, skipped"; fi
	@if [ -f $(AMQP_SPEC) ]; then \
	  tmp=$$(mktemp -d); $(PY) tools/amqp_gen.py $(AMQP_SPEC) $$tmp && \
	  diff -r -q $$tmp src/proto/amqp/gen && echo "gen-check: generated AMQP codec is up to date"; \
	  rc=$$?; rm -rf $$tmp; exit $$rc; \
	else echo "gen-check: $(AMQP_SPEC) absent, skipped"; fi
	@tmp=$$(mktemp -d); $(PY) tools/embed_console.py src/http/console $$tmp/console_assets.c && \
	  cmp -s $$tmp/console_assets.c $(CONSOLE_C) && echo "gen-check: embedded console is up to date" || \
	  { echo "gen-check: $(CONSOLE_C) is stale (make gen)"; rm -rf $$tmp; exit 1; }; rm -rf $$tmp

# Cairn side by side with Redis, NATS and RabbitMQ and the machine's limits
# (bench/README.md); writes bench/results/<date>.{md,json,png}.
bench: deps-bench all
	@BUILD=$(BUILD) $(PY) bench/run.py full

clean:
	rm -rf build build-asan build-fuzz build-fault

-include $(shell find $(BUILD) build-asan build-fault -name '*.d' 2>/dev/null)
