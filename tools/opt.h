/* Declarative command-line options, in the manner of git's parse-options.
 *
 * Each tool declares its options once, in a table of cli_opt entries; the
 * table drives getopt_long, --help, the one-line usage errors, shell
 * completion (--complete-options, hidden) and the man-page check
 * (tests/bats/options.bats). Options that several tools share (-m/--model,
 * -o/--output, -j/--threads, ...) are declared once, in cli_common_options
 * (common.c), and pulled into a table by OPT_COMMON(id): same letter, same
 * type, same range, same meaning everywhere.
 *
 * Rules (tl(7), OPTIONS):
 * - long options are never abbreviated: --epoch is an error that suggests
 *   --epochs (a script that abbreviates breaks when an option is added);
 * - a short letter means the same long option in every tool;
 * - a value is checked against its type and range by the parser, which
 *   exits 2 with one line: "tl-x: --batch: '0' is not a whole number in
 *   1..4096 (see tl-x --help)"; rules that involve several options stay
 *   in the tool (cli_usage_error);
 * - the last occurrence of an option wins;
 * - --help and --version are added to every table.
 *
 * A table is an array ended by OPT_END(), usually local to main() so that
 * targets can point at local variables (as in git). The parser only writes
 * a target when its option is given, so a target's value before parsing is
 * its default. */
#ifndef TL_TOOLS_OPT_H
#define TL_TOOLS_OPT_H

#include <stddef.h>
#include <stdint.h>

typedef enum cli_type {
    CLI_END = 0,
    CLI_GROUP,    /* a heading in --help: help = the title */
    CLI_COMMON,   /* a shared option, by id (cli_common_id); may override target, help, argname, flags */
    CLI_FLAG,     /* int: set to 1 */
    CLI_INT,      /* int in [lo, hi] */
    CLI_U64,      /* uint64_t in [lo, hi] (seeds) */
    CLI_SIZE,     /* size_t in [lo, hi] (counts of bytes or pixels) */
    CLI_DOUBLE,   /* double in [lo, hi], finite */
    CLI_STRING,   /* const char *: any text */
    CLI_FILE,     /* const char *: a path ('-' for standard input or output where the tool says so) */
    CLI_DIR,      /* const char *: a folder */
    CLI_MODEL,    /* const char *: a checkpoint path, or a name looked up in $TL_MODEL_PATH */
    CLI_ENUM,     /* int: the value of one of choices (cli_choice, ended by {NULL}) */
    CLI_NUMS,     /* cli_nums: a comma-separated list of nmin..nmax numbers, each in [lo, hi] */
    CLI_WXH,      /* int[2]: WxH, or N for NxN; each in [lo, hi] */
    CLI_CALLBACK, /* cb(arg, target, why, why_size) checks and stores the value; returns 0 or -1 with why */
} cli_type;

enum {
    CLI_REQUIRED = 1, /* "no output given (-o FILE)" when absent */
    CLI_HIDDEN = 2,   /* accepted, but not in --help, completion or the man-page check */
};

typedef struct cli_choice {
    const char *name;
    int value; /* several names may share a value (aliases: jpg, jpeg); the first one is shown */
} cli_choice;

#define CLI_MAX_NUMS 64
typedef struct cli_nums {
    int n;
    double v[CLI_MAX_NUMS];
} cli_nums;

typedef int (*cli_callback)(const char *arg, void *target, char *why, size_t why_size);

typedef struct cli_opt {
    cli_type type;
    int short_name;         /* 0: none */
    const char *long_name;  /* without the dashes */
    void *target;
    const char *argname;    /* in usage: "N", "FILE"; NULL: from the type (enums list their choices) */
    const char *help;       /* one line; '\n' continues it on the next line, aligned */
    double lo, hi;          /* numeric range, inclusive */
    int nmin, nmax;         /* CLI_NUMS: how many numbers */
    const cli_choice *choices; /* CLI_ENUM */
    cli_callback cb;        /* CLI_CALLBACK */
    int common;             /* CLI_COMMON: the id */
    int flags;              /* CLI_REQUIRED, CLI_HIDDEN */
} cli_opt;

/* Entry constructors (designated initialisers underneath: an entry may
 * also be written out in full). s: the short letter or 0; l: the long
 * name; t: the target; a: the argument's name in usage (NULL: the type's);
 * h: the help line. */
#define OPT_END() {.type = CLI_END}
#define OPT_GROUP(title) {.type = CLI_GROUP, .help = (title)}
#define OPT_COMMON(id) {.type = CLI_COMMON, .common = (id)}
#define OPT_COMMON_HELP(id, h) {.type = CLI_COMMON, .common = (id), .help = (h)}
#define OPT_COMMON_REQUIRED(id, h) {.type = CLI_COMMON, .common = (id), .help = (h), .flags = CLI_REQUIRED}
#define OPT_FLAG(s, l, t, h) {.type = CLI_FLAG, .short_name = (s), .long_name = (l), .target = (t), .help = (h)}
#define OPT_INT(s, l, t, lo_, hi_, a, h) \
    {.type = CLI_INT, .short_name = (s), .long_name = (l), .target = (t), .lo = (lo_), .hi = (hi_), \
     .argname = (a), .help = (h)}
#define OPT_U64(s, l, t, lo_, hi_, a, h) \
    {.type = CLI_U64, .short_name = (s), .long_name = (l), .target = (t), .lo = (lo_), .hi = (hi_), \
     .argname = (a), .help = (h)}
#define OPT_SIZE(s, l, t, lo_, hi_, a, h) \
    {.type = CLI_SIZE, .short_name = (s), .long_name = (l), .target = (t), .lo = (lo_), .hi = (hi_), \
     .argname = (a), .help = (h)}
#define OPT_DOUBLE(s, l, t, lo_, hi_, a, h) \
    {.type = CLI_DOUBLE, .short_name = (s), .long_name = (l), .target = (t), .lo = (lo_), .hi = (hi_), \
     .argname = (a), .help = (h)}
#define OPT_STRING(s, l, t, a, h) \
    {.type = CLI_STRING, .short_name = (s), .long_name = (l), .target = (t), .argname = (a), .help = (h)}
#define OPT_FILE(s, l, t, a, h) \
    {.type = CLI_FILE, .short_name = (s), .long_name = (l), .target = (t), .argname = (a), .help = (h)}
#define OPT_DIR(s, l, t, a, h) \
    {.type = CLI_DIR, .short_name = (s), .long_name = (l), .target = (t), .argname = (a), .help = (h)}
#define OPT_MODEL(s, l, t, a, h) \
    {.type = CLI_MODEL, .short_name = (s), .long_name = (l), .target = (t), .argname = (a), .help = (h)}
#define OPT_ENUM(s, l, t, ch, h) \
    {.type = CLI_ENUM, .short_name = (s), .long_name = (l), .target = (t), .choices = (ch), .help = (h)}
#define OPT_NUMS(s, l, t, n0, n1, lo_, hi_, a, h) \
    {.type = CLI_NUMS, .short_name = (s), .long_name = (l), .target = (t), .nmin = (n0), .nmax = (n1), \
     .lo = (lo_), .hi = (hi_), .argname = (a), .help = (h)}
#define OPT_WXH(s, l, t, lo_, hi_, a, h) \
    {.type = CLI_WXH, .short_name = (s), .long_name = (l), .target = (t), .lo = (lo_), .hi = (hi_), \
     .argname = (a), .help = (h)}
#define OPT_CALLBACK(s, l, t, fn, a, h) \
    {.type = CLI_CALLBACK, .short_name = (s), .long_name = (l), .target = (t), .cb = (fn), .argname = (a), \
     .help = (h)}

/* What --help prints around the options. */
typedef struct cli_tool {
    const char *usage;    /* the synopsis lines after "Usage: tl-x ", '\n'-separated */
    const char *about;    /* what the tool does and what its arguments are (paragraphs) */
    const cli_opt *opts;  /* ended by OPT_END() */
    const char *example;  /* command lines, '\n'-separated */
    int min_args, max_args; /* positional arguments (max -1: any number) */
    const char *args_name;  /* "data", "input": for "no data given" */
} cli_tool;

#endif
