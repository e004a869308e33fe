/* The spec language: ops, their parameters and defaults, the named
 * policies, and the parser. Defaults are written in spec syntax and go
 * through the same value parser as user input, so what --list shows is
 * what runs.
 *
 *   spec  := item { ',' item }
 *   item  := POLICY | OP [ '(' [ param { ',' param } ] ')' ]
 *   param := NAME '=' value
 *   value := NUMBER | NUMBER ':' NUMBER | WORD */
#include "aug_internal.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    PT_PROB,   /* probability in [0, 1] */
    PT_SIZE,   /* "auto" (-1) or a whole number of pixels */
    PT_WXH,    /* "auto" (-1), N (N x N) or WxH: two ints, width then height */
    PT_RANGE,  /* x means x:x */
    PT_SYM,    /* x means -x:x */
    PT_FACTOR, /* x means max(0, 1-x):1+x, as torchvision's ColorJitter */
    PT_IRANGE, /* whole numbers; x means x:x */
    PT_KSIZE,  /* "auto" (0) or an odd whole number */
    PT_FILL,   /* constant | reflect | edge */
    PT_VALUE,  /* grey level 0..255, or "random" (-1) */
};

#define OFF(f) offsetof(aug_op, f)
#define P_PROB(d) \
    {.name = "p", .def = d, .help = "probability of applying the op", .type_ = PT_PROB, .off_ = OFF(p), .lo_ = 0, .hi_ = 1}
/* What the geometric ops put outside the image (rot, translate). */
#define P_FILL \
    {.name = "fill", .def = "constant", .help = "outside the image: constant, reflect or edge", .type_ = PT_FILL, \
     .off_ = OFF(fill), .lo_ = 0, .hi_ = 2}
#define P_FILL_VALUE \
    {.name = "value", .def = "0", .help = "grey level 0..255 for fill=constant", .type_ = PT_VALUE, \
     .off_ = OFF(value), .lo_ = 0, .hi_ = 255}

static const tl_aug_param_info rrc_params[] = {
    {.name = "size",
     .def = "auto",
     .help = "output size, N or WxH (auto: the pipeline's size; 0: the input's own size)",
     .type_ = PT_WXH, .off_ = OFF(size), .lo_ = 0, .hi_ = 16384},
    {.name = "scale",
     .def = "0.08:1",
     .help = "range of the crop's area, as a fraction of the image's",
     .type_ = PT_RANGE, .off_ = OFF(scale), .lo_ = 1e-6, .hi_ = 1},
    {.name = "ratio",
     .def = "0.75:1.333333",
     .help = "range of the crop's aspect ratio w/h (drawn log-uniformly)",
     .type_ = PT_RANGE, .off_ = OFF(ratio), .lo_ = 1e-3, .hi_ = 1e3},
    P_PROB("1"),
};
static const tl_aug_param_info flip_params[] = { P_PROB("0.5") };
static const tl_aug_param_info rot_params[] = {
    {.name = "deg",
     .def = "15",
     .help = "angle range in degrees, counter-clockwise; d alone means -d:d",
     .type_ = PT_SYM, .off_ = OFF(deg), .lo_ = -360, .hi_ = 360},
    P_FILL, P_FILL_VALUE,
    P_PROB("1"),
};
static const tl_aug_param_info rot90_params[] = {
    {.name = "k",
     .def = "0:3",
     .help = "quarter turns counter-clockwise, a whole number drawn from the range",
     .type_ = PT_IRANGE, .off_ = OFF(k), .lo_ = 0, .hi_ = 3},
    P_PROB("1"),
};
static const tl_aug_param_info translate_params[] = {
    {.name = "x",
     .def = "0.1",
     .help = "horizontal shift as a fraction of the width; d alone means -d:d (whole pixels)",
     .type_ = PT_SYM, .off_ = OFF(tx), .lo_ = -1, .hi_ = 1},
    {.name = "y",
     .def = "0.1",
     .help = "vertical shift as a fraction of the height; d alone means -d:d",
     .type_ = PT_SYM, .off_ = OFF(ty), .lo_ = -1, .hi_ = 1},
    P_FILL, P_FILL_VALUE,
    P_PROB("1"),
};
static const tl_aug_param_info jitter_params[] = {
    {.name = "b",
     .def = "0.4",
     .help = "brightness factor range (blend with black); d alone means max(0,1-d):1+d",
     .type_ = PT_FACTOR, .off_ = OFF(b), .lo_ = 0, .hi_ = 1e3},
    {.name = "c",
     .def = "0.4",
     .help = "contrast factor range (blend with the mean grey level)",
     .type_ = PT_FACTOR, .off_ = OFF(c), .lo_ = 0, .hi_ = 1e3},
    {.name = "s",
     .def = "0.4",
     .help = "saturation factor range (blend with the greyscale image)",
     .type_ = PT_FACTOR, .off_ = OFF(s), .lo_ = 0, .hi_ = 1e3},
    {.name = "h",
     .def = "0",
     .help = "hue shift range in turns (HSV); d alone means -d:d",
     .type_ = PT_SYM, .off_ = OFF(h), .lo_ = -0.5, .hi_ = 0.5},
    P_PROB("1"),
};
static const tl_aug_param_info grey_params[] = { P_PROB("0.1") };
static const tl_aug_param_info noise_params[] = {
    {.name = "sigma",
     .def = "0.01:0.05",
     .help = "standard deviation range on the 0..1 scale (0.04 is about 10 levels)",
     .type_ = PT_RANGE, .off_ = OFF(sigma), .lo_ = 0, .hi_ = 1},
    P_PROB("1"),
};
static const tl_aug_param_info blur_params[] = {
    {.name = "sigma",
     .def = "0.1:2",
     .help = "standard deviation range in pixels",
     .type_ = PT_RANGE, .off_ = OFF(sigma), .lo_ = 0.01, .hi_ = 100},
    {.name = "k",
     .def = "auto",
     .help = "odd kernel size (auto: 2*ceil(3*sigma)+1)",
     .type_ = PT_KSIZE, .off_ = OFF(ksize), .lo_ = 0, .hi_ = 601},
    P_PROB("1"),
};
static const tl_aug_param_info jpeg_params[] = {
    {.name = "q",
     .def = "30:90",
     .help = "JPEG quality range, whole numbers in 1..100",
     .type_ = PT_IRANGE, .off_ = OFF(quality), .lo_ = 1, .hi_ = 100},
    P_PROB("1"),
};
static const tl_aug_param_info erase_params[] = {
    {.name = "scale",
     .def = "0.02:0.33",
     .help = "range of the erased area, as a fraction of the image's",
     .type_ = PT_RANGE, .off_ = OFF(scale), .lo_ = 1e-6, .hi_ = 1},
    {.name = "ratio",
     .def = "0.3:3.3",
     .help = "range of the erased box's aspect ratio h/w (log-uniform)",
     .type_ = PT_RANGE, .off_ = OFF(ratio), .lo_ = 1e-3, .hi_ = 1e3},
    {.name = "value",
     .def = "0",
     .help = "grey level 0..255, or random (uniform random bytes)",
     .type_ = PT_VALUE, .off_ = OFF(value), .lo_ = 0, .hi_ = 255},
    P_PROB("0.5"),
};
static const tl_aug_param_info resize_params[] = {
    {.name = "size",
     .def = "auto",
     .help = "shorter side in pixels (auto: the pipeline's resize size; 0: no-op)",
     .type_ = PT_SIZE, .off_ = OFF(size), .lo_ = 0, .hi_ = 16384},
    P_PROB("1"),
};
static const tl_aug_param_info crop_params[] = {
    {.name = "size",
     .def = "auto",
     .help = "centre crop, N or WxH (auto: the pipeline's size; 0: no-op); zero-padded if larger",
     .type_ = PT_WXH, .off_ = OFF(size), .lo_ = 0, .hi_ = 16384},
    P_PROB("1"),
};

#define OPI(name_, alias, help_, ps) \
    {.name = name_, .aliases = alias, .help = help_, .nparams = (int)(sizeof ps / sizeof ps[0]), .params = ps}

/* Indexed by AUG_* kind. */
static const tl_aug_op_info ops[AUG_NKINDS] = {
    OPI("rrc", NULL, "random resized crop (torchvision RandomResizedCrop: 10 tries, then a centre crop)",
        rrc_params),
    OPI("hflip", NULL, "horizontal (left-right) flip", flip_params),
    OPI("vflip", NULL, "vertical (upside-down) flip", flip_params),
    OPI("rot", "rotate", "rotation about the centre by a random angle, bilinear, same size", rot_params),
    OPI("rot90", NULL, "a random multiple of 90 degrees (exact; swaps width and height when odd)",
        rot90_params),
    OPI("translate", "shift", "random shift by whole pixels", translate_params),
    OPI("jitter", "colorjitter", "colour jitter as torchvision's ColorJitter (the four in random order)",
        jitter_params),
    OPI("grey", "gray,greyscale,grayscale", "greyscale (ITU-R 601 luma) in all three channels",
        grey_params),
    OPI("noise", NULL, "additive Gaussian noise, independent per pixel and channel", noise_params),
    OPI("blur", NULL, "Gaussian blur, reflect padding (torchvision gaussian_blur)", blur_params),
    OPI("jpeg", NULL, "JPEG re-compression in memory (block and ringing artefacts)", jpeg_params),
    OPI("erase", "cutout", "random erasing of a box (torchvision RandomErasing)", erase_params),
    OPI("resize", NULL, "resize the shorter side (torchvision Resize(int), PIL bilinear)", resize_params),
    OPI("crop", "ccrop,centercrop", "centre crop (torchvision CenterCrop)", crop_params),
};

static const tl_aug_policy_info policies[] = {
    {.name = "natural",
     .spec = "rrc(scale=0.08:1),hflip,jitter(b=0.2,c=0.2,s=0.2)",
     .why = "the usual ImageNet recipe for photographs: objects appear at any scale and position and "
      "mirror images are as likely as the originals; lighting varies mildly"},
    {.name = "medical",
     .spec = "resize,rot(deg=10,fill=edge),rrc(scale=0.7:1,ratio=0.9:1.1),hflip,jitter(b=0.1,c=0.1,s=0)",
     .why = "scans are framed consistently and anatomy has an up: no vertical flip, small rotations, "
      "crops that keep most of the field, mild brightness and contrast, no colour changes"},
    {.name = "aerial",
     .spec = "rrc(scale=0.25:1),hflip,vflip,rot90,jitter(b=0.2,c=0.2,s=0.1)",
     .why = "a view from above has no up or down: every flip and quarter turn is an equally valid image"},
    {.name = "document",
     .spec = "resize,rot(deg=3,fill=constant,value=255),translate(x=0.03,y=0.03,fill=constant,value=255),"
      "crop,blur(sigma=0.1:1,p=0.3),noise(sigma=0.01:0.04,p=0.3),jpeg(q=30:90,p=0.3)",
     .why = "text has a reading direction, so no flips; scans are slightly skewed and shifted on white "
      "paper, and copies are blurred, noisy or compressed"},
    {.name = "low-quality",
     .spec = "rrc(scale=0.5:1),hflip,jitter(b=0.3,c=0.3,s=0.3),grey(p=0.2),blur(sigma=0.5:2,p=0.5),"
      "noise(sigma=0.02:0.08,p=0.7),jpeg(q=10:50,p=0.7)",
     .why = "simulates grainy, blurred, badly lit and heavily compressed footage (security cameras, "
      "night-time greyscale): trains for the domain shift to degraded images"},
};

#define NPOLICIES ((int)(sizeof policies / sizeof policies[0]))

int tl_aug_op_count(void) { return AUG_NKINDS; }
const tl_aug_op_info *tl_aug_op_at(int i) { return i >= 0 && i < AUG_NKINDS ? &ops[i] : NULL; }
int tl_aug_policy_count(void) { return NPOLICIES; }
const tl_aug_policy_info *tl_aug_policy_at(int i) { return i >= 0 && i < NPOLICIES ? &policies[i] : NULL; }

void tl_aug_opts_default(tl_aug_opts *o)
{
    o->w = o->h = 224;
    o->resize_size = 256;
    o->resize_mode = TL_RESIZE_CROP;
}

/* ---- parser ---- */

typedef struct parser {
    const char *s;
    size_t pos;
    tl_aug_pipeline *pl;
    tl_err *e;
} parser;

static int col(const parser *ps, size_t pos) { (void)ps; return (int)pos + 1; }

static void skip_ws(parser *ps)
{
    while (ps->s[ps->pos] == ' ' || ps->s[ps->pos] == '\t' || ps->s[ps->pos] == '\n')
        ps->pos++;
}

static int name_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

/* Copies the name at ps->pos into buf (truncated), returns its length. */
static size_t read_name(parser *ps, char *buf, size_t n)
{
    size_t b = ps->pos;
    while (name_char(ps->s[ps->pos]))
        ps->pos++;
    size_t len = ps->pos - b;
    size_t c = len < n - 1 ? len : n - 1;
    memcpy(buf, ps->s + b, c);
    buf[c] = '\0';
    return len;
}

static int lookup_op(const char *name)
{
    for (int i = 0; i < AUG_NKINDS; i++) {
        if (!strcmp(name, ops[i].name))
            return i;
        const char *a = ops[i].aliases;
        while (a && *a) {
            size_t l = strcspn(a, ",");
            if (l == strlen(name) && !strncmp(a, name, l))
                return i;
            a += l + (a[l] == ',');
        }
    }
    return -1;
}

static int lookup_policy(const char *name)
{
    for (int i = 0; i < NPOLICIES; i++)
        if (!strcmp(name, policies[i].name))
            return i;
    return -1;
}

/* A number with nothing else; no inf or nan. */
static int parse_number(const char *txt, double *v)
{
    if (!*txt || isspace((unsigned char)*txt))
        return -1;
    char *end;
    *v = strtod(txt, &end);
    if (end == txt || *end || !isfinite(*v))
        return -1;
    for (const char *c = txt; c < end; c++)
        if (isalpha((unsigned char)*c) && *c != 'e' && *c != 'E')
            return -1; /* hex floats and the like */
    return 0;
}

static int is_whole(double v) { return v == floor(v); }

/* Parses txt (a value as written, trimmed) for parameter pi into op;
 * c is the value's column for messages. */
static int parse_value(const tl_aug_param_info *pi, const char *opname, const char *txt, int c,
                       aug_op *op, tl_err *e)
{
    char *base = (char *)op + pi->off_;
    switch (pi->type_) {
    case PT_FILL: {
        static const char *const names[] = { "constant", "reflect", "edge" };
        for (int i = 0; i < 3; i++)
            if (!strcmp(txt, names[i])) {
                *(int *)base = i;
                return 0;
            }
        return tl_fail(e, "bad fill '%s' for '%s' at column %d (expected constant, reflect or edge)",
                       txt, pi->name, c);
    }
    case PT_WXH: {
        int *wh = (int *)base;
        if (!strcmp(txt, "auto")) {
            wh[0] = wh[1] = -1;
            return 0;
        }
        if (!strcmp(txt, "0")) {
            wh[0] = wh[1] = 0;
            return 0;
        }
        if (tl_input_size_parse(txt, (int)pi->hi_, &wh[0], &wh[1]))
            return tl_fail(e, "'%s' must be auto, 0, N or WxH (whole numbers in 1..%g), got %s at column %d",
                           pi->name, pi->hi_, txt, c);
        return 0;
    }
    case PT_VALUE:
    case PT_SIZE:
    case PT_KSIZE: {
        const char *word = pi->type_ == PT_VALUE ? "random" : "auto";
        if (!strcmp(txt, word)) {
            *(int *)base = pi->type_ == PT_KSIZE ? 0 : -1;
            return 0;
        }
        double v;
        if (parse_number(txt, &v))
            return tl_fail(e, "bad number '%s' for '%s' at column %d", txt, pi->name, c);
        if (!is_whole(v) || v < pi->lo_ || v > pi->hi_)
            return tl_fail(e, "'%s' must be %s or a whole number in %g..%g, got %s at column %d",
                           pi->name, word, pi->lo_, pi->hi_, txt, c);
        if (pi->type_ == PT_KSIZE && v != 0 && ((long)v % 2 == 0))
            return tl_fail(e, "'%s' must be odd, got %s at column %d", pi->name, txt, c);
        *(int *)base = (int)v;
        return 0;
    }
    case PT_PROB: {
        double v;
        if (parse_number(txt, &v))
            return tl_fail(e, "bad number '%s' for '%s' at column %d", txt, pi->name, c);
        if (v < 0 || v > 1)
            return tl_fail(e, "p=%s is outside [0,1] at column %d", txt, c);
        *(double *)base = v;
        return 0;
    }
    default: break;
    }
    /* ranges */
    const char *colon = strchr(txt, ':');
    double lo, hi;
    char a[128];
    if (colon) {
        size_t l = (size_t)(colon - txt);
        if (l >= sizeof a)
            l = sizeof a - 1;
        while (l > 0 && isspace((unsigned char)txt[l - 1]))
            l--;
        memcpy(a, txt, l);
        a[l] = '\0';
        const char *b = colon + 1;
        while (isspace((unsigned char)*b))
            b++;
        if (parse_number(a, &lo))
            return tl_fail(e, "bad number '%s' for '%s' at column %d", a, pi->name, c);
        if (parse_number(b, &hi))
            return tl_fail(e, "bad number '%s' for '%s' at column %d", b, pi->name, c + (int)(b - txt));
        if (lo > hi)
            return tl_fail(e, "range %s for '%s' has min > max at column %d", txt, pi->name, c);
    } else {
        double v;
        if (parse_number(txt, &v))
            return tl_fail(e, "bad number '%s' for '%s' at column %d", txt, pi->name, c);
        if (pi->type_ == PT_SYM && v < 0)
            return tl_fail(e, "'%s' must not be negative (write a range lo:hi), got %s at column %d",
                           pi->name, txt, c);
        if (pi->type_ == PT_FACTOR && v < 0)
            return tl_fail(e, "'%s' must not be negative, got %s at column %d", pi->name, txt, c);
        lo = hi = v;
        if (pi->type_ == PT_SYM)
            lo = -v;
        else if (pi->type_ == PT_FACTOR) {
            lo = 1 - v > 0 ? 1 - v : 0;
            hi = 1 + v;
        }
    }
    if (lo < pi->lo_ || hi > pi->hi_)
        return tl_fail(e, "'%s' of %s must lie in %g..%g, got %s at column %d", pi->name, opname,
                       pi->lo_, pi->hi_, txt, c);
    if (pi->type_ == PT_IRANGE && (!is_whole(lo) || !is_whole(hi)))
        return tl_fail(e, "'%s' must be whole numbers, got %s at column %d", pi->name, txt, c);
    aug_range *r = (aug_range *)base;
    r->lo = lo;
    r->hi = hi;
    return 0;
}

static void op_defaults(int kind, aug_op *op)
{
    memset(op, 0, sizeof *op);
    op->kind = kind;
    tl_err e;
    for (int i = 0; i < ops[kind].nparams; i++) {
        int rc = parse_value(&ops[kind].params[i], ops[kind].name, ops[kind].params[i].def, 0, op, &e);
        (void)rc; /* the tables are checked by the unit tests */
    }
}

static aug_op *push_op(parser *ps)
{
    tl_aug_pipeline *pl = ps->pl;
    if (pl->nops == pl->cap) {
        int cap = pl->cap ? pl->cap * 2 : 8;
        aug_op *n = realloc(pl->ops, (size_t)cap * sizeof *n);
        if (!n) {
            tl_fail(ps->e, "out of memory");
            return NULL;
        }
        pl->ops = n;
        pl->cap = cap;
    }
    return &pl->ops[pl->nops++];
}

static int parse_params(parser *ps, aug_op *op, size_t open)
{
    const tl_aug_op_info *oi = &ops[op->kind];
    unsigned seen = 0;
    ps->pos++; /* '(' */
    skip_ws(ps);
    if (ps->s[ps->pos] == ')') {
        ps->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(ps);
        char c = ps->s[ps->pos];
        if (!c)
            return tl_fail(ps->e, "unclosed '(' at column %d", col(ps, open));
        if (!name_start(c))
            return tl_fail(ps->e, "expected a parameter name at column %d", col(ps, ps->pos));
        size_t npos = ps->pos;
        char name[64];
        read_name(ps, name, sizeof name);
        skip_ws(ps);
        if (ps->s[ps->pos] != '=')
            return tl_fail(ps->e, "expected '=' after '%s' at column %d", name, col(ps, ps->pos));
        ps->pos++;
        skip_ws(ps);
        size_t vpos = ps->pos;
        while (ps->s[ps->pos] && !strchr(",()", ps->s[ps->pos]))
            ps->pos++;
        if (ps->s[ps->pos] == '(')
            return tl_fail(ps->e, "unexpected '(' at column %d", col(ps, ps->pos));
        size_t vend = ps->pos;
        while (vend > vpos && isspace((unsigned char)ps->s[vend - 1]))
            vend--;
        if (vend == vpos)
            return tl_fail(ps->e, "missing value for '%s' at column %d", name, col(ps, vpos));
        int pi = -1;
        for (int i = 0; i < oi->nparams; i++)
            if (!strcmp(name, oi->params[i].name))
                pi = i;
        if (pi < 0) {
            char list[256] = "";
            for (int i = 0; i < oi->nparams; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         oi->params[i].name);
            return tl_fail(ps->e, "unknown parameter '%s' for op '%s' at column %d (%s takes %s)", name,
                           oi->name, col(ps, npos), oi->name, list);
        }
        if (seen & (1u << pi))
            return tl_fail(ps->e, "parameter '%s' given twice at column %d", name, col(ps, npos));
        seen |= 1u << pi;
        char val[256];
        size_t vl = vend - vpos < sizeof val - 1 ? vend - vpos : sizeof val - 1;
        memcpy(val, ps->s + vpos, vl);
        val[vl] = '\0';
        if (parse_value(&oi->params[pi], oi->name, val, col(ps, vpos), op, ps->e))
            return -1;
        if (ps->s[ps->pos] == ',') {
            ps->pos++;
            continue;
        }
        if (ps->s[ps->pos] == ')') {
            ps->pos++;
            return 0;
        }
        return tl_fail(ps->e, "unclosed '(' at column %d", col(ps, open));
    }
}

static int parse_spec(parser *ps, int depth)
{
    skip_ws(ps);
    if (!ps->s[ps->pos])
        return tl_fail(ps->e, "empty spec");
    for (;;) {
        skip_ws(ps);
        char c = ps->s[ps->pos];
        if (!c || c == ',')
            return tl_fail(ps->e, "expected an op at column %d", col(ps, ps->pos));
        if (c == ')')
            return tl_fail(ps->e, "unbalanced ')' at column %d", col(ps, ps->pos));
        if (!name_start(c))
            return tl_fail(ps->e, "unexpected '%c' at column %d", c, col(ps, ps->pos));
        size_t npos = ps->pos;
        char name[64];
        read_name(ps, name, sizeof name);
        skip_ws(ps);
        int kind = lookup_op(name);
        int pol = kind < 0 ? lookup_policy(name) : -1;
        if (kind < 0 && pol < 0)
            return tl_fail(ps->e, "unknown op '%s' at column %d", name, col(ps, npos));
        if (pol >= 0) {
            if (ps->s[ps->pos] == '(')
                return tl_fail(ps->e, "policy '%s' takes no parameters at column %d", name,
                               col(ps, ps->pos));
            parser sub = { policies[pol].spec, 0, ps->pl, ps->e };
            if (depth > 0 || parse_spec(&sub, depth + 1))
                return tl_fail_prefix(ps->e, "policy '%s'", name);
        } else {
            aug_op *op = push_op(ps);
            if (!op)
                return -1;
            op_defaults(kind, op);
            if (ps->s[ps->pos] == '(' && parse_params(ps, op, ps->pos))
                return -1;
        }
        skip_ws(ps);
        c = ps->s[ps->pos];
        if (!c)
            return 0;
        if (c == ',') {
            ps->pos++;
            continue;
        }
        if (c == ')')
            return tl_fail(ps->e, "unbalanced ')' at column %d", col(ps, ps->pos));
        return tl_fail(ps->e, "expected ',' or '(' after '%s' at column %d", name, col(ps, ps->pos));
    }
}

tl_aug_pipeline *tl_aug_parse(const char *spec, const tl_aug_opts *o, tl_err *e)
{
    tl_aug_opts def;
    if (!o) {
        tl_aug_opts_default(&def);
        o = &def;
    }
    int h = o->h ? o->h : o->w;
    if (o->w < 0 || h < 0 || o->resize_size < 0 || (o->w == 0) != (h == 0)) {
        tl_fail(e, "invalid output size %dx%d", o->w, h);
        return NULL;
    }
    tl_aug_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    pl->w = o->w;
    pl->h = h;
    pl->resize_size = o->resize_size ? o->resize_size : (int)lround((o->w < h ? o->w : h) * 256.0 / 224.0);
    pl->resize_mode = o->resize_mode;
    parser ps = { spec ? spec : "", 0, pl, e };
    if (parse_spec(&ps, 0)) {
        tl_aug_free(pl);
        return NULL;
    }
    for (int i = 0; i < pl->nops; i++) {
        aug_op *op = &pl->ops[i];
        if (op->size < 0 && op->kind == AUG_RESIZE) {
            op->size = pl->resize_size;
        } else if (op->size < 0) {
            op->size = pl->w;
            op->size_h = pl->h;
        }
    }
    return pl;
}

void tl_aug_free(tl_aug_pipeline *p)
{
    if (!p)
        return;
    free(p->ops);
    free(p);
}

int tl_aug_num_ops(const tl_aug_pipeline *p) { return p->nops; }
void tl_aug_output_dims(const tl_aug_pipeline *p, int *w, int *h)
{
    *w = p->w;
    *h = p->h;
}

typedef struct sbuf {
    char *b;
    size_t n, len;
} sbuf;

static void put(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->len < s->n ? s->n - s->len : 0;
    int k = vsnprintf(room ? s->b + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        s->len += (size_t)k;
}

int tl_aug_describe(const tl_aug_pipeline *p, char *buf, size_t n)
{
    sbuf s = { buf, n, 0 };
    if (n)
        buf[0] = '\0';
    for (int i = 0; i < p->nops; i++) {
        const aug_op *op = &p->ops[i];
        const tl_aug_op_info *oi = &ops[op->kind];
        put(&s, "%s%s(", i ? "," : "", oi->name);
        for (int j = 0; j < oi->nparams; j++) {
            const tl_aug_param_info *pi = &oi->params[j];
            const char *base = (const char *)op + pi->off_;
            put(&s, "%s%s=", j ? "," : "", pi->name);
            switch (pi->type_) {
            case PT_PROB: put(&s, "%.7g", *(const double *)base); break;
            case PT_SIZE: put(&s, "%d", *(const int *)base); break;
            case PT_WXH: {
                const int *wh = (const int *)base;
                if (wh[0] == wh[1])
                    put(&s, "%d", wh[0]);
                else
                    put(&s, "%dx%d", wh[0], wh[1]);
                break;
            }
            case PT_KSIZE:
                if (*(const int *)base)
                    put(&s, "%d", *(const int *)base);
                else
                    put(&s, "auto");
                break;
            case PT_FILL: put(&s, "%s", (const char *[]){ "constant", "reflect", "edge" }[*(const int *)base]); break;
            case PT_VALUE:
                if (*(const int *)base < 0)
                    put(&s, "random");
                else
                    put(&s, "%d", *(const int *)base);
                break;
            default: {
                const aug_range *r = (const aug_range *)base;
                put(&s, "%.7g:%.7g", r->lo + 0.0, r->hi + 0.0);
            }
            }
        }
        put(&s, ")");
    }
    return (int)s.len;
}
