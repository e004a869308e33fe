#include "advise.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The brief's thresholds: below SMALL a fixed extractor, below LARGE the
 * later layers, above it everything. */
#define SMALL_DATA 1000
#define LARGE_DATA 100000
/* Fewer images per class than this and even a last-stage fine-tune has
 * too little signal per class: stay with features. */
#define FEW_PER_CLASS 30
/* A class this small gives a validation estimate that moves by whole
 * percentage points per image. */
#define TINY_CLASS 10
#define IMBALANCED 3.0

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void line(tl_strbuf *out, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void line(tl_strbuf *out, const char *key, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Wrapped to fit an 80-column terminal, continuation lines indented
     * under the text so the keys stay a readable column. */
    const int width = 80 - 11;
    const char *p = buf;
    int first = 1;
    while (*p) {
        int len = (int)strlen(p), cut = len;
        if (len > width) {
            cut = width;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = width;
        }
        tl_strbuf_printf(out, "%-10s %.*s\n", first ? key : "", cut, p);
        first = 0;
        p += cut;
        while (*p == ' ')
            p++;
    }
}

static void class_list(tl_strbuf *out, const int64_t *counts, const char *const *names, int k)
{
    char buf[1024];
    size_t used = 0;
    buf[0] = 0;
    int shown = k < 8 ? k : 6;
    for (int c = 0; c < shown && used < sizeof buf - 64; c++) {
        int w;
        if (names && names[c])
            w = snprintf(buf + used, sizeof buf - used, "%s%.40s %lld", c ? ", " : "", names[c], (long long)counts[c]);
        else
            w = snprintf(buf + used, sizeof buf - used, "%sclass %d: %lld", c ? ", " : "", c, (long long)counts[c]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (shown < k && used < sizeof buf - 32)
        snprintf(buf + used, sizeof buf - used, ", ... (%d more)", k - shown);
    line(out, "classes", "%s", buf);
}

int tl_advise(const int64_t *counts, const char *const *names, int k, const char *data_name, tl_advice *a,
              tl_strbuf *out, tl_err *e)
{
    if (k < 1)
        return tl_fail(e, "no classes");
    int64_t *sorted = malloc((size_t)k * sizeof *sorted);
    if (!sorted)
        return tl_fail(e, "out of memory");
    memset(a, 0, sizeof *a);
    a->nclasses = k;
    int nonempty = 0;
    for (int c = 0; c < k; c++) {
        a->n += counts[c];
        if (counts[c] > 0)
            sorted[nonempty++] = counts[c];
    }
    a->empty = k - nonempty;
    qsort(sorted, (size_t)nonempty, sizeof *sorted, cmp_i64);
    if (nonempty) {
        a->min_class = sorted[0];
        a->max_class = sorted[nonempty - 1];
        a->median_class = nonempty % 2 ? (double)sorted[nonempty / 2]
                                       : 0.5 * (double)(sorted[nonempty / 2 - 1] + sorted[nonempty / 2]);
        a->imbalance = (double)a->max_class / (double)a->min_class;
    }
    free(sorted);

    if (a->n < SMALL_DATA || a->median_class < FEW_PER_CLASS)
        a->strategy = TL_ADVISE_FEATURES;
    else if (a->n < LARGE_DATA)
        a->strategy = TL_ADVISE_PARTIAL;
    else
        a->strategy = TL_ADVISE_FULL;

    line(out, "data", "%s: %lld labelled images in %d class%s; per class %lld to %lld (median %.0f)",
         data_name ? data_name : "data", (long long)a->n, k, k == 1 ? "" : "es", (long long)a->min_class,
         (long long)a->max_class, a->median_class);
    class_list(out, counts, names, k);

    switch (a->strategy) {
    case TL_ADVISE_FEATURES:
        line(out, "strategy", "fixed features + a linear classifier");
        if (a->n < SMALL_DATA)
            line(out, "why", "%lld images is under ~1,000: fine-tuning millions of pretrained weights on so few "
                             "examples overfits, while a linear model on pretrained features has few parameters "
                             "to fit and trains in seconds",
                 (long long)a->n);
        else
            line(out, "why", "%lld images in all, but a median of %.0f per class (under %d): too little per class "
                             "to move the backbone's weights safely",
                 (long long)a->n, a->median_class, FEW_PER_CLASS);
        line(out, "run", "tl-extract -m MODEL TRAIN -o train.tlf && tl-extract -m MODEL VAL -o val.tlf && "
                         "tl-finetune train.tlf --val val.tlf -o head.safetensors");
        line(out, "next", "if accuracy plateaus: fine-tune the last stage with augmentation (tl-finetune -m MODEL "
                          "--freeze-until LAYER --augment natural --val VAL; tl-info MODEL lists the groups) and "
                          "keep it only if it beats the features on validation data; try a larger backbone's "
                          "features (scripts/experiment.sh --models compares them)");
        break;
    case TL_ADVISE_PARTIAL:
        line(out, "strategy", "fine-tune the later layers (the last stage or two) with a new head");
        line(out, "why", "%lld images is between ~1,000 and ~100,000: enough to adapt the task-specific later layers, "
                         "while the early layers' generic edges and textures stay frozen and cannot overfit",
             (long long)a->n);
        line(out, "run", "tl-finetune -m MODEL --freeze-until LAYER --augment natural --val VAL --log run.jsonl "
                         "-o tuned.safetensors TRAIN  (LAYER: the end of the second-to-last group in tl-info)");
        line(out, "next", "if validation accuracy plateaus while training accuracy is still rising, augment "
                          "more or freeze more; if both plateau, unfreeze more (--unfreeze-every 2, or all layers "
                          "with --lr-mult 0.1) and lower the learning rate (--lr 0.003)");
        break;
    default:
        line(out, "strategy", "fine-tune every layer (discriminative rates: earlier groups 10x lower)");
        line(out, "why", "%lld images is over ~100,000: enough data to adapt every layer; pretrained weights still "
                         "converge several times faster than random ones",
             (long long)a->n);
        line(out, "run", "tl-finetune -m MODEL --lr-mult 0.1 --augment natural --val VAL --log run.jsonl "
                         "-o tuned.safetensors TRAIN");
        line(out, "next", "if it plateaus, lower the learning rate or train longer; at this size, training from "
                          "scratch (--scratch) is a fair comparison: scripts/experiment.sh runs both");
        break;
    }
    if (k - a->empty < 2)
        line(out, "warning", "a classifier needs at least two classes with images; this data has %d (is the "
                             "folder one level too high or too low?)",
             k - a->empty);
    if (a->empty)
        line(out, "warning", "%d class%s no images: %s cannot be learned", a->empty, a->empty > 1 ? "es have" : " has",
             a->empty > 1 ? "they" : "it");
    if (a->min_class > 0 && a->min_class < TINY_CLASS)
        line(out, "warning", "the smallest class has %lld images: its accuracy is noise; collect more or merge it",
             (long long)a->min_class);
    if (a->imbalance > IMBALANCED)
        line(out, "warning", "classes are imbalanced (%.1f : 1): accuracy flatters the large classes; judge by "
                             "macro-F1 and the per-class table of tl-eval",
             a->imbalance);
    line(out, "domain", "if the images are far from ImageNet's photographs (medical, aerial, microscopy, "
                        "industrial), compare with training from scratch (scripts/experiment.sh); if scratch "
                        "matches transfer, look for a backbone pretrained nearer the domain");
    line(out, "validate", "hold out about 20%% per class (--val-split 0.2 is stratified) or use a separate folder; "
                          "keep a test set that never picks an epoch or a setting");
    return 0;
}
