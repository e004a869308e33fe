/* The option parser of opt.h: tables in, getopt_long underneath, checked
 * values, --help and completion out. */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELP_COLUMN 24

/* A table that breaks the rules of opt.h is a bug in the tool, found by
 * the first test that runs it. */
static _Noreturn void table_bug(const tl_cli *c, const char *what, const char *name)
{
    fprintf(stderr, "%s: option table: %s '%s'\n", c->prog, what, name ? name : "");
    exit(70);
}

static int takes_value(const cli_opt *o) { return o->type != CLI_FLAG && o->type != CLI_GROUP; }

static int is_option(const cli_opt *o) { return o->type != CLI_GROUP && o->type != CLI_END; }

static void *common_target(tl_cli *c, int id)
{
    switch (id) {
    case CLI_O_MODEL: return &c->model;
    case CLI_O_OUTPUT: return &c->output;
    case CLI_O_THREADS: return &c->threads;
    case CLI_O_BATCH: return &c->batch;
    case CLI_O_SEED: return &c->seed;
    case CLI_O_LOG: return &c->log;
    case CLI_O_MAX_PIXELS: return &c->max_pixels;
    case CLI_O_SKIP_BAD: return &c->skip_bad;
    case CLI_O_PROGRESS: return &c->force_progress;
    case CLI_O_QUIET: return &c->quiet;
    case CLI_O_EXACT: return &c->exact;
    default: return NULL; /* --help, --version: actions */
    }
}

static void add(tl_cli *c, const cli_opt *o)
{
    if (c->nopts >= CLI_MAX_OPTS)
        table_bug(c, "more than CLI_MAX_OPTS entries at", o->long_name);
    for (int i = 0; is_option(o) && i < c->nopts; i++) {
        const cli_opt *p = &c->opts[i];
        if (!is_option(p))
            continue;
        if (!strcmp(p->long_name, o->long_name))
            table_bug(c, "two entries for", o->long_name);
        if (o->short_name && p->short_name == o->short_name)
            table_bug(c, "one short letter for two options, the second", o->long_name);
    }
    c->opts[c->nopts++] = *o;
}

/* Copies the tool's table, resolving OPT_COMMON references and adding
 * --help and --version. */
static void resolve(tl_cli *c, const cli_opt *table)
{
    c->nopts = 0;
    int help = 0, version = 0;
    for (const cli_opt *o = table; o->type != CLI_END; o++) {
        if (o->type != CLI_COMMON) {
            if (is_option(o) && (!o->long_name || !*o->long_name))
                table_bug(c, "an option without a long name, help", o->help);
            cli_opt r = *o;
            r.common = -1;
            add(c, &r);
            continue;
        }
        if (o->common < 0 || o->common >= CLI_NCOMMON)
            table_bug(c, "no common option with the id of", o->help);
        cli_opt r = cli_common_options[o->common];
        r.target = o->target ? o->target : common_target(c, o->common);
        if (o->help)
            r.help = o->help;
        if (o->argname)
            r.argname = o->argname;
        r.flags |= o->flags;
        r.common = o->common;
        help |= o->common == CLI_O_HELP;
        version |= o->common == CLI_O_VERSION;
        add(c, &r);
    }
    cli_opt r;
    if (!help) {
        r = cli_common_options[CLI_O_HELP];
        r.common = CLI_O_HELP;
        add(c, &r);
    }
    if (!version) {
        r = cli_common_options[CLI_O_VERSION];
        r.common = CLI_O_VERSION;
        add(c, &r);
    }
}

/* ---------------------------------------------------------------- values */

static const char *type_argname(const cli_opt *o, char *buf, size_t n)
{
    if (o->argname)
        return o->argname;
    switch (o->type) {
    case CLI_INT: case CLI_U64: case CLI_SIZE: return "N";
    case CLI_DOUBLE: return "X";
    case CLI_FILE: return "FILE";
    case CLI_DIR: return "DIR";
    case CLI_MODEL: return "MODEL";
    case CLI_NUMS: return "X,Y,..";
    case CLI_WXH: return "WxH";
    case CLI_ENUM: {
        size_t used = 0;
        buf[0] = '\0';
        for (const cli_choice *ch = o->choices; ch && ch->name; ch++) {
            int dup = 0; /* an alias shares the value of an earlier name */
            for (const cli_choice *p = o->choices; p < ch; p++)
                dup |= p->value == ch->value;
            if (!dup && used + strlen(ch->name) + 2 < n)
                used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "|" : "", ch->name);
        }
        return buf;
    }
    default: return "VALUE";
    }
}

/* "a, b or c" from the choices (aliases left out). */
static void choice_list(const cli_opt *o, char *buf, size_t n)
{
    int k = 0, total = 0;
    for (const cli_choice *ch = o->choices; ch && ch->name; ch++) {
        int dup = 0;
        for (const cli_choice *p = o->choices; p < ch; p++)
            dup |= p->value == ch->value;
        total += !dup;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (const cli_choice *ch = o->choices; ch && ch->name && used < n; ch++) {
        int dup = 0;
        for (const cli_choice *p = o->choices; p < ch; p++)
            dup |= p->value == ch->value;
        if (dup)
            continue;
        k++;
        used += (size_t)snprintf(buf + used, n - used, "%s%s", k == 1 ? "" : k == total ? " or " : ", ", ch->name);
    }
}

static int parse_long(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return end != s && !*end && !errno;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v) && errno != ERANGE;
}

/* Stores arg into o's target; on a bad value writes why and returns -1. */
static int set_value(const cli_opt *o, const char *arg, char *why, size_t n)
{
    const char *name = o->long_name;
    long long v;
    double d;
    switch (o->type) {
    case CLI_FLAG:
        if (o->target)
            *(int *)o->target = 1;
        return 0;
    case CLI_INT:
    case CLI_U64:
    case CLI_SIZE:
        if (!parse_long(arg, &v) || (double)v < o->lo || (double)v > o->hi) {
            snprintf(why, n, "--%s: '%s' is not a whole number in %.0f..%.0f", name, arg, o->lo, o->hi);
            return -1;
        }
        if (o->type == CLI_INT)
            *(int *)o->target = (int)v;
        else if (o->type == CLI_U64)
            *(uint64_t *)o->target = (uint64_t)v;
        else
            *(size_t *)o->target = (size_t)v;
        return 0;
    case CLI_DOUBLE:
        if (!parse_double(arg, &d) || d < o->lo || d > o->hi) {
            snprintf(why, n, "--%s: '%s' is not a number in %g..%g", name, arg, o->lo, o->hi);
            return -1;
        }
        *(double *)o->target = d;
        return 0;
    case CLI_STRING:
        *(const char **)o->target = arg;
        return 0;
    case CLI_FILE:
    case CLI_DIR:
    case CLI_MODEL:
        if (!*arg) {
            snprintf(why, n, "--%s: an empty name", name);
            return -1;
        }
        *(const char **)o->target = arg;
        return 0;
    case CLI_ENUM:
        for (const cli_choice *ch = o->choices; ch && ch->name; ch++)
            if (!strcmp(ch->name, arg)) {
                *(int *)o->target = ch->value;
                return 0;
            }
        {
            char list[256];
            choice_list(o, list, sizeof list);
            snprintf(why, n, "--%s: '%s' is not %s", name, arg, list);
        }
        return -1;
    case CLI_NUMS: {
        cli_nums *out = o->target;
        cli_nums got = {0};
        const char *p = arg;
        for (;;) {
            char item[64];
            size_t len = strcspn(p, ",");
            int ok = len > 0 && len < sizeof item && got.n < CLI_MAX_NUMS;
            if (ok) {
                memcpy(item, p, len);
                item[len] = '\0';
                ok = parse_double(item, &d) && d >= o->lo && d <= o->hi;
            }
            if (!ok)
                break;
            got.v[got.n++] = d;
            p += len;
            if (!*p) {
                if (got.n < o->nmin || got.n > o->nmax)
                    break;
                *out = got;
                return 0;
            }
            p++; /* the comma */
        }
        if (o->nmin == o->nmax)
            snprintf(why, n, "--%s: '%s' is not %d comma-separated numbers in %g..%g", name, arg, o->nmin, o->lo,
                     o->hi);
        else
            snprintf(why, n, "--%s: '%s' is not a list of %d to %d comma-separated numbers in %g..%g", name, arg,
                     o->nmin, o->nmax, o->lo, o->hi);
        return -1;
    }
    case CLI_WXH: {
        int *wh = o->target;
        long long w, h;
        char buf[64];
        const char *x = strchr(arg, 'x');
        int ok;
        if (!x) {
            ok = parse_long(arg, &w);
            h = w;
        } else {
            size_t len = (size_t)(x - arg);
            ok = len < sizeof buf;
            if (ok) {
                memcpy(buf, arg, len);
                buf[len] = '\0';
                ok = parse_long(buf, &w) && parse_long(x + 1, &h);
            }
        }
        if (!ok || (double)w < o->lo || (double)w > o->hi || (double)h < o->lo || (double)h > o->hi) {
            snprintf(why, n, "--%s: '%s' is not WxH or N, whole numbers in %.0f..%.0f", name, arg, o->lo, o->hi);
            return -1;
        }
        wh[0] = (int)w;
        wh[1] = (int)h;
        return 0;
    }
    case CLI_CALLBACK: {
        char msg[400] = "";
        if (o->cb(arg, o->target, msg, sizeof msg) == 0)
            return 0;
        snprintf(why, n, "--%s: %s", name, *msg ? msg : "bad value");
        return -1;
    }
    default:
        snprintf(why, n, "--%s: unsupported option type", name);
        return -1;
    }
}

/* ---------------------------------------------------------------- help */

static void option_spec(const cli_opt *o, char *buf, size_t n)
{
    char tmp[256];
    const char *arg = takes_value(o) ? type_argname(o, tmp, sizeof tmp) : NULL;
    if (o->short_name)
        snprintf(buf, n, "-%c, --%s%s%s", o->short_name, o->long_name, arg ? " " : "", arg ? arg : "");
    else
        snprintf(buf, n, "    --%s%s%s", o->long_name, arg ? " " : "", arg ? arg : "");
}

static void print_help_text(const char *h, int indent)
{
    for (const char *p = h; *p; p++) {
        putchar(*p);
        if (*p == '\n')
            printf("%*s", indent, "");
    }
    putchar('\n');
}

static _Noreturn void print_help(const tl_cli *c)
{
    const cli_tool *t = c->tool;
    const char *u = t->usage;
    for (int line = 0; u && *u; line++) {
        size_t len = strcspn(u, "\n");
        printf("%s %s %.*s\n", line ? "      " : "Usage:", c->prog, (int)len, u);
        u += len + (u[len] == '\n');
    }
    if (t->about && *t->about)
        printf("%s%s", t->about, t->about[strlen(t->about) - 1] == '\n' ? "" : "\n");
    int heading = 0;
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (o->type == CLI_GROUP) {
            printf("\n%s:\n", o->help);
            heading = 1;
            continue;
        }
        if (o->flags & CLI_HIDDEN)
            continue;
        if (!heading) {
            printf("\nOptions:\n");
            heading = 1;
        }
        char spec[300];
        option_spec(o, spec, sizeof spec);
        int w = printf("  %s", spec);
        if (w >= HELP_COLUMN - 1)
            printf("\n%*s", HELP_COLUMN, "");
        else
            printf("%*s", HELP_COLUMN - w, "");
        print_help_text(o->help ? o->help : "", HELP_COLUMN);
    }
    if (t->example && *t->example) {
        const char *ex = t->example;
        printf("\n%s\n", strchr(ex, '\n') && strchr(ex, '\n')[1] ? "Examples:" : "Example:");
        while (*ex) {
            size_t len = strcspn(ex, "\n");
            printf("  %.*s\n", (int)len, ex);
            ex += len + (ex[len] == '\n');
        }
    }
    if (fflush(stdout) != 0)
        exit(1);
    exit(0);
}

/* ---------------------------------------------------------------- completion */

static const char *kind_name(const cli_opt *o)
{
    switch (o->type) {
    case CLI_FLAG: return "flag";
    case CLI_INT: case CLI_U64: case CLI_SIZE: return "int";
    case CLI_DOUBLE: return "number";
    case CLI_FILE: return "file";
    case CLI_DIR: return "dir";
    case CLI_MODEL: return "model";
    case CLI_ENUM: return "enum";
    case CLI_NUMS: return "list";
    case CLI_WXH: return "wxh";
    default: return "string";
    }
}

static void print_choices(const cli_opt *o, const char *sep)
{
    int k = 0;
    for (const cli_choice *ch = o->choices; o->type == CLI_ENUM && ch && ch->name; ch++)
        printf("%s%s", k++ ? sep : "", ch->name);
}

/* Shell-safe: help text inside single quotes, zsh's [ ] : escaped. */
static void print_zsh_help(const char *h)
{
    for (const char *p = h ? h : ""; *p && *p != '\n'; p++) {
        if (*p == '\'')
            fputs("'\\''", stdout);
        else if (*p == '[' || *p == ']' || *p == ':' || *p == '\\')
            printf("\\%c", *p);
        else
            putchar(*p);
    }
}

static void func_name(const tl_cli *c, char *buf, size_t n)
{
    snprintf(buf, n, "_%s", c->prog);
    for (char *p = buf; *p; p++)
        if (*p == '-')
            *p = '_';
}

static void complete_list(const tl_cli *c)
{
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (!is_option(o) || (o->flags & CLI_HIDDEN))
            continue;
        if (o->short_name)
            printf("-%c", o->short_name);
        else
            putchar('-');
        printf("\t--%s\t%s\t", o->long_name, kind_name(o));
        print_choices(o, " ");
        putchar('\n');
    }
}

static void complete_bash(const tl_cli *c)
{
    char fn[64];
    func_name(c, fn, sizeof fn);
    /* Model names: files, and the checkpoints in $TL_MODEL_PATH by name. */
    printf("_tl_models() {\n"
           "    local IFS=: d f names=()\n"
           "    for d in $TL_MODEL_PATH; do\n"
           "        for f in \"$d\"/*.safetensors; do [[ -e $f ]] && f=${f##*/} && names+=(\"${f%%.safetensors}\"); done\n"
           "    done\n"
           "    IFS=$' \\t\\n'\n"
           "    COMPREPLY=($(compgen -f -- \"$1\") $(compgen -W \"${names[*]}\" -- \"$1\"))\n"
           "}\n");
    printf("%s() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    # --opt=value: COMP_WORDBREAKS splits it at '='\n"
           "    if [[ $cur == = ]]; then cur=; elif [[ $prev == = ]]; then prev=${COMP_WORDS[COMP_CWORD-2]}; fi\n"
           "    case $prev in\n",
           fn);
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (!is_option(o) || !takes_value(o) || (o->flags & CLI_HIDDEN))
            continue;
        printf("    ");
        if (o->short_name)
            printf("-%c|", o->short_name);
        printf("--%s) ", o->long_name);
        switch (o->type) {
        case CLI_MODEL: printf("_tl_models \"$cur\""); break;
        case CLI_FILE: printf("COMPREPLY=($(compgen -f -- \"$cur\"))"); break;
        case CLI_DIR: printf("COMPREPLY=($(compgen -d -- \"$cur\"))"); break;
        case CLI_ENUM:
            printf("COMPREPLY=($(compgen -W '");
            print_choices(o, " ");
            printf("' -- \"$cur\"))");
            break;
        default: printf("COMPREPLY=()"); break;
        }
        printf("; return ;;\n");
    }
    printf("    esac\n"
           "    if [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W '");
    int k = 0;
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (is_option(o) && !(o->flags & CLI_HIDDEN))
            printf("%s--%s", k++ ? " " : "", o->long_name);
    }
    printf("' -- \"$cur\"))\n"
           "        return\n"
           "    fi\n"
           "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "}\n"
           "complete -o filenames -F %s %s\n",
           fn, c->prog);
}

static void zsh_spec(const cli_opt *o, const char *name, const char *suffix)
{
    printf("        '");
    if (o->short_name)
        printf("(-%c --%s)", o->short_name, o->long_name);
    printf("%s%s[", name, takes_value(o) ? suffix : "");
    print_zsh_help(o->help);
    putchar(']');
    if (takes_value(o)) {
        char tmp[256];
        printf(":");
        print_zsh_help(type_argname(o, tmp, sizeof tmp));
        switch (o->type) {
        case CLI_MODEL: printf(":_tl_models"); break;
        case CLI_FILE: printf(":_files"); break;
        case CLI_DIR: printf(":_files -/"); break;
        case CLI_ENUM:
            printf(":(");
            print_choices(o, " ");
            printf(")");
            break;
        default: printf(": "); break;
        }
    }
    printf("' \\\n");
}

static void complete_zsh(const tl_cli *c)
{
    char fn[64];
    func_name(c, fn, sizeof fn);
    printf("%s() {\n    _arguments -s -S \\\n", fn);
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (!is_option(o) || (o->flags & CLI_HIDDEN))
            continue;
        char name[80];
        if (o->short_name) {
            snprintf(name, sizeof name, "-%c", o->short_name);
            zsh_spec(o, name, "+"); /* -jN or -j N */
        }
        snprintf(name, sizeof name, "--%s", o->long_name);
        zsh_spec(o, name, "="); /* --threads=N or --threads N */
    }
    printf("        '*:argument:_files'\n}\n");
}

/* --complete-options[=list|bash|zsh]: the table for shells and tests. */
static void maybe_complete(const tl_cli *c, int argc, char **argv)
{
    if (argc < 2 || strncmp(argv[1], "--complete-options", 18) || (argv[1][18] && argv[1][18] != '='))
        return;
    const char *mode = argv[1][18] ? argv[1] + 19 : "list";
    if (!strcmp(mode, "list"))
        complete_list(c);
    else if (!strcmp(mode, "bash"))
        complete_bash(c);
    else if (!strcmp(mode, "zsh"))
        complete_zsh(c);
    else {
        fprintf(stderr, "%s: --complete-options: '%s' is not list, bash or zsh\n", c->prog, mode);
        exit(2);
    }
    exit(fflush(stdout) == 0 ? 0 : 1);
}

/* ---------------------------------------------------------------- errors */

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* An unknown --name: was it a shortened, misspelt or shared option? */
static _Noreturn void unknown_long(const tl_cli *c, const char *arg)
{
    char name[64];
    size_t len = strcspn(arg + 2, "=");
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), arg + 2);
    char shown[80];
    snprintf(shown, sizeof shown, "--%s", name);
    for (int id = 0; id < CLI_NCOMMON; id++)
        if (!strcmp(cli_common_options[id].long_name, name))
            cli_usage_error(c, "'%s' is not an option of %s", shown, c->prog);
    char sugg[200] = "";
    size_t used = 0;
    int found = 0, prefix = 0;
    for (int pass = 0; pass < 2 && !found; pass++)
        for (int i = 0; i < c->nopts; i++) {
            const cli_opt *o = &c->opts[i];
            if (!is_option(o) || (o->flags & CLI_HIDDEN))
                continue;
            int hit = pass == 0 ? *name && !strncmp(o->long_name, name, strlen(name))
                                : strlen(name) >= 3 && edit_distance(name, o->long_name) <= 2;
            if (hit && found < 3 && used < sizeof sugg) {
                used += (size_t)snprintf(sugg + used, sizeof sugg - used, "%s--%s", found ? ", " : "", o->long_name);
                found++;
                prefix |= pass == 0;
            }
        }
    if (found)
        cli_usage_error(c, "unknown option '%s'; did you mean %s?%s", shown, sugg,
                        prefix ? " (long options are never abbreviated)" : "");
    cli_usage_error(c, "unknown option '%s'", shown);
}

static _Noreturn void unknown_short(const tl_cli *c, int ch)
{
    for (int id = 0; id < CLI_NCOMMON; id++)
        if (cli_common_options[id].short_name == ch)
            cli_usage_error(c, "'-%c' (--%s in the tl tools) is not an option of %s", ch,
                            cli_common_options[id].long_name, c->prog);
    if (ch > 32 && ch < 127)
        cli_usage_error(c, "unknown option '-%c'", ch);
    cli_usage_error(c, "unknown option");
}

/* ---------------------------------------------------------------- parse */

int cli_given(const tl_cli *c, const char *long_name)
{
    for (int i = 0; i < c->nopts; i++)
        if (is_option(&c->opts[i]) && !strcmp(c->opts[i].long_name, long_name))
            return c->given[i] > 0;
    return 0;
}

const char *cli_given_in_group(const tl_cli *c, const char *title)
{
    int in = 0;
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (o->type == CLI_GROUP)
            in = o->help && !strcmp(o->help, title);
        else if (in && c->given[i])
            return o->long_name;
    }
    return NULL;
}

int cli_parse(tl_cli *c, const cli_tool *tool, int argc, char **argv)
{
    c->tool = tool;
    resolve(c, tool->opts);
    maybe_complete(c, argc, argv);

    struct option longopts[CLI_MAX_OPTS + 1];
    char optstring[3 * CLI_MAX_OPTS + 2];
    size_t ol = 0;
    int nl = 0;
    optstring[ol++] = ':'; /* a missing value returns ':', so the message is ours */
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (!is_option(o))
            continue;
        longopts[nl++] = (struct option){o->long_name, takes_value(o) ? required_argument : no_argument, NULL,
                                         256 + i};
        if (o->short_name) {
            optstring[ol++] = (char)o->short_name;
            if (takes_value(o))
                optstring[ol++] = ':';
        }
    }
    longopts[nl] = (struct option){0, 0, 0, 0};
    optstring[ol] = '\0';

    opterr = 0;
    optind = 0; /* a full re-initialisation of GNU getopt */
    memset(c->given, 0, sizeof c->given);
    for (;;) {
        int li = -1;
        int ch = getopt_long(argc, argv, optstring, longopts, &li);
        if (ch == -1)
            break;
        if (ch == '?') {
            const char *arg = argv[optind - 1];
            if (!optopt && arg && arg[0] == '-' && arg[1] == '-')
                unknown_long(c, arg);
            unknown_short(c, optopt);
        }
        if (ch == ':') {
            const char *arg = argv[optind - 1];
            if (optopt && !(arg[0] == '-' && arg[1] == '-'))
                cli_usage_error(c, "option '-%c' needs a value", optopt);
            cli_usage_error(c, "option '%s' needs a value", arg);
        }
        int idx = -1;
        if (ch >= 256)
            idx = ch - 256;
        else
            for (int i = 0; i < c->nopts && idx < 0; i++)
                if (is_option(&c->opts[i]) && c->opts[i].short_name == ch)
                    idx = i;
        if (idx < 0 || idx >= c->nopts)
            cli_usage_error(c, "unknown option '-%c'", ch);
        const cli_opt *o = &c->opts[idx];
        if (li >= 0) {
            /* getopt_long takes any unique prefix; we take whole names only. */
            const char *el = optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
            if (strncmp(el, "--", 2) || strcspn(el + 2, "=") != strlen(o->long_name))
                unknown_long(c, el);
        }
        if (c->given[idx] < 255)
            c->given[idx]++;
        if (o->common == CLI_O_HELP && !o->target)
            print_help(c);
        if (o->common == CLI_O_VERSION && !o->target) {
            /* the SIMD path tells a bug report which kernels ran */
            printf("%s (tl) %s\nSIMD path: %s\n", c->prog, tl_version(), tl_simd_path());
            exit(fflush(stdout) == 0 ? 0 : 1);
        }
        char why[512];
        if (set_value(o, optarg, why, sizeof why))
            cli_usage_error(c, "%s", why);
    }
    /* -j 0 means all cores. */
    for (int i = 0; i < c->nopts; i++)
        if (c->given[i] && c->opts[i].common == CLI_O_THREADS && c->opts[i].type == CLI_INT &&
            *(int *)c->opts[i].target == 0)
            *(int *)c->opts[i].target = tl_cpu_count();
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        if (is_option(o) && (o->flags & CLI_REQUIRED) && !c->given[i]) {
            char tmp[256];
            if (o->short_name)
                cli_usage_error(c, "no %s given (-%c %s)", o->long_name, o->short_name,
                                type_argname(o, tmp, sizeof tmp));
            cli_usage_error(c, "no %s given (--%s %s)", o->long_name, o->long_name, type_argname(o, tmp, sizeof tmp));
        }
    }
    int nargs = argc - optind;
    const char *what = tool->args_name ? tool->args_name : "argument";
    if (nargs < tool->min_args) {
        if (tool->max_args == 1)
            cli_usage_error(c, "no %s given", what);
        cli_usage_error(c, "no %s given (at least %d)", what, tool->min_args);
    }
    if (tool->max_args >= 0 && nargs > tool->max_args) {
        if (tool->max_args == 1)
            cli_usage_error(c, "one %s argument expected, %d given", what, nargs);
        cli_usage_error(c, "at most %d %s arguments expected, %d given", tool->max_args, what, nargs);
    }
    return optind;
}
