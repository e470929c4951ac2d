// tbevents.c: see tbevents.h. With checkpoint.c, the only user of protobuf-c.
#include "tbevents.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tensorboard.pb-c.h"
#include "util.h"

struct TbWriter {
    FILE *f;
    char path[1024];
    unsigned char *buf; // one serialised Event
    size_t cap;
};

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t tb_crc32c(const void *data, size_t n) {
    if (!crc_table[1]) crc_init();
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

uint32_t tb_masked_crc(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static void put_le(unsigned char *out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) out[i] = (unsigned char)(v >> (8 * i));
}

// One TFRecord holding the serialised event.
static void write_event(TbWriter *w, const Tensorflow__Event *ev) {
    if (!w || !w->f) return;
    size_t n = tensorflow__event__get_packed_size(ev);
    if (n > w->cap) w->buf = xrealloc(w->buf, n), w->cap = n;
    tensorflow__event__pack(ev, w->buf);
    unsigned char head[12], tail[4];
    put_le(head, n, 8);
    put_le(head + 8, tb_masked_crc(tb_crc32c(head, 8)), 4);
    put_le(tail, tb_masked_crc(tb_crc32c(w->buf, n)), 4);
    if (fwrite(head, 1, 12, w->f) != 12 || fwrite(w->buf, 1, n, w->f) != n ||
        fwrite(tail, 1, 4, w->f) != 4) {
        warnf("%s: cannot write (%s); TensorBoard events are off for this run", w->path,
              strerror(errno));
        fclose(w->f);
        w->f = NULL;
    }
}

TbWriter *tb_open(const char *dir) {
    if (mkdir_p(dir) != 0) {
        warnf("%s: cannot create (%s); no TensorBoard events", dir, strerror(errno));
        return NULL;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    TbWriter *w = xcalloc(1, sizeof *w);
    double now = wall_seconds();
    // A restart within the same second must not append to (or clobber) the last file.
    for (int k = 0; k < 100; k++) {
        snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s%s%.0d", dir,
                 (long long)now, host, k ? "." : "", k);
        if (!path_exists(w->path)) break;
    }
    w->f = fopen(w->path, "wbx");
    if (!w->f) {
        warnf("%s: cannot create (%s); no TensorBoard events", w->path, strerror(errno));
        free(w);
        return NULL;
    }
    Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
    ev.wall_time = now;
    ev.what_case = TENSORFLOW__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    write_event(w, &ev);
    tb_flush(w);
    return w;
}

void tb_scalar(TbWriter *w, int64_t step, double wall_time, const char *tag, float value) {
    if (!w || !w->f) return;
    Tensorflow__Summary__Value val = TENSORFLOW__SUMMARY__VALUE__INIT;
    val.tag = (char *)tag;
    val.simple_value = value;
    Tensorflow__Summary__Value *vals[1] = {&val};
    Tensorflow__Summary sum = TENSORFLOW__SUMMARY__INIT;
    sum.n_value = 1;
    sum.value = vals;
    Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
    ev.wall_time = wall_time;
    ev.step = step;
    ev.what_case = TENSORFLOW__EVENT__WHAT_SUMMARY;
    ev.summary = &sum;
    write_event(w, &ev);
}

void tb_flush(TbWriter *w) {
    if (w && w->f && fflush(w->f) != 0) {
        warnf("%s: cannot write (%s); TensorBoard events are off for this run", w->path,
              strerror(errno));
        fclose(w->f);
        w->f = NULL;
    }
}

const char *tb_path(const TbWriter *w) {
    return w ? w->path : "";
}

void tb_close(TbWriter *w) {
    if (!w) return;
    if (w->f && fclose(w->f) != 0) warnf("%s: cannot close (%s)", w->path, strerror(errno));
    free(w->buf);
    free(w);
}
