#include "dataset.h"
#include "json.h"
#include "lines.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct {
    tl_sample *items;
    int64_t n, cap;
    char **labels; /* label string per sample until classes are known */
    char **folders; /* class folders of a tree: classes even when empty */
    int nfolders;
    int multilabel; /* labels are comma-separated sets; "" is the empty set */
} builder;

/* A manifest line without a tab whose path holds a space and names no
 * file: "a.jpg cat" typed with a space. An error once other lines show
 * the manifest is labelled. */
typedef struct {
    long long lineno; /* 0: none seen */
    char *path;
} spaced_line;

static int push(builder *b, const char *path, const char *label, tl_err *e)
{
    if (b->n == b->cap) {
        int64_t nc = b->cap ? b->cap * 2 : 256;
        tl_sample *ni = realloc(b->items, (size_t)nc * sizeof *ni);
        if (!ni)
            return tl_fail(e, "out of memory");
        b->items = ni;
        char **nl = realloc(b->labels, (size_t)nc * sizeof *nl);
        if (!nl)
            return tl_fail(e, "out of memory");
        b->labels = nl;
        b->cap = nc;
    }
    int labelled = label && (*label || b->multilabel);
    b->items[b->n].path = tl_strdup(path);
    b->items[b->n].label = -1;
    b->items[b->n].labels = NULL;
    b->labels[b->n] = labelled ? tl_strdup(label) : NULL;
    if (!b->items[b->n].path || (labelled && !b->labels[b->n]))
        return tl_fail(e, "out of memory");
    b->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

int tl_labels_check(const char *field, tl_err *e)
{
    for (const char *p = field; *field;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return tl_fail(e, "empty label in '%s' (',,' or a ',' at either end)", field);
        if (len == 1 && p[0] == '-')
            return tl_fail(e, "'-' in '%s' is not a label (alone, it marks an unlabelled image)", field);
        if (p[0] == ' ' || p[0] == '\t' || p[len - 1] == ' ' || p[len - 1] == '\t')
            return tl_fail(e, "label '%.*s' begins or ends with a space: ',' separates labels, so a label cannot "
                              "contain ','",
                           (int)len, p);
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Splits every label string at ',' in place (multi-label) and points
 * names at the parts: sample i's parts are names[off[i] .. off[i+1]-1].
 * Returns the number of parts. */
static int64_t split_labels(builder *b, char **names, int64_t *off)
{
    int64_t k = 0;
    for (int64_t i = 0; i < b->n; i++) {
        off[i] = k;
        char *p = b->labels[i];
        if (!p || !*p)
            continue;
        for (;;) {
            names[k++] = p;
            if (!b->multilabel || !(p = strchr(p, ',')))
                break;
            *p++ = '\0';
        }
    }
    off[b->n] = k;
    return k;
}

static int64_t count_parts(const builder *b)
{
    int64_t k = 0;
    for (int64_t i = 0; i < b->n; i++)
        if (b->labels[i]) {
            k++;
            for (const char *p = b->labels[i]; b->multilabel && *p; p++)
                k += *p == ',';
        }
    return k;
}

static int class_of(const tl_dataset *d, const char *name)
{
    char *const *hit = bsearch(&name, d->classes, (size_t)d->nclasses, sizeof(char *), cmp_str);
    return (int)(hit - d->classes);
}

/* Turns label strings into sorted class indices (multi-label: sets). */
static int finish(builder *b, tl_dataset *d, tl_err *e)
{
    int64_t nparts = count_parts(b);
    char **names = malloc(((size_t)nparts + (size_t)b->nfolders + 1) * sizeof *names);
    char **parts = malloc(((size_t)nparts + 1) * sizeof *parts);
    int64_t *off = malloc(((size_t)b->n + 1) * sizeof *off);
    if (!names || !parts || !off) {
        free(names), free(parts), free(off);
        return tl_fail(e, "out of memory");
    }
    int64_t k = split_labels(b, parts, off);
    memcpy(names, parts, (size_t)k * sizeof *names);
    /* A class folder without images is still a class: its index must not
     * shift the others (train/ and val/ trees must agree). */
    for (int i = 0; i < b->nfolders; i++)
        names[k++] = b->folders[i];
    qsort(names, (size_t)k, sizeof *names, cmp_str);
    int nclasses = 0;
    for (int64_t i = 0; i < k; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]))
            names[nclasses++] = names[i];
    int rc = 0;
    d->multilabel = b->multilabel;
    d->classes = calloc((size_t)nclasses + 1, sizeof *d->classes);
    if (!d->classes)
        rc = tl_fail(e, "out of memory");
    for (int c = 0; c < nclasses && !rc; c++) {
        if (!(d->classes[c] = tl_strdup(names[c])))
            rc = tl_fail(e, "out of memory");
        d->nclasses = c + 1;
    }
    for (int64_t i = 0; i < b->n && !rc; i++) {
        tl_sample *sm = &b->items[i];
        int np = (int)(off[i + 1] - off[i]);
        if (!b->labels[i])
            continue;
        if (!b->multilabel) {
            sm->label = class_of(d, parts[off[i]]);
            continue;
        }
        sm->label = 0;
        if (np == 0)
            continue;
        if (!(sm->labels = malloc((size_t)np * sizeof *sm->labels))) {
            rc = tl_fail(e, "out of memory");
            break;
        }
        for (int j = 0; j < np; j++)
            sm->labels[j] = class_of(d, parts[off[i] + j]);
        qsort(sm->labels, (size_t)np, sizeof *sm->labels, cmp_int);
        for (int j = 0; j < np; j++) /* a label repeated on a line counts once */
            if (j == 0 || sm->labels[j] != sm->labels[sm->label - 1])
                sm->labels[sm->label++] = sm->labels[j];
    }
    free(names), free(parts), free(off);
    if (rc) {
        tl_strings_free(d->classes, d->nclasses);
        d->classes = NULL;
        d->nclasses = 0;
        return -1;
    }
    for (int64_t i = 0; i < b->n; i++) {
        free(b->labels[i]);
        b->labels[i] = NULL;
    }
    free(b->labels);
    b->labels = NULL;
    d->items = b->items;
    d->n = b->n;
    b->items = NULL;
    return 0;
}

static void builder_free(builder *b)
{
    for (int64_t i = 0; i < b->n; i++) {
        free(b->items ? b->items[i].path : NULL);
        free(b->items ? b->items[i].labels : NULL);
        free(b->labels ? b->labels[i] : NULL);
    }
    free(b->items);
    free(b->labels);
    for (int i = 0; i < b->nfolders; i++)
        free(b->folders[i]);
    free(b->folders);
    memset(b, 0, sizeof *b);
}

int tl_is_image_name(const char *name)
{
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm", ".jpe", NULL};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (int i = 0; exts[i]; i++)
        if (!strcasecmp(dot, exts[i]))
            return 1;
    return 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void free_names(char **names, int n);

/* Sorted entries of a folder, hidden ones skipped. */
static int list_dir(const char *dir, char ***out, int *count, tl_err *e)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return tl_fail(e, "%s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char *copy = NULL;
        if (n == cap) {
            int nc = cap ? 2 * cap : 64;
            char **nn = realloc(names, (size_t)nc * sizeof *nn);
            if (nn) {
                names = nn;
                cap = nc;
            }
        }
        if (n < cap)
            copy = tl_strdup(de->d_name);
        if (!copy) {
            closedir(dp);
            free_names(names, n);
            return tl_fail(e, "out of memory");
        }
        names[n++] = copy;
    }
    closedir(dp);
    if (n) /* an empty folder leaves names NULL, which qsort must not see */
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    *count = n;
    return 0;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Images below dir (recursively, sorted), all with the same label. */
static int add_tree(builder *b, const char *dir, const char *label, int depth, tl_err *e)
{
    if (depth > 32)
        return tl_fail(e, "%s: folders nested too deeply", dir);
    char **names;
    int n;
    if (list_dir(dir, &names, &n, e))
        return -1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *p = malloc(len);
        if (!p) {
            rc = tl_fail(e, "out of memory");
            break;
        }
        snprintf(p, len, "%s/%s", dir, names[i]);
        if (is_dir(p))
            rc = add_tree(b, p, label, depth + 1, e);
        else if (tl_is_image_name(names[i]))
            rc = push(b, p, label, e);
        free(p);
    }
    free_names(names, n);
    return rc;
}

static int open_folder(const char *root, builder *b, tl_err *e)
{
    char **names;
    int n;
    if (list_dir(root, &names, &n, e))
        return -1;
    int subdirs = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        subdirs += is_dir(p);
    }
    /* A folder of class folders is a labelled set; a folder of images is an
     * unlabelled one (for prediction). */
    for (int i = 0; i < n && !rc; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        if (subdirs && is_dir(p)) {
            if (b->multilabel && strchr(names[i], ',')) {
                rc = tl_fail(e, "%s: class folder name holds ',', which separates the labels of multi-label data", p);
                break;
            }
            char **nf = realloc(b->folders, ((size_t)b->nfolders + 1) * sizeof *nf);
            if (!nf || !(nf[b->nfolders] = tl_strdup(names[i]))) {
                if (nf)
                    b->folders = nf;
                rc = tl_fail(e, "out of memory");
                break;
            }
            b->folders = nf;
            b->nfolders++;
            rc = add_tree(b, p, names[i], 1, e);
        } else if (!subdirs && tl_is_image_name(names[i]))
            rc = push(b, p, NULL, e);
    }
    free_names(names, n);
    return rc;
}

static char *join_path(const char *base, const char *rel)
{
    if (rel[0] == '/' || !base || !*base || !strcmp(base, "."))
        return tl_strdup(rel);
    size_t blen = strlen(base), len = blen + strlen(rel) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s%s%s", base, base[blen - 1] == '/' ? "" : "/", rel);
    return p;
}

/* A path holding a space that names no file. */
static int missing_file_with_space(const char *base, const char *path)
{
    if (!strchr(path, ' '))
        return 0;
    char *p = join_path(base, path);
    struct stat st;
    int missing = p && stat(p, &st) != 0 && errno == ENOENT;
    free(p);
    return missing;
}

static int read_manifest(FILE *f, const char *name, const char *base, builder *b, tl_err *e)
{
    tl_lines lr;
    char *line;
    size_t len;
    int rc = 0, got;
    long long labelled = 0;
    spaced_line spaced = {0};
    tl_lines_init(&lr, f, name, TL_DATASET_MAX_LINE);
    while (!rc && (got = tl_lines_next(&lr, &line, &len, e)) > 0) {
        long long lineno = (long long)lr.lineno;
        if (len == 0 || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        const char *label = NULL;
        if (tab) {
            *tab = '\0';
            label = tab + 1;
            /* A third column is a mistake (a predictions or feature file
             * given as a manifest, a label holding a tab), not data to drop. */
            if (strchr(label, '\t')) {
                int ncol = 2;
                for (const char *q = label; (q = strchr(q, '\t')); q++)
                    ncol++;
                rc = tl_fail(e, "%s: line %lld: %d tab-separated columns; a manifest line is PATH<TAB>LABEL", name,
                             lineno, ncol);
                break;
            }
        }
        if (!*line) {
            rc = tl_fail(e, "%s: line %lld: empty path", name, lineno);
            break;
        }
        labelled += tab != NULL;
        if (!tab && !spaced.lineno && missing_file_with_space(base, line)) {
            spaced.lineno = lineno;
            if (!(spaced.path = tl_strdup(line))) {
                rc = tl_fail(e, "out of memory");
                break;
            }
        }
        if (b->multilabel && label && !strcmp(label, "-"))
            label = NULL; /* unlabelled, as in multi-label feature and predictions files */
        if (b->multilabel && label && tl_labels_check(label, e)) {
            rc = tl_fail_prefix(e, "%s: line %lld", name, lineno);
            break;
        }
        char *p = join_path(base, line);
        if (!p) {
            rc = tl_fail(e, "out of memory");
            break;
        }
        rc = push(b, p, label, e);
        free(p);
    }
    if (!rc && got < 0)
        rc = -1;
    /* Said here rather than as "no such file" when the image is read. */
    if (!rc && labelled && spaced.lineno)
        rc = tl_fail(e, "%s: line %lld: no tab between path and label in '%s' (the other lines are PATH<TAB>LABEL "
                        "and no file has this name)",
                     name, spaced.lineno, spaced.path);
    free(spaced.path);
    tl_lines_free(&lr);
    return rc;
}

int tl_dataset_read_manifest(FILE *f, const char *name, const char *base_dir, tl_dataset *d, tl_err *e)
{
    return tl_dataset_read_manifest_flags(f, name, base_dir, 0, d, e);
}

int tl_dataset_read_manifest_flags(FILE *f, const char *name, const char *base_dir, int flags, tl_dataset *d,
                                   tl_err *e)
{
    builder b = {0};
    b.multilabel = !!(flags & TL_DS_MULTILABEL);
    memset(d, 0, sizeof *d);
    if (read_manifest(f, name, base_dir, &b, e) || finish(&b, d, e)) {
        builder_free(&b);
        tl_dataset_free(d);
        return -1;
    }
    return 0;
}

int tl_dataset_open(const char *spec, tl_dataset *d, tl_err *e) { return tl_dataset_open_flags(spec, 0, d, e); }

int tl_dataset_open_flags(const char *spec, int flags, tl_dataset *d, tl_err *e)
{
    memset(d, 0, sizeof *d);
    if (!strcmp(spec, "-"))
        return tl_dataset_read_manifest_flags(stdin, "standard input", NULL, flags, d, e);
    builder b = {0};
    b.multilabel = !!(flags & TL_DS_MULTILABEL);
    if (is_dir(spec)) {
        int rc = open_folder(spec, &b, e) || finish(&b, d, e) ? -1 : 0;
        builder_free(&b); /* after finish, only the folder names are left */
        if (rc) {
            tl_dataset_free(d);
            return -1;
        }
        if (d->n == 0) {
            tl_dataset_free(d);
            return tl_fail(e, "%s: no images found (expected class folders or image files)", spec);
        }
        return 0;
    }
    if (tl_is_image_name(spec)) {
        /* fail here, naming the file, rather than at decoding time */
        struct stat st;
        if (stat(spec, &st) != 0)
            return tl_fail(e, "%s: %s", spec, strerror(errno));
        if (push(&b, spec, NULL, e) || finish(&b, d, e)) {
            builder_free(&b);
            tl_dataset_free(d);
            return -1;
        }
        return 0;
    }
    FILE *f = fopen(spec, "r");
    if (!f)
        return tl_fail(e, "%s: %s", spec, strerror(errno));
    char *base = tl_strdup(spec);
    if (!base) {
        fclose(f);
        return tl_fail(e, "out of memory");
    }
    char *slash = strrchr(base, '/');
    if (slash)
        slash[slash == base] = '\0'; /* "/m.tsv" keeps "/" as its folder */
    else
        base[0] = '\0';
    int rc = tl_dataset_read_manifest_flags(f, spec, base, flags, d, e);
    free(base);
    fclose(f);
    return rc;
}

void tl_dataset_free(tl_dataset *d)
{
    for (int64_t i = 0; i < d->n; i++) {
        free(d->items[i].path);
        free(d->items[i].labels);
    }
    free(d->items);
    tl_strings_free(d->classes, d->nclasses);
    memset(d, 0, sizeof *d);
}

int tl_dataset_class(const tl_dataset *d, const char *name)
{
    for (int c = 0; c < d->nclasses; c++)
        if (!strcmp(d->classes[c], name))
            return c;
    return -1;
}
