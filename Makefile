# tl — transfer learning for computer vision, as small Unix programs.
# make            build lib/libtl.a, lib/libtl.so and bin/tl-*
# make check      unit tests (C), CLI tests (BATS), path-dependent tests on every lower SIMD path,
#                 a short fuzz run, then unit and CLI tests under ASan+UBSan
# make check-quick  a fast subset for the edit-compile-test loop (a couple of minutes)
# make fuzz       every fuzz target for FUZZ_SECONDS (600);  make check-valgrind: unit tests under valgrind
# make deps       install build and test dependencies (Debian 12, apt-get)
# make demo       ants vs bees: convert, extract, train a head, evaluate
# make bench      our tools against ONNX Runtime and PyTorch, same work, one run

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
SAN     ?=
# WERROR=1 (CI, .ci/run): any warning fails the build, in every build make
# check makes (-O2, the -O1 sanitizer build, clang's fuzz build).
WERROR  ?=
# -fPIC -fvisibility=hidden: the same objects make libtl.a and libtl.so,
# which exports only what lib/tl.h marks TL_API.
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter \
             -Ilib -Ilib/core -MMD -MP -pthread -fPIC -fvisibility=hidden $(if $(WERROR),-Werror) $(SAN) $(CFLAGS)
LDLIBS  = -ljpeg -lpng -lz -lm -lpthread

# MPI (data-parallel tl-finetune) when an MPI compiler wrapper is found;
# `make MPICC=` builds without. Only the transport (lib/core/comm_mpi.c)
# and tl-finetune's link go through the wrapper; the object's folder names
# the choice, so switching rebuilds it.
MPICC   ?= $(shell command -v mpicc 2>/dev/null)
MPI_ON  := $(if $(strip $(MPICC)),on,off)

# Outputs: the normal build lives in the checkout (lib/libtl.a, bin/); other
# builds (sanitizers) go under build/<name>/ so both can coexist.
OUT     ?= .
OBJ     := $(OUT)/build/obj
LIBA    := $(if $(filter .,$(OUT)),lib/libtl.a,$(OUT)/lib/libtl.a)
# libtl.so.X.Y.Z (soname libtl.so.X) beside it; the version is tl.h's.
TL_VERSION := $(shell sed -n 's/^\#define TL_VERSION "\(.*\)"/\1/p' lib/tl.h)
TL_SOMAJOR := $(firstword $(subst ., ,$(TL_VERSION)))
LIBSO   := $(dir $(LIBA))libtl.so.$(TL_VERSION)
BIN     := $(OUT)/bin
TBIN    := $(OUT)/build/tests

MPI_OBJ   := $(OBJ)/mpi-$(MPI_ON)/comm_mpi.o
# rewritten only when the choice changes, so the library and tl-finetune follow it
MPI_STATE := $(OBJ)/mpi.state
$(shell mkdir -p $(OBJ) && (echo $(MPI_ON) | cmp -s - $(MPI_STATE) || echo $(MPI_ON) > $(MPI_STATE)))
LIB_SRC   := $(filter-out lib/core/comm_mpi.c,$(sort $(wildcard lib/*/*.c)))
LIB_OBJ   := $(LIB_SRC:%.c=$(OBJ)/%.o) $(MPI_OBJ)
TOOL_SRC  := $(sort $(wildcard tools/tl-*.c))
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%)
TCOMMON   := $(patsubst %.c,$(OBJ)/%.o,$(filter-out tools/tl-%.c,$(sort $(wildcard tools/*.c))))
# tl-finetune's own parts (a head on features, the network on images)
FINETUNE  := $(patsubst %.c,$(OBJ)/%.o,$(sort $(wildcard tools/finetune/*.c)))
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
# UNIT="test_dataset test_json": only those unit tests (check-unit, check-asan).
UNITS     := $(if $(UNIT),$(UNIT:%=$(TBIN)/%),$(UNIT_SRC:tests/unit/%.c=$(TBIN)/%))
# Test-only drivers the parity scripts run (never installed).
TTOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TTOOLS    := $(TTOOL_SRC:tests/tools/%.c=$(TBIN)/%) $(TBIN)/tl-finetune-nompi

# Keep object files of tests and tools (make would delete them as
# intermediates and rebuild them on every run).
.SECONDARY:

.PHONY: all check check-includes check-unit check-bats check-simd check-asan deps demo bench clean install uninstall fuzz completion
all: $(LIBA) $(LIBSO) $(TOOLS)
test-tools: $(TTOOLS)

# Objects remember the flags they were built with: a change of CFLAGS, OPT
# or SAN (or of these rules) rebuilds them.
CFLAGS_STAMP := $(OBJ)/cflags.txt
$(CFLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(ALL_CFLAGS)' | cmp -s - $@ || echo '$(ALL_CFLAGS)' >$@
.PHONY: FORCE

$(OBJ)/%.o: %.c $(CFLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OBJ)/mpi-on/comm_mpi.o: lib/core/comm_mpi.c
	@mkdir -p $(dir $@)
	$(MPICC) $(ALL_CFLAGS) -DTL_HAVE_MPI -c $< -o $@
$(OBJ)/mpi-off/comm_mpi.o: lib/core/comm_mpi.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ) $(MPI_STATE)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

# libtl.so takes the transport without MPI: tl.h has no data-parallel
# training, so a program using the shared library needs no MPI at run time.
LIBSO_OBJ := $(LIB_SRC:%.c=$(OBJ)/%.o) $(OBJ)/mpi-off/comm_mpi.o
$(LIBSO): $(LIBSO_OBJ)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,libtl.so.$(TL_SOMAJOR) -Wl,--no-undefined -o $@ $^ $(LDLIBS)
	ln -sf libtl.so.$(TL_VERSION) $(dir $@)libtl.so.$(TL_SOMAJOR)
	ln -sf libtl.so.$(TL_SOMAJOR) $(dir $@)libtl.so

$(BIN)/%: $(OBJ)/tools/%.o $(TCOMMON) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(TCOMMON) $(LIBA) $(LDLIBS)

# tl-finetune as a build without MPI makes it, for the test that it says so
# under mpirun: the stub transport linked ahead of the library.
$(TBIN)/tl-finetune-nompi: $(OBJ)/tools/tl-finetune.o $(FINETUNE) $(TCOMMON) $(OBJ)/mpi-off/comm_mpi.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(FINETUNE) $(TCOMMON) $(OBJ)/mpi-off/comm_mpi.o $(LIBA) $(LDLIBS)

# The allreduce benchmark (tests/tools/tl-allreduce.c) talks to MPI itself.
$(OBJ)/tests/tools/tl-allreduce.o: tests/tools/tl-allreduce.c
	@mkdir -p $(dir $@)
	$(if $(filter on,$(MPI_ON)),$(MPICC) -DTL_HAVE_MPI,$(CC)) $(ALL_CFLAGS) -c $< -o $@
$(TBIN)/tl-allreduce: $(OBJ)/tests/tools/tl-allreduce.o $(LIBA) $(MPI_STATE)
	@mkdir -p $(dir $@)
	$(if $(filter on,$(MPI_ON)),$(MPICC),$(CC)) $(ALL_CFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# tl-finetune runs data-parallel under mpirun/srun: linked by the wrapper.
$(BIN)/tl-finetune: $(OBJ)/tools/tl-finetune.o $(FINETUNE) $(TCOMMON) $(LIBA) $(MPI_STATE)
	@mkdir -p $(dir $@)
	$(if $(filter on,$(MPI_ON)),$(MPICC),$(CC)) $(ALL_CFLAGS) -o $@ $< $(FINETUNE) $(TCOMMON) $(LIBA) $(LDLIBS)

$(TBIN)/tl-%: $(OBJ)/tests/tools/tl-%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# Unit tests link the harness and the test-only reference kernels.
UNIT_COMMON := $(OBJ)/tests/unit/check.o $(OBJ)/tests/unit/kernels_ref.o
$(TBIN)/%: $(OBJ)/tests/unit/%.o $(UNIT_COMMON) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(UNIT_COMMON) $(LIBA) $(LDLIBS)

check: check-includes check-unit check-bats check-simd check-fuzz check-asan

# The edit-compile-test loop, a couple of minutes on two cores (not a
# substitute for make check): the build, the include rule, the unit tests
# that run no Python (no PyTorch, NumPy or PIL parity) and the BATS files of
# the command-line conventions, which need nothing but the build. One test:
# make check-unit UNIT=test_dataset; make check-bats BATS_FILES=tests/bats/eval.bats
# (BATS_FILTER=REGEX: only the matching cases); README, "Tests and checks".
QUICK_UNITS ?= $(filter-out $(addprefix test_,augment_parity calibration conv features image kernels_pool linear \
                 metrics model optim plot resize),$(UNIT_SRC:tests/unit/%.c=%))
QUICK_BATS  ?= tests/bats/options.bats tests/bats/usage.bats tests/bats/conventions.bats tests/bats/compare.bats
.PHONY: check-quick
check-quick: all check-includes $(QUICK_UNITS:%=$(TBIN)/%)
	@scripts/run-unit.sh $(QUICK_UNITS:%=$(TBIN)/%)
	@TL_BIN=$(abspath $(BIN)) TL_TEST_BIN=$(abspath $(TBIN)) BATS_FILES="$(QUICK_BATS)" scripts/run-bats.sh

# The layer rule of lib/ (tl(7), LAYERS): a file includes only from its own
# layer or a lower one.
check-includes:
	@sh scripts/check-includes.sh

check-unit: $(UNITS)
	@scripts/run-unit.sh $(UNITS)

check-bats: all $(TTOOLS)
	@TL_BIN=$(abspath $(BIN)) TL_TEST_BIN=$(abspath $(TBIN)) TL_OUT="$(OUT)" TL_OPT="$(OPT)" TL_SAN="$(SAN)" \
	  scripts/run-bats.sh

# The path-dependent suites again on every lower SIMD path the CPU has
# (scripts/run-simd.sh): an AVX-512 machine also proves AVX2 and scalar.
check-simd: $(UNITS) all $(TTOOLS)
	@TL_BIN=$(abspath $(BIN)) TL_TEST_BIN=$(abspath $(TBIN)) scripts/run-simd.sh $(TBIN)

# The unit tests under valgrind (memcheck): invalid accesses, uninitialised
# reads and definite leaks fail (scripts/run-valgrind.sh; suppressions in
# tests/valgrind/tl.supp). Slow (valgrind runs code ~30x slower); a subset:
# make check-valgrind VALGRIND_TESTS="test_image test_safetensors".
VALGRIND_TESTS ?= $(UNIT_SRC:tests/unit/%.c=%)
.PHONY: check-valgrind
check-valgrind: $(UNITS)
	@nice -n 10 scripts/run-valgrind.sh $(addprefix $(TBIN)/,$(VALGRIND_TESTS))

# The whole suite again with AddressSanitizer and UndefinedBehaviorSanitizer.
# GCC's "undefined" leaves out float-to-int overflow, which the kernels'
# scale arithmetic can reach (a ReLU6 clip of 6 / scale once did): named.
check-asan:
	TL_SANITIZE=1 $(MAKE) OUT=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow" \
	  check-unit check-bats

# Fuzzing (libFuzzer, Debian's clang): one target per input format,
# tests/fuzz/fuzz_<format>.c, over a library built with coverage and
# ASan+UBSan under build/fuzz/. `make fuzz` runs each for FUZZ_SECONDS
# (corpora kept in build/fuzz/corpus/); `make check-fuzz` replays the seeds
# and tests/fuzz/regressions/ and fuzzes each target briefly.
FUZZ_CC      ?= clang
FUZZ_OUT     ?= build/fuzz
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 8
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_OUT)/%)
.PHONY: fuzz-build fuzz-bins check-fuzz
fuzz-build:
	$(MAKE) CC=$(FUZZ_CC) MPICC= OUT=$(FUZZ_OUT) OPT=-O1 SAN="$(FUZZ_SAN)" fuzz-bins
fuzz-bins: $(FUZZ_BINS)
$(FUZZ_OUT)/fuzz_%: $(OBJ)/tests/fuzz/fuzz_%.o $(LIBA)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBA) $(LDLIBS)
fuzz: fuzz-build
	nice -n 15 scripts/fuzz-run.sh --seconds $(FUZZ_SECONDS) $(FUZZ_OUT)
check-fuzz: fuzz-build
	scripts/fuzz-run.sh --smoke --seconds $(FUZZ_SMOKE_SECONDS) $(FUZZ_OUT)

# Shell completion from the tools' option tables (tl-x --complete-options):
# build/completion/tl.bash for bash, build/completion/_tl for zsh.
completion: all
	scripts/completion.sh $(TOOLS)

deps:
	scripts/deps.sh

demo: all
	scripts/demo.sh

bench: all $(TBIN)/tl-bench $(TBIN)/tl-fmaprobe $(TBIN)/tl-simd
	scripts/bench/run.sh

# make install / make uninstall PREFIX=/usr/local DESTDIR=staging-root:
# programs, libtl.a, libtl.so (+ soname links), tl.h, tl.pc, man pages,
# bash and zsh completion, examples (scripts/install.sh; LIBDIR, BINDIR,
# INCLUDEDIR, MANDIR, DATADIR override the folders).
PREFIX ?= /usr/local
INSTALL_ENV = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" $(foreach v,BINDIR LIBDIR INCLUDEDIR MANDIR DATADIR,\
	$(if $($(v)),$(v)="$($(v))")) COMPLETION_DIR="$(OUT)/build/completion"
install: all
	COMPLETION_OUT=$(OUT)/build/completion scripts/completion.sh $(TOOLS)
	$(INSTALL_ENV) scripts/install.sh install $(LIBA) $(LIBSO) $(TL_VERSION) $(TOOLS)
uninstall:
	$(INSTALL_ENV) scripts/install.sh uninstall $(LIBA) $(LIBSO) $(TL_VERSION) $(TOOLS)

clean:
	rm -rf build bin lib/libtl.a lib/libtl.so*

-include $(shell find build -name '*.d' 2>/dev/null)
