/* Reading FlatBuffers from untrusted bytes. Every offset, vtable, vector
 * length and string is checked against the buffer before it is used, and
 * every load goes through memcpy, so a hostile file can make these calls
 * fail but never read outside the buffer or trip alignment rules.
 *
 * Table references are unsigned offsets added to the position holding them,
 * so following them only moves forward through the buffer: a file cannot
 * build a cycle, and nesting depth is fixed by the schema the caller walks. */
#ifndef TL_FLATBUF_H
#define TL_FLATBUF_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

typedef struct tl_fb {
    const uint8_t *buf;
    size_t n;
} tl_fb;

/* A verified table: its position, its vtable and both sizes in bytes. */
typedef struct tl_fb_table {
    size_t pos, vt;
    uint16_t vt_size, size;
} tl_fb_table;

/* A verified vector: position of element 0 and element count. */
typedef struct tl_fb_vec {
    size_t start;
    uint32_t len;
} tl_fb_vec;

/* Little-endian loads; the caller has already checked the range. */
uint8_t tl_fb_u8(const tl_fb *fb, size_t pos);
uint16_t tl_fb_u16(const tl_fb *fb, size_t pos);
uint32_t tl_fb_u32(const tl_fb *fb, size_t pos);
int32_t tl_fb_i32(const tl_fb *fb, size_t pos);
uint64_t tl_fb_u64(const tl_fb *fb, size_t pos);
float tl_fb_f32(const tl_fb *fb, size_t pos);

/* The root table; ident (4 chars) is checked when not NULL. */
int tl_fb_root(const tl_fb *fb, const char *ident, tl_fb_table *t, tl_err *e);
/* Verifies the table starting at pos. */
int tl_fb_table_at(const tl_fb *fb, size_t pos, tl_fb_table *t, tl_err *e);

/* Position of field `id` holding `size` bytes: 1 if present, 0 if absent
 * (the caller uses the schema default), negative if malformed. */
int tl_fb_field(const tl_fb *fb, const tl_fb_table *t, int id, size_t size, size_t *pos, tl_err *e);

/* Scalar fields with their schema default. */
int tl_fb_get_u8(const tl_fb *fb, const tl_fb_table *t, int id, uint8_t def, uint8_t *out, tl_err *e);
int tl_fb_get_i8(const tl_fb *fb, const tl_fb_table *t, int id, int8_t def, int8_t *out, tl_err *e);
int tl_fb_get_i32(const tl_fb *fb, const tl_fb_table *t, int id, int32_t def, int32_t *out, tl_err *e);
int tl_fb_get_u32(const tl_fb *fb, const tl_fb_table *t, int id, uint32_t def, uint32_t *out, tl_err *e);
int tl_fb_get_u64(const tl_fb *fb, const tl_fb_table *t, int id, uint64_t def, uint64_t *out, tl_err *e);

/* A sub-table field: 1 present, 0 absent, negative on error. */
int tl_fb_get_table(const tl_fb *fb, const tl_fb_table *t, int id, tl_fb_table *sub, tl_err *e);
/* A vector field of elem_size-byte elements; absent gives len 0. */
int tl_fb_get_vec(const tl_fb *fb, const tl_fb_table *t, int id, size_t elem_size, tl_fb_vec *v, tl_err *e);
/* Element k of a vector of tables. */
int tl_fb_vec_table(const tl_fb *fb, const tl_fb_vec *v, uint32_t k, tl_fb_table *out, tl_err *e);
/* A string field (not necessarily NUL-terminated here): *s NULL, *len 0 when absent. */
int tl_fb_get_str(const tl_fb *fb, const tl_fb_table *t, int id, const char **s, uint32_t *len, tl_err *e);

#endif
