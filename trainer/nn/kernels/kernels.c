// kernels.c: see kernels.h.
#include "kernels.h"

#include "lstm_cell.h"

static const Kernels kernels_generic = {.isa = ISA_GENERIC,
                                        .name = "generic",
                                        .cell_forward = lstm_cell_forward_generic,
                                        .cell_backward = lstm_cell_backward_generic,
                                        .softmax_row = softmax_row_generic,
                                        .optim_update = optim_update_generic,
                                        .rgemm = NULL,
                                        .rgemm2 = NULL};

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
