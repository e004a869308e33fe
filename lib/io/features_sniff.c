#include "features.h"

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

static int magic(const char *head, size_t n)
{
    return (n >= 4 && !memcmp(head, "TLF1", 4)) || (n >= 6 && !memcmp(head, "\x93NUMPY", 6)) ||
           (n >= 12 && !memcmp(head, "#tl-features", 12));
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

int tl_feat_sniff(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char head[16] = {0};
    size_t n = fread(head, 1, sizeof head, f);
    int yes = magic(head, n);
    if (!yes && n > 0) {
        rewind(f);
        char *line = NULL;
        size_t cap = 0;
        for (int lines = 0; lines < 64 && getline(&line, &cap, f) >= 0; lines++)
            if (line[0] != '#' && line[0] != '\n') {
                yes = looks_like_tsv_features(line);
                break;
            }
        free(line);
    }
    fclose(f);
    return yes;
}
