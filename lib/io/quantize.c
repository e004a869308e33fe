/* Post-training int8 quantisation: which layers, BN folding, activation
 * calibration (two passes over the images: ranges, then histograms) and
 * the int8 checkpoint writer. */
#include "quantize.h"
#include "dataset.h"
#include "json.h"
#include "nn/infer.h"
#include "nn/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBINS 2048

void tl_quantize_opts_default(tl_quantize_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_images = 256;
    o->method = TL_CALIB_MSE;
    o->percentile = 99.99;
    o->weight_bits = 8;
    o->batch = 8;
}

typedef struct {
    int node;
    double lo, hi;             /* pass 1: observed range */
    double *hist;              /* pass 2: counts over [lo, hi] without exact zeros */
    double zeros;
    float scale;
    int zero;
} value_stat;

typedef struct {
    int *layer;                /* conv/linear nodes quantised */
    int nlayer;
    value_stat *vals;
    int nvals;
    int *val_of_node;          /* per node: index into vals or -1 */
} plan;

static int resolve_dropout(const tl_model *m, int v)
{
    while (v > 0 && m->nodes[v].op == TL_OP_DROPOUT)
        v = m->nodes[v].in[0];
    return v;
}

/* The value whose parameters a layer reading v takes: through dropouts
 * and max pools, which keep their input's parameters (TFLite's rule for
 * MAX_POOL_2D), so the engine pools in uint8 and needs no rescaling
 * after it (ResNet's stem). */
static int param_value(const tl_model *m, int v)
{
    v = resolve_dropout(m, v);
    while (v > 0 && m->nodes[v].op == TL_OP_MAXPOOL)
        v = resolve_dropout(m, m->nodes[v].in[0]);
    return v;
}

static int kept_by_name(const tl_quantize_opts *o, const char *wname)
{
    for (int k = 0; k < o->nkeep; k++) {
        size_t n = strlen(o->keep_float[k]);
        if (!strncmp(wname, o->keep_float[k], n) && (wname[n] == '.' || wname[n] == '\0'))
            return 1;
    }
    return 0;
}

/* Can the int8 kernels run this layer at all? */
static int quantisable(const tl_model *m, const tl_node *n)
{
    if (n->op == TL_OP_LINEAR)
        return m->nodes[resolve_dropout(m, n->in[0])].op == TL_OP_GAP;
    const tl_conv_geom *g = &n->geom;
    return g->kh * g->kw <= 64 && (g->groups == 1 || (g->groups == g->cin && g->cin == g->cout));
}

static int choose_layers(const tl_model *m, const tl_quantize_opts *o, plan *p, int *kept, tl_err *e)
{
    int first = -1;
    for (int i = 0; i < m->nnodes && first < 0; i++)
        if (m->nodes[i].op == TL_OP_CONV)
            first = i;
    p->layer = malloc((size_t)m->nnodes * sizeof *p->layer);
    if (!p->layer)
        return tl_fail(e, "out of memory");
    for (int k = 0; k < o->nkeep; k++) {
        int found = 0;
        for (int i = 0; i < m->nparams && !found; i++)
            found = !strncmp(m->params[i].name, o->keep_float[k], strlen(o->keep_float[k])) &&
                    (m->params[i].name[strlen(o->keep_float[k])] == '.');
        if (!found)
            return tl_fail_arg(e, "--keep-float: no layer named '%s' (tl-info lists them)", o->keep_float[k]);
    }
    *kept = 0;
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        if ((n->op != TL_OP_CONV && n->op != TL_OP_LINEAR) || n->weight < 0)
            continue;
        int classifier = m->features_node > 0 && i > m->features_node;
        int keep = kept_by_name(o, m->params[n->weight].name) || !quantisable(m, n) ||
                   (!o->quantize_ends && (i == first || classifier || n->op == TL_OP_LINEAR));
        if (keep)
            (*kept)++;
        else
            p->layer[p->nlayer++] = i;
    }
    if (!p->nlayer)
        return tl_fail(e, "no layer left to quantise");
    return 0;
}

static int add_value(const tl_model *m, plan *p, int v)
{
    if (p->val_of_node[v] >= 0)
        return 0;
    p->val_of_node[v] = p->nvals;
    value_stat *s = &p->vals[p->nvals++];
    memset(s, 0, sizeof *s);
    s->node = v;
    s->lo = INFINITY;
    s->hi = -INFINITY;
    (void)m;
    return 0;
}

/* Folds each quantised convolution's batch norm into its weights and
 * bias, leaving the batch norm as the identity plus a bias. */
static void fold_bn(tl_model *m, int conv)
{
    if (conv + 1 >= m->nnodes || m->nodes[conv + 1].op != TL_OP_BN || m->nodes[conv + 1].in[0] != conv)
        return;
    const tl_node *n = &m->nodes[conv], *bn = &m->nodes[conv + 1];
    float *w = m->params[n->weight].data, *cb = n->bias >= 0 ? m->params[n->bias].data : NULL;
    float *g = m->params[bn->weight].data, *beta = m->params[bn->bias].data;
    float *mu = m->params[bn->running_mean].data, *var = m->params[bn->running_var].data;
    size_t per = (size_t)(m->params[n->weight].numel / n->c);
    for (int o = 0; o < n->c; o++) {
        double scale = g[o] / sqrt((double)var[o] + bn->eps);
        double shift = ((cb ? cb[o] : 0) - mu[o]) * scale + beta[o];
        for (size_t j = 0; j < per; j++)
            w[o * per + j] = (float)(w[o * per + j] * scale);
        if (cb)
            cb[o] = 0;
        g[o] = 1;
        mu[o] = 0;
        var[o] = 1 - bn->eps;
        beta[o] = (float)shift;
    }
}

/* The range to quantise a value to, from its histogram. */
static void choose_range(const value_stat *s, const tl_quantize_opts *o, double *lo, double *hi)
{
    double L = s->lo < 0 ? s->lo : 0, H = s->hi > 0 ? s->hi : 0, w = (H - L) / NBINS;
    *lo = L;
    *hi = H;
    if (!(w > 0) || o->method == TL_CALIB_MINMAX)
        return;
    double total = s->zeros;
    for (int i = 0; i < NBINS; i++)
        total += s->hist[i];
    if (o->method == TL_CALIB_PERCENTILE) {
        double cut = total * (1 - o->percentile / 100) / (L < 0 ? 2 : 1), acc = 0;
        int a = 0, b = NBINS;
        if (L < 0)
            for (; a < NBINS && acc + s->hist[a] <= cut; a++)
                acc += s->hist[a];
        acc = 0;
        for (; b > 0 && acc + s->hist[b - 1] <= cut; b--)
            acc += s->hist[b - 1];
        *lo = fmin(0, L + a * w);
        *hi = fmax(0, L + b * w);
        return;
    }
    /* MSE: clipping error outside [lo, hi] plus the rounding error step^2/12
     * of every value inside it (exact zeros are represented exactly) */
    double *P0 = malloc((NBINS + 1) * 3 * sizeof *P0), *P1 = P0 + NBINS + 1, *P2 = P1 + NBINS + 1;
    if (!P0)
        return;
    P0[0] = P1[0] = P2[0] = 0;
    for (int i = 0; i < NBINS; i++) {
        double c = L + (i + 0.5) * w, h = s->hist[i];
        P0[i + 1] = P0[i] + h;
        P1[i + 1] = P1[i] + h * c;
        P2[i + 1] = P2[i] + h * c * c;
    }
    int zbin = (int)floor(-L / w);
    zbin = zbin < 0 ? 0 : zbin > NBINS ? NBINS : zbin;
    int sa = zbin / 256 + 1, sb = (NBINS - zbin) / 256 + 1;
    double best = INFINITY;
    for (int a = 0; a <= zbin; a += sa)
        for (int b = NBINS; b >= zbin; b -= sb) {
            double lo_ = L + a * w, hi_ = L + b * w;
            if (hi_ - lo_ <= 0)
                continue;
            double step = (hi_ - lo_) / 255;
            double err = P2[a] - 2 * lo_ * P1[a] + lo_ * lo_ * P0[a];
            err += (P2[NBINS] - P2[b]) - 2 * hi_ * (P1[NBINS] - P1[b]) + hi_ * hi_ * (P0[NBINS] - P0[b]);
            err += (P0[b] - P0[a]) * step * step / 12;
            if (err < best) {
                best = err;
                *lo = lo_;
                *hi = hi_;
            }
        }
    free(P0);
}

static void finish_params(value_stat *s, const tl_quantize_opts *o)
{
    double lo, hi;
    choose_range(s, o, &lo, &hi);
    lo = fmin(lo, 0);
    hi = fmax(hi, 0);
    double scale = (hi - lo) / 255;
    if (!(scale > 1e-12))
        scale = 1e-12;
    int z = (int)lround(-lo / scale);
    s->scale = (float)scale;
    s->zero = z < 0 ? 0 : z > 255 ? 255 : z;
}

typedef struct {
    const tl_net *net;
    const tl_dataset *d;
    const int64_t *pick;
    int64_t first;
    float *input;
    size_t in_len;
    int *ok;
    tl_err *errs;
    tl_image *img;
    tl_preproc_ws *ws;
    size_t max_pixels;
} load_ctx;

static void load_range(void *ctx, int64_t begin, int64_t end, int w)
{
    load_ctx *lc = ctx;
    for (int64_t i = begin; i < end; i++) {
        const char *path = lc->d->items[lc->pick[lc->first + i]].path;
        lc->ok[i] = tl_image_decode_file(path, &lc->img[w], lc->max_pixels, &lc->errs[i]) == 0 &&
                    tl_preprocess(&lc->img[w], &lc->net->pp, lc->input + (size_t)i * lc->in_len, &lc->ws[w],
                                  &lc->errs[i]) == 0;
    }
}

typedef struct {
    plan *p;
    float **outs;
    const tl_model *m;
    int rows, pass;
} stat_ctx;

static void stat_range(void *ctx, int64_t begin, int64_t end, int w)
{
    stat_ctx *sc = ctx;
    (void)w;
    for (int64_t k = begin; k < end; k++) {
        value_stat *s = &sc->p->vals[k];
        size_t len = (size_t)tl_node_size(&sc->m->nodes[s->node]) * sc->rows;
        const float *v = sc->outs[k];
        if (sc->pass == 0) {
            for (size_t i = 0; i < len; i++) {
                s->lo = v[i] < s->lo ? v[i] : s->lo;
                s->hi = v[i] > s->hi ? v[i] : s->hi;
            }
            continue;
        }
        double L = s->lo < 0 ? s->lo : 0, H = s->hi > 0 ? s->hi : 0, inv = H > L ? NBINS / (H - L) : 0;
        for (size_t i = 0; i < len; i++) {
            if (v[i] == 0) {
                s->zeros++;
                continue;
            }
            int b = (int)((v[i] - L) * inv);
            s->hist[b < 0 ? 0 : b >= NBINS ? NBINS - 1 : b]++;
        }
    }
}

/* Runs the float network over the calibration images twice: ranges, then
 * histograms over those ranges. */
static int calibrate(tl_net *net, const tl_quantize_opts *o, plan *p, tl_pool *pool, int nthreads, int *used,
                     tl_err *e)
{
    const tl_model *m = net->model;
    tl_dataset d;
    if (tl_dataset_open(o->calibrate, &d, e))
        return tl_fail_prefix(e, "--calibrate");
    if (d.n == 0) {
        tl_dataset_free(&d);
        return tl_fail(e, "%s: no images to calibrate on", o->calibrate);
    }
    int64_t n = d.n < o->max_images ? d.n : o->max_images;
    int64_t *pick = malloc((size_t)n * sizeof *pick);
    int *nodes = malloc((size_t)p->nvals * sizeof *nodes);
    float **outs = calloc((size_t)p->nvals, sizeof *outs);
    int b = o->batch < 1 ? 1 : o->batch, nw = nthreads < 1 ? 1 : nthreads;
    size_t in_len = (size_t)m->in_c * m->in_h * m->in_w;
    load_ctx lc = {.net = net, .d = &d, .in_len = in_len, .max_pixels = o->max_pixels};
    lc.input = tl_alloc_array((size_t)b * in_len, sizeof(float));
    lc.ok = calloc((size_t)b, sizeof *lc.ok);
    lc.errs = calloc((size_t)b, sizeof *lc.errs);
    lc.img = calloc((size_t)nw, sizeof *lc.img);
    lc.ws = calloc((size_t)nw, sizeof *lc.ws);
    tl_infer *inf = NULL;
    float **reqs = NULL;
    int rc = -1, nreq = 0;
    if (!pick || !nodes || !outs || !lc.input || !lc.ok || !lc.errs || !lc.img || !lc.ws) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n; i++)
        pick[i] = i * d.n / n; /* evenly spaced, so every class of a sorted set shows */
    lc.pick = pick;
    /* the network's outputs for every value but the input image, which
     * the statistics read straight from the batch */
    reqs = calloc((size_t)p->nvals + 1, sizeof *reqs);
    if (!reqs) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int k = 0; k < p->nvals; k++) {
        int node = p->vals[k].node;
        outs[k] = node ? tl_alloc_array((size_t)b * tl_node_size(&m->nodes[node]), sizeof(float)) : lc.input;
        if (node) {
            nodes[nreq] = node;
            reqs[nreq++] = outs[k];
        }
        p->vals[k].hist = calloc(NBINS, sizeof(double));
        if (!outs[k] || !p->vals[k].hist) {
            tl_fail(e, "out of memory for calibration (%d values of a batch of %d)", p->nvals, b);
            goto out;
        }
    }
    inf = tl_infer_new(m, nw, nodes, nreq, e);
    if (!inf)
        goto out;
    *used = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t first = 0; first < n; first += b) {
            int count = (int)(n - first < b ? n - first : b);
            lc.first = first;
            tl_parallel_for(pool, count, 1, load_range, &lc);
            int good = 0;
            for (int i = 0; i < count; i++) {
                if (!lc.ok[i]) {
                    *e = lc.errs[i];
                    goto out;
                }
                good++;
            }
            tl_infer_run(inf, pool, good, lc.input, reqs);
            stat_ctx sc = {p, outs, m, good, pass};
            tl_parallel_for(pool, p->nvals, 1, stat_range, &sc);
            if (pass == 0)
                *used += good;
        }
    for (int k = 0; k < p->nvals; k++)
        finish_params(&p->vals[k], o);
    rc = 0;
out:
    free(reqs);
    tl_infer_free(inf);
    for (int k = 0; k < p->nvals && outs; k++)
        if (outs[k] != lc.input)
            tl_free(outs[k]);
    free(outs);
    free(nodes);
    free(pick);
    tl_free(lc.input);
    free(lc.ok);
    free(lc.errs);
    for (int w = 0; w < nw && lc.img; w++) {
        tl_image_free(&lc.img[w]);
        tl_preproc_ws_free(&lc.ws[w]);
    }
    free(lc.img);
    free(lc.ws);
    tl_dataset_free(&d);
    return rc;
}

/* One quantised layer's tensors, ready for the writer. */
typedef struct {
    int node;
    int8_t *q;
    float *wscale;
    int32_t *bias;
    float in_scale, out_scale;
    int32_t in_zero, out_zero;
} qtensors;

static int quantise_weights(const tl_model *m, const tl_quantize_opts *o, const value_stat *in,
                            const value_stat *out, int node, qtensors *t, tl_err *e)
{
    const tl_node *n = &m->nodes[node];
    const tl_param *wp = &m->params[n->weight];
    int cout = n->c;
    size_t per = (size_t)(wp->numel / cout);
    t->node = node;
    t->q = malloc((size_t)wp->numel);
    t->wscale = malloc((size_t)cout * sizeof *t->wscale);
    t->bias = malloc((size_t)cout * sizeof *t->bias);
    if (!t->q || !t->wscale || !t->bias)
        return tl_fail(e, "out of memory");
    int qmax = o->weight_bits == 7 ? 63 : 127;
    /* the float bias of the output: the folded BN's shift or the layer's own */
    const float *b = NULL;
    if (n->op == TL_OP_CONV && node + 1 < m->nnodes && m->nodes[node + 1].op == TL_OP_BN &&
        m->nodes[node + 1].in[0] == node)
        b = m->params[m->nodes[node + 1].bias].data;
    else if (n->bias >= 0)
        b = m->params[n->bias].data;
    for (int c = 0; c < cout; c++) {
        const float *w = wp->data + c * per;
        double amax = 0;
        for (size_t j = 0; j < per; j++)
            amax = fmax(amax, fabs(w[j]));
        double s = amax > 0 ? amax / qmax : 1.0;
        t->wscale[c] = (float)s;
        s = t->wscale[c];
        for (size_t j = 0; j < per; j++) {
            long v = lround(w[j] / s);
            t->q[c * per + j] = (int8_t)(v < -qmax ? -qmax : v > qmax ? qmax : v);
        }
        double bq = b ? round(b[c] / ((double)in->scale * s)) : 0;
        t->bias[c] = (int32_t)(bq > 2147483647.0 ? 2147483647.0 : bq < -2147483648.0 ? -2147483648.0 : bq);
    }
    t->in_scale = in->scale;
    t->in_zero = in->zero;
    t->out_scale = out->scale;
    t->out_zero = out->zero;
    return 0;
}

static int is_bn_of(const tl_model *m, const qtensors *t, int nq, int param)
{
    for (int k = 0; k < nq; k++) {
        int node = t[k].node;
        if (m->nodes[node].op == TL_OP_CONV && node + 1 < m->nnodes && m->nodes[node + 1].op == TL_OP_BN &&
            m->nodes[node + 1].in[0] == node) {
            const tl_node *bn = &m->nodes[node + 1];
            if (param == bn->weight || param == bn->bias || param == bn->running_mean || param == bn->running_var)
                return 1;
        }
    }
    return 0;
}

static char *json_list(const tl_model *m, const plan *p)
{
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[len++] = '[';
    int first = 1;
    for (int i = 0; i < m->nnodes; i++) {
        const tl_node *n = &m->nodes[i];
        if ((n->op != TL_OP_CONV && n->op != TL_OP_LINEAR) || n->weight < 0)
            continue;
        int q = 0;
        for (int k = 0; k < p->nlayer && !q; k++)
            q = p->layer[k] == i;
        if (q)
            continue;
        const char *name = m->params[n->weight].name;
        size_t nl = strlen(name) - 7; /* ".weight" */
        if (len + nl + 8 > cap) {
            cap = (len + nl + 8) * 2;
            char *ns = realloc(s, cap);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
        }
        len += (size_t)sprintf(s + len, "%s\"%.*s\"", first ? "" : ", ", (int)nl, name);
        first = 0;
    }
    s[len++] = ']';
    s[len] = '\0';
    return s;
}

static int write_checkpoint(const tl_net *net, const plan *p, const qtensors *t, const tl_quantize_opts *o,
                            int images, const char *out, tl_err *e)
{
    const tl_model *m = net->model;
    tl_st_writer *w = tl_st_writer_new();
    char (*names)[TL_NAME_MAX + 32] = calloc((size_t)p->nlayer * 6 + (size_t)m->nparams + 1, sizeof *names);
    int ni = 0, rc = -1;
    char *floats = json_list(m, p);
    if (!w || !names || !floats) {
        tl_fail(e, "out of memory");
        goto done;
    }
    static const int64_t zero64 = 0;
    int64_t none[1];
    for (int i = 0; i < m->nparams; i++) {
        const tl_param *pr = &m->params[i];
        const qtensors *qt = NULL;
        for (int k = 0; k < p->nlayer && !qt; k++)
            if (m->nodes[t[k].node].weight == i)
                qt = &t[k];
        if (qt) {
            size_t base = strlen(pr->name) - 7;
            int64_t cout = pr->shape[0];
            if (tl_st_add(w, pr->name, TL_I8, pr->ndim, pr->shape, qt->q, e))
                goto done;
            struct {
                const char *suffix;
                tl_dtype dt;
                int ndim;
                const void *data;
            } ex[] = {{".weight_scale", TL_F32, 1, qt->wscale}, {".bias_int32", TL_I32, 1, qt->bias},
                      {".input_scale", TL_F32, 0, &qt->in_scale}, {".input_zero_point", TL_I32, 0, &qt->in_zero},
                      {".output_scale", TL_F32, 0, &qt->out_scale}, {".output_zero_point", TL_I32, 0, &qt->out_zero}};
            for (size_t k = 0; k < sizeof ex / sizeof *ex; k++) {
                snprintf(names[ni], sizeof names[ni], "%.*s%s", (int)base, pr->name, ex[k].suffix);
                if (tl_st_add(w, names[ni++], ex[k].dt, ex[k].ndim, &cout, ex[k].data, e))
                    goto done;
            }
            continue;
        }
        if (tl_st_add(w, pr->name, TL_F32, pr->ndim, pr->shape, pr->data, e))
            goto done;
        size_t len = strlen(pr->name);
        if (len > 12 && !strcmp(pr->name + len - 12, ".running_var")) {
            snprintf(names[ni], sizeof names[ni], "%.*s.num_batches_tracked", (int)(len - 12), pr->name);
            if (tl_st_add(w, names[ni++], TL_I64, 0, none, &zero64, e))
                goto done;
        }
        (void)is_bn_of;
    }
    for (int i = 0; i < net->nmeta; i++)
        if (strncmp(net->meta_keys[i], "tl.quant", 8) && tl_st_set_meta(w, net->meta_keys[i], net->meta_values[i], e))
            goto done;
    static const char *const methods[] = {"mse", "minmax", "percentile"};
    char calib[600], src[512];
    if (o->method == TL_CALIB_PERCENTILE)
        snprintf(calib, sizeof calib, "percentile %.6g, %d images of %s", o->percentile, images, o->calibrate);
    else
        snprintf(calib, sizeof calib, "%s, %d images of %s", methods[o->method], images, o->calibrate);
    const char *base = strrchr(net->path ? net->path : "", '/');
    snprintf(src, sizeof src, "%s", base ? base + 1 : net->path ? net->path : "");
    char bits[8];
    snprintf(bits, sizeof bits, "%d", o->weight_bits);
    if (tl_st_set_meta(w, "tl.quant", "int8", e) || tl_st_set_meta(w, "tl.quant.calibration", calib, e) ||
        tl_st_set_meta(w, "tl.quant.weight_bits", bits, e) || tl_st_set_meta(w, "tl.quant.float_layers", floats, e) ||
        tl_st_set_meta(w, "tl.quant.source", src, e))
        goto done;
    rc = tl_st_write(w, out, e);
done:
    tl_st_writer_free(w);
    free(names);
    free(floats);
    return rc;
}

int tl_quantize(tl_net *net, const tl_quantize_opts *o, tl_pool *pool, int nthreads, const char *out,
                tl_log_fn log, void *log_user, tl_quantize_report *rep, tl_err *e)
{
    tl_model *m = net->model;
    memset(rep, 0, sizeof *rep);
    double t0 = tl_now();
    if (m->quant)
        return tl_fail_arg(e, "%s: already an int8 checkpoint", net->path ? net->path : "model");
    for (int i = 1; i < m->nnodes; i++)
        if (!tl_quant_op_supported(m->nodes[i].op))
            return tl_fail_arg(e, "%s: the int8 engine runs convolutional networks; %s has other operations", m->arch,
                               m->arch);
    plan p = {0};
    qtensors *t = NULL;
    int rc = -1, kept = 0;
    p.val_of_node = malloc((size_t)m->nnodes * sizeof *p.val_of_node);
    p.vals = calloc((size_t)m->nnodes, sizeof *p.vals);
    if (!p.val_of_node || !p.vals) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->nnodes; i++)
        p.val_of_node[i] = -1;
    if (choose_layers(m, o, &p, &kept, e))
        goto out;
    for (int k = 0; k < p.nlayer; k++) {
        int node = p.layer[k];
        if (m->nodes[node].op == TL_OP_CONV)
            fold_bn(m, node);
        add_value(m, &p, param_value(m, m->nodes[node].in[0]));
        add_value(m, &p, tl_quant_fused_end(m, node));
    }
    if (log) {
        char msg[256];
        snprintf(msg, sizeof msg, "%d layers to int8, %d kept in float; calibrating %d values on %s", p.nlayer, kept,
                 p.nvals, o->calibrate);
        log(log_user, msg);
    }
    if (calibrate(net, o, &p, pool, nthreads, &rep->images, e))
        goto out;
    t = calloc((size_t)p.nlayer, sizeof *t);
    if (!t) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int k = 0; k < p.nlayer; k++) {
        int node = p.layer[k];
        const value_stat *in = &p.vals[p.val_of_node[param_value(m, m->nodes[node].in[0])]];
        const value_stat *ov = &p.vals[p.val_of_node[tl_quant_fused_end(m, node)]];
        if (quantise_weights(m, o, in, ov, node, &t[k], e))
            goto out;
    }
    rc = write_checkpoint(net, &p, t, o, rep->images, out, e);
    rep->quantized = p.nlayer;
    rep->kept_float = kept;
out:
    for (int k = 0; t && k < p.nlayer; k++) {
        free(t[k].q);
        free(t[k].wscale);
        free(t[k].bias);
    }
    free(t);
    for (int k = 0; k < p.nvals; k++)
        free(p.vals[k].hist);
    free(p.vals);
    free(p.val_of_node);
    free(p.layer);
    rep->seconds = tl_now() - t0;
    return rc;
}
