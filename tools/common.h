/* What every tl-* program shares: the option parser and the common options
 * (opt.h), messages in the `prog: what` form, exit codes (0 ok, 1 failure,
 * 2 usage, 130/143 interrupted), logging and the progress bar. The library
 * never prints; the tools do. */
#ifndef TL_TOOLS_COMMON_H
#define TL_TOOLS_COMMON_H

#include "core.h"
#include "opt.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>


/* The options declared once for every tool (cli_common_options): a tool
 * takes the ones it lists with OPT_COMMON(id). Their values land in tl_cli
 * unless the entry names another target of the same type. */
enum cli_common_id {
    CLI_O_MODEL,      /* -m, --model MODEL */
    CLI_O_OUTPUT,     /* -o, --output FILE */
    CLI_O_THREADS,    /* -j, --threads N (0: all cores) */
    CLI_O_BATCH,      /* -b, --batch N */
    CLI_O_SEED,       /* -s, --seed N */
    CLI_O_LOG,        /* --log FILE */
    CLI_O_MAX_PIXELS, /* --max-pixels N */
    CLI_O_SKIP_BAD,   /* --skip-bad */
    CLI_O_PROGRESS,   /* --progress */
    CLI_O_QUIET,      /* -q, --quiet */
    CLI_O_EXACT,      /* --exact: direct convolutions, no Winograd */
    CLI_O_HELP,       /* -h, --help (every tool) */
    CLI_O_VERSION,    /* --version (every tool) */
    CLI_NCOMMON
};
extern const cli_opt cli_common_options[CLI_NCOMMON];

#define CLI_MAX_OPTS 128

typedef struct tl_cli {
    const char *prog;
    const cli_tool *tool;

    /* Values of the common options; cli_init sets the defaults. */
    const char *model, *output, *log;
    int threads;       /* all cores unless -j */
    int batch;         /* 32 */
    uint64_t seed;     /* 0; a tool may set its own default before parsing */
    size_t max_pixels; /* 0: the library's default (100 megapixels) */
    int skip_bad, force_progress, quiet;
    int exact;         /* --exact */

    /* The parsed table: common entries resolved, --help and --version
     * appended; given[i] counts the occurrences of opts[i]. */
    cli_opt opts[CLI_MAX_OPTS];
    unsigned char given[CLI_MAX_OPTS];
    int nopts;

    /* progress bar */
    int progress;      /* 1: draw a progress bar on stderr */
    int tty;           /* stderr is a terminal: the bar may redraw its line */
    double progress_t0;
    double progress_last;
} tl_cli;

void cli_init(tl_cli *c, const char *prog);

/* Parses argv by the tool's table: stores every value, handles --help,
 * --version and --complete-options (then exits 0), checks required options
 * and the number of positional arguments (exit 2 with one line on any
 * mistake). Returns the index of the first positional argument in argv
 * (getopt_long moves them to the end). */
int cli_parse(tl_cli *c, const cli_tool *tool, int argc, char **argv);
/* Whether the option with this long name was given (0 for a name that is
 * not in the tool's table). */
int cli_given(const tl_cli *c, const char *long_name);
/* The long name of the first option given from the group with this title
 * (OPT_GROUP), or NULL: for options that apply to one mode of a tool. */
const char *cli_given_in_group(const tl_cli *c, const char *title);

/* SIGINT and SIGTERM set *flag to the signal's number (reads and writes
 * restart): the tool stops at the next safe point, removes its temporary
 * files, says so and exits 128 + the signal (130, 143). */
void cli_catch_signals(volatile sig_atomic_t *flag);
/* For tools that stop at once: SIGINT and SIGTERM wait while an output
 * file is written (temporary name, then rename), so an interrupt never
 * leaves a temporary file behind; a signal that came meanwhile ends the
 * process on release, with its usual status (130, 143). */
void cli_hold_signals(void);
void cli_release_signals(void);
/* Says "interrupted" on stderr with what was kept or removed, exits 128 + sig. */
_Noreturn void cli_interrupted(const tl_cli *c, int sig, const char *what);

/* Prints "prog: message" and exits 1. */
_Noreturn void cli_fail(const tl_cli *c, const tl_err *e);
_Noreturn void cli_die(const tl_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "prog: message (see prog --help)"; exits 2. */
_Noreturn void cli_usage_error(const tl_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_log(const tl_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A tl_log_fn that prints through cli_log (user = tl_cli *). */
void cli_log_hook(void *user, const char *msg);

/* Progress on a terminal (or when forced with --progress): a bar with
 * rate and time left, redrawn at most a few times a second. */
void cli_progress_enable(tl_cli *c, int forced);
void cli_progress(void *user, int64_t done, int64_t total);
void cli_progress_end(tl_cli *c);

/* What standard input holds, for tools whose '-' may be feature vectors,
 * a predictions file or a list of images: the first line (or a binary
 * magic number) is read and put back, so the library then reads the whole
 * stream. */
enum { CLI_STDIN_LIST, CLI_STDIN_FEATURES, CLI_STDIN_PREDICTIONS, CLI_STDIN_EMPTY };
int cli_stdin_kind(const tl_cli *c);

/* "1 image", "2 images". */
const char *cli_plural(int64_t n, const char *one, const char *many);

/* MODEL (a file, or a name in $TL_MODEL_PATH) located into path and
 * opened as f, which the caller closes; 1 when it is a classifier head
 * trained on features (tl.arch "linear"), 0 for a network. Errors exit 1. */
struct tl_st_file;
int cli_open_model(const tl_cli *c, const char *model, char *path, size_t n, struct tl_st_file *f);

#endif
