/* TFLite import. A tiny flatbuffer builder below writes .tflite files from
 * a plain description: a one-conv model for the parser, and a whole
 * MobileNetV1 (width 0.25, 32x32 input, 10 classes, mixed uint8 per-tensor
 * and int8 per-channel weights) for the converter, whose output is read
 * back and compared value by value. Malformed, truncated and hostile
 * variants must fail with a one-line message, never crash (run under ASan).
 * When ../shared/models/tflite is there, every real model is parsed too. */
#include "check.h"
#include "io/safetensors.h"
#include "io/tflite.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned lcg = 2024;
static unsigned rnd(void)
{
    lcg = lcg * 1103515245u + 12345u;
    return lcg >> 8;
}

/* ---- a description of a model ---- */

#define MAXT 256
#define MAXO 128

typedef struct tspec {
    int ndim;
    int32_t shape[9];
    int type;
    const void *data; /* NULL: no buffer */
    size_t nbytes;
    int nscale;
    float scale[1024];
    int64_t zp[1024];
    int qdim;
    int buffer_override; /* >= 0: write this buffer index instead */
} tspec;

typedef struct ospec {
    int code;
    int nin;
    int32_t in[3], out;
    int opt_type;
    int nopt;
    struct { int id, size; int64_t v; } opt[6];
} ospec;

typedef struct mspec {
    tspec t[MAXT];
    int nt;
    ospec o[MAXO];
    int no;
    int32_t input, output;
    uint32_t version;
    int opcode_bias; /* added to every opcode index (to go out of range) */
} mspec;

/* ---- a forward flatbuffer writer: children always after the slot that refers to them ---- */

typedef struct fbw {
    uint8_t *b;
    size_t n, cap;
    size_t tensors_vec, op0_inputs_vec, model_table; /* positions for byte-level attacks */
} fbw;

static void need(fbw *w, size_t more)
{
    if (w->n + more > w->cap) {
        w->cap = (w->n + more) * 2;
        w->b = realloc(w->b, w->cap);
    }
}
static void align(fbw *w, size_t a)
{
    need(w, a);
    while (w->n % a)
        w->b[w->n++] = 0;
}
static void put(fbw *w, const void *p, size_t k)
{
    need(w, k);
    memcpy(w->b + w->n, p, k);
    w->n += k;
}
static void put_u32_at(fbw *w, size_t pos, uint32_t v) { memcpy(w->b + pos, &v, 4); }
static void patch(fbw *w, size_t slot, size_t target) { put_u32_at(w, slot, (uint32_t)(target - slot)); }

typedef struct fld {
    int id, size; /* size 0: a reference (uoffset) to patch later */
    int64_t v;
} fld;

/* Writes a vtable then its table; slots[i] receives the position of ref field i. */
static size_t table(fbw *w, const fld *f, int nf, size_t *slots)
{
    int maxid = -1;
    for (int i = 0; i < nf; i++)
        maxid = f[i].id > maxid ? f[i].id : maxid;
    align(w, 4);
    size_t vt = w->n;
    uint16_t vsize = (uint16_t)(4 + 2 * (maxid + 1)), zero = 0;
    put(w, &vsize, 2);
    put(w, &zero, 2); /* table size, patched below */
    for (int i = 0; i <= maxid; i++)
        put(w, &zero, 2);
    align(w, 8);
    if (w->n % 8 == 0) { /* table start at 4 mod 8 so 8-byte fields after the soffset align */
        put(w, &zero, 2);
        put(w, &zero, 2);
    }
    size_t tp = w->n;
    int32_t so = (int32_t)(tp - vt);
    put(w, &so, 4);
    for (int i = 0; i < nf; i++) {
        int sz = f[i].size ? f[i].size : 4;
        align(w, (size_t)sz);
        uint16_t off = (uint16_t)(w->n - tp);
        memcpy(w->b + vt + 4 + 2 * f[i].id, &off, 2);
        if (!f[i].size)
            slots[i] = w->n;
        put(w, &f[i].v, (size_t)sz); /* little-endian low bytes */
    }
    uint16_t tsize = (uint16_t)(w->n - tp);
    memcpy(w->b + vt + 2, &tsize, 2);
    return tp;
}

/* A vector of n elements of size es; returns the position of its length. */
static size_t vec(fbw *w, const void *data, uint32_t n, size_t es)
{
    align(w, es > 4 ? 8 : 4);
    if (es > 4 && (w->n + 4) % 8)
        put(w, "\0\0\0\0", 4);
    size_t p = w->n;
    put(w, &n, 4);
    if (n)
        put(w, data, n * es);
    return p;
}

static size_t str(fbw *w, const char *s)
{
    size_t p = vec(w, s, (uint32_t)strlen(s), 1);
    put(w, "", 1); /* strings end in NUL */
    return p;
}

/* A vector of n table references (placeholders): slot k at pos + 4 + 4k. */
static size_t refvec(fbw *w, uint32_t n)
{
    align(w, 4);
    size_t p = w->n;
    put(w, &n, 4);
    for (uint32_t k = 0; k < n; k++)
        put(w, "\0\0\0\0", 4);
    return p;
}

static size_t serialize(const mspec *m, fbw *w)
{
    memset(w, 0, sizeof *w);
    put(w, "\0\0\0\0TFL3", 8);
    int codes[64], ncodes = 0, opcode_of[MAXO];
    for (int i = 0; i < m->no; i++) {
        int k = 0;
        while (k < ncodes && codes[k] != m->o[i].code)
            k++;
        if (k == ncodes)
            codes[ncodes++] = m->o[i].code;
        opcode_of[i] = k;
    }
    int nbuf = 1;
    for (int i = 0; i < m->nt; i++)
        nbuf += m->t[i].data != NULL;

    size_t s[8];
    fld mf[] = {{0, 4, m->version}, {1, 0, 0}, {2, 0, 0}, {4, 0, 0}};
    size_t model = w->model_table = table(w, mf, 4, s);
    size_t s_codes = s[1], s_sg = s[2], s_buf = s[3];
    put_u32_at(w, 0, (uint32_t)model);

    size_t cv = refvec(w, (uint32_t)ncodes);
    patch(w, s_codes, cv);
    for (int k = 0; k < ncodes; k++) {
        /* new-style files: the byte field capped at 127, the int field exact */
        fld f[] = {{0, 1, codes[k] < 127 ? codes[k] : 127}, {2, 4, 1}, {3, 4, codes[k]}};
        patch(w, cv + 4 + 4 * (size_t)k, table(w, f, 3, s));
    }

    size_t sgv = refvec(w, 1);
    patch(w, s_sg, sgv);
    fld sgf[] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    patch(w, sgv + 4, table(w, sgf, 4, s));
    size_t s_t = s[0], s_in = s[1], s_out = s[2], s_ops = s[3];
    patch(w, s_in, vec(w, &m->input, 1, 4));
    patch(w, s_out, vec(w, &m->output, 1, 4));

    size_t tv = w->tensors_vec = refvec(w, (uint32_t)m->nt);
    patch(w, s_t, tv);
    int b = 1;
    for (int i = 0; i < m->nt; i++) {
        const tspec *t = &m->t[i];
        int bi = t->data ? b++ : 0;
        if (t->buffer_override >= 0 && t->buffer_override != 0)
            bi = t->buffer_override;
        fld f[] = {{0, 0, 0}, {1, 1, t->type}, {2, 4, bi}, {3, 0, 0}, {4, 0, 0}};
        patch(w, tv + 4 + 4 * (size_t)i, table(w, f, t->nscale ? 5 : 4, s));
        size_t s_shape = s[0], s_name = s[3], s_q = s[4];
        patch(w, s_shape, vec(w, t->shape, (uint32_t)t->ndim, 4));
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        patch(w, s_name, str(w, name));
        if (t->nscale) {
            fld q[] = {{2, 0, 0}, {3, 0, 0}, {6, 4, t->qdim}};
            patch(w, s_q, table(w, q, 3, s));
            size_t s_sc = s[0], s_zp = s[1];
            patch(w, s_sc, vec(w, t->scale, (uint32_t)t->nscale, 4));
            patch(w, s_zp, vec(w, t->zp, (uint32_t)t->nscale, 8));
        }
    }

    size_t ov = refvec(w, (uint32_t)m->no);
    patch(w, s_ops, ov);
    for (int i = 0; i < m->no; i++) {
        const ospec *o = &m->o[i];
        fld f[] = {{0, 4, opcode_of[i] + m->opcode_bias}, {1, 0, 0}, {2, 0, 0}, {3, 1, o->opt_type}, {4, 0, 0}};
        patch(w, ov + 4 + 4 * (size_t)i, table(w, f, o->opt_type ? 5 : 3, s));
        size_t s_i = s[1], s_o = s[2], s_opt = s[4];
        size_t iv = vec(w, o->in, (uint32_t)o->nin, 4);
        if (i == 0)
            w->op0_inputs_vec = iv;
        patch(w, s_i, iv);
        patch(w, s_o, vec(w, &o->out, 1, 4));
        if (o->opt_type) {
            fld of[6];
            for (int k = 0; k < o->nopt; k++)
                of[k] = (fld){o->opt[k].id, o->opt[k].size, o->opt[k].v};
            patch(w, s_opt, table(w, of, o->nopt, s));
        }
    }

    size_t bv = refvec(w, (uint32_t)nbuf);
    patch(w, s_buf, bv);
    fld empty[1];
    patch(w, bv + 4, table(w, empty, 0, s));
    b = 1;
    for (int i = 0; i < m->nt; i++) {
        if (!m->t[i].data)
            continue;
        fld f[] = {{0, 0, 0}};
        patch(w, bv + 4 + 4 * (size_t)b++, table(w, f, 1, s));
        align(w, 16);
        patch(w, s[0], vec(w, m->t[i].data, (uint32_t)m->t[i].nbytes, 1));
    }
    return w->n;
}

/* ---- building blocks ---- */

static uint8_t pool_bytes[1 << 20];
static size_t pool_used;

static void *bytes(size_t n)
{
    void *p = pool_bytes + pool_used;
    pool_used += (n + 15) / 16 * 16;
    return p;
}

static int add_tensor(mspec *m, int type, int ndim, int32_t a, int32_t b, int32_t c, int32_t d)
{
    tspec *t = &m->t[m->nt];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->ndim = ndim;
    int32_t sh[4] = {a, b, c, d};
    memcpy(t->shape, sh, sizeof sh);
    t->buffer_override = -1;
    return m->nt++;
}

static void quant1(mspec *m, int t, float scale, int64_t zp)
{
    m->t[t].nscale = 1;
    m->t[t].scale[0] = scale;
    m->t[t].zp[0] = zp;
}

/* An activation [1, h, w, c], uint8 with scale 0.05. */
static int act(mspec *m, int h, int w, int c)
{
    int t = add_tensor(m, 3, 4, 1, h, w, c);
    quant1(m, t, 0.05f, 0);
    return t;
}

static int add_op(mspec *m, int code, int nin, int32_t i0, int32_t i1, int32_t i2, int32_t out)
{
    ospec *o = &m->o[m->no];
    memset(o, 0, sizeof *o);
    o->code = code;
    o->nin = nin;
    o->in[0] = i0, o->in[1] = i1, o->in[2] = i2;
    o->out = out;
    return m->no++;
}

static void opt(mspec *m, int op, int id, int size, int64_t v)
{
    ospec *o = &m->o[op];
    o->opt[o->nopt].id = id;
    o->opt[o->nopt].size = size;
    o->opt[o->nopt].v = v;
    o->nopt++;
}

/* Conv weights: uint8 per-tensor (zp 100, scale 0.01) or int8 per-channel
 * (zp 0, scale 0.001 * (1 + c % 7) along qdim). Bias int32 with its scale,
 * or without quantisation parameters when bias_noq. */
typedef struct convq {
    int per_channel, bias_noq, valid_with_pad, act_fn, padding;
} convq;

static int conv(mspec *m, int x, int dw, int k, int stride, int cout, convq q)
{
    const tspec *xt = &m->t[x];
    int H = xt->shape[1], W = xt->shape[2], C = xt->shape[3];
    if (q.valid_with_pad && stride == 2) { /* explicit PAD then VALID conv */
        int32_t *pads = bytes(32);
        int32_t pv[8] = {0, 0, 0, 1, 0, 1, 0, 0};
        memcpy(pads, pv, 32);
        int pt = add_tensor(m, 2, 2, 4, 2, 0, 0);
        m->t[pt].data = pads, m->t[pt].nbytes = 32;
        int y = act(m, H + 1, W + 1, C);
        quant1(m, y, xt->scale[0], xt->zp[0]); /* PAD keeps its input's quantisation */
        add_op(m, 34, 2, x, pt, -1, y);
        x = y, H++, W++;
        q.padding = 1;
    }
    if (dw)
        cout = C;
    int wt = dw ? add_tensor(m, q.per_channel ? 9 : 3, 4, 1, k, k, C)
                : add_tensor(m, q.per_channel ? 9 : 3, 4, cout, k, k, C);
    size_t nw = (size_t)k * k * C * (dw ? 1 : cout);
    uint8_t *wd = bytes(nw);
    for (size_t i = 0; i < nw; i++)
        wd[i] = (uint8_t)rnd();
    m->t[wt].data = wd, m->t[wt].nbytes = nw;
    if (q.per_channel) {
        tspec *t = &m->t[wt];
        t->nscale = cout;
        t->qdim = dw ? 3 : 0;
        for (int c = 0; c < cout; c++)
            t->scale[c] = 0.001f * (float)(1 + c % 7), t->zp[c] = 0;
    } else {
        quant1(m, wt, 0.01f, 100);
    }
    int bt = add_tensor(m, 2, 1, cout, 0, 0, 0);
    int32_t *bd = bytes(4 * (size_t)cout);
    for (int c = 0; c < cout; c++)
        bd[c] = (int32_t)(rnd() % 2001) - 1000;
    m->t[bt].data = bd, m->t[bt].nbytes = 4 * (size_t)cout;
    if (!q.bias_noq) {
        tspec *t = &m->t[bt];
        t->nscale = m->t[wt].nscale;
        for (int c = 0; c < t->nscale; c++)
            t->scale[c] = xt->scale[0] * m->t[wt].scale[c], t->zp[c] = 0;
    }
    int oh = q.padding == 0 ? (H + stride - 1) / stride : (H - k) / stride + 1;
    int ow = q.padding == 0 ? (W + stride - 1) / stride : (W - k) / stride + 1;
    int y = act(m, oh, ow, cout);
    int op = add_op(m, dw ? 4 : 3, 3, x, wt, bt, y);
    m->o[op].opt_type = dw ? 2 : 1;
    opt(m, op, 0, 1, q.padding);
    opt(m, op, 1, 4, stride);
    opt(m, op, 2, 4, stride);
    if (dw)
        opt(m, op, 3, 4, 1);
    opt(m, op, dw ? 4 : 3, 1, q.act_fn);
    return y;
}

/* MobileNetV1 width 0.25 on 32x32 with 10 classes; pc: per-channel int8 weights. */
static void build_v1(mspec *m, int pc, int valid_with_pad)
{
    static const int stride[13] = {1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1};
    static const int outs[13] = {16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128, 256, 256};
    memset(m, 0, sizeof *m);
    pool_used = 0;
    lcg = 7;
    m->version = 3;
    int x = add_tensor(m, 3, 4, 1, 32, 32, 3);
    quant1(m, x, 1.0f / 128, 128);
    m->input = x;
    convq q = {pc, 0, valid_with_pad, 3, 0};
    x = conv(m, x, 0, 3, 2, 8, q);
    for (int i = 0; i < 13; i++) {
        q.bias_noq = i == 4; /* one bias relies on input scale x weight scale */
        x = conv(m, x, 1, 3, stride[i], 0, q);
        x = conv(m, x, 0, 1, 1, outs[i], q);
    }
    int p = act(m, 1, 1, 256);
    int op = add_op(m, 1, 1, x, -1, -1, p);
    m->o[op].opt_type = 5;
    opt(m, op, 0, 1, 1);
    opt(m, op, 1, 4, 1);
    opt(m, op, 2, 4, 1);
    opt(m, op, 3, 4, 1);
    opt(m, op, 4, 4, 1);
    q.act_fn = 0;
    q.bias_noq = 0;
    int logits = conv(m, p, 0, 1, 1, 10, q);
    int flat = add_tensor(m, 3, 2, 1, 10, 0, 0);
    quant1(m, flat, 0.05f, 0);
    int32_t *shape = bytes(8);
    shape[0] = 1, shape[1] = 10;
    int st = add_tensor(m, 2, 1, 2, 0, 0, 0);
    m->t[st].data = shape, m->t[st].nbytes = 8;
    add_op(m, 22, 2, logits, st, -1, flat);
    int prob = add_tensor(m, 3, 2, 1, 10, 0, 0);
    quant1(m, prob, 1.0f / 256, 0);
    add_op(m, 25, 1, flat, -1, -1, prob);
    m->output = prob;
}

/* One conv: input [1,4,4,2] float → CONV_2D 3x3 → [1,4,4,3]. */
static void build_mini(mspec *m)
{
    static float wts[3 * 3 * 3 * 2], bias[3];
    memset(m, 0, sizeof *m);
    m->version = 3;
    for (int i = 0; i < 54; i++)
        wts[i] = (float)i / 10;
    int x = add_tensor(m, 0, 4, 1, 4, 4, 2);
    int w = add_tensor(m, 0, 4, 3, 3, 3, 2);
    m->t[w].data = wts, m->t[w].nbytes = sizeof wts;
    int b = add_tensor(m, 0, 1, 3, 0, 0, 0);
    m->t[b].data = bias, m->t[b].nbytes = sizeof bias;
    int y = add_tensor(m, 0, 4, 1, 4, 4, 3);
    int op = add_op(m, 3, 3, x, w, b, y);
    m->o[op].opt_type = 1;
    opt(m, op, 0, 1, 0);
    opt(m, op, 1, 4, 1);
    opt(m, op, 2, 4, 1);
    opt(m, op, 3, 1, 3);
    m->input = x;
    m->output = y;
}

/* Parses bytes; returns 0 on success and leaves the message in e. */
static int parse(const uint8_t *b, size_t n, tl_err *e)
{
    tl_tflite *t = NULL;
    memset(e, 0, sizeof *e);
    int r = tl_tflite_open_mem(b, n, &t, e);
    tl_tflite_free(t);
    return r;
}

static void set32(uint8_t *b, size_t pos, uint32_t v) { memcpy(b + pos, &v, 4); }

/* Element i of a float tensor read back (the mapping need not be aligned). */
static float fget(const tl_st_tensor *t, int64_t i)
{
    float v;
    memcpy(&v, (const uint8_t *)t->data + 4 * i, 4);
    return v;
}

static int one_line(const tl_err *e) { return e->msg[0] && !strchr(e->msg, '\n'); }

static int expect_fail(const mspec *m, const char *needle)
{
    fbw w;
    serialize(m, &w);
    tl_err e;
    int r = parse(w.b, w.n, &e);
    free(w.b);
    CHECK_MSG(r < 0 && one_line(&e) && strstr(e.msg, needle), "wanted '%s', got '%s'", needle, r ? e.msg : "success");
    return r;
}

static mspec M, M2; /* large: static */

static void test_parse_mini(void)
{
    fbw w;
    tl_err e = {0};
    tl_tflite *t = NULL;
    build_mini(&M);
    serialize(&M, &w);
    CHECK_MSG(tl_tflite_open_mem(w.b, w.n, &t, &e) == 0, "%s", e.msg);
    if (t) {
        CHECK(t->ntensors == 4 && t->nops == 1 && t->nbuffers == 3);
        CHECK(t->ops[0].code == TL_TFL_CONV_2D && t->ops[0].activation == TL_TFL_ACT_RELU6);
        CHECK(t->ops[0].stride_w == 1 && t->ops[0].stride_h == 1 && t->ops[0].dilation_w == 1);
        CHECK(t->tensors[1].ndim == 4 && t->tensors[1].shape[0] == 3 && t->tensors[1].shape[3] == 2);
        CHECK(t->tensors[1].name_len == 2 && !memcmp(t->tensors[1].name, "t1", 2));
        CHECK(t->buffers[t->tensors[1].buffer].size == 54 * 4);
        float v;
        memcpy(&v, t->buffers[t->tensors[1].buffer].data + 4 * 7, 4);
        CHECK_NEAR(v, 0.7, 1e-6);
        char d[512];
        tl_tflite_describe(t, d, sizeof d);
        CHECK_MSG(strstr(d, "1 ops: CONV_2D 1") && strstr(d, "unrecognised"), "%s", d);
        CHECK(tl_tflite_describe(t, d, 8) > 8 && strlen(d) == 7);
        tl_tflite_free(t);
    }

    /* every truncation fails cleanly */
    int bad = 0;
    for (size_t n = 0; n < w.n; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
        memcpy(cut, w.b, n);
        if (parse(cut, n, &e) == 0 || !one_line(&e))
            bad++;
        free(cut);
    }
    CHECK_MSG(bad == 0, "%d truncations parsed or gave no message", bad);
    CHECK(parse(w.b, 0, &e) < 0 && strstr(e.msg, "empty"));

    uint8_t *c = malloc(w.n);
    memcpy(c, w.b, w.n);
    memcpy(c + 4, "TFL2", 4);
    CHECK(parse(c, w.n, &e) < 0 && strstr(e.msg, "identifier"));
    memcpy(c, w.b, w.n);
    set32(c, 0, 0xfffffff0u); /* root offset far past the end */
    CHECK(parse(c, w.n, &e) < 0 && strstr(e.msg, "out of range"));
    memcpy(c, w.b, w.n);
    set32(c, w.tensors_vec, 0x7fffffffu); /* vector length past the end */
    CHECK_MSG(parse(c, w.n, &e) < 0 && strstr(e.msg, "runs past the end"), "%s", e.msg);
    memcpy(c, w.b, w.n);
    set32(c, w.tensors_vec + 4, 0x80000000u); /* element offset out of range */
    CHECK_MSG(parse(c, w.n, &e) < 0 && strstr(e.msg, "tensor 0"), "%s", e.msg);
    memcpy(c, w.b, w.n);
    set32(c, w.model_table, 0x7ffffff0u); /* vtable before the file */
    CHECK_MSG(parse(c, w.n, &e) < 0 && strstr(e.msg, "vtable"), "%s", e.msg);
    memcpy(c, w.b, w.n);
    set32(c, w.op0_inputs_vec + 4, 999); /* tensor index */
    CHECK_MSG(parse(c, w.n, &e) < 0 && !strcmp(e.msg, "tflite: operator 0 input index 999 out of range (4 tensors)"),
              "%s", e.msg);

    /* random corruption: never a crash, always a message on failure */
    int fails = 0, silent = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(c, w.b, w.n);
        for (int k = 1 + (int)(rnd() % 4); k > 0; k--)
            c[rnd() % w.n] = (uint8_t)rnd();
        if (parse(c, w.n, &e)) {
            fails++;
            silent += !one_line(&e);
        }
    }
    CHECK(fails > 0 && silent == 0);
    free(c);
    free(w.b);

    /* semantic checks on otherwise well-formed files */
    build_mini(&M);
    M.o[0].in[0] = 999;
    expect_fail(&M, "operator 0 input index 999 out of range (4 tensors)");
    build_mini(&M);
    M.o[0].out = -1;
    expect_fail(&M, "operator 0 output index -1 out of range");
    build_mini(&M);
    M.t[2].shape[0] = -3;
    expect_fail(&M, "tensor 2: negative dimension -3");
    build_mini(&M);
    M.t[1].buffer_override = 50;
    expect_fail(&M, "tensor 1: buffer index 50 out of range (3 buffers)");
    build_mini(&M);
    M.t[1].shape[0] = 4; /* 72 elements for 54 floats of data */
    expect_fail(&M, "tensor 1: 216 data bytes for 72 FLOAT32 elements");
    build_mini(&M);
    M.opcode_bias = 5;
    expect_fail(&M, "operator 0 opcode index 5 out of range (1 operator codes)");
    build_mini(&M);
    M.version = 2;
    expect_fail(&M, "unsupported schema version 2");
    build_mini(&M);
    M.t[1].nscale = 2;
    M.t[1].qdim = 0; /* 2 scales for dimension 0 of size 3 */
    M.t[1].scale[0] = M.t[1].scale[1] = 1;
    expect_fail(&M, "2 scales for dimension 0 of size 3");
    build_mini(&M);
    M.t[1].nscale = 1;
    M.t[1].scale[0] = -1;
    expect_fail(&M, "scale 0 is -1");
    build_mini(&M);
    M.o[0].opt_type = 2; /* depthwise options on a CONV_2D */
    expect_fail(&M, "carries options of union type 2");
    build_mini(&M);
    M.t[1].ndim = 9;
    expect_fail(&M, "9 dimensions");
    /* Found by fuzzing: the message read the code after freeing the table
     * (heap-use-after-free under ASan). */
    build_mini(&M);
    M.o[0].code = -5;
    expect_fail(&M, "operator code 0 is negative (-5)");
}

static char tmpdir[64];

static int convert(const mspec *m, const char *labels, const char *out, tl_err *e)
{
    fbw w;
    tl_tflite *t = NULL;
    serialize(m, &w);
    memset(e, 0, sizeof *e);
    int r = tl_tflite_open_mem(w.b, w.n, &t, e);
    if (!r)
        r = tl_tflite_convert(t, labels, out, NULL, NULL, e);
    tl_tflite_free(t);
    free(w.b);
    return r;
}

static float deq(const tspec *t, size_t i, int c)
{
    const uint8_t *d = t->data;
    if (t->type == 9)
        return (float)((double)(int8_t)d[i] * t->scale[c]);
    return (float)((double)((int)d[i] - t->zp[0]) * t->scale[0]);
}

/* Compares every converted tensor of the generated V1 with its source. */
static void check_v1_checkpoint(const mspec *m, const char *path, int with_pad)
{
    tl_st_file f;
    tl_err e = {0};
    if (tl_st_open(path, &f, &e)) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    CHECK(f.ntensors == 14 * 2 * 6 - 6 + 2);
    const char *meta_want[][2] = {{"tl.arch", "mobilenet_v1"}, {"tl.width_mult", "0.25"}, {"tl.num_classes", "10"},
                                  {"tl.input_size", "32"},     {"tl.resize_size", "37"},  {"tl.padding", "tf_same"},
                                  {"tl.format", "1"},          {"tl.bn_eps", "1e-05"},    {"tl.channel_order", "RGB"},
                                  {"tl.mean", "[0.501960784,0.501960784,0.501960784]"},
                                  {"tl.std", "[0.501960784,0.501960784,0.501960784]"}};
    for (size_t i = 0; i < sizeof meta_want / sizeof meta_want[0]; i++) {
        const char *v = tl_st_meta(&f, meta_want[i][0]);
        CHECK_MSG(v && !strcmp(v, meta_want[i][1]), "%s = %s", meta_want[i][0], v ? v : "(absent)");
    }
    const char *cls = tl_st_meta(&f, "tl.classes");
    CHECK_MSG(cls && !strcmp(cls, "[\"zero\",\"one \\\"1\\\"\",\"two\\\\\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]"),
              "classes %s", cls ? cls : "(absent)");

    /* walk the source convs in order */
    int ci = 0, mismatches = 0;
    for (int oi = 0; oi < m->no; oi++) {
        const ospec *o = &m->o[oi];
        if (o->code != 3 && o->code != 4)
            continue;
        const tspec *wt = &m->t[o->in[1]], *bt = &m->t[o->in[2]], *xt = &m->t[o->in[0]];
        char wn[64], bn[64];
        int dw = o->code == 4, cls_layer = ci == 27;
        int blk = (ci + 1) / 2;
        if (ci == 0)
            snprintf(wn, sizeof wn, "features.0.0.weight"), snprintf(bn, sizeof bn, "features.0.1");
        else if (cls_layer)
            snprintf(wn, sizeof wn, "classifier.1.weight"), snprintf(bn, sizeof bn, "classifier.1");
        else
            snprintf(wn, sizeof wn, "features.%d.%d.weight", blk, dw ? 0 : 3),
                snprintf(bn, sizeof bn, "features.%d.%d", blk, dw ? 1 : 4);
        const tl_st_tensor *tw = tl_st_find(&f, wn);
        int O = dw ? wt->shape[3] : wt->shape[0], K = wt->shape[1], I = dw ? 1 : wt->shape[3];
        CHECK_MSG(tw && tw->dtype == TL_F32 && tw->numel == (int64_t)O * I * K * K, "%s", wn);
        if (!tw)
            break;
        CHECK(cls_layer ? tw->ndim == 2 && tw->shape[0] == O && tw->shape[1] == I
                        : tw->ndim == 4 && tw->shape[0] == O && tw->shape[1] == I && tw->shape[2] == K);
        for (int oc = 0; oc < O; oc++)
            for (int ic = 0; ic < I; ic++)
                for (int y = 0; y < K; y++)
                    for (int x = 0; x < K; x++) {
                        size_t src = dw ? (size_t)(y * K + x) * O + oc : ((size_t)(oc * K + y) * K + x) * I + ic;
                        float want = deq(wt, src, wt->nscale > 1 ? oc : 0);
                        mismatches += fget(tw, ((oc * I + ic) * K + y) * K + x) != want;
                    }
        char name[96];
        snprintf(name, sizeof name, "%s.bias", bn);
        const tl_st_tensor *tb = tl_st_find(&f, name);
        CHECK_MSG(tb && tb->numel == O, "%s", name);
        for (int oc = 0; tb && oc < O; oc++) {
            int32_t q;
            memcpy(&q, (const uint8_t *)bt->data + 4 * oc, 4);
            float s = xt->scale[0] * wt->scale[wt->nscale > 1 ? oc : 0];
            mismatches += fabsf(fget(tb, oc) - (float)((double)q * s)) > 1e-6f * (1 + fabsf((float)(q * s)));
        }
        if (!cls_layer) {
            const char *fields[] = {"weight", "running_mean", "running_var", "num_batches_tracked"};
            for (int k = 0; k < 4; k++) {
                snprintf(name, sizeof name, "%s.%s", bn, fields[k]);
                const tl_st_tensor *t = tl_st_find(&f, name);
                CHECK_MSG(t && (k == 3 ? t->dtype == TL_I64 && t->ndim == 0 : t->numel == O), "%s", name);
                if (t && k < 3)
                    for (int oc = 0; oc < O; oc++) {
                        float v = fget(t, oc);
                        mismatches += k == 0 ? v != 1.0f : k == 1 ? v != 0.0f : v + 1e-5f != 1.0f;
                    }
            }
        }
        ci++;
    }
    CHECK_MSG(ci == 28 && mismatches == 0, "%d convs, %d mismatched values (pad %d)", ci, mismatches, with_pad);
    tl_st_close(&f);
}

static void test_convert_v1(void)
{
    char labels[96], out[96], out2[96], bad[96];
    tl_err e;
    snprintf(labels, sizeof labels, "%s/labels.txt", tmpdir);
    snprintf(out, sizeof out, "%s/v1.safetensors", tmpdir);
    snprintf(out2, sizeof out2, "%s/v1pad.safetensors", tmpdir);
    FILE *lf = fopen(labels, "w");
    fputs("zero\r\none \"1\"\ntwo\\\n3\n4\n5\n6\n7\n8\n9\n\n", lf);
    fclose(lf);

    for (int pc = 0; pc < 2; pc++) {
        build_v1(&M, pc, 0);
        CHECK_MSG(convert(&M, labels, out, &e) == 0, "%s", e.msg);
        check_v1_checkpoint(&M, out, 0);
        /* PAD + VALID gives the same checkpoint */
        build_v1(&M2, pc, 1);
        CHECK_MSG(convert(&M2, labels, out2, &e) == 0, "%s", e.msg);
        check_v1_checkpoint(&M2, out2, 1);
        CHECK(M2.no == M.no + 5);
    }

    /* without labels: classes are indices */
    build_v1(&M, 0, 0);
    CHECK_MSG(convert(&M, NULL, out, &e) == 0, "%s", e.msg);
    tl_st_file f;
    if (tl_st_open(out, &f, &e) == 0) {
        const char *c = tl_st_meta(&f, "tl.classes");
        CHECK(c && !strcmp(c, "[\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]"));
        tl_st_close(&f);
    }

    /* graphs that are not a MobileNet fail clearly, and write nothing */
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmpdir);
    struct { const char *want; int op, field, value; } cases[] = {
        {"expected DEPTHWISE_CONV_2D at op 1, found ADD", 1, -1, 0},
        {"conv at op 2 has fused activation RELU, expected RELU6", 2, 1, 1},
        {"conv at op 0 has stride 1x1, expected 2", 0, 2, 1},
        {"not the tf_same rule", 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        build_v1(&M, 0, 0);
        ospec *o = &M.o[cases[i].op];
        if (cases[i].field < 0)
            o->code = 0, o->opt_type = 0;
        else if (cases[i].field == 1)
            o->opt[3].v = cases[i].value; /* activation of a 1x1 conv (4th option) */
        else if (cases[i].field == 2)
            o->opt[1].v = o->opt[2].v = cases[i].value;
        else
            o->opt[0].v = 1; /* VALID on a 3x3 stride-1 depthwise: no padding at all */
        if (cases[i].field == 0) { /* a valid conv shrinks its output */
            M.t[o->out].shape[1] -= 2;
            M.t[o->out].shape[2] -= 2;
        }
        unlink(bad);
        int r = convert(&M, labels, bad, &e);
        CHECK_MSG(r < 0 && strstr(e.msg, cases[i].want) && one_line(&e), "case %zu: %s", i, r ? e.msg : "converted");
        CHECK(access(bad, F_OK) != 0);
    }
    build_v1(&M, 0, 0);
    M.output = M.o[M.no - 2].out; /* model output before the softmax */
    CHECK_MSG(convert(&M, labels, bad, &e) < 0 && strstr(e.msg, "model output is not the end"), "%s", e.msg);
    build_v1(&M, 0, 0);
    lf = fopen(labels, "w");
    fputs("a\nb\n", lf);
    fclose(lf);
    CHECK(convert(&M, labels, bad, &e) < 0 && strstr(e.msg, "2 labels for a model with 10 classes"));
    unlink(labels);
    unlink(out);
    unlink(out2);
    unlink(bad);
}

/* ---- the real models, when present ---- */

static void test_real_models(void)
{
    static const char *dir = "../shared/models/tflite";
    struct { const char *file; const char *arch; int conv, dw, add, classes, size; } want[] = {
        {"mobilenet_v2_1.0_224_quant.tflite", "mobilenet_v2 width 1.0", 36, 17, 10, 1001, 224},
        {"tf2_mobilenet_v2_1.0_224_ptq.tflite", "mobilenet_v2 width 1.0", 36, 17, 10, 1001, 224},
        {"mobilenet_v1_0.25_128_quant.tflite", "mobilenet_v1 width 0.25", 15, 13, 0, 1001, 128},
        {"mobilenet_v1_0.5_160_quant.tflite", "mobilenet_v1 width 0.5", 15, 13, 0, 1001, 160},
        {"mobilenet_v1_0.75_192_quant.tflite", "mobilenet_v1 width 0.75", 15, 13, 0, 1001, 192},
        {"mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", "mobilenet_v1 width 1.0", 14, 13, 0, 0, 224},
        {"mobilenet_v2_1.0_224_inat_bird_quant.tflite", "mobilenet_v2 width 1.0", 35, 17, 10, 965, 224},
        {"mobilenet_v2_1.0_224_inat_insect_quant.tflite", "mobilenet_v2 width 1.0", 35, 17, 10, 1022, 224},
    };
    DIR *d = opendir(dir);
    if (!d) {
        printf("test_tflite: %s not found, real models skipped\n", dir);
        return;
    }
    closedir(d);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[256], desc[1024], classes[32];
        tl_tflite *m = NULL;
        tl_err e = {0};
        snprintf(path, sizeof path, "%s/%s", dir, want[i].file);
        if (tl_tflite_open(path, &m, &e)) {
            CHECK_MSG(0, "%s: %s", want[i].file, e.msg);
            continue;
        }
        const tl_tfl_tensor *in = &m->tensors[m->inputs[0]];
        CHECK(in->ndim == 4 && in->shape[1] == want[i].size && in->shape[3] == 3 && in->type == TL_TFL_UINT8);
        CHECK_MSG(tl_tflite_count_ops(m, TL_TFL_CONV_2D) == want[i].conv &&
                      tl_tflite_count_ops(m, TL_TFL_DEPTHWISE_CONV_2D) == want[i].dw &&
                      tl_tflite_count_ops(m, TL_TFL_ADD) == want[i].add, "%s op counts", want[i].file);
        CHECK(!strcmp(m->source, want[i].file));
        tl_tflite_describe(m, desc, sizeof desc);
        snprintf(classes, sizeof classes, "%d classes", want[i].classes);
        CHECK_MSG(strstr(desc, want[i].arch) && strstr(desc, classes), "%s: %s", want[i].file, desc);
        tl_tflite_free(m);
    }

    /* one full conversion of a real file */
    char path[256], out[96];
    tl_tflite *m = NULL;
    tl_err e = {0};
    snprintf(path, sizeof path, "%s/tf2_mobilenet_v2_1.0_224_ptq.tflite", dir);
    snprintf(out, sizeof out, "%s/v2.safetensors", tmpdir);
    if (tl_tflite_open(path, &m, &e) == 0) {
        char labels[256];
        snprintf(labels, sizeof labels, "%s/imagenet_labels.txt", dir);
        CHECK_MSG(tl_tflite_convert(m, labels, out, NULL, NULL, &e) == 0, "%s", e.msg);
        tl_tflite_free(m);
        tl_st_file f;
        if (tl_st_open(out, &f, &e) == 0) {
            CHECK(f.ntensors == 52 * 6 + 2);
            struct { const char *name; int ndim; int64_t s0, s1; } t[] = {
                {"features.0.0.weight", 4, 32, 3},      {"features.1.conv.0.0.weight", 4, 32, 1},
                {"features.1.conv.1.weight", 4, 16, 32}, {"features.2.conv.0.0.weight", 4, 96, 16},
                {"features.2.conv.3.running_var", 1, 24, 0}, {"features.17.conv.2.weight", 4, 320, 960},
                {"features.18.0.weight", 4, 1280, 320},  {"classifier.1.weight", 2, 1001, 1280},
                {"classifier.1.bias", 1, 1001, 0},
            };
            for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                const tl_st_tensor *x = tl_st_find(&f, t[i].name);
                CHECK_MSG(x && x->ndim == t[i].ndim && x->shape[0] == t[i].s0 && (t[i].ndim == 1 || x->shape[1] == t[i].s1),
                          "%s", t[i].name);
            }
            const char *mean = tl_st_meta(&f, "tl.mean"), *std = tl_st_meta(&f, "tl.std");
            CHECK_MSG(mean && !strncmp(mean, "[0.498039", 9) && std && fabs(strtod(std + 1, NULL) - 0.5) < 1e-6, "%s %s",
                      mean, std);
            CHECK(tl_st_meta(&f, "tl.dropout") && !strcmp(tl_st_meta(&f, "tl.dropout"), "0.2"));
            CHECK(tl_st_meta(&f, "tl.source") && !strcmp(tl_st_meta(&f, "tl.source"), "tf2_mobilenet_v2_1.0_224_ptq.tflite"));
            const char *cls = tl_st_meta(&f, "tl.classes");
            CHECK(cls && !strncmp(cls, "[\"background\",\"tench, Tinca tinca\"", 34));
            tl_st_close(&f);
        }
        unlink(out);
    } else {
        CHECK_MSG(0, "%s", e.msg);
    }
}

/* Issue 15: nops operator slots all pointing at one table whose input
 * list has nin entries. Small files, but a parse copying every entry
 * would allocate nops * nin * 4 bytes. */
static size_t shared_ops_model(fbw *w, uint32_t nops, uint32_t nin)
{
    size_t s[8];
    memset(w, 0, sizeof *w);
    put(w, "\0\0\0\0TFL3", 8);
    fld mf[] = {{0, 4, 3}, {1, 0, 0}, {2, 0, 0}, {4, 0, 0}};
    size_t model = table(w, mf, 4, s);
    size_t s_codes = s[1], s_sg = s[2], s_buf = s[3];
    put_u32_at(w, 0, (uint32_t)model);
    size_t cv = refvec(w, 1);
    patch(w, s_codes, cv);
    fld cf[] = {{0, 1, TL_TFL_ADD}, {2, 4, 1}, {3, 4, TL_TFL_ADD}};
    patch(w, cv + 4, table(w, cf, 3, s));
    size_t sgv = refvec(w, 1);
    patch(w, s_sg, sgv);
    fld sgf[] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    patch(w, sgv + 4, table(w, sgf, 4, s));
    size_t s_t = s[0], s_in = s[1], s_out = s[2], s_ops = s[3];
    int32_t zero = 0, one = 1;
    patch(w, s_in, vec(w, &zero, 1, 4));
    patch(w, s_out, vec(w, &zero, 1, 4));
    size_t tv = refvec(w, 1);
    patch(w, s_t, tv);
    fld tf[] = {{0, 0, 0}, {1, 1, TL_TFL_FLOAT32}, {2, 4, 0}, {3, 0, 0}};
    patch(w, tv + 4, table(w, tf, 4, s));
    size_t s_shape = s[0], s_name = s[3];
    patch(w, s_shape, vec(w, &one, 1, 4));
    patch(w, s_name, str(w, "t"));
    size_t ov = refvec(w, nops);
    patch(w, s_ops, ov);
    fld of[] = {{0, 4, 0}, {1, 0, 0}, {2, 0, 0}};
    size_t op = table(w, of, 3, s);
    size_t s_i = s[1], s_o = s[2];
    int32_t *ins = calloc(nin ? nin : 1, sizeof *ins);
    patch(w, s_i, vec(w, ins, nin, 4));
    free(ins);
    patch(w, s_o, vec(w, &zero, 1, 4));
    for (uint32_t k = 0; k < nops; k++)
        patch(w, ov + 4 + 4 * (size_t)k, op);
    size_t bv = refvec(w, 1);
    patch(w, s_buf, bv);
    fld empty[1];
    patch(w, bv + 4, table(w, empty, 0, s));
    return w->n;
}

static void test_shared_tables(void)
{
    fbw w;
    tl_err e;
    tl_tflite *t = NULL;
    /* sharing within the budget parses (and describes: ops counted once each) */
    shared_ops_model(&w, 50, 4);
    CHECK_MSG(tl_tflite_open_mem(w.b, w.n, &t, &e) == 0 && t->nops == 50 && t->ops[49].ninputs == 4, "%s", e.msg);
    char d[256];
    if (t) {
        tl_tflite_describe(t, d, sizeof d);
        CHECK_MSG(strstr(d, "; 50 ops: ADD 50"), "%s", d);
    }
    tl_tflite_free(t);
    free(w.b);
    /* 10,000 operators sharing a 1,000-entry input list: 40 MB from 44 KB */
    size_t n = shared_ops_model(&w, 10000, 1000);
    CHECK(n < 50000);
    CHECK(parse(w.b, n, &e) < 0 && one_line(&e) && strstr(e.msg, "shared tables?"));
    free(w.b);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tflite.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_parse_mini();
    test_shared_tables();
    test_convert_v1();
    test_real_models();
    rmdir(tmpdir);
    return check_finish("test_tflite");
}
