#include "train_log.h"

#include <math.h>
#include <string.h>

void tl_train_log_start(FILE *f, const tl_finetune *ft, const char *run)
{
    const tl_finetune_opts *o = &ft->o;
    tl_runlog_start s;
    tl_runlog_start_init(&s);
    s.run = run ? run : o->out;
    s.tool = "tl-finetune";
    s.init = o->scratch ? "scratch" : "pretrained";
    s.model = o->model ? o->model : o->arch;
    s.arch = ft->arch;
    s.strategy = ft->strategy;
    s.train = o->train;
    s.val = o->val ? o->val : "split";
    s.augment = o->augment ? o->augment : "none";
    s.metric = o->multilabel ? "mAP" : NULL;
    s.optimizer = o->optimizer == TL_OPT_ADAMW ? "adamw" : "sgd";
    s.lr = o->lr;
    s.train_images = ft->ntrain;
    s.val_images = ft->nval;
    s.classes = ft->train.nclasses;
    s.epochs = o->epochs;
    s.batch = o->batch;
    s.seed = (int64_t)o->seed;
    s.threads = o->threads;
    s.processes = o->comm ? o->comm->size : 1;
    s.accumulate = o->accumulate;
    s.params = ft->params;
    s.trainable_params = ft->trainable_params;
    tl_runlog_write_start(f, &s);
}

void tl_train_log_epoch(FILE *f, const tl_epoch_report *r)
{
    tl_runlog_phase_line p = {
        .epoch = r->epoch,
        .phase = r->phase,
        .loss = r->loss,
        .accuracy = r->accuracy,
        .seconds = r->seconds,
        .images_per_s = r->images_per_s,
        .lr = r->lr,
        .ngroups = r->ngroups,
        .trainable_params = r->trainable_params,
        .best = strcmp(r->phase, "val") ? -1 : r->improved,
        .processes = strcmp(r->phase, "train") ? 0 : r->processes,
        .allreduce_ms = r->comm_seconds * 1e3,
        .allreduce_bytes = (int64_t)r->comm_bytes,
    };
    tl_runlog_write_phase(f, &p);
}

void tl_train_log_best(FILE *f, const tl_fit_result *res, double seconds)
{
    tl_runlog_write_best(f, res->best_epoch, res->best_epoch ? res->best_loss : NAN,
                         res->best_epoch ? res->best_accuracy : NAN, res->epochs_run, res->stopped_early, seconds);
}

void tl_train_log_head(FILE *f, const tl_head_run *h)
{
    tl_runlog_start s;
    tl_runlog_start_init(&s);
    s.run = h->run;
    s.tool = "tl-finetune";
    s.init = "features";
    s.model = h->model;
    s.layer = h->layer;
    s.strategy = h->strategy;
    s.train = h->train;
    s.val = h->val;
    s.metric = h->metric;
    s.train_images = h->ntrain;
    s.val_images = h->nval;
    s.classes = h->classes;
    s.epochs = 1;
    s.threads = h->threads;
    s.params = h->params;
    s.trainable_params = h->params;
    tl_runlog_write_start(f, &s);
    tl_runlog_phase_line p = {
        .epoch = 1,
        .phase = "train",
        .loss = h->train_loss,
        .accuracy = h->train_accuracy,
        .seconds = h->seconds,
        .images_per_s = h->seconds > 0 ? (double)h->ntrain / h->seconds : NAN,
        .trainable_params = h->params,
        .best = -1,
    };
    tl_runlog_write_phase(f, &p);
    if (h->nval) {
        p.phase = "val";
        p.loss = h->val_loss;
        p.accuracy = h->val_accuracy;
        p.seconds = 0;
        p.images_per_s = NAN;
        p.best = 1;
        tl_runlog_write_phase(f, &p);
        tl_runlog_write_best(f, 1, h->val_loss, h->val_accuracy, 1, 0, h->seconds);
    }
}
