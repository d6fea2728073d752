/* Losses and their derivative with respect to the prediction p, with
 * scikit-learn's definitions (sklearn/linear_model/_sgd_fast.pyx.tp; the
 * log loss from sklearn/_loss, which SGDClassifier uses). */
#ifndef PA_LOSSES_H
#define PA_LOSSES_H
#include <math.h>

enum pa_loss {
    PA_HINGE = 0, PA_LOG_LOSS, PA_MODIFIED_HUBER, PA_SQUARED_HINGE,
    PA_PERCEPTRON, PA_SQUARED_ERROR, PA_HUBER, PA_EPSILON_INSENSITIVE,
    PA_SQUARED_EPSILON_INSENSITIVE
};

/* log(1 + e^x), scikit-learn's piecewise evaluation (sklearn/_loss). */
static inline double pa_log1pexp(double x)
{
    if (x <= -37.0) return exp(x);
    if (x <= -2.0) return log1p(exp(x));
    if (x <= 18.0) return log(1.0 + exp(x));
    if (x <= 33.3) return x + exp(-x);
    return x;
}

/* `param` is the hinge threshold, huber's c or the epsilon. */
static inline double pa_loss_value(int loss, double param, double y, double p)
{
    double z, r;
    switch (loss) {
    case PA_HINGE: case PA_PERCEPTRON:
        z = p * y;
        return z <= param ? param - z : 0.0;
    case PA_SQUARED_HINGE:
        z = param - p * y;
        return z > 0.0 ? z * z : 0.0;
    case PA_LOG_LOSS:
        /* scikit-learn's half binomial loss on y in {0, 1}: log(1 + e^p) - y p */
        z = y > 0.0 ? 1.0 : 0.0;
        return pa_log1pexp(p) - z * p;
    case PA_MODIFIED_HUBER:
        z = p * y;
        if (z >= 1.0) return 0.0;
        if (z >= -1.0) return (1.0 - z) * (1.0 - z);
        return -4.0 * z;
    case PA_SQUARED_ERROR:
        return 0.5 * (p - y) * (p - y);
    case PA_HUBER:
        r = p - y;
        if (fabs(r) <= param) return 0.5 * r * r;
        return param * fabs(r) - 0.5 * param * param;
    case PA_EPSILON_INSENSITIVE:
        r = fabs(y - p) - param;
        return r > 0.0 ? r : 0.0;
    case PA_SQUARED_EPSILON_INSENSITIVE:
        r = fabs(y - p) - param;
        return r > 0.0 ? r * r : 0.0;
    }
    return NAN;
}

static inline double pa_loss_dloss(int loss, double param, double y, double p)
{
    double z, r;
    switch (loss) {
    case PA_HINGE: case PA_PERCEPTRON:
        return p * y <= param ? -y : 0.0;
    case PA_SQUARED_HINGE:
        z = param - p * y;
        return z > 0.0 ? -2.0 * y * z : 0.0;
    case PA_LOG_LOSS:
        /* expit(p) - y on y in {0, 1}, as scikit-learn computes it */
        z = y > 0.0 ? 1.0 : 0.0;
        if (p > -37.0) {
            r = exp(-p);
            return ((1.0 - z) - z * r) / (1.0 + r);
        }
        return exp(p) - z;
    case PA_MODIFIED_HUBER:
        z = p * y;
        if (z >= 1.0) return 0.0;
        if (z >= -1.0) return -2.0 * (1.0 - z) * y;
        return -4.0 * y;
    case PA_SQUARED_ERROR:
        return p - y;
    case PA_HUBER:
        r = p - y;
        if (fabs(r) <= param) return r;
        return r > 0.0 ? param : -param;
    case PA_EPSILON_INSENSITIVE:
        if (y - p > param) return -1.0;
        if (p - y > param) return 1.0;
        return 0.0;
    case PA_SQUARED_EPSILON_INSENSITIVE:
        z = y - p;
        if (z > param) return -2.0 * (z - param);
        if (z < -param) return 2.0 * (-z - param);
        return 0.0;
    }
    return NAN;
}
#endif
