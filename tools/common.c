#include "common.h"
#include "json.h"

#include <math.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <unistd.h>

void cli_init(tl_cli *c, const char *prog)
{
    memset(c, 0, sizeof *c);
    c->prog = prog;
    opterr = 0; /* getopt's own message would come before ours: one line only */
}

_Noreturn void cli_fail(const tl_cli *c, const tl_err *e)
{
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", c->prog, e->msg);
    exit(1);
}

_Noreturn void cli_die(const tl_cli *c, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", c->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

_Noreturn void cli_usage_error(const tl_cli *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", c->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s --help)\n", c->prog);
    exit(2);
}

_Noreturn void cli_bad_option(const tl_cli *c, char *const *argv, int ch)
{
    const char *arg = argv[optind - 1];
    if (ch == ':')
        cli_usage_error(c, "option '%s' needs a value", arg);
    if (optopt && !(arg[0] == '-' && arg[1] == '-'))
        cli_usage_error(c, "unknown option '-%c'", optopt);
    cli_usage_error(c, "unknown option '%s'", arg);
}

void cli_log(const tl_cli *c, const char *fmt, ...)
{
    if (c->quiet)
        return;
    va_list ap;
    fprintf(stderr, "%s: ", c->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_log_hook(void *user, const char *msg)
{
    const tl_cli *c = user;
    if (c->progress && c->tty)
        fputs("\r\033[K", stderr); /* keep the message off the bar's line */
    cli_log(c, "%s", msg);
}

_Noreturn void cli_version(const tl_cli *c)
{
    printf("%s (tl) %s\n", c->prog, TL_VERSION);
    exit(0);
}

long cli_long(const tl_cli *c, const char *opt, const char *arg, long lo, long hi)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v < lo || v > hi)
        cli_usage_error(c, "%s: '%s' is not a whole number in %ld..%ld", opt, arg, lo, hi);
    return v;
}

double cli_double(const tl_cli *c, const char *opt, const char *arg, double lo, double hi)
{
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v >= lo && v <= hi))
        cli_usage_error(c, "%s: '%s' is not a number in %g..%g", opt, arg, lo, hi);
    return v;
}

int cli_threads(const tl_cli *c, const char *arg)
{
    long j = cli_long(c, "-j", arg, 0, 1024);
    return j == 0 ? tl_cpu_count() : (int)j;
}

void cli_progress_enable(tl_cli *c, int forced)
{
    c->tty = isatty(STDERR_FILENO);
    c->progress = !c->quiet && (forced || c->tty);
    c->progress_t0 = tl_now();
    c->progress_last = 0;
}

void cli_progress(void *user, int64_t done, int64_t total)
{
    tl_cli *c = user;
    if (!c->progress)
        return;
    double now = tl_now();
    if (done < total && now - c->progress_last < (c->tty ? 0.2 : 5.0))
        return;
    c->progress_last = now;
    double el = now - c->progress_t0, rate = el > 0 ? done / el : 0;
    int width = 30, fill = total > 0 ? (int)(width * done / total) : 0;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double left = rate > 0 ? (total - done) / rate : 0;
    if (c->tty)
        fputc('\r', stderr);
    fprintf(stderr, "%s [%s] %lld/%lld  %.1f img/s  %s%.0fs", c->prog, bar, (long long)done, (long long)total,
            rate, done < total ? "eta " : "", done < total ? left : el);
    if (!c->tty)
        fputc('\n', stderr);
    fflush(stderr);
}

void cli_progress_end(tl_cli *c)
{
    if (c->progress && c->tty)
        fputc('\n', stderr);
    c->progress = 0;
}

void cli_json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.6g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

void cli_json_str(FILE *f, const char *key, const char *v)
{
    tl_strbuf b = {0};
    if (tl_strbuf_json_string(&b, v ? v : "") || !b.s) {
        fprintf(f, ",\"%s\":\"\"", key);
    } else {
        fprintf(f, ",\"%s\":%s", key, b.s);
    }
    tl_strbuf_free(&b);
}

size_t cli_max_pixels(const tl_cli *c, const char *arg)
{
    return (size_t)cli_long(c, "--max-pixels", arg, 1, 1L << 40);
}
