#include "common.h"
#include "json.h"
#include "io/checkpoint.h"
#include "io/features.h"
#include "io/predictions.h"

#include <errno.h>
#include <math.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The options every tool that takes them takes the same way: one letter,
 * one type, one range, one meaning. The help lines are the general ones; a
 * tool may say more about its use (OPT_COMMON_HELP). */
const cli_opt cli_common_options[CLI_NCOMMON] = {
    [CLI_O_MODEL] = {.type = CLI_MODEL, .short_name = 'm', .long_name = "model", .argname = "MODEL",
                     .help = "checkpoint file or name in $TL_MODEL_PATH"},
    [CLI_O_OUTPUT] = {.type = CLI_FILE, .short_name = 'o', .long_name = "output", .argname = "FILE",
                      .help = "write here ('-': standard output)"},
    [CLI_O_THREADS] = {.type = CLI_INT, .short_name = 'j', .long_name = "threads", .lo = 0, .hi = 1024,
                       .help = "threads (default and 0: all cores)"},
    [CLI_O_BATCH] = {.type = CLI_INT, .short_name = 'b', .long_name = "batch", .lo = 1, .hi = 4096,
                     .help = "images per step (default 32)"},
    [CLI_O_SEED] = {.type = CLI_U64, .short_name = 's', .long_name = "seed", .lo = 0, .hi = 9.2e18,
                    .help = "seed of every random choice; same seed, same result"},
    [CLI_O_LOG] = {.type = CLI_FILE, .long_name = "log", .argname = "FILE",
                   .help = "JSON lines about the run, for tl-compare"},
    [CLI_O_MAX_PIXELS] = {.type = CLI_SIZE, .long_name = "max-pixels", .lo = 1, .hi = 1099511627776.0,
                          .help = "refuse images larger than N pixels (default 100000000)"},
    [CLI_O_SKIP_BAD] = {.type = CLI_FLAG, .long_name = "skip-bad", .help = "warn about and skip unreadable images"},
    [CLI_O_PROGRESS] = {.type = CLI_FLAG, .long_name = "progress",
                        .help = "progress bar even when stderr is not a terminal"},
    [CLI_O_QUIET] = {.type = CLI_FLAG, .short_name = 'q', .long_name = "quiet", .help = "no log messages"},
    [CLI_O_EXACT] = {.type = CLI_FLAG, .long_name = "exact",
                     .help = "direct convolutions only, no Winograd (slower, a little\nmore exact; see the man page)"},
    [CLI_O_HELP] = {.type = CLI_FLAG, .short_name = 'h', .long_name = "help",
                    .help = "print this help and exit"},
    [CLI_O_VERSION] = {.type = CLI_FLAG, .long_name = "version", .help = "print the version and the SIMD path, and exit"},
};

void cli_init(tl_cli *c, const char *prog)
{
    memset(c, 0, sizeof *c);
    c->prog = prog;
    c->threads = tl_cpu_count();
    c->batch = 32;
}

_Noreturn void cli_fail(const tl_cli *c, const tl_err *e)
{
    fflush(stdout);
    if (e->kind == TL_ERR_ARG) /* an argument that does not fit: the command line is wrong */
        cli_usage_error(c, "%s", e->msg);
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

static volatile sig_atomic_t *g_flag; /* a tool's one flag; tools may hold state, the library may not */

static void on_signal(int sig)
{
    if (g_flag)
        *g_flag = sig;
}

void cli_catch_signals(volatile sig_atomic_t *flag)
{
    g_flag = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* Restart interrupted reads and writes: the tool notices the flag at its
     * next safe point; a write cut by EINTR would fail an output. */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void mask_signals(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(how, &set, NULL);
}

void cli_hold_signals(void) { mask_signals(SIG_BLOCK); }

void cli_release_signals(void) { mask_signals(SIG_UNBLOCK); }

_Noreturn void cli_interrupted(const tl_cli *c, int sig, const char *what)
{
    fflush(stdout);
    fprintf(stderr, "%s: interrupted (%s)%s%s\n", c->prog, sig == SIGTERM ? "SIGTERM" : "SIGINT", what ? "; " : "",
            what ? what : "");
    exit(128 + sig);
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

/* Standard input with its first bytes read ahead: they are served again
 * before the rest (a FILE of glibc's fopencookie replaces stdin, which
 * glibc lets a program assign). */
typedef struct peeked {
    char buf[4096];
    size_t n, pos;
    FILE *rest;
} peeked;

static ssize_t peeked_read(void *cookie, char *out, size_t size)
{
    peeked *p = cookie;
    if (p->pos < p->n) {
        size_t k = p->n - p->pos < size ? p->n - p->pos : size;
        memcpy(out, p->buf + p->pos, k);
        p->pos += k;
        return (ssize_t)k;
    }
    size_t got = fread(out, 1, size, p->rest);
    return got == 0 && ferror(p->rest) ? -1 : (ssize_t)got;
}

/* Read far enough to tell the kinds apart: a text line, a binary magic,
 * or for a NumPy archive its first entry's name (the zip header before it
 * may hold a newline byte anywhere). */
static int peeked_enough(const peeked *p)
{
    const char *b = p->buf;
    size_t n = p->n;
    if (n >= 4 && !memcmp(b, "PK\3\4", 4))
        return n >= 30 && n >= 30 + ((size_t)(unsigned char)b[26] | (size_t)(unsigned char)b[27] << 8);
    return b[n - 1] == '\n' || (n == 4 && !memcmp(b, "TLF1", 4)) || (n == 6 && !memcmp(b, "\x93NUMPY", 6));
}

int cli_stdin_kind(const tl_cli *c)
{
    static peeked p; /* lives as long as stdin */
    if (p.rest)
        return CLI_STDIN_LIST; /* asked twice: the first answer was acted on */
    int ch;
    while (p.n < sizeof p.buf - 1 && (ch = getc(stdin)) != EOF) {
        p.buf[p.n++] = (char)ch;
        if (peeked_enough(&p))
            break;
    }
    /* a read error is not an empty input */
    if (ferror(stdin))
        cli_die(c, "standard input: %s", strerror(errno));
    p.buf[p.n] = '\0';
    p.rest = stdin;
    cookie_io_functions_t io = {.read = peeked_read};
    FILE *f = fopencookie(&p, "r", io);
    if (!f)
        cli_die(c, "standard input: out of memory");
    stdin = f;
    if (p.n == 0)
        return CLI_STDIN_EMPTY;
    if (tl_feat_sniff_head(p.buf, p.n))
        return CLI_STDIN_FEATURES;
    if (tl_pred_is_header(p.buf))
        return CLI_STDIN_PREDICTIONS;
    return CLI_STDIN_LIST;
}

const char *cli_plural(int64_t n, const char *one, const char *many) { return n == 1 ? one : many; }

int cli_open_model(const tl_cli *c, const char *model, char *path, size_t n, struct tl_st_file *f)
{
    tl_err e = {0};
    if (tl_model_locate(model, path, n, &e) || tl_st_open(path, f, &e))
        cli_fail(c, &e);
    const char *arch = tl_st_meta(f, "tl.arch");
    return arch && !strcmp(arch, "linear");
}
