// fuzz_checkpoint.c: the checkpoint reader (framing, checksums, protobuf message, tensor
// shapes) on arbitrary bytes. Property: no crash; a checkpoint it accepts has tensors of the
// size its shape implies (checked by reading every value) and frees cleanly.
#include "fuzz_common.h"

#include "checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    set_abort_hook(fuzz_abort_hook);
    LoadedCheckpoint ck;
    char err[1024];
    if (checkpoint_parse(data, size, &ck, err, sizeof err) != 0) {
        if (!err[0]) abort(); // a refusal always says why
        return 0;
    }
    volatile float sink = 0;
    for (size_t i = 0; i < ck.d.n_params; i++)
        sink += ck.d.params[i] + ck.d.adam_m[i] + ck.d.adam_v[i];
    (void)sink;
    checkpoint_free(&ck);
    return 0;
}
