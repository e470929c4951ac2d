// tbevents.h: TensorBoard event files of scalars, so `tensorboard --logdir RUNDIR/tb` works.
//
// RUNDIR/tb/events.out.tfevents.<unix seconds>.<host>: a TFRecord file, each record
//   u64 length | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
// (little endian; masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8; CRC32C is the
// Castagnoli polynomial), data being a tensorflow.Event (proto/tensorboard.proto). The first
// record holds file_version "brain.Event:2"; then one Event per (step, tag, value). Each start
// of a run (and each resume) opens a new file; TensorBoard reads every file of the folder.
// tb_flush() after a group of scalars; a failed write warns once and turns the writer off.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct TbWriter TbWriter;

// Opens a new event file in dir (created if needed). NULL after a warning if it cannot.
TbWriter *tb_open(const char *dir);
// One scalar; wall_time in seconds since the epoch.
void tb_scalar(TbWriter *w, int64_t step, double wall_time, const char *tag, float value);
void tb_flush(TbWriter *w);
void tb_close(TbWriter *w); // flushes
const char *tb_path(const TbWriter *w);

// CRC32C (Castagnoli) of n bytes, and TFRecord's masking of it.
uint32_t tb_crc32c(const void *data, size_t n);
uint32_t tb_masked_crc(uint32_t crc);
