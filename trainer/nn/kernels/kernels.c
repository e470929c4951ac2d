// kernels.c: see kernels.h.
#include "kernels.h"

#include <string.h>

#include "lstm_cell.h"

// See kernels.h (the order of the terms is the contract: the ISA versions repeat it).
void fold_row_generic(int N, real *restrict g, const real *const *rows, int n, const real *v,
                      const real *w, int D) {
    int q = 0;
    if (D) {
        for (int j = 0; j < N; j++) g[j] = rows[0][j] + v[0] * w[j];
        q = 1;
    } else {
        memcpy(g, rows[0], sizeof(real) * (size_t)N);
    }
    for (int k = 1; k < n; k++)
        for (int j = 0; j < N; j++) g[j] += rows[k][j];
    for (; q < D; q++)
        for (int j = 0; j < N; j++) g[j] += v[q] * w[(size_t)q * N + j];
}

void fold_rows_backward_generic(int N, int B, const real *restrict dG, real *const *rows, int n,
                                const real *v, real *acc, int D) {
    for (int b = 0; b < B; b++) {
        const real *d = dG + (size_t)b * N;
        for (int k = 0; k < n; k++)
            for (int j = 0; j < N; j++) rows[(size_t)b * n + k][j] += d[j];
        for (int q = 0; q < D; q++)
            for (int j = 0; j < N; j++) acc[(size_t)q * N + j] += v[(size_t)b * D + q] * d[j];
    }
}

static const Kernels kernels_generic = {.isa = ISA_GENERIC,
                                        .name = "generic",
                                        .cell_forward = lstm_cell_forward_generic,
                                        .cell_backward = lstm_cell_backward_generic,
                                        .softmax_row = softmax_row_generic,
                                        .optim_update = optim_update_generic,
                                        .rgemm = NULL,
                                        .rgemm2 = NULL,
                                        .fold_row = fold_row_generic,
                                        .fold_rows_backward = fold_rows_backward_generic};

const Kernels *kernels_for(Isa isa) {
#if !defined(MODEL_REAL_DOUBLE) && defined(__x86_64__)
    if (isa == ISA_AVX512 && cpu_isa_detected() >= ISA_AVX512) return &kernels_avx512;
    if (isa == ISA_AVX2 && cpu_isa_detected() >= ISA_AVX2) return &kernels_avx2;
#endif
    (void)isa;
    return &kernels_generic;
}

static const Kernels *table_; // set once; every thread computes the same pointer

const Kernels *kernels(void) {
    const Kernels *k = __atomic_load_n(&table_, __ATOMIC_ACQUIRE);
    if (!k) {
        k = kernels_for(cpu_isa());
        __atomic_store_n(&table_, k, __ATOMIC_RELEASE);
    }
    return k;
}

void kernels_use(Isa isa) {
    __atomic_store_n(&table_, kernels_for(isa), __ATOMIC_RELEASE);
}
