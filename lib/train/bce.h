/* Losses of a classifier's logits beyond the softmax cross-entropy of
 * kernels/kernels.h: the binary cross-entropy of independent sigmoid
 * outputs (multi-label classification), with per-class weights of the
 * positive and negative terms (imbalanced labels). */
#ifndef TL_TRAIN_BCE_H
#define TL_TRAIN_BCE_H

/* One sample's mean over its k outputs, in double:
 *   loss = (1/k) sum_c [pw_c t_c softplus(-z_c) + nw_c (1 - t_c) softplus(z_c)]
 * (t_c in [0, 1]; softplus(z) = log(1 + e^z), computed without overflow),
 * and, when dlogits != NULL, its gradient
 *   dlogits_c = (nw_c (1 - t_c) sigmoid(z_c) - pw_c t_c sigmoid(-z_c)) / k.
 * pos_w / neg_w NULL mean 1. With neg_w NULL this is PyTorch's
 * F.binary_cross_entropy_with_logits(z, t, pos_weight=pos_w), mean over
 * the k outputs. A non-finite logit gives NaN (and NaN gradients). */
double tl_sigmoid_bce(int k, const float *logits, const float *targets, const float *pos_w, const float *neg_w,
                      float *dlogits);

/* p_c = sigmoid(z_c) in float, the one computation of a multi-label
 * network's or head's probabilities (so thresholds chosen in training
 * apply to exactly what tl-eval and tl-predict see). */
void tl_sigmoid_probs(const float *z, float *p, int k);

#endif
