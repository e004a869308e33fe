/* The JSON lines of training and extraction logs (runlog.h); the reader
 * in runlog.c takes them back. */
#include "runlog.h"
#include "format_version.h"
#include "json.h"

#include <math.h>
#include <string.h>

static void key_str(FILE *f, const char *key, const char *v)
{
    if (!v)
        return;
    fprintf(f, ",\"%s\":", key);
    tl_json_write_string(f, v);
}

/* JSON has no NaN or infinity: they print as null. */
static void key_num(FILE *f, const char *key, const char *fmt, double v)
{
    fprintf(f, ",\"%s\":", key);
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

static void key_int(FILE *f, const char *key, int64_t v)
{
    if (v >= 0)
        fprintf(f, ",\"%s\":%lld", key, (long long)v);
}

void tl_runlog_start_init(tl_runlog_start *s)
{
    memset(s, 0, sizeof *s);
    s->lr = NAN;
    s->train_images = s->val_images = s->classes = s->epochs = s->batch = s->seed = s->threads = s->params =
        s->trainable_params = s->processes = s->accumulate = -1;
}

void tl_runlog_write_start(FILE *f, const tl_runlog_start *s)
{
    fprintf(f, "{\"phase\":\"start\",\"format\":%d", TL_FORMAT_LOG);
    key_str(f, "run", s->run);
    key_str(f, "tool", s->tool);
    key_str(f, "init", s->init);
    key_str(f, "model", s->model);
    key_str(f, "arch", s->arch);
    key_str(f, "layer", s->layer);
    key_str(f, "strategy", s->strategy);
    key_str(f, "train", s->train);
    key_str(f, "val", s->val);
    key_str(f, "augment", s->augment);
    key_str(f, "optimizer", s->optimizer);
    key_str(f, "metric", s->metric);
    if (!isnan(s->lr))
        key_num(f, "lr", "%.6g", s->lr);
    key_int(f, "train_images", s->train_images);
    key_int(f, "val_images", s->val_images);
    key_int(f, "classes", s->classes);
    key_int(f, "epochs", s->epochs);
    key_int(f, "batch", s->batch);
    key_int(f, "seed", s->seed);
    key_int(f, "threads", s->threads);
    key_int(f, "params", s->params);
    key_int(f, "trainable_params", s->trainable_params);
    if (s->processes > 1)
        key_int(f, "processes", s->processes);
    if (s->accumulate > 1)
        key_int(f, "accumulate", s->accumulate);
    fprintf(f, "}\n");
    fflush(f);
}

void tl_runlog_write_phase(FILE *f, const tl_runlog_phase_line *p)
{
    fprintf(f, "{\"epoch\":%d,\"phase\":\"%s\"", p->epoch, p->phase);
    key_num(f, "loss", "%.6g", p->loss);
    key_num(f, "accuracy", "%.6g", p->accuracy);
    if (p->lr) {
        fprintf(f, ",\"lr\":[");
        for (int g = 0; g < p->ngroups; g++)
            fprintf(f, "%s%.6g", g ? "," : "", p->lr[g]);
        fprintf(f, "]");
    }
    key_num(f, "seconds", "%.3f", p->seconds);
    if (!isnan(p->images_per_s))
        key_num(f, "images_per_s", "%.2f", p->images_per_s);
    key_int(f, "trainable_params", p->trainable_params);
    if (p->best >= 0)
        fprintf(f, ",\"best\":%s", p->best ? "true" : "false");
    if (p->processes > 1) {
        key_int(f, "processes", p->processes);
        key_num(f, "allreduce_ms", "%.3f", p->allreduce_ms);
        key_int(f, "allreduce_bytes", p->allreduce_bytes);
    }
    fprintf(f, "}\n");
    fflush(f);
}

void tl_runlog_write_best(FILE *f, int epoch, double loss, double accuracy, int epochs_run, int stopped_early,
                          double seconds)
{
    fprintf(f, "{\"phase\":\"best\",\"epoch\":%d", epoch);
    key_num(f, "loss", "%.6g", loss);
    key_num(f, "accuracy", "%.6g", accuracy);
    fprintf(f, ",\"epochs_run\":%d,\"stopped_early\":%s", epochs_run, stopped_early ? "true" : "false");
    key_num(f, "seconds", "%.3f", seconds);
    fprintf(f, "}\n");
    fflush(f);
}

void tl_runlog_write_extract(FILE *f, const char *data, const char *model, const char *layer, int64_t images,
                             int64_t skipped, int threads, double seconds)
{
    fprintf(f, "{\"phase\":\"extract\",\"format\":%d", TL_FORMAT_LOG);
    key_str(f, "data", data);
    key_str(f, "model", model);
    key_str(f, "layer", layer);
    fprintf(f, ",\"images\":%lld,\"skipped\":%lld,\"threads\":%d", (long long)images, (long long)skipped, threads);
    key_num(f, "seconds", "%.6g", seconds);
    key_num(f, "images_per_s", "%.6g", seconds > 0 ? (double)images / seconds : 0.0);
    fprintf(f, "}\n");
    fflush(f);
}
