/* tl-parse KIND FILE: runs one of the library's readers of untrusted input
 * over FILE, for the resource-contract test (tests/bats/resources.bats),
 * which measures its work and memory on growing inputs. Prints what it
 * read ("ok N") or the error; exit 0 or 1. Never installed.
 *   json         tl_json_parse (the whole tree)
 *   safetensors  tl_st_open, then every tensor looked up by name
 *   features     tl_featset_load (TLF, TSV, NPY; concatenated streams)
 *   predictions  tl_pred_open and every row
 *   manifest     tl_dataset_open (a manifest file; "-" a path list)
 *   labels       tl_read_labels (tl-convert -L)
 *   runlog       tl_runlog_read
 *   tflite       tl_tflite_open and tl_tflite_describe
 *   image        tl_image_decode_file (a pipe or device is read as a stream) */
#include "core/json.h"
#include "io/convert_st.h"
#include "io/dataset.h"
#include "io/features.h"
#include "io/image.h"
#include "io/predictions.h"
#include "io/safetensors.h"
#include "io/tflite.h"
#include "report/runlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int slurp(const char *path, char **out, size_t *n, tl_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return tl_fail(e, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    *out = malloc(len > 0 ? (size_t)len : 1);
    *n = *out ? fread(*out, 1, (size_t)len, f) : 0;
    fclose(f);
    return *out ? 0 : tl_fail(e, "out of memory");
}

static int run(const char *kind, const char *path, long long *count, tl_err *e)
{
    if (!strcmp(kind, "json")) {
        char *text;
        size_t n;
        tl_json v;
        if (slurp(path, &text, &n, e))
            return -1;
        int rc = tl_json_parse(text, n, &v, e);
        free(text);
        if (rc)
            return -1;
        *count = v.type == TL_JSON_ARRAY || v.type == TL_JSON_OBJECT ? v.count : 1;
        tl_json_free(&v);
        return 0;
    }
    if (!strcmp(kind, "safetensors")) {
        tl_st_file f;
        if (tl_st_open(path, &f, e))
            return -1;
        for (int i = 0; i < f.ntensors; i++)
            *count += tl_st_find(&f, f.tensors[i].name) == &f.tensors[i];
        tl_st_close(&f);
        return 0;
    }
    if (!strcmp(kind, "features")) {
        tl_featset s;
        if (tl_featset_load(path, &s, e))
            return -1;
        *count = s.n;
        tl_featset_free(&s);
        return 0;
    }
    if (!strcmp(kind, "predictions")) {
        tl_pred_reader r;
        tl_pred_row row;
        int got;
        if (tl_pred_open(&r, path, NULL, 0, e))
            return -1;
        while ((got = tl_pred_next(&r, &row, e)) == 1)
            (*count)++;
        tl_pred_close(&r);
        return got;
    }
    if (!strcmp(kind, "manifest")) {
        tl_dataset d;
        if (tl_dataset_open(path, &d, e))
            return -1;
        *count = d.n;
        tl_dataset_free(&d);
        return 0;
    }
    if (!strcmp(kind, "labels")) {
        char **names;
        int n;
        if (tl_read_labels(path, &names, &n, e))
            return -1;
        *count = n;
        tl_strings_free(names, n);
        return 0;
    }
    if (!strcmp(kind, "runlog")) {
        tl_runlog r;
        if (tl_runlog_read(path, &r, e))
            return -1;
        *count = r.nepochs;
        tl_runlog_free(&r);
        return 0;
    }
    if (!strcmp(kind, "tflite")) {
        tl_tflite *m;
        if (tl_tflite_open(path, &m, e))
            return -1;
        char buf[256];
        tl_tflite_describe(m, buf, sizeof buf);
        *count = m->nops;
        tl_tflite_free(m);
        return 0;
    }
    if (!strcmp(kind, "image")) {
        tl_image img = {0};
        int rc = tl_image_decode_file(path, &img, 0, e);
        *count = (long long)img.w * img.h;
        tl_image_free(&img);
        return rc;
    }
    return tl_fail(e, "unknown kind '%s'", kind);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tl-parse json|safetensors|features|predictions|manifest|labels|runlog|tflite|image FILE\n");
        return 2;
    }
    tl_err e = {0};
    long long count = 0;
    if (run(argv[1], argv[2], &count, &e)) {
        fprintf(stderr, "tl-parse: %s\n", e.msg);
        return 1;
    }
    printf("ok %lld\n", count);
    return 0;
}
