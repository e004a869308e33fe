#include "convert_st.h"
#include "format_version.h"
#include "json.h"
#include "load_params.h"
#include "lines.h"
#include "dataset.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_convert_opts_default(tl_convert_opts *o)
{
    memset(o, 0, sizeof *o);
    tl_preproc_default(&o->pp);
    o->width_mult = 1.0f;
}

int tl_read_labels(const char *path, char ***names, int *count, tl_err *e)
{
    *names = NULL;
    *count = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return tl_fail(e, "%s: %s", path, strerror(errno));
    tl_lines lr;
    char *line;
    size_t len;
    int n = 0, ncap = 0, rc = 0, got;
    char **v = NULL;
    tl_lines_init(&lr, f, path, TL_DATASET_MAX_LINE);
    while ((got = tl_lines_next(&lr, &line, &len, e)) > 0) {
        if (n == ncap) {
            if (ncap >= (1 << 24)) {
                rc = tl_fail(e, "%s: more than %d labels", path, 1 << 24);
                break;
            }
            ncap = ncap ? 2 * ncap : 1024;
            char **nv = realloc(v, (size_t)ncap * sizeof *nv);
            if (!nv) {
                rc = tl_fail(e, "out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[n] = tl_strdup(line))) {
            rc = tl_fail(e, "out of memory");
            break;
        }
        n++;
    }
    if (!rc && got < 0)
        rc = -1;
    tl_lines_free(&lr);
    fclose(f);
    /* A trailing empty line is the file's end, not a class. */
    while (!rc && n > 0 && !v[n - 1][0])
        free(v[--n]);
    if (rc) {
        tl_strings_free(v, n);
        return -1;
    }
    *names = v;
    *count = n;
    return 0;
}

typedef struct {
    const char *arch;
    int timm;
} naming;

static const char *rename_param(void *user, const char *name, char *buf, size_t n)
{
    const naming *nm = user;
    if (nm->timm && tl_timm_name(nm->arch, name, buf, n) == 1)
        return buf;
    return name;
}

/* The classifier's output count, read from the file's classifier weight
 * (0 when the file holds a backbone only). */
static int count_classes(const tl_convert_opts *o, const tl_st_file *f, naming *nm, int *classes, tl_err *e)
{
    tl_arch_opts ao;
    tl_arch_opts_default(&ao);
    ao.num_classes = 1;
    ao.input_w = o->pp.input_w;
    ao.input_h = o->pp.input_h;
    ao.width_mult = o->width_mult;
    tl_model *probe = tl_arch_build(o->arch, &ao, e);
    if (!probe)
        return -1;
    int cn = tl_model_classifier_node(probe);
    char buf[TL_NAME_MAX + 64];
    const char *wname = cn >= 0 ? rename_param(nm, probe->params[probe->nodes[cn].weight].name, buf, sizeof buf) : NULL;
    const tl_st_tensor *t = wname ? tl_st_find(f, wname) : NULL;
    *classes = t && t->ndim >= 1 ? (int)t->shape[0] : 0;
    tl_model_free(probe);
    return 0;
}

static int json_list(tl_strbuf *b, char *const *names, int n, int numbered)
{
    int bad = tl_strbuf_add(b, "[", 1);
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        bad |= i ? tl_strbuf_add(b, ",", 1) : 0;
        bad |= tl_strbuf_json_string(b, numbered ? num : names[i]);
    }
    return bad | tl_strbuf_add(b, "]", 1);
}

int tl_convert_state_dict(const char *in, const tl_convert_opts *o, const char *out, tl_log_fn log, void *log_user,
                          tl_err *e)
{
    if (!o->arch)
        return tl_fail(e, "converting a state_dict needs its architecture (--arch)");
    tl_st_file f;
    if (tl_st_open(in, &f, e))
        return -1;
    naming nm = {o->arch, o->naming == TL_NAMES_TIMM};
    int rc = -1, classes = 0;
    tl_net net;
    memset(&net, 0, sizeof net);
    tl_strbuf cls = {0};
    if (o->naming == TL_NAMES_AUTO) {
        /* The first parameter whose timm name differs decides: when the
         * file has that name and not torchvision's, the file is timm's. */
        tl_arch_opts ao;
        tl_arch_opts_default(&ao);
        ao.input_w = o->pp.input_w;
    ao.input_h = o->pp.input_h;
        tl_model *probe = tl_arch_build(o->arch, &ao, e);
        if (!probe)
            goto out;
        char buf[TL_NAME_MAX + 64];
        for (int i = 0; i < probe->nparams; i++) {
            const char *tv = probe->params[i].name;
            if (tl_timm_name(o->arch, tv, buf, sizeof buf) != 1)
                continue;
            nm.timm = !tl_st_find(&f, tv) && tl_st_find(&f, buf);
            break;
        }
        tl_model_free(probe);
    }
    if (count_classes(o, &f, &nm, &classes, e))
        goto out;
    tl_arch_opts_default(&net.opts);
    net.opts.num_classes = classes;
    net.opts.input_w = o->pp.input_w;
    net.opts.input_h = o->pp.input_h;
    net.opts.width_mult = o->width_mult;
    net.opts.bn_eps = o->bn_eps;
    /* timm builds its MobileNetV3s with PyTorch's default BN eps, where
     * torchvision uses 1e-3: the same weights need timm's eps. */
    if (nm.timm && !o->bn_eps && !strncmp(o->arch, "mobilenet_v3", 12))
        net.opts.bn_eps = 1e-5f;
    net.model = tl_arch_build(o->arch, &net.opts, e);
    if (!net.model)
        goto out;
    if (tl_load_params(net.model, &f, rename_param, &nm, e)) {
        tl_fail_prefix(e, "%s (%s names)", in, nm.timm ? "timm" : "torchvision");
        goto out;
    }
    char **labels = NULL;
    int nlabels = 0;
    if (o->labels) {
        if (tl_read_labels(o->labels, &labels, &nlabels, e))
            goto out;
        if (nlabels != classes) {
            tl_strings_free(labels, nlabels);
            tl_fail(e, "%s: %d class names for %d outputs", o->labels, nlabels, classes);
            goto out;
        }
    }
    int bad = json_list(&cls, labels, classes, labels == NULL);
    tl_strings_free(labels, nlabels);
    if (bad) {
        tl_fail(e, "out of memory");
        goto out;
    }
    char n_classes[16], size[32], resize[16], mean[96], std[96], eps[32], width[32];
    const tl_preproc *pp = &o->pp;
    snprintf(n_classes, sizeof n_classes, "%d", classes);
    tl_input_size_format(pp->input_w, pp->input_h, size, sizeof size);
    snprintf(resize, sizeof resize, "%d", pp->resize_size);
    snprintf(mean, sizeof mean, "[%.9g, %.9g, %.9g]", (double)pp->mean[0], (double)pp->mean[1], (double)pp->mean[2]);
    snprintf(std, sizeof std, "[%.9g, %.9g, %.9g]", (double)pp->std[0], (double)pp->std[1], (double)pp->std[2]);
    snprintf(eps, sizeof eps, "%.9g", (double)net.opts.bn_eps);
    snprintf(width, sizeof width, "%.9g", (double)o->width_mult);
    static const char *const interp[] = {"bilinear", "bicubic", "nearest"};
    char *src = tl_strdup(in);
    const char *meta[] = {"tl.format", TL_STR(TL_FORMAT_CHECKPOINT), "tl.arch", o->arch, "tl.num_classes", n_classes, "tl.classes", cls.s,
                          "tl.input_size", size, "tl.resize_size", resize, "tl.resize_mode", tl_resize_mode_name(pp->resize_mode),
                          "tl.mean", mean, "tl.std", std,
                          "tl.channel_order", pp->bgr ? "BGR" : "RGB", "tl.interpolation", interp[pp->interp],
                          "tl.width_mult", width, "tl.source", src ? basename(src) : in,
                          "tl.source_names", nm.timm ? "timm" : "torchvision",
                          net.opts.bn_eps > 0 ? "tl.bn_eps" : NULL, eps, NULL};
    rc = tl_net_save(&net, out, meta, e);
    free(src);
    if (!rc && log) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: %s with %s names, %d classes, %lld parameters", in, o->arch,
                 nm.timm ? "timm" : "torchvision", classes, (long long)tl_model_param_count(net.model, 0));
        log(log_user, msg);
    }
out:
    tl_strbuf_free(&cls);
    tl_model_free(net.model);
    tl_st_close(&f);
    return rc;
}
