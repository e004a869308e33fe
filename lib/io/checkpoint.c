#include "checkpoint.h"
#include "load_params.h"
#include "quant_load.h"
#include "format_version.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int tl_model_locate(const char *name, char *out, size_t outlen, tl_err *e)
{
    if (is_file(name)) {
        snprintf(out, outlen, "%s", name);
        return 0;
    }
    if (strchr(name, '/')) {
        snprintf(out, outlen, "%s.safetensors", name);
        if (is_file(out))
            return 0;
        return tl_fail(e, "%s: no such model file", name);
    }
    const char *mp = getenv("TL_MODEL_PATH");
    if (mp) {
        const char *s = mp;
        while (*s) {
            size_t n = strcspn(s, ":");
            if (n) {
                static const char *const suffixes[] = {"", ".safetensors"};
                for (int k = 0; k < 2; k++) {
                    snprintf(out, outlen, "%.*s/%s%s", (int)n, s, name, suffixes[k]);
                    if (is_file(out))
                        return 0;
                }
            }
            s += n;
            if (*s == ':')
                s++;
        }
    }
    return tl_fail(e, "%s: no such model file%s", name, mp ? " (nor in $TL_MODEL_PATH)" : " ($TL_MODEL_PATH is not set)");
}

static int meta_int(const tl_st_file *f, const char *key, int def, int lo, int hi, int *out, tl_err *e)
{
    const char *v = tl_st_meta(f, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return tl_fail(e, "metadata %s = '%.40s' is not an integer in %d..%d", key, v, lo, hi);
    *out = (int)x;
    return 0;
}

/* A finite number in [lo, hi] (hi_open: hi itself excluded), finite also
 * as a float: "inf", "nan" or "1e39" would make every output garbage. */
static int meta_float(const tl_st_file *f, const char *key, float def, double lo, double hi, int hi_open, float *out,
                      tl_err *e)
{
    const char *v = tl_st_meta(f, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite((float)x))
        return tl_fail(e, "metadata %s = '%.40s' is not a finite number", key, v);
    /* tl.dropout -1 is "the architecture's default", as tl-finetune writes it */
    int marker = !strcmp(key, "tl.dropout") && x == -1;
    if (!marker && (x < lo || x > hi || (hi_open && x == hi)))
        return tl_fail(e, "metadata %s = '%.40s' is outside [%g, %g%s", key, v, lo, hi, hi_open ? ")" : "]");
    *out = (float)x;
    return 0;
}

/* tl.input_size: "224" or "320x224" (width x height). */
static int meta_input_size(const tl_st_file *f, int *w, int *h, tl_err *e)
{
    const char *v = tl_st_meta(f, "tl.input_size");
    if (!v) {
        *w = *h = 224;
        return 0;
    }
    if (tl_input_size_parse(v, 4096, w, h) || *w < 8 || *h < 8)
        return tl_fail(e, "metadata tl.input_size = '%.40s' is not a size N or WxH with sides in 8..4096", v);
    return 0;
}

int tl_preproc_from_meta(const tl_st_file *f, tl_preproc *pp, tl_err *e)
{
    tl_preproc_default(pp);
    if (meta_input_size(f, &pp->input_w, &pp->input_h, e))
        return -1;
    int side = pp->input_w < pp->input_h ? pp->input_w : pp->input_h;
    int def_resize = tl_st_meta(f, "tl.input_size") ? (side * 256 + 112) / 224 : 256;
    if (meta_int(f, "tl.resize_size", def_resize, 8, 8192, &pp->resize_size, e))
        return -1;
    if (pp->resize_size < side)
        return tl_fail(e, "metadata tl.resize_size %d is smaller than the input's side %d", pp->resize_size, side);
    /* Before tl.resize_mode existed, a resize size equal to the input meant
     * "resize straight to it", anything larger torchvision's crop. */
    const char *mode = tl_st_meta(f, "tl.resize_mode");
    pp->resize_mode = mode ? tl_resize_mode_parse(mode) : pp->resize_size == side ? TL_RESIZE_SQUASH : TL_RESIZE_CROP;
    if (pp->resize_mode < 0)
        return tl_fail(e, "metadata tl.resize_mode '%.20s' is not crop, squash or pad", mode);
    const char *v;
    if ((v = tl_st_meta(f, "tl.mean")) && tl_json_parse_floats(v, pp->mean, 3, e))
        return tl_fail_prefix(e, "metadata tl.mean");
    if ((v = tl_st_meta(f, "tl.std")) && tl_json_parse_floats(v, pp->std, 3, e))
        return tl_fail_prefix(e, "metadata tl.std");
    for (int c = 0; c < 3; c++)
        if (!(pp->std[c] > 0))
            return tl_fail(e, "metadata tl.std must be positive");
    /* finite and not so small that 1/std overflows */
    for (int c = 0; c < 3; c++)
        if (!isfinite(1.0f / pp->std[c]))
            return tl_fail(e, "metadata tl.std %g is too small", (double)pp->std[c]);
    if ((v = tl_st_meta(f, "tl.channel_order"))) {
        if (!strcmp(v, "BGR"))
            pp->bgr = 1;
        else if (strcmp(v, "RGB"))
            return tl_fail(e, "metadata tl.channel_order '%.20s' is neither RGB nor BGR", v);
    }
    if ((v = tl_st_meta(f, "tl.interpolation"))) {
        if (!strcmp(v, "bilinear"))
            pp->interp = TL_INTERP_BILINEAR;
        else if (!strcmp(v, "bicubic"))
            pp->interp = TL_INTERP_BICUBIC;
        else if (!strcmp(v, "nearest"))
            pp->interp = TL_INTERP_NEAREST;
        else
            return tl_fail(e, "metadata tl.interpolation '%.20s' is not bilinear, bicubic or nearest", v);
    }
    return 0;
}

static int load_opts(const tl_st_file *f, tl_arch_opts *o, const char *arch, tl_err *e)
{
    tl_arch_opts_default(o);
    const char *padding = tl_st_meta(f, "tl.padding");
    if (padding && strcmp(padding, "tf_same") && strcmp(padding, "torch"))
        return tl_fail(e, "metadata tl.padding '%.20s' is neither tf_same nor torch", padding);
    o->tf_same = padding && !strcmp(padding, "tf_same");
    if (meta_input_size(f, &o->input_w, &o->input_h, e) ||
        meta_float(f, "tl.width_mult", 1.0f, 0.01, 16, 0, &o->width_mult, e) ||
        meta_float(f, "tl.bn_eps", 0.0f, 0, 1, 0, &o->bn_eps, e) ||
        meta_float(f, "tl.dropout", o->dropout, 0, 1, 1, &o->dropout, e))
        return -1;
    /* Without tl.num_classes, the classifier's shape says it. */
    int classes = -1;
    if (meta_int(f, "tl.num_classes", -1, 0, 1 << 24, &classes, e))
        return -1;
    if (classes < 0) {
        /* The architecture names its classifier; that tensor's rows say it. */
        tl_arch_opts probe_opts = *o;
        probe_opts.num_classes = 1;
        tl_model *probe = tl_arch_build(arch, &probe_opts, e);
        if (!probe)
            return -1;
        int cn = tl_model_classifier_node(probe);
        const tl_st_tensor *t = cn >= 0 ? tl_st_find(f, probe->params[probe->nodes[cn].weight].name) : NULL;
        classes = t && t->ndim >= 1 ? (int)t->shape[0] : 0;
        tl_model_free(probe);
    }
    o->num_classes = classes;
    return 0;
}

int tl_net_load(const char *name_or_path, tl_net *net, tl_err *e)
{
    return tl_net_load_at(name_or_path, 0, 0, -1, net, e);
}

int tl_checkpoint_check_format(const tl_st_file *f, const char *path, tl_err *e)
{
    const char *v = tl_st_meta(f, "tl.format");
    if (!v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end)
        d = NAN;
    return tl_format_check(path, "checkpoint (tl.format)", d, TL_FORMAT_CHECKPOINT, e);
}

int tl_net_load_at(const char *name_or_path, int w, int h, int resize_mode, tl_net *net, tl_err *e)
{
    memset(net, 0, sizeof *net);
    char path[4096];
    if (tl_model_locate(name_or_path, path, sizeof path, e))
        return -1;
    tl_st_file f;
    if (tl_st_open(path, &f, e))
        return -1;
    int rc = -1;
    if (tl_checkpoint_check_format(&f, path, e))
        goto out;
    const char *arch = tl_st_meta(&f, "tl.arch");
    if (!arch) {
        tl_fail(e, "%s: no tl.arch in the metadata (convert the model with tl-convert first)", path);
        goto out;
    }
    if (!strcmp(arch, "linear")) {
        tl_fail(e, "%s: a classifier head trained on features, not a network: give it feature vectors", path);
        goto out;
    }
    if (load_opts(&f, &net->opts, arch, e) || tl_preproc_from_meta(&f, &net->pp, e)) {
        tl_fail_prefix(e, "%s", path);
        goto out;
    }
    int resized = (w > 0 && (w != net->pp.input_w || h != net->pp.input_h)) ||
                  (resize_mode >= 0 && resize_mode != net->pp.resize_mode);
    if (w > 0) {
        net->opts.input_w = w;
        net->opts.input_h = h;
    }
    tl_preproc_resize_input(&net->pp, w > 0 ? w : net->pp.input_w, h > 0 ? h : net->pp.input_h, resize_mode);
    net->model = tl_arch_build(arch, &net->opts, e);
    if (!net->model && w > 0)
        e->kind = TL_ERR_ARG; /* the size asked for does not fit the architecture */
    if (!net->model || tl_load_params(net->model, &f, NULL, NULL, e) ||
        (tl_st_meta(&f, "tl.quant") && tl_quant_attach(net->model, &f, e))) {
        tl_fail_prefix(e, "%s", path);
        goto out;
    }
    const char *cls = tl_st_meta(&f, "tl.classes");
    if (cls) {
        if (tl_json_parse_strings(cls, &net->classes, &net->nclasses, e)) {
            tl_fail_prefix(e, "%s: metadata tl.classes", path);
            goto out;
        }
        if (net->opts.num_classes && net->nclasses != net->opts.num_classes) {
            tl_fail(e, "%s: %d class names for %d outputs", path, net->nclasses, net->opts.num_classes);
            goto out;
        }
    }
    net->meta_keys = calloc((size_t)f.nmeta + 1, sizeof(char *));
    net->meta_values = calloc((size_t)f.nmeta + 1, sizeof(char *));
    net->path = tl_strdup(path);
    if (!net->meta_keys || !net->meta_values || !net->path) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int i = 0; i < f.nmeta; i++) {
        net->meta_keys[i] = tl_strdup(f.meta_keys[i]);
        net->meta_values[i] = tl_strdup(f.meta_values[i]);
        net->nmeta++;
    }
    /* The metadata describes this network: saved again, it says the size
     * it was used at. */
    if (resized && tl_net_meta_geometry(net, e))
        goto out;
    rc = 0;
out:
    tl_st_close(&f);
    if (rc)
        tl_net_free(net);
    return rc;
}

void tl_net_free(tl_net *net)
{
    tl_model_free(net->model);
    tl_strings_free(net->classes, net->nclasses);
    for (int i = 0; i < net->nmeta; i++) {
        free(net->meta_keys[i]);
        free(net->meta_values[i]);
    }
    free(net->meta_keys);
    free(net->meta_values);
    free(net->path);
    memset(net, 0, sizeof *net);
}

/* Sets (or adds) one metadata value. */
static int set_meta(tl_net *net, const char *key, const char *value, tl_err *e)
{
    int i = 0;
    while (i < net->nmeta && strcmp(net->meta_keys[i], key))
        i++;
    if (i == net->nmeta) {
        char **k = realloc(net->meta_keys, (size_t)(net->nmeta + 2) * sizeof *k);
        if (k)
            net->meta_keys = k;
        char **v = k ? realloc(net->meta_values, (size_t)(net->nmeta + 2) * sizeof *v) : NULL;
        if (v)
            net->meta_values = v;
        if (!k || !v || !(net->meta_keys[i] = tl_strdup(key)))
            return tl_fail(e, "out of memory");
        net->meta_values[i] = NULL;
        net->nmeta++;
    }
    char *s = tl_strdup(value);
    if (!s)
        return tl_fail(e, "out of memory");
    free(net->meta_values[i]);
    net->meta_values[i] = s;
    return 0;
}

int tl_net_meta_geometry(tl_net *net, tl_err *e)
{
    char size[32], resize[16];
    tl_input_size_format(net->pp.input_w, net->pp.input_h, size, sizeof size);
    snprintf(resize, sizeof resize, "%d", net->pp.resize_size);
    if (set_meta(net, "tl.input_size", size, e) || set_meta(net, "tl.resize_size", resize, e) ||
        set_meta(net, "tl.resize_mode", tl_resize_mode_name(net->pp.resize_mode), e))
        return -1;
    return 0;
}

const char *tl_net_meta(const tl_net *net, const char *key)
{
    for (int i = 0; i < net->nmeta; i++)
        if (!strcmp(net->meta_keys[i], key))
            return net->meta_values[i];
    return NULL;
}

int tl_net_save(const tl_net *net, const char *path, const char *const *extra_meta, tl_err *e)
{
    const tl_model *m = net->model;
    tl_st_writer *w = tl_st_writer_new();
    if (!w)
        return tl_fail(e, "out of memory");
    int rc = -1;
    static const int64_t zero = 0;
    char nbt[TL_NAME_MAX + 32];
    for (int i = 0; i < m->nparams; i++) {
        const tl_param *p = &m->params[i];
        if (tl_st_add(w, p->name, TL_F32, p->ndim, p->shape, p->data, e))
            goto out;
        /* torchvision's BN state_dict also has a step counter; keep strict
         * load_state_dict happy. */
        size_t len = strlen(p->name);
        if (len > 12 && !strcmp(p->name + len - 12, ".running_var")) {
            snprintf(nbt, sizeof nbt, "%.*s.num_batches_tracked", (int)(len - 12), p->name);
            if (tl_st_add(w, nbt, TL_I64, 0, NULL, &zero, e))
                goto out;
        }
    }
    for (int i = 0; i < net->nmeta; i++)
        if (tl_st_set_meta(w, net->meta_keys[i], net->meta_values[i], e))
            goto out;
    /* written now, so in this tl's format whatever the source said */
    if (tl_st_set_meta(w, "tl.format", TL_STR(TL_FORMAT_CHECKPOINT), e))
        goto out;
    for (int i = 0; extra_meta && extra_meta[i]; i += 2)
        if (tl_st_set_meta(w, extra_meta[i], extra_meta[i + 1], e))
            goto out;
    rc = tl_st_write(w, path, e);
out:
    tl_st_writer_free(w);
    return rc;
}
