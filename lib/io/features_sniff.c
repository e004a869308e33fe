#include "features.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A TSV feature line: path, label, then at least one number. */
static int looks_like_tsv_features(char *line)
{
    char *tab = strchr(line, '\t');
    if (!tab || !(tab = strchr(tab + 1, '\t')))
        return 0;
    char *end;
    strtod(tab + 1, &end);
    return end != tab + 1 && (*end == '\t' || *end == '\n' || *end == '\r' || *end == '\0');
}

/* A zip whose first entry is an .npy array: a NumPy archive. */
static int npz(const char *head, size_t n)
{
    if (n < 30 || memcmp(head, "PK\3\4", 4))
        return 0;
    size_t len = (size_t)(unsigned char)head[26] | (size_t)(unsigned char)head[27] << 8;
    return len >= 4 && n >= 30 + len && !memcmp(head + 30 + len - 4, ".npy", 4);
}

static int magic(const char *head, size_t n)
{
    return (n >= 4 && !memcmp(head, "TLF1", 4)) || (n >= 6 && !memcmp(head, "\x93NUMPY", 6)) ||
           (n >= 12 && !memcmp(head, "#tl-features", 12)) || npz(head, n);
}

int tl_feat_sniff_head(const char *head, size_t n)
{
    if (magic(head, n))
        return 1;
    char line[4096];
    size_t len = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, head, len);
    line[len] = '\0';
    return line[0] != '#' && memchr(line, '\0', len) == NULL && looks_like_tsv_features(line);
}

/* Reads at most the first TL_FEAT_SNIFF_BYTES: a file that is not
 * features is never read far, and a long first line is judged by its
 * start (path, label, a number). */
int tl_feat_sniff_e(const char *path, tl_err *e)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char *buf = malloc(TL_FEAT_SNIFF_BYTES + 1);
    if (!buf) {
        fclose(f);
        return tl_fail(e, "out of memory");
    }
    size_t n = fread(buf, 1, TL_FEAT_SNIFF_BYTES, f);
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err) {
        free(buf);
        return tl_fail(e, "%s: read error: %s", path, strerror(err));
    }
    buf[n] = '\0';
    int yes = magic(buf, n);
    /* otherwise the first line that is not a comment decides; a NUL byte
     * ends the text there (binary files are not features) */
    for (char *line = buf; !yes && line < buf + n && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (line[0] != '#' && line[0] && line[0] != '\r') {
            yes = looks_like_tsv_features(line);
            break;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    free(buf);
    return yes;
}

int tl_feat_sniff(const char *path) { return tl_feat_sniff_e(path, NULL) > 0; }
