#include "load_params.h"
#include "image.h"
#include "models/vit.h"
#include "quant_load.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lists up to a few names so an error says exactly what did not match. */
static void list_names(char *buf, size_t n, const char *const *names, int count)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < count && len + 1 < n; i++) {
        if (i == 4) {
            snprintf(buf + len, n - len, ", ... (%d in all)", count);
            return;
        }
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", names[i]);
    }
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && len + 1 < n; d++)
        len += (size_t)snprintf(buf + len, n - len, d ? "x%lld" : "%lld", (long long)shape[d]);
}

static int compatible(const tl_param *p, const tl_st_tensor *t)
{
    if (t->numel != p->numel)
        return 0;
    if (t->ndim == p->ndim) {
        for (int d = 0; d < p->ndim; d++)
            if (t->shape[d] != p->shape[d])
                return 0;
        return 1;
    }
    return p->ndim >= 1 && t->ndim >= 1 && t->shape[0] == p->shape[0];
}

static int is_step_counter(const char *name)
{
    size_t len = strlen(name);
    return len >= 19 && !strcmp(name + len - 19, "num_batches_tracked");
}

/* The TOKENS node whose position embedding is parameter i, or -1. */
static int token_node(const tl_model *m, int i)
{
    for (int k = 0; k < m->nnodes; k++)
        if (m->nodes[k].op == TL_OP_TOKENS && m->nodes[k].extra[1] == i)
            return k;
    return -1;
}

/* The patch grid a stored position embedding of `tokens` rows was made
 * for: the file's own input size (tl.input_size) cut into patches when it
 * fits the count, else a square (torchvision and timm checkpoints carry
 * no size). */
static int stored_grid(const tl_st_file *f, const tl_conv_geom *patch, int64_t tokens, int *gh, int *gw,
                       tl_err *e)
{
    int w, h;
    if (tl_input_size_parse(tl_st_meta(f, "tl.input_size"), 1 << 16, &w, &h) == 0) {
        tl_conv_geom g = *patch;
        g.h = h;
        g.w = w;
        tl_conv_geom_finish(&g);
        if ((int64_t)g.oh * g.ow + 1 == tokens) {
            *gh = g.oh;
            *gw = g.ow;
            return 0;
        }
    }
    int64_t n = (int64_t)llround(sqrt((double)(tokens - 1)));
    if (tokens < 2 || n * n != tokens - 1)
        return tl_fail(e, "a position embedding of %lld tokens is neither a class token and a square grid nor "
                          "fits the stored tl.input_size", (long long)tokens);
    *gh = *gw = (int)n;
    return 0;
}

static int resize_pos_embedding(const tl_model *m, int tokens, const tl_st_file *f, const tl_st_tensor *t,
                                tl_param *p, tl_err *e)
{
    const tl_node *grid = &m->nodes[m->nodes[tokens].in[0]];
    int sgh = 0, sgw = 0;
    if (grid->op != TL_OP_CONV || stored_grid(f, &grid->geom, t->shape[1], &sgh, &sgw, e))
        return grid->op != TL_OP_CONV ? tl_fail(e, "position embedding without a patch embedding") : -1;
    float *tmp = tl_alloc_array((size_t)t->numel, sizeof(float));
    if (!tmp)
        return tl_fail(e, "out of memory");
    int bad = tl_st_load_f32(t, tmp, e) ||
              tl_vit_resize_pos_embedding(tmp, sgh, sgw, p->data, grid->h, grid->w, (int)p->shape[2], e);
    tl_free(tmp);
    return bad ? -1 : 0;
}

int tl_load_params(tl_model *m, const tl_st_file *f, tl_name_fn name_of, void *user, tl_err *e)
{
    const char **missing = calloc((size_t)m->nparams + 1, sizeof *missing);
    const char **unexpected = calloc((size_t)f->ntensors + 1, sizeof *unexpected);
    char *used = calloc((size_t)f->ntensors + 1, 1);
    int nmissing = 0, nunexpected = 0, rc = -1;
    if (!missing || !unexpected || !used) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->nparams; i++) {
        tl_param *p = &m->params[i];
        char buf[TL_NAME_MAX + 64];
        const char *name = name_of ? name_of(user, p->name, buf, sizeof buf) : p->name;
        const tl_st_tensor *t = tl_st_find(f, name);
        if (!t) {
            missing[nmissing++] = p->name;
            continue;
        }
        used[t - f->tensors] = 1;
        /* A ViT used at another input size than it was trained at: its
         * position embedding is resized as torchvision does. */
        int tokens = token_node(m, i);
        if (tokens >= 0 && t->ndim == 3 && p->ndim == 3 && t->shape[0] == 1 && t->shape[2] == p->shape[2] &&
            t->shape[1] != p->shape[1]) {
            if (resize_pos_embedding(m, tokens, f, t, p, e)) {
                tl_fail_prefix(e, "tensor '%s'", name);
                goto out;
            }
            continue;
        }
        if (!compatible(p, t)) {
            char have[96], want[96];
            shape_str(have, sizeof have, t->ndim, t->shape);
            shape_str(want, sizeof want, p->ndim, p->shape);
            tl_fail(e, "tensor '%s' has shape [%s], %s needs [%s]", name, have, m->arch, want);
            goto out;
        }
        /* an int8 checkpoint's integer weights, dequantised */
        int dq = tl_quant_dequantize(f, t, p->data, e);
        if (dq < 0 || (!dq && tl_st_load_f32(t, p->data, e)))
            goto out;
    }
    for (int i = 0; i < f->ntensors; i++)
        if (!used[i] && !is_step_counter(f->tensors[i].name) &&
            !(tl_st_meta(f, "tl.quant") && tl_quant_is_extra_tensor(f->tensors[i].name)))
            unexpected[nunexpected++] = f->tensors[i].name;
    char list[400];
    if (nmissing) {
        list_names(list, sizeof list, missing, nmissing);
        tl_fail(e, "%d tensor%s missing for %s: %s", nmissing, nmissing > 1 ? "s" : "", m->arch, list);
    } else if (nunexpected) {
        list_names(list, sizeof list, unexpected, nunexpected);
        tl_fail(e, "%d unexpected tensor%s for %s: %s", nunexpected, nunexpected > 1 ? "s" : "", m->arch, list);
    } else {
        rc = 0;
    }
out:
    free(missing);
    free(unexpected);
    free(used);
    return rc;
}
