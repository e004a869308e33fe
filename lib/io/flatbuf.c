#include "flatbuf.h"

#include <string.h>

uint8_t tl_fb_u8(const tl_fb *fb, size_t pos) { return fb->buf[pos]; }

uint16_t tl_fb_u16(const tl_fb *fb, size_t pos)
{
    const uint8_t *p = fb->buf + pos;
    return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t tl_fb_u32(const tl_fb *fb, size_t pos)
{
    const uint8_t *p = fb->buf + pos;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int32_t tl_fb_i32(const tl_fb *fb, size_t pos)
{
    uint32_t u = tl_fb_u32(fb, pos);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

uint64_t tl_fb_u64(const tl_fb *fb, size_t pos)
{
    return (uint64_t)tl_fb_u32(fb, pos) | (uint64_t)tl_fb_u32(fb, pos + 4) << 32;
}

float tl_fb_f32(const tl_fb *fb, size_t pos)
{
    uint32_t u = tl_fb_u32(fb, pos);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* [pos, pos+size) lies inside the buffer (overflow-safe). */
static int in_range(const tl_fb *fb, size_t pos, size_t size)
{
    return pos <= fb->n && size <= fb->n - pos;
}

int tl_fb_table_at(const tl_fb *fb, size_t pos, tl_fb_table *t, tl_err *e)
{
    if (!in_range(fb, pos, 4))
        return tl_fail(e, "table offset %zu out of range (%zu bytes)", pos, fb->n);
    /* The vtable sits at pos - soffset; it may be before or after the table. */
    int64_t vt = (int64_t)pos - (int64_t)tl_fb_i32(fb, pos);
    if (vt < 0 || !in_range(fb, (size_t)vt, 4))
        return tl_fail(e, "vtable of table at %zu out of range", pos);
    uint16_t vt_size = tl_fb_u16(fb, (size_t)vt), size = tl_fb_u16(fb, (size_t)vt + 2);
    if (vt_size < 4 || vt_size % 2 || !in_range(fb, (size_t)vt, vt_size))
        return tl_fail(e, "bad vtable size %u for table at %zu", vt_size, pos);
    if (size < 4 || !in_range(fb, pos, size))
        return tl_fail(e, "table at %zu with size %u runs past the end", pos, size);
    t->pos = pos;
    t->vt = (size_t)vt;
    t->vt_size = vt_size;
    t->size = size;
    return 0;
}

int tl_fb_root(const tl_fb *fb, const char *ident, tl_fb_table *t, tl_err *e)
{
    if (fb->n == 0)
        return tl_fail(e, "empty file");
    if (fb->n < 8)
        return tl_fail(e, "file too short (%zu bytes)", fb->n);
    if (ident && memcmp(fb->buf + 4, ident, 4) != 0)
        return tl_fail(e, "file identifier is not \"%s\"", ident);
    return tl_fb_table_at(fb, tl_fb_u32(fb, 0), t, e);
}

int tl_fb_field(const tl_fb *fb, const tl_fb_table *t, int id, size_t size, size_t *pos, tl_err *e)
{
    size_t slot = 4 + 2 * (size_t)id;
    if (id < 0 || slot + 2 > t->vt_size)
        return 0;
    uint16_t off = tl_fb_u16(fb, t->vt + slot);
    if (off == 0)
        return 0;
    if (off < 4 || (size_t)off + size > t->size)
        return tl_fail(e, "field %d of table at %zu lies outside the table", id, t->pos);
    *pos = t->pos + off;
    return 1;
}

#define GET_SCALAR(fname, type, size, load)                                                            \
    int fname(const tl_fb *fb, const tl_fb_table *t, int id, type def, type *out, tl_err *e)       \
    {                                                                                                  \
        size_t pos = 0;                                                                                \
        int r = tl_fb_field(fb, t, id, size, &pos, e);                                                 \
        if (r < 0)                                                                                     \
            return r;                                                                                  \
        *out = r ? (type)(load) : def;                                                                 \
        return 0;                                                                                      \
    }

GET_SCALAR(tl_fb_get_u8, uint8_t, 1, tl_fb_u8(fb, pos))
GET_SCALAR(tl_fb_get_i8, int8_t, 1, (int8_t)tl_fb_u8(fb, pos))
GET_SCALAR(tl_fb_get_i32, int32_t, 4, tl_fb_i32(fb, pos))
GET_SCALAR(tl_fb_get_u32, uint32_t, 4, tl_fb_u32(fb, pos))
GET_SCALAR(tl_fb_get_u64, uint64_t, 8, tl_fb_u64(fb, pos))

/* Follows the unsigned offset stored at pos. */
static int follow(const tl_fb *fb, size_t pos, size_t *dst, tl_err *e)
{
    uint64_t target = (uint64_t)pos + tl_fb_u32(fb, pos);
    if (target >= fb->n)
        return tl_fail(e, "offset at %zu points past the end (%llu of %zu bytes)", pos,
                       (unsigned long long)target, fb->n);
    *dst = (size_t)target;
    return 0;
}

int tl_fb_get_table(const tl_fb *fb, const tl_fb_table *t, int id, tl_fb_table *sub, tl_err *e)
{
    size_t pos = 0, target = 0;
    int r = tl_fb_field(fb, t, id, 4, &pos, e);
    if (r <= 0)
        return r;
    if (follow(fb, pos, &target, e) || tl_fb_table_at(fb, target, sub, e))
        return -1;
    return 1;
}

int tl_fb_get_vec(const tl_fb *fb, const tl_fb_table *t, int id, size_t elem_size, tl_fb_vec *v, tl_err *e)
{
    size_t pos = 0, target = 0;
    v->start = 0;
    v->len = 0;
    int r = tl_fb_field(fb, t, id, 4, &pos, e);
    if (r <= 0)
        return r;
    if (follow(fb, pos, &target, e))
        return -1;
    if (!in_range(fb, target, 4))
        return tl_fail(e, "vector length at %zu runs past the end", target);
    uint32_t len = tl_fb_u32(fb, target);
    if (!in_range(fb, target + 4, 0) || (uint64_t)len * elem_size > fb->n - (target + 4))
        return tl_fail(e, "vector at %zu of %u elements runs past the end (%zu bytes)", target, len, fb->n);
    v->start = target + 4;
    v->len = len;
    return 0;
}

int tl_fb_vec_table(const tl_fb *fb, const tl_fb_vec *v, uint32_t k, tl_fb_table *out, tl_err *e)
{
    size_t target = 0;
    if (k >= v->len)
        return tl_fail(e, "vector index %u out of range (%u)", k, v->len);
    if (follow(fb, v->start + 4 * (size_t)k, &target, e))
        return -1;
    return tl_fb_table_at(fb, target, out, e);
}

int tl_fb_get_str(const tl_fb *fb, const tl_fb_table *t, int id, const char **s, uint32_t *len, tl_err *e)
{
    tl_fb_vec v;
    *s = NULL;
    *len = 0;
    if (tl_fb_get_vec(fb, t, id, 1, &v, e))
        return -1;
    if (v.start) {
        *s = (const char *)fb->buf + v.start;
        *len = v.len;
    }
    return 0;
}
