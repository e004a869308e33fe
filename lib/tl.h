/* tl.h: the public C interface of tl, transfer learning for computer
 * vision (https://... see tl(7); the functions are documented in tl(3)).
 *
 *   #include <tl.h>          cc prog.c $(pkg-config --cflags --libs tl)
 *
 * What a program needs: load a model (a network, or a classifier head
 * with its backbone), configure preprocessing, extract feature vectors or
 * predict classes for an image file, an encoded image in memory or raw
 * pixels; train a linear head; read and write feature files.
 *
 * Conventions
 *  - Errors: a function that can fail returns 0 (or a handle) on success
 *    and -1 (or NULL) on failure, and writes a one-line reason into the
 *    caller's tl_err. The library never prints and never exits.
 *  - No global state: everything lives in the handles the caller owns.
 *  - Threads: a handle is used by one thread at a time; different
 *    handles may be used concurrently from different threads (open one
 *    session per thread, or serialise calls on a shared one). A session
 *    runs its own worker threads (the count given at open) inside a call.
 *  - Results do not depend on the thread count; they may differ in the
 *    last bits between SIMD paths (see tl_simd_path).
 *  - Stability: functions and types declared here keep their meaning
 *    within a major version of the shared library (libtl.so.MAJOR).
 *    Everything else in libtl.a is internal. */
#ifndef TL_H
#define TL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TL_VERSION_MAJOR 0
#define TL_VERSION_MINOR 1
#define TL_VERSION_PATCH 0
#define TL_VERSION "0.1.0"

#if defined(__GNUC__) && __GNUC__ >= 4
#define TL_API __attribute__((visibility("default")))
#else
#define TL_API
#endif

/* ---- errors ---- */

/* The kind of failure: a caller's argument that does not fit (an unknown
 * layer name, a bad option value) or anything else (unreadable or bad
 * data, out of memory, a failed write). */
enum { TL_ERR_FAIL = 0, TL_ERR_ARG = 1 };

typedef struct tl_err {
    char msg[512]; /* one line, no trailing newline */
    int kind;      /* TL_ERR_FAIL or TL_ERR_ARG */
} tl_err;

/* ---- version and machine ---- */

/* The library's version ("0.1.0"); TL_VERSION is the header's. */
TL_API const char *tl_version(void);
/* The SIMD path the arithmetic takes on this machine: "avx512vnni",
 * "avx512", "avx2" or "scalar" (the best the CPU has, capped by the
 * TL_SIMD environment variable). */
TL_API const char *tl_simd_path(void);

/* ---- preprocessing ---- */

enum { TL_INTERP_BILINEAR, TL_INTERP_BICUBIC, TL_INTERP_NEAREST };

/* How an image of any shape becomes the network's W x H input, then
 * x = (pixel/255 - mean) / std per RGB channel, then channels in B,G,R
 * order when bgr is set. A model's checkpoint carries its own. All modes
 * first take a resize box: (W, H) scaled by resize_size / min(W, H).
 *  - CROP keeps the aspect ratio: the image is scaled to cover the box,
 *    then the centre W x H is cut out (a square box: torchvision's
 *    Resize(resize_size) + CenterCrop; an oblong one: timm's ResizeKeepRatio).
 *  - SQUASH resizes to the box whatever the aspect ratio, then cuts out
 *    the centre (resize_size == min(W, H): straight to W x H).
 *  - PAD keeps the aspect ratio and loses nothing: the whole image is
 *    scaled to fit inside W x H and centred on the mean colour.
 * tl(7), "Input size and aspect ratio", has the details. */
enum { TL_RESIZE_CROP, TL_RESIZE_SQUASH, TL_RESIZE_PAD };

typedef struct tl_preproc {
    int input_w, input_h;  /* what the network takes */
    int resize_size;       /* the resize box's shorter side */
    int resize_mode;       /* TL_RESIZE_* */
    float mean[3], std[3]; /* RGB order, 0..1 scale */
    int bgr;
    int interp; /* TL_INTERP_* */
} tl_preproc;

/* torchvision's ImageNet settings: 224 x 224, resize 256, crop, mean
 * (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), RGB, bilinear. */
TL_API void tl_preproc_default(tl_preproc *p);

/* ---- sessions: a loaded model, ready to run ---- */

typedef struct tl_session tl_session;

/* Loads a model: a network checkpoint (.safetensors made by tl-convert or
 * tl-finetune), or a head trained on features by tl-finetune, together
 * with the backbone it names. model is a path, or a name looked up in
 * $TL_MODEL_PATH. threads: worker threads for a call (0: all cores). */
TL_API tl_session *tl_session_open(const char *model, int threads, tl_err *e);
TL_API void tl_session_free(tl_session *s);

/* The layer whose output tl_session_extract_* returns: a name as tl-info
 * lists it, "logits", or NULL for the default features (the pooled
 * penultimate layer). pool: average a spatial layer over its height and
 * width (or a token sequence over its tokens), as tl-extract does; 0
 * keeps the whole map. A head's session predicts through the layer its
 * head was trained on whatever is chosen here. */
TL_API int tl_session_set_layer(tl_session *s, const char *layer, int pool, tl_err *e);
/* Values per image that tl_session_extract_* writes. */
TL_API int tl_session_feature_dim(const tl_session *s);

/* The preprocessing in use (the model's, until changed). A new one must
 * keep input_w x input_h (the network's input) and have positive std. */
TL_API void tl_session_preproc(const tl_session *s, tl_preproc *p);
TL_API int tl_session_set_preproc(tl_session *s, const tl_preproc *p, tl_err *e);
/* Images with more pixels are refused before decoding (0: the default,
 * 100 million). */
TL_API void tl_session_set_max_pixels(tl_session *s, size_t max_pixels);
/* exact 1: every convolution on the direct algorithm, as tl-extract
 * --exact; 0 (the default): 3x3 stride-1 convolutions may use Winograd,
 * whose features differ by about 1e-6 of their largest value. */
TL_API int tl_session_set_exact(tl_session *s, int exact, tl_err *e);

/* The classes tl_session_predict_* scores (0 for a backbone without
 * classifier) and their names. */
TL_API int tl_session_num_classes(const tl_session *s);
TL_API const char *tl_session_class_name(const tl_session *s, int index);
/* 1 when predictions are probabilities (a network's softmax, a logistic
 * regression head; per class for a multi-label head), 0 when they are
 * decision values (a linear SVM head). */
TL_API int tl_session_probabilities(const tl_session *s);
/* The architecture ("mobilenet_v2"), and any checkpoint metadata value
 * (NULL when absent): tl.classes, tl.input_size, training provenance. */
TL_API const char *tl_session_arch(const tl_session *s);
TL_API const char *tl_session_meta(const tl_session *s, const char *key);

/* Feature vectors (tl_session_feature_dim floats per image) of one image:
 * a file (JPEG, PNG, BMP, PPM/PGM; "-" is standard input), an encoded
 * image in memory, or 8-bit RGB pixels (width x height, rows of `stride`
 * bytes, 3 bytes per pixel, R first) which are resized and cropped as the
 * preprocessing says. */
TL_API int tl_session_extract_file(tl_session *s, const char *path, float *features, tl_err *e);
TL_API int tl_session_extract_memory(tl_session *s, const void *data, size_t size, float *features, tl_err *e);
TL_API int tl_session_extract_pixels(tl_session *s, const uint8_t *rgb, int width, int height, size_t stride,
                                     float *features, tl_err *e);
/* Several files at once, decoded and run in parallel on the session's
 * threads: n rows of features. Fails on the first unreadable file (its
 * path is in the message). */
TL_API int tl_session_extract_files(tl_session *s, const char *const *paths, int n, float *features, tl_err *e);

/* Class scores (tl_session_num_classes floats per image): probabilities,
 * or decision values for an SVM head (tl_session_probabilities). Fails
 * for a backbone without classifier. */
TL_API int tl_session_predict_file(tl_session *s, const char *path, float *scores, tl_err *e);
TL_API int tl_session_predict_memory(tl_session *s, const void *data, size_t size, float *scores, tl_err *e);
TL_API int tl_session_predict_pixels(tl_session *s, const uint8_t *rgb, int width, int height, size_t stride,
                                     float *scores, tl_err *e);
TL_API int tl_session_predict_files(tl_session *s, const char *const *paths, int n, float *scores, tl_err *e);

/* Indices of the k highest of n scores, best first (k <= n). */
TL_API void tl_top_k(const float *scores, int n, int k, int *idx);

/* ---- linear heads on feature vectors ---- */

enum { TL_HEAD_LOGREG, TL_HEAD_SVM };

typedef struct tl_head_opts {
    int kind;        /* TL_HEAD_LOGREG (multinomial logistic regression) or TL_HEAD_SVM (one-vs-rest) */
    double C;        /* inverse regularisation strength (scikit-learn's C), default 1 */
    int max_iter;    /* 0: the kind's default (1000) */
    int threads;     /* 0: all cores */
} tl_head_opts;

TL_API void tl_head_opts_default(tl_head_opts *o);

/* Trains a head on a feature file (tl-extract's output, or one written
 * with tl_features_writer_*) and saves it as a checkpoint at out_path,
 * with the classes and the model and layer the features came from, so a
 * session opened on it classifies images end to end. Multi-label files
 * give a multi-label head. *train_accuracy (may be NULL) gets the
 * accuracy on the training vectors (multi-label: mAP). */
TL_API int tl_head_train_file(const char *features_path, const tl_head_opts *o, const char *out_path,
                              double *train_accuracy, tl_err *e);

/* ---- feature files (tl-formats(5)): TLF, TSV and NumPy .npy ---- */

enum { TL_FEATURES_TLF, TL_FEATURES_TSV, TL_FEATURES_NPY };

typedef struct tl_features_writer tl_features_writer;

/* A file of dim-value vectors; path "-" is standard output, a file appears
 * complete under its name only at tl_features_writer_close. classes: the
 * class names (labels are indices into them; may be NULL with nclasses
 * 0); model, layer: where the vectors come from (may be NULL). */
TL_API tl_features_writer *tl_features_writer_open(const char *path, int format, int dim, const char *const *classes,
                                                   int nclasses, const char *model, const char *layer, tl_err *e);
/* The same for the vectors of a session (tl_session_extract_*): the
 * dimension, the backbone's file, the layer, the input geometry and
 * tl_session_set_exact are recorded as tl-extract records them, so a head
 * trained on the file (tl_head_train_file) finds its backbone and refuses
 * vectors made another way. Set the session's layer, preprocessing and
 * exactness before opening. */
TL_API tl_features_writer *tl_features_writer_open_session(const char *path, int format, const tl_session *s,
                                                           const char *const *classes, int nclasses, tl_err *e);
/* One vector with its image path and label (-1: unlabelled). */
TL_API int tl_features_writer_add(tl_features_writer *w, const char *path, int label, const float *v, tl_err *e);
/* Finishes the file (end record, flush, rename) and frees the writer. */
TL_API int tl_features_writer_close(tl_features_writer *w, tl_err *e);
/* Abandons the file (nothing is left under its name) and frees the writer. */
TL_API void tl_features_writer_abort(tl_features_writer *w);

typedef struct tl_features_reader tl_features_reader;

/* Any of the formats, told apart by their first bytes; "-" is standard
 * input. A cut or corrupted TLF stream is an error, never a short file. */
TL_API tl_features_reader *tl_features_reader_open(const char *path, tl_err *e);
TL_API int tl_features_reader_dim(const tl_features_reader *r);
TL_API int tl_features_reader_num_classes(const tl_features_reader *r);
TL_API const char *tl_features_reader_class_name(const tl_features_reader *r, int index);
/* The model and layer the vectors came from (NULL when not recorded). */
TL_API const char *tl_features_reader_model(const tl_features_reader *r);
TL_API const char *tl_features_reader_layer(const tl_features_reader *r);
/* 1: a record (v gets dim floats; *path valid until the next call; *label
 * -1 when unlabelled; path and label may be NULL), 0: the end, -1: error. */
TL_API int tl_features_reader_next(tl_features_reader *r, const char **path, int *label, float *v, tl_err *e);
/* 1 when the file's records carry sets of labels (tl-extract on a
 * multi-label manifest); tl_features_reader_next's *label is then the
 * first of the set (-1: unlabelled or none). */
TL_API int tl_features_reader_multilabel(const tl_features_reader *r);
/* The last record's labels, ascending class indices: *n of them, 0 for
 * none of the classes, -1 when unlabelled (a single-label record: its
 * label as a set of one). Valid until the next call. */
TL_API const int *tl_features_reader_labels(const tl_features_reader *r, int *n);
TL_API void tl_features_reader_close(tl_features_reader *r);

#ifdef __cplusplus
}
#endif

#endif
