/* Per-thread memory on cache lines of its own: a thread's writes never
 * pull another thread's line across cores (no false sharing). */
#ifndef PA_LINES_H
#define PA_LINES_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PA_LINE 64

/* T zeroed rows of `len` int64 counts (per-thread staleness histograms),
 * each starting on a line of its own, `*stride` apart; NULL where memory
 * runs out. */
static inline int64_t *pa_line_rows_i64(int T, int64_t len, size_t *stride)
{
    const size_t per_line = PA_LINE / sizeof(int64_t);
    *stride = ((size_t)len + per_line - 1) / per_line * per_line;
    size_t bytes = (size_t)T * *stride * sizeof(int64_t);
    int64_t *rows = aligned_alloc(PA_LINE, bytes ? bytes : PA_LINE);
    if (rows)
        memset(rows, 0, bytes);
    return rows;
}
#endif
