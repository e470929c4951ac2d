// cpu.h: the one CPU feature detection of the program, and its override.
//
// cpu_isa() is the best instruction set the kernels may use: what the CPU supports, or less
// when LSTM_TRAINER_ISA=generic|avx2|avx512 says so (to test and benchmark every path on one
// machine). Asking for an ISA the CPU lacks, or an unknown name, is a usage error (exit 2).
#pragma once

typedef enum { ISA_GENERIC = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 } Isa;

Isa cpu_isa(void);
Isa cpu_isa_detected(void); // what the CPU supports, ignoring the override
const char *cpu_isa_name(Isa isa);
