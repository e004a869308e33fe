/* Feature files: vectors with their label and source path, in one of
 *  - TLF: tl's streaming binary format (works through pipes; every record
 *    carries a CRC32 and the stream ends with a count record, so a cut or
 *    corrupted stream is always detected), see man/tl-formats.5;
 *  - TSV: path<TAB>label<TAB>v1<TAB>v2..., '#' lines are comments, with
 *    "#dim", "#classes", "#model", "#layer" header lines;
 *  - NPY: a float32 (n, dim) matrix for NumPy (vectors only);
 *  - NPZ: a NumPy archive of features, labels, paths, class names, model,
 *    layer and the TLF header (numpy.load, no pickle).
 * The reader detects the format from the first bytes (all four).
 *
 * Multi-label files (info.multilabel) give each record a set of labels:
 * TLF version 2 records carry a label count and the list, TSV files say
 * "#multilabel 1" and write the labels as "a,b" ("-": unlabelled, an empty
 * column: none of the classes). NPY holds no labels either way; NPZ a
 * (n, k) 0/1 matrix. */
#ifndef TL_IO_FEATURES_H
#define TL_IO_FEATURES_H

#include "core.h"

enum { TL_FEAT_TLF, TL_FEAT_TSV, TL_FEAT_NPY, TL_FEAT_NPZ };

typedef struct tl_feat_info {
    int dim;
    char **classes;
    int nclasses;
    char *model;
    char *layer;
    int multilabel;  /* records carry label sets */
    char *input;  /* the extraction's input geometry, "320x224 crop 256" (tl_preproc_geometry_format), or NULL */
    int shard, nshards; /* tl-extract --shard K/N (io/shard.h), 0 0 when not sharded */
    /* How the vectors were computed, when not the default: tl-extract
     * --exact (every convolution direct, no Winograd) and --fast-decode
     * (large JPEGs decoded reduced): vectors of either kind differ a little
     * from the default's, so a continued or joined extraction must not mix
     * them. Written only when set; older files read as 0 0. */
    int exact, fast_decode;
} tl_feat_info;

/* Limits that keep a hostile header from asking for absurd allocations. */
#define TL_FEAT_MAX_DIM (1 << 24)
#define TL_FEAT_MAX_PATH 65536
#define TL_FEAT_MAX_HEADER ((uint32_t)64 << 20)

int tl_feat_format_parse(const char *name, int *format);
/* 1 if the file holds feature vectors (TLF, NPY, or TSV whose first data
 * line has a path, a label and numbers), 0 if not (or not a regular file,
 * or not openable: the caller's reader then says why), -1 on a read error.
 * Reads at most TL_FEAT_SNIFF_BYTES. tl_feat_sniff: the same, a read error
 * counting as 0. */
#define TL_FEAT_SNIFF_BYTES ((size_t)64 << 10)
int tl_feat_sniff_e(const char *path, tl_err *e);
int tl_feat_sniff(const char *path);
/* The same for the first bytes of a stream: a magic number, or its first
 * line (NUL-terminated, up to its line feed). */
int tl_feat_sniff_head(const char *head, size_t n);

typedef struct tl_featw tl_featw;
/* path "-" streams to standard output; a file appears only on close. */
int tl_featw_open(tl_featw **w, const char *path, int format, const tl_feat_info *info, tl_err *e);
int tl_featw_add(tl_featw *w, const char *path, int label, const float *v, tl_err *e);
/* Multi-label: nlabels class indices (nlabels -1: unlabelled, 0: none of
 * the classes). On a single-label writer, a set of one is its label, an
 * empty set unlabelled, and a larger set an error. tl_featw_add on a multi-label writer writes the
 * set {label}. */
int tl_featw_add_labels(tl_featw *w, const char *path, const int *labels, int nlabels, const float *v, tl_err *e);
/* Continues a TLF file (tl-extract --resume, --update): records go to
 * partial after its first keep bytes, which hold a header agreeing with
 * info and count records (keep 0: a new file, header written); close
 * writes the end record and renames partial to path; abort leaves
 * partial for a later run. */
int tl_featw_resume(tl_featw **w, const char *path, const char *partial, uint64_t keep, int64_t count,
                    const tl_feat_info *info, tl_err *e);
int tl_featw_close(tl_featw *w, tl_err *e);
void tl_featw_abort(tl_featw *w);

/* Reading. Values must be finite, labels within the classes (or none),
 * paths free of NUL bytes. An input may hold several streams one after
 * another (`cat a.tlf b.tlf`, a resumed or sharded extraction): each later
 * stream's header must agree with the first's on dim, classes (names and
 * order), model and layer, and its records continue the data set. After
 * a TLF end record or the last row of an NPY matrix only the end of the
 * input or another stream may follow; a TSV stream starts at a
 * "#tl-features" line. Anything else is an error naming the byte (line
 * for TSV) where it starts.
 *
 * on_stream (may be NULL) sees every stream's header before its records:
 * index 0, 1, ...; at is its byte offset (TSV: its first line's number);
 * header/len its text as written (TLF: the JSON object; TSV: its '#'
 * lines; NPY: the header dictionary), so keys tl does not know (a shard
 * number, a run id) can be read with tl_jscan; info its parsed form.
 * Returning non-zero stops the reader with that error. */
typedef struct tl_featr tl_featr;
typedef int (*tl_featr_stream_fn)(void *user, int index, uint64_t at, const char *header, size_t len,
                                  const tl_feat_info *info, tl_err *e);
int tl_featr_open_ex(tl_featr **r, const char *path, tl_featr_stream_fn on_stream, void *user, tl_err *e);
int tl_featr_open(tl_featr **r, const char *path, tl_err *e);
/* TL_FEAT_TLF, _TSV, _NPY or _NPZ; the number of streams begun so far. */
int tl_featr_format(const tl_featr *r);
int tl_featr_streams(const tl_featr *r);
/* Sharded input (headers with a shard, tl-extract --shard): every stream
 * must be a shard of the same N, each of 1..N exactly once (checked as
 * the streams begin and at the end of the input); errors inside a shard
 * name it. The shard (K) of the stream the last record came from, 0 when
 * not sharded. */
int tl_featr_shard(const tl_featr *r);
/* Reading one shard on its own (continuing it): the others are not
 * required at the end of the input. */
void tl_featr_one_shard(tl_featr *r);
/* Bytes of the input consumed so far (binary formats): after a record,
 * where it ends. */
uint64_t tl_featr_offset(const tl_featr *r);

/* What an earlier extraction to a TLF file holds, to continue it: its
 * header, its records' paths, and where its last complete record ends. A
 * record cut short or corrupt ends the scan there (an interrupted run);
 * a read error or a file that is not one TLF stream is an error. */
typedef struct tl_feat_done {
    tl_feat_info info;
    int header;      /* 0: not even a whole header (start anew) */
    int complete;    /* ended by its end record */
    int64_t n;       /* complete records */
    uint64_t keep;   /* bytes up to the end of the last of them */
    char **paths;    /* their paths, sorted (strcmp) */
} tl_feat_done;
int tl_feat_done_scan(const char *path, tl_feat_done *d, tl_err *e);
int tl_feat_done_has(const tl_feat_done *d, const char *path);
void tl_feat_done_free(tl_feat_done *d);
/* Joins the feature files of one extraction into out (format
 * TL_FEAT_*): shards (every one of 1..N once, in any order) merged into
 * canonical order (io/shard.h), the result no longer a shard; files
 * without a shard concatenated in the order given. Headers must agree
 * (model, layer, input, classes, labels); *count: records written. */
int tl_feat_merge(const char *const *names, int n, const char *out, int format, int64_t *count, tl_err *e);
/* The fields two headers of one extraction must agree on, in the order
 * tl_feat_info_compare reports the first that differs (io/features_info.c:
 * every comparison of headers goes through it). */
typedef enum {
    TL_FEAT_SAME, TL_FEAT_DIM, TL_FEAT_MULTILABEL, TL_FEAT_MODEL, TL_FEAT_LAYER, TL_FEAT_INPUT, TL_FEAT_SHARD,
    TL_FEAT_NCLASSES, TL_FEAT_CLASS, TL_FEAT_EXACT, TL_FEAT_FAST_DECODE
} tl_feat_field;
/* flags: TL_FEAT_CMP_SHARD compares the shard (K/N) too; with
 * TL_FEAT_CMP_INPUT_IF_BOTH the input geometry only when both headers
 * record it (files older than it do not), else a missing one differs. */
enum { TL_FEAT_CMP_SHARD = 1, TL_FEAT_CMP_INPUT_IF_BOTH = 2 };
/* The first field in which b differs from a (TL_FEAT_SAME: none); *cls is
 * the first differing class for TL_FEAT_CLASS, else -1. */
tl_feat_field tl_feat_info_compare(const tl_feat_info *a, const tl_feat_info *b, unsigned flags, int *cls);
/* 0 when two headers describe the same extraction (tl_feat_info_compare),
 * else 1 with what differs in what: a's value, then other (who b is: "this
 * run's") and b's, e.g. "dim 512, this run's 1280". */
int tl_feat_info_differs(const tl_feat_info *a, const tl_feat_info *b, unsigned flags, const char *other, char *what,
                         size_t n);
const tl_feat_info *tl_featr_info(const tl_featr *r);
/* 1: a record (path and label_name stay valid until the next call; label
 * is -1 when unknown); 0: clean end; -1: error. v holds info->dim floats.
 * Multi-label files: label is the number of labels (-1: unlabelled) and
 * label_name the names joined by ','. */
int tl_featr_next(tl_featr *r, const char **path, const char **label_name, int *label, float *v, tl_err *e);
/* Multi-label files: the current record's labels, ascending class indices
 * (*n of them, -1 when unlabelled); an index is -1 for a name a TSV file
 * without #classes gives (match it by name). Single-label files: the
 * label as a set of one (or none). Valid until the next record. */
const int *tl_featr_labels(const tl_featr *r, int *n);
void tl_featr_close(tl_featr *r);

/* A whole feature file in memory. Labels given as names in a TSV without a
 * #classes line become sorted class indices. */
typedef struct tl_featset {
    tl_feat_info info;
    int64_t n;
    float *X;    /* n x dim */
    int *y;      /* n: the class, -1 unlabelled; multi-label: the number of labels, -1 unlabelled */
    unsigned char *Y; /* multi-label: n x nclasses, 1 where the record has the label (0 rows when unlabelled) */
    char **paths;
} tl_featset;

int tl_featset_load(const char *path, tl_featset *s, tl_err *e);
void tl_featset_free(tl_featset *s);
void tl_feat_info_free(tl_feat_info *info);
int tl_feat_info_copy(tl_feat_info *dst, const tl_feat_info *src, tl_err *e);

#endif
