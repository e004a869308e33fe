/* safetensors: write and read back (every dtype, scalars, metadata),
 * half-precision conversions of known bit patterns, and hostile files
 * built byte by byte, each of which must fail with a precise message. */
#include "check.h"
#include "io/safetensors.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static void write_bytes(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(1);
    }
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

/* A file whose 8-byte length field says hlen, followed by the header text
 * and ndata bytes of data (0x11 0x22 ...). */
static void write_raw(uint64_t hlen, const char *header, size_t ndata)
{
    size_t h = strlen(header);
    uint8_t *buf = malloc(8 + h + ndata + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < ndata; i++)
        buf[8 + h + i] = (uint8_t)(0x11 * (i + 1));
    write_bytes(path, buf, 8 + h + ndata);
    free(buf);
}

/* Header with the correct length field. */
static void write_hdr(const char *header, size_t ndata) { write_raw(strlen(header), header, ndata); }

static void expect_fail(const char *what, const char *want)
{
    tl_st_file f;
    tl_err e = {0};
    int rc = tl_st_open(path, &f, &e);
    CHECK_MSG(rc < 0, "%s: accepted", what);
    if (rc == 0) {
        tl_st_close(&f);
        return;
    }
    CHECK_MSG(strstr(e.msg, want) != NULL, "%s: message '%s', wanted '%s'", what, e.msg, want);
    CHECK_MSG(strncmp(e.msg, path, strlen(path)) == 0, "%s: message '%s' does not name the file", what, e.msg);
    CHECK_MSG(strchr(e.msg, '\n') == NULL, "%s: message has a newline", what);
    CHECK(f.map == NULL && f.tensors == NULL && f.ntensors == 0); /* left clean */
}

static void expect_ok(const char *what, int ntensors)
{
    tl_st_file f;
    tl_err e = {0};
    int rc = tl_st_open(path, &f, &e);
    CHECK_MSG(rc == 0, "%s: %s", what, e.msg);
    if (rc == 0) {
        CHECK_MSG(f.ntensors == ntensors, "%s: %d tensors", what, f.ntensors);
        tl_st_close(&f);
    }
}

static float bits_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void test_roundtrip(void)
{
    tl_err e = {0};
    float w[2][3] = {{1, -2, 3.5f}, {0, 1e-30f, -1e30f}};
    int64_t ids[4] = {-1, 0, INT64_MAX, INT64_MIN};
    double d[2] = {0.1, -1e300};
    int64_t scalar = 12345;
    uint8_t bytes[5] = {0, 1, 2, 254, 255};
    int32_t i32[3] = {-7, 0, 7};
    int16_t i16[2] = {-300, 300};
    int8_t i8[2] = {-128, 127};
    uint8_t flags[2] = {1, 0};
    uint16_t h[2] = {0x3C00, 0xC000};
    uint16_t bf[2] = {0x3F80, 0x4049};
    float empty[1];

    tl_st_writer *wr = tl_st_writer_new();
    CHECK(wr != NULL);
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s2[1] = {2}, s5[1] = {5}, s3[1] = {3}, s0[2] = {0, 7}, s111[3] = {1, 1, 2};
    CHECK(tl_st_add(wr, "layer.weight", TL_F32, 2, s23, w, &e) == 0);
    CHECK(tl_st_add(wr, "ids", TL_I64, 1, s4, ids, &e) == 0);
    CHECK(tl_st_add(wr, "doubles", TL_F64, 1, s2, d, &e) == 0);
    CHECK(tl_st_add(wr, "bn.num_batches_tracked", TL_I64, 0, NULL, &scalar, &e) == 0);
    CHECK(tl_st_add(wr, "u8", TL_U8, 1, s5, bytes, &e) == 0);
    CHECK(tl_st_add(wr, "i32", TL_I32, 1, s3, i32, &e) == 0);
    CHECK(tl_st_add(wr, "i16", TL_I16, 1, s2, i16, &e) == 0);
    CHECK(tl_st_add(wr, "i8", TL_I8, 1, s2, i8, &e) == 0);
    CHECK(tl_st_add(wr, "flags", TL_BOOL, 1, s2, flags, &e) == 0);
    CHECK(tl_st_add(wr, "half", TL_F16, 3, s111, h, &e) == 0);
    CHECK(tl_st_add(wr, "bhalf", TL_BF16, 1, s2, bf, &e) == 0);
    CHECK(tl_st_add(wr, "empty", TL_F32, 2, s0, empty, &e) == 0);
    CHECK(tl_st_add(wr, "weird name \"q\" \xC3\xA9", TL_F32, 1, s2, w, &e) == 0);
    CHECK(tl_st_add(wr, "toomany", TL_F32, 9, s111, w, &e) < 0);
    CHECK(tl_st_set_meta(wr, "tl.arch", "mobilenet_v2", &e) == 0);
    CHECK(tl_st_set_meta(wr, "tl.classes", "[\"a\",\"b\\\"\"]", &e) == 0);
    CHECK(tl_st_set_meta(wr, "tl.arch", "mobilenet_v1", &e) == 0); /* replaces */
    CHECK(tl_st_set_meta(wr, "note", "tab\tnewline\n\xC3\xA9", &e) == 0);
    CHECK(tl_st_write(wr, path, &e) == 0);
    tl_st_writer_free(wr);

    tl_st_file f;
    int rc = tl_st_open(path, &f, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc)
        return;
    CHECK(f.ntensors == 13 && f.nmeta == 3);
    /* data starts 8-byte aligned after the header */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | ((const uint8_t *)f.map)[i];
    CHECK((8 + hlen) % 8 == 0);
    CHECK(!strcmp(tl_st_meta(&f, "tl.arch"), "mobilenet_v1"));
    CHECK(!strcmp(tl_st_meta(&f, "tl.classes"), "[\"a\",\"b\\\"\"]"));
    CHECK(!strcmp(tl_st_meta(&f, "note"), "tab\tnewline\n\xC3\xA9"));
    CHECK(tl_st_meta(&f, "absent") == NULL);
    CHECK(tl_st_find(&f, "nope") == NULL);

    const tl_st_tensor *t = tl_st_find(&f, "layer.weight");
    CHECK(t && t->dtype == TL_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
          t->nbytes == 24);
    float got[6];
    CHECK(t && tl_st_to_f32(t, got, &e) == 0 && !memcmp(got, w, sizeof w));
    t = tl_st_find(&f, "ids");
    CHECK(t && t->dtype == TL_I64 && t->nbytes == 32 && !memcmp(t->data, ids, 32));
    CHECK(t && tl_st_to_f32(t, got, &e) < 0);
    CHECK_MSG(strstr(e.msg, "'ids'") && strstr(e.msg, "I64 is not floating point"), "message: %s", e.msg);
    t = tl_st_find(&f, "doubles");
    CHECK(t && tl_st_to_f32(t, got, &e) == 0 && got[0] == 0.1f && got[1] == -INFINITY);
    t = tl_st_find(&f, "bn.num_batches_tracked");
    int64_t sv = 0;
    if (t)
        memcpy(&sv, t->data, 8);
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 8 && sv == 12345);
    t = tl_st_find(&f, "u8");
    CHECK(t && t->dtype == TL_U8 && !memcmp(t->data, bytes, 5));
    t = tl_st_find(&f, "i32");
    CHECK(t && t->dtype == TL_I32 && !memcmp(t->data, i32, 12));
    t = tl_st_find(&f, "i16");
    CHECK(t && t->dtype == TL_I16 && !memcmp(t->data, i16, 4));
    t = tl_st_find(&f, "i8");
    CHECK(t && t->dtype == TL_I8 && !memcmp(t->data, i8, 2));
    t = tl_st_find(&f, "flags");
    CHECK(t && t->dtype == TL_BOOL && !memcmp(t->data, flags, 2));
    t = tl_st_find(&f, "half");
    CHECK(t && t->ndim == 3 && t->shape[2] == 2 && tl_st_to_f32(t, got, &e) == 0 && got[0] == 1.0f && got[1] == -2.0f);
    t = tl_st_find(&f, "bhalf");
    CHECK(t && tl_st_to_f32(t, got, &e) == 0 && got[0] == 1.0f && got[1] == bits_f32(0x40490000u));
    t = tl_st_find(&f, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[0] == 0 && t->shape[1] == 7);
    t = tl_st_find(&f, "weird name \"q\" \xC3\xA9");
    CHECK(t && t->numel == 2);
    tl_st_close(&f);
    CHECK(f.map == NULL && f.ntensors == 0);

    /* an empty writer gives a valid empty file */
    wr = tl_st_writer_new();
    CHECK(tl_st_write(wr, path, &e) == 0);
    tl_st_writer_free(wr);
    expect_ok("empty writer", 0);
    /* a writer to a missing folder fails and names it */
    wr = tl_st_writer_new();
    char bad[160];
    snprintf(bad, sizeof bad, "%s/missing/x.safetensors", dir);
    CHECK(tl_st_write(wr, bad, &e) < 0 && strstr(e.msg, bad));
    tl_st_writer_free(wr);
    tl_st_writer_free(NULL);

    CHECK(!strcmp(tl_dtype_name(TL_BF16), "BF16") && tl_dtype_size(TL_F64) == 8 && tl_dtype_size(TL_BOOL) == 1);
}

static void test_half(void)
{
    static const struct { uint16_t h; float f; } f16[] = {
        {0x0000, 0.0f},
        {0x3C00, 1.0f},
        {0xC000, -2.0f},
        {0x3555, 0.333251953125f},
        {0x7BFF, 65504.0f},
        {0x0400, 6.103515625e-05f},          /* smallest normal, 2^-14 */
        {0x0001, 5.9604644775390625e-08f},   /* smallest subnormal, 2^-24 */
        {0x0002, 1.1920928955078125e-07f},
        {0x03FF, 6.0975551605224609375e-05f}, /* largest subnormal */
        {0x8001, -5.9604644775390625e-08f},
        {0x0200, 3.0517578125e-05f},
        {0x7C00, INFINITY},
        {0xFC00, -INFINITY},
    };
    size_t n = sizeof f16 / sizeof f16[0];
    uint16_t hv[32];
    for (size_t i = 0; i < n; i++)
        hv[i] = f16[i].h;
    hv[n] = 0x8000;     /* -0 */
    hv[n + 1] = 0x7E00; /* quiet NaN */
    hv[n + 2] = 0xFD01; /* signalling NaN with payload */
    tl_st_tensor t = {0};
    t.name = "h";
    t.dtype = TL_F16;
    t.numel = (int64_t)n + 3;
    t.data = hv;
    float out[32];
    tl_err e = {0};
    CHECK(tl_st_to_f32(&t, out, &e) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(out[i] == f16[i].f, "f16 %04x -> %.10g, want %.10g", f16[i].h, out[i], f16[i].f);
    CHECK(out[n] == 0 && signbit(out[n]));
    CHECK(isnan(out[n + 1]) && isnan(out[n + 2]));
    uint32_t b;
    memcpy(&b, &out[n + 2], 4);
    CHECK(b == 0xFFA02000u); /* sign and payload kept */

    /* every F16 value agrees with an independent formula */
    int all = 1;
    for (uint32_t x = 0; x < 65536; x++) {
        uint16_t hh = (uint16_t)x;
        t.data = &hh;
        t.numel = 1;
        float v;
        tl_st_to_f32(&t, &v, &e);
        int ex = (x >> 10) & 31, m = x & 1023;
        double want = ex == 0 ? ldexp(m, -24) : ex == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, ex - 25);
        if (x & 0x8000)
            want = -want;
        all &= isnan(want) ? isnan(v) : (double)v == want;
    }
    CHECK(all);

    uint16_t bv[6] = {0x3F80, 0xC040, 0x7F80, 0x7FC0, 0x0001, 0x8000};
    t.dtype = TL_BF16;
    t.data = bv;
    t.numel = 6;
    CHECK(tl_st_to_f32(&t, out, &e) == 0);
    CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == INFINITY && isnan(out[3]));
    CHECK(out[4] == bits_f32(0x00010000u) && out[4] > 0); /* a float subnormal */
    CHECK(out[5] == 0 && signbit(out[5]));

    /* unaligned source data */
    uint8_t raw[1 + 8];
    float one = 1.5f, two = -4.0f;
    memcpy(raw + 1, &one, 4);
    memcpy(raw + 5, &two, 4);
    t.dtype = TL_F32;
    t.data = raw + 1;
    t.numel = 2;
    CHECK(tl_st_to_f32(&t, out, &e) == 0 && out[0] == 1.5f && out[1] == -4.0f);
    t.dtype = TL_U8;
    CHECK(tl_st_to_f32(&t, out, &e) < 0 && strstr(e.msg, "'h'"));
}

static void test_hostile(void)
{
    char big[200];
    /* sizes */
    write_bytes(path, "", 0);
    expect_fail("empty file", "not a safetensors file");
    write_bytes(path, "\x02\0\0\0\0\0\0", 7);
    expect_fail("7-byte file", "not a safetensors file");
    write_raw(0, "", 0);
    expect_fail("zero header length", "json");
    write_raw(1000, "{}", 0);
    expect_fail("header longer than the file", "header length 1000");
    write_raw(UINT64_MAX, "{}", 0);
    expect_fail("huge header length", "not a safetensors file");
    write_raw((uint64_t)1 << 40, "{}", 0);
    expect_fail("1 TiB header length", "not a safetensors file");
    write_raw(3, "{}", 0);
    expect_fail("header length past the end by one", "not a safetensors file");

    /* not JSON, not an object */
    write_hdr("this is not json", 0);
    expect_fail("not JSON", "json:");
    write_hdr("[1,2]", 0);
    expect_fail("array header", "not a JSON object");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4);
    expect_fail("truncated JSON", "json:");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}garbage", 4);
    expect_fail("trailing garbage", "trailing");
    /* header padded with spaces (allowed), data after it */
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}     ", 4);
    expect_ok("padded header", 1);
    write_hdr("{}", 0);
    expect_ok("no tensors", 0);

    /* tensor entries */
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4);
    expect_fail("offsets past the data", "data_offsets [0, 8] outside the 4 data bytes");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4);
    expect_fail("reversed offsets", "data_offsets");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4);
    expect_fail("negative offset", "data_offsets");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4.5]}}", 8);
    expect_fail("fractional offset", "data_offsets");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1e300,1e301]}}", 8);
    expect_fail("astronomic offsets", "data_offsets");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4);
    expect_fail("one offset", "needs dtype, shape and data_offsets");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", 4);
    expect_fail("string offsets", "data_offsets");
    write_hdr("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_fail("no dtype", "'a': needs dtype");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
    expect_fail("no shape", "'a': needs dtype");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4);
    expect_fail("shape not a list", "'a': needs dtype");
    write_hdr("{\"a\":[1,2,3]}", 4);
    expect_fail("entry not an object", "'a': needs dtype");
    write_hdr("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_fail("numeric dtype", "'a': needs dtype");
    write_hdr("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 4);
    expect_fail("unknown dtype", "tensor 'a': unsupported dtype 'F8_E4M3'");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12);
    expect_fail("shape x dtype != bytes", "tensor 'a': 8 bytes for shape x F32 = 12 bytes");
    write_hdr("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 12);
    expect_fail("shape x F16 != bytes", "= 6 bytes");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    expect_fail("9 dims", "tensor 'a': 9 dimensions (at most 8)");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    expect_ok("8 dims", 1);
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_fail("negative shape", "tensor 'a': bad shape");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 8);
    expect_fail("fractional shape", "tensor 'a': bad shape");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8);
    expect_fail("string shape", "tensor 'a': bad shape");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,4]}}", 4);
    expect_fail("null shape", "tensor 'a': bad shape");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4);
    expect_fail("astronomic shape", "tensor 'a'");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e19],\"data_offsets\":[0,4]}}", 4);
    expect_fail("shape beyond int64", "tensor 'a'");
    write_hdr("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8);
    expect_fail("numel overflow", "tensor 'a': shape too large");
    write_hdr("{\"a\":{\"dtype\":\"F64\",\"shape\":[65536,65536,65536,65536],\"data_offsets\":[0,8]}}", 8);
    expect_fail("numel overflow (4 dims)", "tensor 'a': shape too large");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}", 0);
    expect_ok("zero-size tensor", 1);

    /* several tensors */
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_fail("overlap", "tensors 'a' and 'b' overlap");
    write_hdr("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"c\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}", 12);
    expect_fail("overlap, listed out of order", "tensors 'b' and 'c' overlap");
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_fail("aliasing", "overlap");
    write_hdr("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
    expect_ok("adjacent, listed out of order", 2);
    /* empty tensors take no bytes and alias nothing, wherever they sit */
    for (int pos = 0; pos <= 8; pos += 4) {
        snprintf(big, sizeof big,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[%d,%d]}}",
                 pos, pos);
        write_hdr(big, 8);
        expect_ok("empty tensor beside another", 2);
        snprintf(big, sizeof big,
                 "{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[%d,%d]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                 pos, pos);
        write_hdr(big, 8);
        expect_ok("empty tensor beside another (listed first)", 2);
    }
    write_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_fail("duplicate names", "duplicate key \"a\"");

    /* metadata */
    write_hdr("{\"__metadata__\":{\"k\":\"v\",\"n\":\"1\"}}", 0);
    {
        tl_st_file f;
        tl_err e = {0};
        CHECK(tl_st_open(path, &f, &e) == 0 && f.nmeta == 2 && !strcmp(tl_st_meta(&f, "n"), "1"));
        tl_st_close(&f);
    }
    write_hdr("{\"__metadata__\":{\"k\":1}}", 0);
    expect_fail("metadata number", "__metadata__ value 'k' is not a string");
    write_hdr("{\"__metadata__\":{\"k\":\"v\",\"l\":[\"a\"]}}", 0);
    expect_fail("metadata list", "__metadata__ value 'l' is not a string");
    write_hdr("{\"__metadata__\":{\"k\":null}}", 0);
    expect_fail("metadata null", "__metadata__ value 'k' is not a string");
    write_hdr("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0);
    expect_fail("metadata object value", "__metadata__ value 'k' is not a string");
    write_hdr("{\"__metadata__\":\"x\"}", 0);
    expect_fail("metadata not an object", "__metadata__ is not an object");
    write_hdr("{\"__metadata__\":{},\"__metadata__\":{}}", 0);
    expect_fail("metadata twice", "duplicate key \"__metadata__\"");
    /* deep nesting in the header: error, not a crash */
    {
        static char deep[100000];
        memset(deep, '[', sizeof deep - 1);
        deep[sizeof deep - 1] = 0;
        write_hdr(deep, 0);
        expect_fail("deep nesting", "nesting too deep");
    }
    /* not a regular file; missing */
    strcpy(big, path);
    strcpy(path, dir);
    expect_fail("a folder", "not a regular file");
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    expect_fail("missing file", "No such file");
    strcpy(path, big);
}

/* Every prefix of a valid file and every single-bit flip of its header:
 * never a crash (ASan watches), and a truncated file never loads. */
static void test_fuzzish(void)
{
    tl_err e = {0};
    float w[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {2, 3};
    tl_st_writer *wr = tl_st_writer_new();
    tl_st_add(wr, "w", TL_F32, 2, s, w, &e);
    tl_st_add(wr, "v", TL_F16, 1, s, w, &e);
    tl_st_set_meta(wr, "k", "v", &e);
    CHECK(tl_st_write(wr, path, &e) == 0);
    tl_st_writer_free(wr);
    FILE *f = fopen(path, "rb");
    uint8_t buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int crashes_avoided = 0, loaded_short = 0;
    for (size_t len = 0; len < n; len++) {
        write_bytes(path, buf, len);
        tl_st_file sf;
        if (tl_st_open(path, &sf, &e) == 0) {
            loaded_short++;
            tl_st_close(&sf);
        }
        crashes_avoided++;
    }
    CHECK_MSG(loaded_short == 0, "%d truncated files loaded", loaded_short);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    for (size_t pos = 0; pos < 8 + hlen; pos++)
        for (int bit = 0; bit < 8; bit++) {
            buf[pos] ^= (uint8_t)(1 << bit);
            write_bytes(path, buf, n);
            tl_st_file sf;
            if (tl_st_open(path, &sf, &e) == 0) {
                /* whatever loaded must be self-consistent */
                for (int i = 0; i < sf.ntensors; i++) {
                    const tl_st_tensor *t = &sf.tensors[i];
                    CHECK((const uint8_t *)t->data + t->nbytes <= (const uint8_t *)sf.map + sf.map_size);
                }
                tl_st_close(&sf);
            }
            buf[pos] ^= (uint8_t)(1 << bit);
        }
    CHECK(crashes_avoided == (int)n);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tl-st-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    test_roundtrip();
    test_half();
    test_hostile();
    test_fuzzish();
    unlink(path);
    rmdir(dir);
    return check_finish("safetensors");
}
