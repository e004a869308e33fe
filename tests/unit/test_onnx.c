/* ONNX export at the byte level, without Python: small hand-built graphs
 * are exported and read back with a protobuf decoder written here from
 * onnx.proto's field numbers (IR version, opset, symbolic batch, node
 * order and attributes, negative varints, initializers byte for byte,
 * metadata); then the refusals: an operation ONNX cannot express names
 * its layer and leaves no file, an unknown layer is an argument error, a
 * head of the wrong width and a full disk fail cleanly. The tests/bats
 * suite runs the files through the ONNX checker, ONNX Runtime and OpenCV. */
#include "check.h"
#include "io/onnx.h"
#include "models/models.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

/* ---- a protobuf reader for the checks ---- */

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} msg;

typedef struct {
    int field, wt;
    uint64_t v;        /* varint or fixed32 */
    const uint8_t *d;  /* length-delimited */
    size_t len;
} fld;

static int varint(msg *m, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && m->pos < m->n; shift += 7) {
        uint8_t b = m->p[m->pos++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* 1: a field; 0: end; -1: malformed. */
static int next(msg *m, fld *f)
{
    if (m->pos >= m->n)
        return 0;
    uint64_t key;
    if (varint(m, &key))
        return -1;
    f->field = (int)(key >> 3);
    f->wt = (int)(key & 7);
    if (f->wt == 0)
        return varint(m, &f->v) ? -1 : 1;
    if (f->wt == 5) {
        if (m->pos + 4 > m->n)
            return -1;
        f->v = m->p[m->pos] | (uint32_t)m->p[m->pos + 1] << 8 | (uint32_t)m->p[m->pos + 2] << 16 |
               (uint32_t)m->p[m->pos + 3] << 24;
        m->pos += 4;
        return 1;
    }
    if (f->wt == 2) {
        uint64_t len;
        if (varint(m, &len) || len > m->n - m->pos)
            return -1;
        f->d = m->p + m->pos;
        f->len = (size_t)len;
        m->pos += (size_t)len;
        return 1;
    }
    return -1;
}

static msg sub(const fld *f) { return (msg){f->d, f->len, 0}; }

static int is_str(const fld *f, const char *s) { return f->wt == 2 && f->len == strlen(s) && !memcmp(f->d, s, f->len); }

/* The top-level fields parse to the end. */
static int well_formed(msg m)
{
    fld f;
    int r;
    while ((r = next(&m, &f)) == 1)
        ;
    return r == 0;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = b && fread(b, 1, (size_t)len, fp) == (size_t)len ? (size_t)len : 0;
    fclose(fp);
    return b;
}

/* ---- models ---- */

static void fill(tl_model *m, uint64_t seed)
{
    tl_rng r;
    tl_rng_seed(&r, seed);
    for (int i = 0; i < m->nparams; i++)
        for (int64_t k = 0; k < m->params[i].numel; k++)
            m->params[i].data[k] = 0.5f + tl_rng_uniform(&r);
}

static void net_of(tl_net *net, tl_model *m)
{
    memset(net, 0, sizeof *net);
    net->model = m;
    tl_preproc_default(&net->pp);
    net->pp.input_w = m->in_w;
    net->pp.input_h = m->in_h;
    net->pp.resize_size = m->in_w < m->in_h ? m->in_w : m->in_h;
    net->pp.resize_mode = TL_RESIZE_SQUASH;
}

/* conv (bias) -> bn -> relu6 -> maxpool -> gap -> linear */
static tl_model *small_cnn(tl_err *e)
{
    tl_model *m = tl_model_new("test", 3, 8, 8, e);
    int x = tl_model_conv(m, 0, "conv", 4, 3, 1, 1, 1, e);
    x = tl_model_bn(m, x, "bn", 1e-5f, e);
    x = tl_model_act(m, x, TL_ACT_RELU6, e);
    x = tl_model_pool(m, x, 1, 3, 2, 0, 1, e);
    tl_model_name(m, x, "pool", e);
    x = tl_model_gap(m, x, e);
    tl_model_name(m, x, "features", e);
    m->features_node = x;
    x = tl_model_linear(m, x, "fc", 3, e);
    tl_model_name(m, x, "fc", e);
    m->logits_node = x;
    m->num_classes = 3;
    tl_model_finalize(m, e);
    fill(m, 1);
    return m;
}

static void test_bytes(void)
{
    tl_err e = {0};
    tl_model *m = small_cnn(&e);
    CHECK_MSG(m && m->nparams == 8, "%s", e.msg);
    tl_net net;
    net_of(&net, m);
    tl_onnx_opts o;
    tl_onnx_opts_default(&o);
    o.probabilities = 1;
    const char *meta[] = {"tl.extra", "x", NULL};
    o.meta = meta;
    char path[128];
    snprintf(path, sizeof path, "%s/small.onnx", dir);
    tl_onnx_info info;
    CHECK_MSG(tl_onnx_export(&net, &o, path, &info, &e) == 0, "%s", e.msg);
    CHECK(info.dim == 3 && !strcmp(info.output, "probabilities"));
    size_t n;
    uint8_t *b = slurp(path, &n);
    CHECK(b && n == (size_t)info.bytes);
    msg model = {b, n, 0};
    CHECK(well_formed(model));
    fld f;
    int64_t ir = 0, opset = 0;
    int graphs = 0, nmeta = 0, got_classes = 0, got_extra = 0;
    while (next(&model, &f) == 1) {
        if (f.field == 1)
            ir = (int64_t)f.v;
        if (f.field == 8) {
            msg os = sub(&f);
            fld g;
            while (next(&os, &g) == 1)
                if (g.field == 2)
                    opset = (int64_t)g.v;
        }
        if (f.field == 14) {
            nmeta++;
            msg kv = sub(&f);
            fld k, v;
            next(&kv, &k);
            next(&kv, &v);
            got_classes |= is_str(&k, "tl.classes") && is_str(&v, "[\"0\", \"1\", \"2\"]");
            got_extra |= is_str(&k, "tl.extra") && is_str(&v, "x");
        }
        if (f.field != 7)
            continue;
        graphs++;
        msg g = sub(&f);
        fld h;
        const char *ops[16];
        int nops = 0, inits = 0, raw_ok = 0, batch_ok = 0, pads_ok = 0;
        while (next(&g, &h) == 1) {
            if (h.field == 1 && nops < 16) { /* NodeProto */
                msg nd = sub(&h);
                fld a;
                while (next(&nd, &a) == 1) {
                    if (a.field == 4) {
                        static const char *const known[] = {"Conv", "BatchNormalization", "HardSigmoid", "Mul",
                                                            "MaxPool", "GlobalAveragePool", "Flatten", "Gemm",
                                                            "Softmax"};
                        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
                            if (is_str(&a, known[k]))
                                ops[nops++] = known[k];
                    }
                    if (a.field == 5) { /* MaxPool's pads: ceil mode as trailing padding */
                        msg at = sub(&a);
                        fld x;
                        int is_pads = 0;
                        int64_t v[4];
                        int nv = 0;
                        while (next(&at, &x) == 1) {
                            if (x.field == 1)
                                is_pads = is_str(&x, "pads");
                            if (x.field == 8 && nv < 4)
                                v[nv++] = (int64_t)x.v;
                        }
                        /* 8x8, k 3, stride 2, ceil: 4 windows, the last
                         * starting at 6 needs one row and column of padding */
                        if (is_pads && nv == 4)
                            pads_ok = v[0] == 0 && v[1] == 0 && v[2] == 1 && v[3] == 1;
                    }
                }
            }
            if (h.field == 5) { /* TensorProto */
                inits++;
                msg t = sub(&h);
                fld a;
                const char *name = NULL;
                size_t nlen = 0;
                const uint8_t *raw = NULL;
                size_t rlen = 0;
                while (next(&t, &a) == 1) {
                    if (a.field == 8) {
                        name = (const char *)a.d;
                        nlen = a.len;
                    }
                    if (a.field == 9) {
                        raw = a.d;
                        rlen = a.len;
                    }
                }
                if (name && nlen == 9 && !memcmp(name, "fc.weight", 9)) {
                    int pi = tl_model_find_param(m, "fc.weight");
                    raw_ok = pi >= 0 && rlen == (size_t)m->params[pi].numel * 4 &&
                             !memcmp(raw, m->params[pi].data, rlen);
                }
            }
            if (h.field == 11) { /* input ValueInfo: type.tensor_type.shape.dim[0].dim_param */
                msg vi = sub(&h);
                fld a;
                while (next(&vi, &a) == 1)
                    if (a.field == 2) {
                        msg tp = sub(&a), tt, sh, dm;
                        fld x;
                        if (next(&tp, &x) == 1 && x.field == 1) {
                            tt = sub(&x);
                            while (next(&tt, &x) == 1)
                                if (x.field == 2) {
                                    sh = sub(&x);
                                    if (next(&sh, &x) == 1 && x.field == 1) {
                                        dm = sub(&x);
                                        batch_ok = next(&dm, &x) == 1 && x.field == 2 && is_str(&x, "batch");
                                    }
                                }
                        }
                    }
            }
        }
        static const char *const want[] = {"Conv", "BatchNormalization", "HardSigmoid", "Mul", "MaxPool",
                                           "GlobalAveragePool", "Flatten", "Gemm", "Softmax"};
        CHECK(nops == 9);
        for (int k = 0; k < nops && k < 9; k++)
            CHECK_MSG(!strcmp(ops[k], want[k]), "node %d is %s, not %s", k, ops[k], want[k]);
        CHECK(inits >= 7);
        CHECK(raw_ok);
        CHECK(batch_ok);
        CHECK(pads_ok);
    }
    CHECK(ir == 8);
    CHECK(opset == TL_ONNX_OPSET);
    CHECK(graphs == 1);
    CHECK(nmeta >= 8 && got_classes && got_extra);
    free(b);
    tl_model_free(m);
}

/* A negative attribute (LayerNormalization's axis -1) is a ten-byte
 * varint that reads back as -1. */
static void test_negative_varint(void)
{
    tl_err e = {0};
    tl_model *m = tl_model_new("tokens", 3, 16, 16, &e);
    int x = tl_model_conv(m, 0, "patch", 8, 16, 16, 1, 1, &e);
    m->nodes[x].geom.pad_t = m->nodes[x].geom.pad_l = m->nodes[x].geom.pad_b = m->nodes[x].geom.pad_r = 0;
    tl_conv_geom_finish(&m->nodes[x].geom);
    m->nodes[x].h = m->nodes[x].geom.oh;
    m->nodes[x].w = m->nodes[x].geom.ow;
    x = tl_model_tokens(m, x, "cls", "pos", &e);
    x = tl_model_layernorm(m, x, "ln", 1e-6f, &e);
    x = tl_model_select_token(m, x, &e);
    tl_model_name(m, x, "token", &e);
    m->features_node = x;
    CHECK_MSG(x > 0 && tl_model_finalize(m, &e) == 0, "%s", e.msg);
    fill(m, 2);
    tl_net net;
    net_of(&net, m);
    tl_onnx_opts o;
    tl_onnx_opts_default(&o);
    char path[128];
    snprintf(path, sizeof path, "%s/tokens.onnx", dir);
    CHECK_MSG(tl_onnx_export(&net, &o, path, NULL, &e) == 0, "%s", e.msg);
    size_t n;
    uint8_t *b = slurp(path, &n);
    /* find the LayerNormalization node and its axis */
    int64_t axis = 0;
    msg model = {b, n, 0};
    fld f, g, a, x2;
    while (b && next(&model, &f) == 1) {
        if (f.field != 7)
            continue;
        msg gr = sub(&f);
        while (next(&gr, &g) == 1) {
            if (g.field != 1)
                continue;
            msg nd = sub(&g);
            int ln = 0;
            int64_t v = 0;
            while (next(&nd, &a) == 1) {
                if (a.field == 4 && is_str(&a, "LayerNormalization"))
                    ln = 1;
                if (a.field == 5) {
                    msg at = sub(&a);
                    int is_axis = 0;
                    while (next(&at, &x2) == 1) {
                        if (x2.field == 1)
                            is_axis = is_str(&x2, "axis");
                        if (x2.field == 3 && is_axis)
                            v = (int64_t)x2.v;
                    }
                }
            }
            if (ln)
                axis = v;
        }
    }
    CHECK_MSG(axis == -1, "axis %lld", (long long)axis);
    free(b);
    tl_model_free(m);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_refusals(void)
{
    tl_err e = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/refused.onnx", dir);

    /* A ceil-mode average pool counting its padding: no ONNX form. */
    tl_model *m = tl_model_new("pools", 3, 8, 8, &e);
    int x = tl_model_pool(m, 0, 0, 3, 2, 1, 1, &e);
    tl_model_name(m, x, "blur", &e);
    x = tl_model_gap(m, x, &e);
    tl_model_name(m, x, "features", &e);
    m->features_node = x;
    CHECK(tl_model_finalize(m, &e) == 0);
    tl_net net;
    net_of(&net, m);
    tl_onnx_opts o;
    tl_onnx_opts_default(&o);
    CHECK(tl_onnx_export(&net, &o, path, NULL, &e) == -1);
    CHECK_MSG(strstr(e.msg, "layer blur (average pooling)") && strstr(e.msg, "no ONNX form"), "%s", e.msg);
    CHECK(!strchr(e.msg, '\n'));
    CHECK(!exists(path));
    tl_model_free(m);

    m = small_cnn(&e);
    net_of(&net, m);
    o.layer = "nope";
    CHECK(tl_onnx_export(&net, &o, path, NULL, &e) == -1);
    CHECK(e.kind == TL_ERR_ARG && strstr(e.msg, "no layer named 'nope'"));
    o.layer = "input";
    CHECK(tl_onnx_export(&net, &o, path, NULL, &e) == -1);
    o.layer = "pool";
    o.probabilities = 1;
    CHECK(tl_onnx_export(&net, &o, path, NULL, &e) == -1 && e.kind == TL_ERR_ARG);
    CHECK(!exists(path));

    /* a head of the wrong width */
    float w[2 * 5] = {0}, bias[2] = {0};
    tl_onnx_opts_default(&o);
    o.head_w = w;
    o.head_b = bias;
    o.head_k = 2;
    o.head_d = 5;
    CHECK(tl_onnx_export(&net, &o, path, NULL, &e) == -1);
    CHECK_MSG(strstr(e.msg, "the head takes 5 values") != NULL, "%s", e.msg);
    CHECK(!exists(path));
    o.head_d = 4; /* the pooled features of small_cnn */
    CHECK_MSG(tl_onnx_export(&net, &o, path, NULL, &e) == 0, "%s", e.msg);
    CHECK(exists(path));
    unlink(path);

    /* a full disk */
    tl_onnx_opts_default(&o);
    if (exists("/dev/full")) {
        CHECK(tl_onnx_export(&net, &o, "/dev/full", NULL, &e) == -1);
        CHECK_MSG(strstr(e.msg, "No space left") != NULL, "%s", e.msg);
    }
    /* an interrupted write leaves nothing */
    volatile sig_atomic_t stop = 1;
    o.stop = &stop;
    CHECK(tl_onnx_export(&net, &o, path, NULL, &e) == -1);
    CHECK(strstr(e.msg, "interrupted") != NULL);
    CHECK(!exists(path));
    tl_model_free(m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tl_test_onnx.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_bytes();
    test_negative_varint();
    test_refusals();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "cannot remove %s\n", dir);
    return check_finish("onnx");
}
