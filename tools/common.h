/* What every tl-* program shares: messages in the `prog: what` form, exit
 * codes (0 ok, 1 failure, 2 usage), number parsing for options, logging
 * and the progress bar. The library never prints; the tools do. */
#ifndef TL_TOOLS_COMMON_H
#define TL_TOOLS_COMMON_H

#include "core.h"
#include <stdio.h>

#define TL_VERSION "0.1.0"

typedef struct tl_cli {
    const char *prog;
    int quiet;
    int progress;      /* 1: draw a progress bar on stderr */
    int tty;           /* stderr is a terminal: the bar may redraw its line */
    double progress_t0;
    double progress_last;
} tl_cli;

void cli_init(tl_cli *c, const char *prog);
/* Prints "prog: message" and exits 1. */
_Noreturn void cli_fail(const tl_cli *c, const tl_err *e);
_Noreturn void cli_die(const tl_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "prog: message" and a hint to --help; exits 2. */
_Noreturn void cli_usage_error(const tl_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For getopt_long's '?' and ':' (optstrings start with ':'): names the
 * offending argument; exits 2. */
_Noreturn void cli_bad_option(const tl_cli *c, char *const *argv, int ch);
void cli_log(const tl_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A tl_log_fn that prints through cli_log (user = tl_cli *). */
void cli_log_hook(void *user, const char *msg);
_Noreturn void cli_version(const tl_cli *c);

long cli_long(const tl_cli *c, const char *opt, const char *arg, long lo, long hi);
double cli_double(const tl_cli *c, const char *opt, const char *arg, double lo, double hi);

/* Progress on a terminal (or when forced with --progress): a bar with
 * rate and time left, redrawn at most a few times a second. */
void cli_progress_enable(tl_cli *c, int forced);
void cli_progress(void *user, int64_t done, int64_t total);
void cli_progress_end(tl_cli *c);

/* Members of a JSON object being printed on one line: `,"key":value`.
 * JSON has no NaN or infinity: those print as null. */
void cli_json_num(FILE *f, const char *key, double v);
void cli_json_str(FILE *f, const char *key, const char *v);

/* --max-pixels N: the decode limit every image-reading tool takes. */
size_t cli_max_pixels(const tl_cli *c, const char *arg);

/* -j N: 0 means all cores. */
int cli_threads(const tl_cli *c, const char *arg);

#endif
