#include "onnx_graph.h"

#include <stdlib.h>
#include <string.h>

static void *grow(ox_graph *g, void *arr, int *cap, int count, size_t size)
{
    if (count < *cap)
        return arr;
    int nc = *cap ? 2 * *cap : 64;
    void *p = realloc(arr, (size_t)nc * size);
    if (!p) {
        g->oom = 1;
        return NULL;
    }
    *cap = nc;
    return p;
}

static char *odup(ox_graph *g, const char *s)
{
    char *d = tl_strdup(s);
    if (!d)
        g->oom = 1;
    return d;
}

void ox_graph_free(ox_graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        ox_node *n = &g->nodes[i];
        free(n->name);
        for (int k = 0; k < n->nin; k++)
            free(n->in[k]);
        for (int k = 0; k < n->nout; k++)
            free(n->out[k]);
    }
    for (int i = 0; i < g->ninits; i++) {
        free(g->inits[i].name);
        free(g->inits[i].owned);
    }
    for (int i = 0; i < g->nmeta; i++) {
        free(g->meta_keys[i]);
        free(g->meta_values[i]);
    }
    free(g->nodes);
    free(g->inits);
    free(g->meta_keys);
    free(g->meta_values);
    free(g->input.name);
    free(g->output.name);
    free(g->name);
    memset(g, 0, sizeof *g);
}

ox_node *ox_node_add(ox_graph *g, const char *op, const char *name, const char *const *in, int nin, const char *out)
{
    if (g->oom || nin > OX_MAX_IN)
        return NULL;
    ox_node *nodes = grow(g, g->nodes, &g->cap_nodes, g->nnodes, sizeof *nodes);
    if (!nodes)
        return NULL;
    g->nodes = nodes;
    ox_node *n = &nodes[g->nnodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = odup(g, name);
    for (int k = 0; k < nin; k++)
        n->in[n->nin++] = odup(g, in[k]);
    n->out[n->nout++] = odup(g, out);
    return g->oom ? NULL : n;
}

void ox_node_output(ox_graph *g, ox_node *n, const char *out)
{
    if (n && n->nout < OX_MAX_OUT)
        n->out[n->nout++] = odup(g, out);
}

static ox_attr *attr(ox_node *n, const char *name, int type)
{
    if (!n || n->nattr == OX_MAX_ATTR)
        return NULL;
    ox_attr *a = &n->attr[n->nattr++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->type = type;
    return a;
}

void ox_attr_int(ox_node *n, const char *name, int64_t v)
{
    ox_attr *a = attr(n, name, OXA_INT);
    if (a)
        a->i = v;
}

void ox_attr_float(ox_node *n, const char *name, float v)
{
    ox_attr *a = attr(n, name, OXA_FLOAT);
    if (a)
        a->f = v;
}

void ox_attr_ints(ox_node *n, const char *name, const int64_t *v, int count)
{
    ox_attr *a = attr(n, name, OXA_INTS);
    if (!a)
        return;
    a->nints = count < OX_MAX_INTS ? count : OX_MAX_INTS;
    memcpy(a->ints, v, (size_t)a->nints * sizeof *v);
}

static ox_tensor *init_add(ox_graph *g, const char *name, int dtype, int ndim, const int64_t *dims)
{
    if (g->oom || ndim > OX_MAX_DIMS)
        return NULL;
    ox_tensor *t = grow(g, g->inits, &g->cap_inits, g->ninits, sizeof *t);
    if (!t)
        return NULL;
    g->inits = t;
    t = &t[g->ninits++];
    memset(t, 0, sizeof *t);
    t->name = odup(g, name);
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim > 0)
        memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
    return t;
}

void ox_init_borrow(ox_graph *g, const char *name, int ndim, const int64_t *dims, const float *data, int transposed)
{
    ox_tensor *t = init_add(g, name, OX_FLOAT, ndim, dims);
    if (t) {
        t->data = data;
        t->transposed = transposed && ndim == 2;
    }
}

void ox_init_copy(ox_graph *g, const char *name, int dtype, int ndim, const int64_t *dims, const void *data)
{
    ox_tensor *t = init_add(g, name, dtype, ndim, dims);
    if (!t)
        return;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)dims[i];
    size_t bytes = n * (dtype == OX_INT64 ? 8 : dtype == OX_UINT8 ? 1 : 4);
    t->owned = malloc(bytes ? bytes : 1);
    if (!t->owned) {
        g->oom = 1;
        return;
    }
    memcpy(t->owned, data, bytes);
    t->data = t->owned;
}

int ox_init_exists(const ox_graph *g, const char *name)
{
    for (int i = 0; i < g->ninits; i++)
        if (g->inits[i].name && !strcmp(g->inits[i].name, name))
            return 1;
    return 0;
}

void ox_meta(ox_graph *g, const char *key, const char *value)
{
    if (g->oom)
        return;
    for (int i = 0; i < g->nmeta; i++)
        if (!strcmp(g->meta_keys[i], key)) {
            char *v = odup(g, value);
            if (v) {
                free(g->meta_values[i]);
                g->meta_values[i] = v;
            }
            return;
        }
    int cap = g->cap_meta;
    char **k = grow(g, g->meta_keys, &cap, g->nmeta, sizeof *k);
    if (!k)
        return;
    g->meta_keys = k;
    cap = g->cap_meta;
    char **v = grow(g, g->meta_values, &cap, g->nmeta, sizeof *v);
    if (!v)
        return;
    g->meta_values = v;
    g->cap_meta = cap;
    g->meta_keys[g->nmeta] = odup(g, key);
    g->meta_values[g->nmeta] = odup(g, value);
    g->nmeta++;
}

void ox_set_io(ox_graph *g, ox_io *io, const char *name, int dtype, int ndim, const int64_t *dims)
{
    free(io->name);
    io->name = odup(g, name);
    io->dtype = dtype;
    io->ndim = ndim < OX_MAX_DIMS ? ndim : OX_MAX_DIMS;
    memcpy(io->dims, dims, (size_t)io->ndim * sizeof *dims);
}
