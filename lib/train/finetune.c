#include "finetune.h"
#include "format_version.h"
#include "json.h"
#include "class_weights.h"
#include "sampler.h"
#include "transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

void tl_finetune_opts_default(tl_finetune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->val_split = -1;
    o->dropout = -1;
    o->resize_mode = -1;
    tl_pseudo_opts_default(&o->pseudo);
    o->groups = 4;
    o->lr = -1;
    o->lr_mult = -1;
    o->optimizer = TL_OPT_SGD;
    o->momentum = -1;
    o->weight_decay = -1;
    o->label_smoothing = -1;
    o->epochs = 10;
    o->batch = 32;
    o->accumulate = 1;
    o->seed = 1;
    o->threads = tl_cpu_count();
}

/* An output that exists and is not a regular file is a device (/dev/null,
 * a pipe): there is no folder beside it for resume state. */
static int is_device(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && !S_ISREG(st.st_mode);
}

static void say(tl_log_fn log, void *user, const char *fmt, const char *a)
{
    if (!log)
        return;
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a);
    log(user, msg);
}

/* A held-out share is never a whole class; when the rounding would have
 * taken one, or a class is too small to give any image, the run says so. */
static void report_split(const tl_finetune *f, tl_log_fn log, void *user)
{
    const tl_split_report *r = &f->split;
    if (!log || f->o.val || (!r->capped && !r->kept_whole))
        return;
    char msg[400];
    int n = snprintf(msg, sizeof msg, "--val-split %g:", f->o.val_split < 0 ? 0.2 : f->o.val_split);
    if (r->capped)
        n += snprintf(msg + n, sizeof msg - (size_t)n, " %d class%s would have gone to validation whole: one image "
                      "of each trains%s", r->capped, r->capped == 1 ? "" : "es", r->kept_whole ? ";" : "");
    if (r->kept_whole && n < (int)sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, " %d class%s too small to hold any image out train%s whole "
                 "(no validation images)", r->kept_whole, r->kept_whole == 1 ? "" : "es",
                 r->kept_whole == 1 ? "s" : "");
    log(user, msg);
}

static int open_data(tl_finetune *f, tl_err *e)
{
    const tl_finetune_opts *o = &f->o;
    int flags = o->multilabel ? TL_DS_MULTILABEL : 0;
    if (tl_train_data_open_flags(o->train, flags, &f->train, e))
        return -1;
    if (f->train.nclasses < (o->multilabel ? 1 : 2))
        return tl_fail(e, "%s: %d class%s; a classifier needs at least %d", o->train, f->train.nclasses,
                       f->train.nclasses == 1 ? "" : "es", o->multilabel ? 1 : 2);
    if (o->val) {
        if (tl_train_data_open_flags(o->val, flags, &f->val, e) || tl_train_data_match(&f->val, &f->train, o->val, e))
            return -1;
        f->ntrain = tl_train_data_count(&f->train);
        f->nval = tl_train_data_count(&f->val);
        f->train_ids = tl_xalloc((size_t)f->ntrain + 1, sizeof(int64_t), e);
        f->val_ids = f->train_ids ? tl_xalloc((size_t)f->nval + 1, sizeof(int64_t), e) : NULL;
        if (!f->val_ids)
            return -1;
        for (int64_t i = 0; i < f->ntrain; i++)
            f->train_ids[i] = i;
        for (int64_t i = 0; i < f->nval; i++)
            f->val_ids[i] = i;
    } else {
        double frac = o->val_split < 0 ? 0.2 : o->val_split;
        if (tl_split_stratified(&f->train.src, frac, o->seed, &f->train_ids, &f->ntrain, &f->val_ids, &f->nval,
                                &f->split, e))
            return -1;
    }
    if (f->ntrain < 2)
        return tl_fail(e, "%s: %lld training images; need at least 2", o->train, (long long)f->ntrain);
    f->epoch_size = f->ntrain;
    return 0;
}

/* --unlabelled: one source of the labelled images, then the unlabelled
 * ones (their labels, if any, kept apart for reports), so the loader and
 * the pseudo-labeller share ids. */
static int open_unlabelled(tl_finetune *f, tl_err *e)
{
    const tl_finetune_opts *o = &f->o;
    if (f->train.is_idx)
        return tl_fail_arg(e, "--unlabelled: the training images must come from folders or a manifest, not IDX");
    tl_dataset u;
    if (tl_dataset_open(o->unlabelled, &u, e))
        return tl_fail_prefix(e, "--unlabelled");
    const tl_dataset *l = &f->train.ds;
    int64_t n = l->n + u.n;
    f->merged.items = calloc((size_t)n + 1, sizeof(tl_sample));
    f->unl_truth = calloc((size_t)u.n + 1, sizeof(int));
    int rc = -1;
    if (!f->merged.items || !f->unl_truth) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        const tl_sample *s = i < l->n ? &l->items[i] : &u.items[i - l->n];
        tl_sample *d = &f->merged.items[f->merged.n];
        if (!(d->path = tl_strdup(s->path))) {
            tl_fail(e, "out of memory");
            goto out;
        }
        d->label = i < l->n ? s->label : -1;
        f->merged.n++;
        if (i >= l->n)
            f->unl_truth[i - l->n] = s->label >= 0 ? tl_dataset_class(l, u.classes[s->label]) : -1;
    }
    if (!(f->merged.classes = calloc((size_t)l->nclasses + 1, sizeof(char *))))
        goto oom;
    for (int c = 0; c < l->nclasses; c++) {
        if (!(f->merged.classes[c] = tl_strdup(l->classes[c])))
            goto oom;
        f->merged.nclasses = c + 1;
    }
    f->merged_src.ds = &f->merged;
    f->nunl = u.n;
    f->epoch_size = f->ntrain + u.n;
    rc = 0;
    goto out;
oom:
    tl_fail(e, "out of memory");
out:
    tl_dataset_free(&u);
    return rc;
}

/* The network to train: the pretrained one with a classifier for these
 * classes, or the architecture initialised from scratch. */
static int build_net(tl_finetune *f, tl_log_fn log, void *log_user, tl_err *e)
{
    const tl_finetune_opts *o = &f->o;
    tl_arch_opts ao;
    tl_preproc pp;
    f->arch = o->arch;
    if (o->model) {
        if (tl_net_load_at(o->model, o->input_w, o->input_h, o->resize_mode, &f->src, e))
            return -1;
        if (f->src.model->quant) {
            const char *from = tl_net_meta(&f->src, "tl.quant.source");
            return tl_fail_arg(e, "%s: an int8 checkpoint runs inference only; fine-tune the float model%s%s", o->model,
                               from ? " it was made from, " : "", from ? from : " it was made from");
        }
        ao = f->src.opts;
        pp = f->src.pp;
        f->arch = f->src.model->arch;
    } else {
        tl_arch_opts_default(&ao);
        tl_preproc_default(&pp);
        ao.input_w = pp.input_w = o->input_w ? o->input_w : 224;
        ao.input_h = pp.input_h = o->input_h ? o->input_h : 224;
        pp.resize_size = pp.input_w < pp.input_h ? pp.input_w : pp.input_h;
        pp.resize_mode = o->resize_mode >= 0 ? o->resize_mode : TL_RESIZE_SQUASH;
    }
    ao.num_classes = f->train.nclasses;
    if (o->dropout >= 0)
        ao.dropout = (float)o->dropout;
    tl_model *m = tl_arch_build(f->arch, &ao, e);
    if (!m) {
        if (!o->model || o->input_w) /* the architecture or the size asked for */
            e->kind = TL_ERR_ARG;
        return -1;
    }
    f->net.model = m;
    f->net.pp = pp;
    f->net.opts = ao;
    f->net.classes = f->train.classes;
    f->net.nclasses = f->train.nclasses;
    f->net.meta_keys = f->src.meta_keys;
    f->net.meta_values = f->src.meta_values;
    f->net.nmeta = f->src.nmeta;
    if (o->scratch) {
        tl_model_init(m, o->seed);
    } else {
        if (tl_transfer_weights(m, f->src.model, o->keep_head, o->seed, &f->kept_head, e))
            return tl_fail_prefix(e, "%s", o->model);
        if (f->kept_head)
            say(log, log_user, "keeping the classifier of %s", o->model);
    }
    /* A TFLite import has its batch norm folded into the convolutions: its
     * statistics are unknown, and batch statistics would rescale every
     * channel the folded weights expect. Keep BN in inference mode. */
    f->bn_folded = !o->scratch && !o->freeze_bn && tl_model_bn_folded(m);
    if (f->bn_folded)
        say(log, log_user,
            "%s has its batch norm folded into the convolutions (a TFLite import): batch norm runs on its stored "
            "statistics (--freeze-bn)",
            o->model);
    m->freeze_bn = o->freeze_bn || f->bn_folded;
    return 0;
}

static void describe_strategy(tl_finetune *f)
{
    const tl_finetune_opts *o = &f->o;
    if (o->head_only)
        snprintf(f->strategy, sizeof f->strategy, "head-only");
    else if (o->unfreeze_every)
        snprintf(f->strategy, sizeof f->strategy, "progressive (every %d)", o->unfreeze_every);
    else if (o->freeze_until)
        snprintf(f->strategy, sizeof f->strategy, "partial (%.250s)", o->freeze_until);
    else
        snprintf(f->strategy, sizeof f->strategy, "full");
}

/* --class-weights: balanced over the training ids, or from a file. */
static int loss_weights(tl_finetune *f, tl_err *e)
{
    const char *spec = f->o.class_weights;
    int k = f->train.nclasses, ml = f->o.multilabel;
    if (!spec)
        return 0;
    double *w = calloc((size_t)k * 3 + 1, sizeof *w);
    float *fw = tl_xalloc((size_t)k * 3 + 1, sizeof(float), e);
    int rc = !w || !fw ? tl_fail(e, "out of memory") : 0;
    const tl_source *src = &f->train.src;
    if (!rc && !strcmp(spec, "auto") && !ml) {
        int *y = malloc(((size_t)f->ntrain + 1) * sizeof *y);
        if (!y)
            rc = tl_fail(e, "out of memory");
        for (int64_t i = 0; y && i < f->ntrain; i++)
            y[i] = tl_source_label(src, f->train_ids[i]);
        if (y)
            tl_class_weights_balanced(y, f->ntrain, k, w);
        free(y);
    } else if (!rc && !strcmp(spec, "auto")) {
        unsigned char *Y = calloc((size_t)f->ntrain * (size_t)k + 1, 1);
        if (!Y)
            rc = tl_fail(e, "out of memory");
        for (int64_t i = 0; Y && i < f->ntrain; i++) {
            int nl;
            const int *ls = tl_source_labels(src, f->train_ids[i], &nl);
            for (int j = 0; j < nl; j++)
                Y[(size_t)i * k + ls[j]] = 1;
        }
        if (Y)
            tl_class_weights_balanced_multi(Y, NULL, f->ntrain, k, w + k, w + 2 * k);
        free(Y);
    } else if (!rc && tl_class_weights_read(spec, f->train.classes, k, ml ? w + k : w, e)) {
        rc = -1;
        tl_fail_prefix(e, "--class-weights");
    } else if (!rc && ml) {
        for (int c = 0; c < k; c++)
            w[2 * k + c] = 1.0;
    }
    for (int i = 0; !rc && i < 3 * k; i++)
        fw[i] = (float)w[i];
    free(w);
    if (rc) {
        tl_free(fw);
        return -1;
    }
    f->class_w = ml ? NULL : fw;
    f->pos_w = ml ? fw + k : NULL;
    f->neg_w = ml ? fw + 2 * k : NULL;
    f->weights_mem = fw;
    return 0;
}

/* Freezing, group rates, schedule and optimiser. */
static int build_trainer(tl_finetune *f, tl_err *e)
{
    tl_finetune_opts *o = &f->o;
    tl_model *m = f->net.model;
    /* Lower rates protect pretrained layers; scratch layers have nothing to
     * protect (tl_lr_spread says why the default spreads as it does). */
    int spread = o->lr_mult < 0 && !o->ngroup_lrs && !o->scratch;
    if (o->lr_mult < 0)
        o->lr_mult = o->scratch ? 1.0 : 0.1;
    int nprocs = o->comm ? o->comm->size : 1;
    int64_t steps_per_epoch = tl_fit_steps_per_epoch(f->epoch_size, o->batch, o->accumulate, nprocs);
    tl_trainer_opts to;
    tl_trainer_opts_default(&to);
    tl_opt_config_default(&to.opt, o->optimizer);
    if (o->momentum >= 0)
        to.opt.momentum = o->momentum;
    if (o->weight_decay >= 0)
        to.opt.weight_decay = o->weight_decay;
    o->weight_decay = to.opt.weight_decay;
    to.batch = (o->batch + nprocs - 1) / nprocs; /* the tape holds a process's share of a batch */
    to.nthreads = o->threads;
    to.exact = o->exact;
    to.lr = o->lr;
    to.lr_mult = o->lr_mult;
    to.group_lrs = o->group_lrs;
    to.ngroup_lrs = o->ngroup_lrs;
    to.parts = o->groups;
    to.label_smoothing = (float)o->label_smoothing;
    to.clip_norm = o->clip_norm;
    to.loss = o->multilabel ? TL_LOSS_SIGMOID : TL_LOSS_SOFTMAX;
    if (loss_weights(f, e))
        return -1;
    to.class_weight = f->class_w;
    to.pos_weight = f->pos_w;
    to.neg_weight = f->neg_w;
    if (!o->schedule) {
        char buf[64];
        snprintf(buf, sizeof buf, "cosine:warmup=%lld", (long long)(steps_per_epoch * o->epochs / 20));
        if (!(f->sched_spec = tl_strdup(buf)))
            return tl_fail(e, "out of memory");
        o->schedule = f->sched_spec;
    }
    to.sched.total_steps = steps_per_epoch * o->epochs;
    f->steps = to.sched.total_steps;
    if (tl_schedule_parse(o->schedule, &to.sched, e) || tl_schedule_check(&to.sched, e)) {
        e->kind = TL_ERR_ARG;
        return tl_fail_prefix(e, "--schedule");
    }
    /* Freeze before the trainer exists: gradient buffers are then made only
     * for the layers that train. */
    f->ngroups = tl_model_assign_groups(m, o->groups);
    if (f->ngroups < 1 || f->ngroups > TL_FINETUNE_MAX_GROUPS)
        return tl_fail(e, "%d parameter groups, expected 1 to %d", f->ngroups, TL_FINETUNE_MAX_GROUPS);
    if (spread && f->ngroups >= 2) {
        f->spread = 1;
        tl_lr_spread(f->ngroups, o->lr, f->rates);
        to.group_lrs = f->rates;
        to.ngroup_lrs = f->ngroups;
    }
    if (tl_group_lrs(f->ngroups, to.lr, to.lr_mult, to.group_lrs, to.ngroup_lrs, f->rates, e))
        return e->kind == TL_ERR_ARG ? tl_fail_prefix(e, "--group-lrs") : -1;
    int until = -1;
    if (o->freeze_until) {
        until = tl_model_find_node(m, o->freeze_until);
        if (until < 0)
            return tl_fail_arg(e, "--freeze-until: no layer '%s' in %s (tl-info MODEL lists the layers)", o->freeze_until,
                               f->arch);
        if (until >= tl_model_classifier_node(m))
            return tl_fail_arg(e, "--freeze-until %s would freeze the classifier", o->freeze_until);
    }
    if (!(f->frozen = calloc((size_t)m->nparams + 1, 1)))
        return tl_fail(e, "out of memory");
    tl_freeze_plan(m, f->ngroups, until, o->head_only, o->unfreeze_every, f->frozen);
    for (int i = 0; i < m->nparams; i++) {
        f->params += m->params[i].numel;
        f->trainable_params += m->params[i].frozen ? 0 : m->params[i].numel;
    }
    describe_strategy(f);
    if (!(f->trainer = tl_trainer_new(m, &to, e)))
        return -1;
    if (o->sync_bn && tl_trainer_sync_bn(f->trainer, o->comm, e))
        return -1;
    return 0;
}

/* ---- what identifies a run, for --resume ---- */

typedef struct {
    uLong crc, adler;
    uint64_t bytes;
} digest;

static void dig(digest *d, const void *p, size_t n)
{
    const Bytef *b = p;
    while (n) {
        uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        d->crc = crc32(d->crc, b, k);
        d->adler = adler32(d->adler, b, k);
        d->bytes += k;
        b += k;
        n -= k;
    }
}

static void dig_sample(digest *d, const tl_train_data *t, int64_t i)
{
    /* the label set (a single-label sample's class as a set of one) */
    int n;
    const int *labels = tl_source_labels(&t->src, i, &n);
    int32_t v = n;
    dig(d, &v, sizeof v);
    for (int j = 0; j < n; j++) {
        v = labels[j];
        dig(d, &v, sizeof v);
    }
    if (t->is_idx) {
        size_t px = (size_t)t->idx.rows * (size_t)t->idx.cols;
        dig(d, t->idx.pixels + (size_t)i * px, px);
    } else {
        const char *p = t->ds.items[i].path;
        dig(d, p, strlen(p) + 1);
    }
}

static void put_digest(char *out, size_t n, const digest *d)
{
    snprintf(out, n, "%08lx%08lx-%llu", d->crc & 0xffffffffUL, d->adler & 0xffffffffUL, (unsigned long long)d->bytes);
}

/* The run's identity: its data (every training and validation sample, in
 * split order: paths or IDX pixels, and labels), its starting network
 * (every parameter as training begins: the pretrained weights, the new
 * classifier's seeded initialisation) and the settings that change the
 * result but are not in the provenance, or are there only when set (the
 * loss's class weights as used, whatever file or rule gave them). A
 * --resume of another run is refused by tl_fit. */
static void run_identity(tl_finetune *f)
{
    const tl_finetune_opts *o = &f->o;
    digest d = {crc32(0, NULL, 0), adler32(0, NULL, 0), 0};
    const tl_train_data *vsrc = o->val ? &f->val : &f->train;
    for (int64_t i = 0; i < f->ntrain; i++)
        dig_sample(&d, &f->train, f->train_ids[i]);
    dig(&d, "|", 1);
    for (int64_t i = 0; i < f->nval; i++)
        dig_sample(&d, vsrc, f->val_ids[i]);
    for (int64_t i = 0; i < f->nunl; i++) { /* --unlabelled: their paths (their labels are never used) */
        const char *p = f->merged.items[f->train.ds.n + i].path;
        dig(&d, p, strlen(p) + 1);
    }
    put_digest(f->run_id[0], sizeof f->run_id[0], &d);
    const tl_model *m = f->net.model;
    digest n = {crc32(0, NULL, 0), adler32(0, NULL, 0), 0};
    dig(&n, m->arch, strlen(m->arch) + 1);
    for (int i = 0; i < m->nparams; i++)
        dig(&n, m->params[i].data, (size_t)m->params[i].numel * sizeof(float));
    put_digest(f->run_id[1], sizeof f->run_id[1], &n);
    char weights[48] = "none";
    if (f->weights_mem) {
        digest w = {crc32(0, NULL, 0), adler32(0, NULL, 0), 0};
        dig(&w, f->weights_mem, (size_t)f->train.nclasses * 3 * sizeof(float));
        put_digest(weights, sizeof weights, &w);
    }
    snprintf(f->run_id[2], sizeof f->run_id[2],
             "val_split=%.9g momentum=%.9g clip_norm=%.9g groups=%d keep_head=%d freeze_bn=%d "
             "max_pixels=%zu multilabel=%d class_weights=%s pseudo=%d,%.9g,%d",
             o->val ? -1.0 : o->val_split < 0 ? 0.2 : o->val_split, o->momentum, o->clip_norm,
             o->groups, o->keep_head, o->freeze_bn, o->max_pixels, o->multilabel, weights, o->unlabelled != NULL,
             o->pseudo.threshold, o->pseudo.ramp);
    const char *kv[] = {"tl.resume.data", f->run_id[0], "tl.resume.network", f->run_id[1],
                        "tl.resume.settings", f->run_id[2], NULL};
    memcpy(f->resume_meta, kv, sizeof kv);
}

static const char *num(tl_finetune *f, int *k, double v)
{
    char *s = f->meta_text[(*k)++];
    snprintf(s, sizeof f->meta_text[0], "%.9g", v);
    return s;
}

static const char *whole(tl_finetune *f, int *k, long long v)
{
    char *s = f->meta_text[(*k)++];
    snprintf(s, sizeof f->meta_text[0], "%lld", v);
    return s;
}

/* What every checkpoint of the run records about how it was made
 * (tl-formats(5)): enough to repeat it. */
static int provenance(tl_finetune *f, tl_err *e)
{
    const tl_finetune_opts *o = &f->o;
    const tl_preproc *pp = &f->net.pp;
    tl_strbuf cls = {0}, from = {0};
    int bad = tl_strbuf_add(&cls, "[", 1);
    for (int c = 0; c < f->train.nclasses; c++) {
        if (c)
            bad |= tl_strbuf_add(&cls, ", ", 2);
        bad |= tl_strbuf_json_string(&cls, f->train.classes[c]);
    }
    bad |= tl_strbuf_add(&cls, "]", 1);
    bad |= tl_strbuf_printf(&from, "%s%s", o->scratch ? "scratch:" : "", o->model ? o->model : o->arch);
    f->classes_json = cls.s;
    f->from = from.s;
    if (bad)
        return tl_fail(e, "out of memory");
    static const char *const interp[] = {"bilinear", "bicubic", "nearest"};
    int k = 0;
    char *mean = f->meta_text[k++], *std = f->meta_text[k++], *rates = f->meta_text[k++],
         *freeze = f->meta_text[k++], *size = f->meta_text[k++];
    size_t n = sizeof f->meta_text[0];
    tl_input_size_format(pp->input_w, pp->input_h, size, n);
    snprintf(mean, n, "[%.9g, %.9g, %.9g]", (double)pp->mean[0], (double)pp->mean[1], (double)pp->mean[2]);
    snprintf(std, n, "[%.9g, %.9g, %.9g]", (double)pp->std[0], (double)pp->std[1], (double)pp->std[2]);
    /* the multiplier, or every group's rate when they were given or spread */
    if (o->ngroup_lrs || f->spread) {
        size_t used = 0;
        for (int g = 0; g < f->ngroups && used < n; g++)
            used += (size_t)snprintf(rates + used, n - used, "%s%.9g", g ? "," : "", f->rates[g]);
    } else {
        snprintf(rates, n, "%.9g", o->lr_mult);
    }
    snprintf(freeze, n, "%s%s%s", o->head_only ? "head-only" : o->freeze_until ? "until:" : "none",
             o->freeze_until ? o->freeze_until : "", o->freeze_bn || f->bn_folded ? ",bn" : "");
    char *pl = f->meta_text[k++]; /* self-training: what joined, how (pseudo.h) */
    snprintf(pl, n, "%.200s: %lld images, threshold %g, ramp %d epochs", o->unlabelled ? o->unlabelled : "",
             (long long)f->nunl, o->pseudo.threshold,
             o->pseudo.ramp > 0 ? o->pseudo.ramp : (o->epochs / 2 > 0 ? o->epochs / 2 : 1));
    const char *kv[] = {
        "tl.format", TL_STR(TL_FORMAT_CHECKPOINT),
        "tl.arch", f->arch,
        "tl.num_classes", whole(f, &k, f->train.nclasses),
        "tl.classes", f->classes_json,
        "tl.input_size", size,
        "tl.resize_size", whole(f, &k, pp->resize_size),
        "tl.resize_mode", tl_resize_mode_name(pp->resize_mode),
        "tl.mean", mean,
        "tl.std", std,
        "tl.channel_order", pp->bgr ? "BGR" : "RGB",
        "tl.interpolation", interp[pp->interp],
        "tl.trained_from", f->from,
        "tl.train_data", o->train,
        "tl.val_data", o->val ? o->val : "split",
        "tl.epochs", whole(f, &k, o->epochs),
        "tl.batch", whole(f, &k, o->batch),
        "tl.accumulate", whole(f, &k, o->accumulate),
        "tl.processes", whole(f, &k, o->comm ? o->comm->size : 1),
        "tl.lr", num(f, &k, o->lr),
        "tl.lr_mult", rates,
        "tl.optimizer", o->optimizer == TL_OPT_ADAMW ? "adamw" : "sgd",
        "tl.weight_decay", num(f, &k, o->weight_decay),
        "tl.label_smoothing", num(f, &k, o->label_smoothing),
        "tl.schedule", o->schedule,
        "tl.seed", whole(f, &k, (long long)o->seed),
        "tl.augment", o->augment ? o->augment : "none",
        "tl.freeze", freeze,
        "tl.unfreeze_every", whole(f, &k, o->unfreeze_every),
        "tl.dropout", num(f, &k, (double)tl_arch_dropout(&f->net.opts, f->net.opts.dropout)),
        "tl.sampler", o->sampler == TL_SAMPLER_BALANCED ? "balanced" : "shuffle",
        o->class_weights ? "tl.class_weights" : NULL, o->class_weights,
        o->multilabel ? "tl.multilabel" : NULL, "true",
        o->unlabelled ? "tl.pseudo_labels" : NULL, pl,
        NULL, NULL,
    };
    _Static_assert(sizeof kv <= sizeof f->meta, "room for the provenance");
    /* the optional keys are left out where they are NULL */
    int m = 0;
    for (size_t i = 0; i + 1 < sizeof kv / sizeof kv[0]; i += 2)
        if (kv[i]) {
            f->meta[m++] = kv[i];
            f->meta[m++] = kv[i + 1];
        }
    f->meta[m] = NULL;
    return 0;
}

/* One run at a time per output: its resume state (OUT.resume.safetensors,
 * rewritten every epoch and removed at the end) is the run's own, so a
 * second run on the same -o must not overwrite or delete it. The lock is
 * an flock on OUT.lock, released by the kernel if the process dies (the
 * file may then stay: it is reused); a finished run removes it while
 * holding it. The path is checked to still name the locked file, so a run
 * that removed it cannot let two others in. */
static int lock_output(tl_finetune *f, tl_err *e)
{
    for (int tries = 0; tries < 10; tries++) {
        int fd = open(f->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return tl_fail(e, "%s: cannot create the run's lock: %s", f->lock_path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            close(fd);
            if (err == EWOULDBLOCK)
                return tl_fail(e, "%s: another run is writing this output (%s is locked): wait for it to finish, or "
                                  "write elsewhere (-o)", f->o.out, f->lock_path);
            return tl_fail(e, "%s: cannot lock: %s", f->lock_path, strerror(err));
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(f->lock_path, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino) {
            f->lock_fd = fd;
            return 0;
        }
        close(fd); /* removed by a run that finished meanwhile: take the new one */
    }
    return tl_fail(e, "%s: cannot take the run's lock", f->lock_path);
}

static void unlock_output(tl_finetune *f)
{
    if (f->lock_fd >= 0 && f->lock_path[0]) {
        unlink(f->lock_path);
        close(f->lock_fd);
    }
    f->lock_fd = -1;
}

int tl_finetune_setup(tl_finetune *f, const tl_finetune_opts *o, tl_log_fn log, void *log_user, tl_err *e)
{
    memset(f, 0, sizeof *f);
    f->lock_fd = -1;
    f->o = *o;
    if (f->o.lr < 0)
        f->o.lr = f->o.optimizer == TL_OPT_ADAMW ? 1e-3 : 0.01;
    if (f->o.label_smoothing < 0)
        f->o.label_smoothing = f->o.multilabel ? 0.0 : 0.1;
    f->device_out = is_device(o->out);
    if (!f->device_out) {
        /* OUT.safetensors -> OUT.resume.safetensors */
        size_t olen = strlen(o->out);
        if (olen > 12 && !strcmp(o->out + olen - 12, ".safetensors"))
            olen -= 12;
        snprintf(f->resume_path, sizeof f->resume_path, "%.*s.resume.safetensors", (int)olen, o->out);
        snprintf(f->lock_path, sizeof f->lock_path, "%s.lock", o->out);
    }
    if (o->resume && f->device_out) {
        tl_finetune_free(f);
        return tl_fail_arg(e, "--resume needs a file output, not %s", o->out);
    }
    /* the processes of one distributed run share the output: rank 0 locks */
    if (!f->device_out && (!o->comm || o->comm->rank == 0) && lock_output(f, e))
        goto fail;
    if (open_data(f, e) || (o->unlabelled && open_unlabelled(f, e)))
        goto fail;
    /* Memory follows the data, not the option: a batch larger than the
     * training set is one step of the whole set, the same steps and the
     * same weights as --batch N for N images, so buffers are sized for N.
     * The provenance records the batch that was used. */
    f->val_batch = (int)(f->nval < o->batch ? f->nval : o->batch);
    if (f->epoch_size < f->o.batch)
        f->o.batch = (int)f->epoch_size;
    if (build_net(f, log, log_user, e) || build_trainer(f, e) || provenance(f, e))
        goto fail;
    run_identity(f);
    if (o->augment) {
        tl_aug_opts aopts = {f->net.pp.input_w, f->net.pp.input_h, f->net.pp.resize_size, f->net.pp.resize_mode};
        if (!(f->aug = tl_aug_parse(o->augment, &aopts, e))) {
            e->kind = TL_ERR_ARG;
            tl_fail_prefix(e, "--augment");
            goto fail;
        }
    }
    if (!(f->pool = tl_pool_new(o->threads, e)))
        goto fail;
    const tl_source *tsrc = o->unlabelled ? &f->merged_src : &f->train.src;
    f->train_loader = tl_batch_loader_new(tsrc, &f->net.pp, f->aug, o->threads, e);
    f->val_loader = f->train_loader
                        ? tl_batch_loader_new(o->val ? &f->val.src : &f->train.src, &f->net.pp, NULL, o->threads, e)
                        : NULL;
    if (!f->val_loader)
        goto fail;
    tl_batch_loader_set_max_pixels(f->train_loader, o->max_pixels);
    tl_batch_loader_set_max_pixels(f->val_loader, o->max_pixels);
    /* What was made of the data, said once the run is set to start: a
     * usage error found while building stays a one-line message. */
    report_split(f, log, log_user);
    if (f->epoch_size < o->batch && log) {
        char msg[200];
        snprintf(msg, sizeof msg, "--batch %d is more than the %lld training images: batches of %lld", o->batch,
                 (long long)f->epoch_size, (long long)f->epoch_size);
        log(log_user, msg);
    }
    if (o->unlabelled) {
        int k = f->train.nclasses;
        double s = f->o.label_smoothing;
        tl_pseudo_net_setup ps = {tsrc, &f->net.pp, f->train_ids, f->ntrain, f->train.ds.n, f->nunl, f->unl_truth,
                                  1 - s + s / k, o->epochs, f->o.batch, o->threads, o->max_pixels, o->seed};
        if (!(f->pseudo = tl_pseudo_net_new(f->net.model, &ps, &o->pseudo, log, log_user, e)))
            goto fail;
        tl_batch_loader_set_labels(f->train_loader, tl_pseudo_net_labels(f->pseudo));
        f->relabel.epoch_ids = tl_pseudo_net_epoch_ids;
        f->relabel.after_epoch = tl_pseudo_net_after_epoch;
        f->relabel.state = tl_pseudo_net_state(f->pseudo, &f->relabel.nstate);
        f->relabel.user = f->pseudo;
    }
    return 0;
fail:
    tl_finetune_free(f);
    return -1;
}

int tl_finetune_run(tl_finetune *f, const tl_finetune_hooks *h, tl_fit_result *res, tl_err *e)
{
    tl_fit_opts fo = {0};
    fo.epochs = f->o.epochs;
    fo.batch = f->o.batch;
    fo.val_batch = f->val_batch;
    fo.seed = f->o.seed;
    fo.unfreeze_every = f->o.unfreeze_every;
    fo.patience = f->o.patience;
    fo.frozen = f->frozen;
    fo.out = f->o.out;
    fo.resume_path = f->device_out ? NULL : f->resume_path;
    fo.resume = f->o.resume;
    fo.accumulate = f->o.accumulate;
    fo.comm = f->o.comm;
    fo.meta = f->meta;
    fo.resume_meta = f->resume_meta;
    fo.stop = h->stop;
    fo.report = h->report;
    fo.progress = h->progress;
    fo.user = h->user;
    fo.sampler = f->o.sampler;
    fo.multilabel = f->o.multilabel;
    fo.relabel = f->pseudo ? &f->relabel : NULL;
    return tl_fit(&f->net, f->trainer, f->train_loader, f->train_ids, f->epoch_size, f->nval ? f->val_loader : NULL,
                  f->val_ids, f->nval, f->pool, &fo, res, e);
}

void tl_finetune_free(tl_finetune *f)
{
    unlock_output(f);
    tl_pseudo_net_free(f->pseudo);
    tl_batch_loader_free(f->train_loader);
    tl_batch_loader_free(f->val_loader);
    tl_dataset_free(&f->merged);
    free(f->unl_truth);
    tl_aug_free(f->aug);
    tl_trainer_free(f->trainer);
    tl_pool_free(f->pool);
    free(f->frozen);
    free(f->train_ids);
    free(f->val_ids);
    free(f->sched_spec);
    tl_free(f->weights_mem);
    free(f->classes_json);
    free(f->from);
    /* the network borrows the classes and metadata of others */
    tl_model_free(f->net.model);
    tl_net_free(&f->src);
    if (f->o.val)
        tl_train_data_free(&f->val);
    tl_train_data_free(&f->train);
    memset(f, 0, sizeof *f);
    f->lock_fd = -1;
}
