# tl — transfer learning for computer vision, as small Unix programs.
# make            build lib/libtl.a and bin/tl-*
# make check      unit tests (C) and CLI tests (BATS), then the same under ASan+UBSan
# make deps       install build and test dependencies (Debian 12, apt-get)
# make demo       ants vs bees: convert, extract, train a head, evaluate
# make bench      our tools against ONNX Runtime and PyTorch, same work, one run

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
SAN     ?=
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter \
             -Ilib -Ilib/core -MMD -MP -pthread $(SAN) $(CFLAGS)
LDLIBS  = -ljpeg -lpng -lz -lm -lpthread

# Outputs: the normal build lives in the checkout (lib/libtl.a, bin/); other
# builds (sanitizers) go under build/<name>/ so both can coexist.
OUT     ?= .
OBJ     := $(OUT)/build/obj
LIBA    := $(if $(filter .,$(OUT)),lib/libtl.a,$(OUT)/lib/libtl.a)
BIN     := $(OUT)/bin
TBIN    := $(OUT)/build/tests

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(OBJ)/%.o)
TOOL_SRC  := $(sort $(wildcard tools/tl-*.c))
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%)
TCOMMON   := $(OBJ)/tools/common.o
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNITS     := $(UNIT_SRC:tests/unit/%.c=$(TBIN)/%)
# Test-only drivers the parity scripts run (never installed).
TTOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TTOOLS    := $(TTOOL_SRC:tests/tools/%.c=$(TBIN)/%)

# Keep object files of tests and tools (make would delete them as
# intermediates and rebuild them on every run).
.SECONDARY:

.PHONY: all check check-unit check-bats check-asan deps demo bench clean install fuzz
all: $(LIBA) $(TOOLS)
test-tools: $(TTOOLS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN)/%: $(OBJ)/tools/%.o $(TCOMMON) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(TCOMMON) $(LIBA) $(LDLIBS)

$(TBIN)/tl-%: $(OBJ)/tests/tools/tl-%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

$(TBIN)/%: $(OBJ)/tests/unit/%.o $(OBJ)/tests/unit/check.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(OBJ)/tests/unit/check.o $(LIBA) $(LDLIBS)

check: check-unit check-bats check-asan

check-unit: $(UNITS)
	@scripts/run-unit.sh $(UNITS)

check-bats: all $(TTOOLS)
	@TL_BIN=$(abspath $(BIN)) TL_TEST_BIN=$(abspath $(TBIN)) scripts/run-bats.sh

# The whole suite again with AddressSanitizer and UndefinedBehaviorSanitizer.
check-asan:
	TL_SANITIZE=1 $(MAKE) OUT=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  check-unit check-bats

deps:
	scripts/deps.sh

demo: all
	scripts/demo.sh

bench: all
	scripts/bench/run.sh

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7

clean:
	rm -rf build bin lib/libtl.a

-include $(shell find build -name '*.d' 2>/dev/null)
