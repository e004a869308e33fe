/* The predictions TSV: what a classifier said about each input, in a form
 * any tool (ours, a Python script, a spreadsheet) can write and tl-eval
 * can score. Documented in tl-formats(5); in short:
 *
 *   #path<TAB>true<TAB>pred<TAB>CLASS1<TAB>...<TAB>CLASSK      (header, line 1)
 *   PATH<TAB>TRUE<TAB>PRED<TAB>P1<TAB>...<TAB>PK               (one line per input)
 *
 * TRUE and PRED are class names from the header; TRUE empty or "-" means
 * unknown, PRED empty or "-" means the class with the highest score (the
 * first on ties). P1..PK are probabilities: finite, in [0, 1], summing to
 * 1 within TL_PRED_SUM_TOL (rounding of printed numbers; used as given, not
 * renormalised, since a larger error means logits or a bug). A header whose
 * third column is "pred:decision" says the numbers are decision values
 * (e.g. of an SVM): then only finiteness is checked, and calibration does
 * not apply.
 *
 * Without the header line the classes must come from the caller (names,
 * in column order), or else TRUE and PRED must be class indices 0..K-1,
 * K being the number of score columns of the first line: the classes are
 * then named "0".."K-1". Blank lines are skipped and CRLF line endings are
 * accepted; after the header no line is a comment (paths may start with
 * '#'). Every error names the file and the line. Lines are at most
 * TL_PRED_MAX_LINE bytes; reading takes time O(N + K log K) for N bytes and
 * K classes, and memory O(K) besides one line.
 *
 * Multi-label predictions: the header's third column is "pred:multilabel"
 * (probabilities, each in [0, 1] on its own) or "pred:multilabel:decision"
 * (any finite scores); TRUE and PRED are sets of class names joined by ','
 * (empty: none of the classes), TRUE "-" is unknown, PRED "-" leaves the
 * decision to the reader's thresholds. A header is required, and no class
 * name may hold ','. */
#ifndef TL_IO_PREDICTIONS_H
#define TL_IO_PREDICTIONS_H

#include "core.h"
#include "lines.h"
#include "strindex.h"

#include <stdint.h>
#include <stdio.h>

#define TL_PRED_SUM_TOL 0.01
/* The longest line read (bytes): a header or row grows with the number of
 * classes; 64 MiB holds rows of about 3.5 million printed scores. */
#define TL_PRED_MAX_LINE TL_LINE_MAX_BIG
#define TL_PRED_DECISION "pred:decision"
#define TL_PRED_MULTILABEL "pred:multilabel"
#define TL_PRED_MULTILABEL_DECISION "pred:multilabel:decision"

typedef struct tl_pred_reader {
    FILE *fp;
    int owns_fp;
    char *name;
    int k;
    char **classes;     /* k names, pointing into `names` */
    char *names;
    int probabilities;  /* 0: decision values */
    int has_header;
    tl_lines lines;
    char *line;         /* the current line, inside `lines` */
    int64_t lineno;
    tl_strindex index;  /* class names, sorted, for lookups */
    int pending;        /* the first data line is already in `line` */
    float *scores;      /* k */
    int multilabel;
    unsigned char *sets; /* multi-label: the row's truth then prediction, k each */
} tl_pred_reader;

typedef struct tl_pred_row {
    const char *path;
    int truth;          /* -1: unknown; multi-label: the number of true labels */
    int pred;           /* 0..k-1; multi-label: the number of predicted labels, -1: PRED was "-" */
    const float *scores; /* k, valid until the next call */
    int64_t line;
    const unsigned char *truth_set, *pred_set; /* multi-label: k 0/1 each, NULL when unknown / "-" */
} tl_pred_row;

/* path "-" reads standard input. classes/nclasses name the score columns
 * of a file without a header (NULL/0: class indices); a header, when
 * present, wins. Reads the header (or the first line) before returning. */
int tl_pred_open(tl_pred_reader *r, const char *path, const char *const *classes, int nclasses, tl_err *e);
/* 1: a row; 0: end of input; -1: error. */
int tl_pred_next(tl_pred_reader *r, tl_pred_row *row, tl_err *e);
void tl_pred_close(tl_pred_reader *r);

/* A line (or the first bytes of a file) that starts a predictions header. */
int tl_pred_is_header(const char *line);
/* 1 when the file at path starts with a predictions header; 0 otherwise,
 * including when it cannot be read ("-" is never sniffed: 0). */
int tl_pred_sniff_file(const char *path);

/* Writing. The writer holds the header's names: the classes, except that
 * a name repeating an earlier one (ImageNet has two "crane"s) is written
 * as "NAME (INDEX)" so every column is named uniquely. Names and paths must
 * not hold tabs or line breaks, and a class may not be empty or named "-".
 * Scores are written with 9 significant digits, enough to read every float
 * back exactly. */
typedef struct tl_pred_writer {
    FILE *fp;
    int k;
    char **names;
    int multilabel;
} tl_pred_writer;

/* Writes the header. */
int tl_pred_writer_init(tl_pred_writer *w, FILE *fp, const char *const *classes, int k, int probabilities,
                        tl_err *e);
/* truth < 0 = unknown ("-"). */
int tl_pred_write(tl_pred_writer *w, const char *path, int truth, int pred, const float *scores, tl_err *e);
/* Multi-label: the header says pred:multilabel[:decision]; a class name
 * holding ',' is refused. */
int tl_pred_writer_init_multilabel(tl_pred_writer *w, FILE *fp, const char *const *classes, int k, int probabilities,
                                   tl_err *e);
/* truth NULL = unknown ("-"); pred: k 0/1. */
int tl_pred_write_sets(tl_pred_writer *w, const char *path, const unsigned char *truth, const unsigned char *pred,
                       const float *scores, tl_err *e);
void tl_pred_writer_free(tl_pred_writer *w);

#endif
