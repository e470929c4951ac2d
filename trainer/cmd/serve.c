// serve.c: `trainer serve EXP.yaml --checkpoint FILE|RUNDIR [--state FILE] [--max-batch N]
// [--max-delay-ms D] [--snapshot-every N] [--input PATH] [--top N] [--stats F.json]
// < events.csv > scores.jsonl`: scores events as they arrive (stdin, or a file or FIFO with
// --input) with the live scorer of run/live.h and writes one JSON line per event.
//
// Rows are in the experiment's CSV format, header first. A row that cannot be scored (wrong
// field count, bad number or time, an action or categorical value the model never saw, a time
// before the user's previous event) gets one warning line on stderr naming its line, and is
// skipped; the server goes on. Events wait at most --max-delay-ms for others to share their
// micro-batch (at most --max-batch users). With --state FILE the users' states are restored
// from FILE at start and written to it (atomically) every --snapshot-every events and on
// SIGTERM, SIGUSR1 or end of input, so a restart loses nothing. One process (not under mpirun).
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "irregular.h"
#include "live.h"
#include "rowparse.h"
#include "signals.h"
#include "userkey.h"
#include "util.h"
#include "vocab.h"

enum { LAT_BINS = 200000, MAX_FIELDS = 64 }; // latency histogram: 10 us bins up to 2 s

typedef struct {
    Scorer *sc;
    const Calibration *cal;
    const DataMeta *meta;
    int top, K;
    int *order;
    char *line; // one output line
    double *arrivals; // of the batch being written
    int n_arrivals;
    long long *lat_bins, lat_over, lat_n, batches;
    double lat_max;
} Out;

// Fast number formatting for the hot path (printf costs more than the model here): fixed
// point with `dec` decimals, or JSON null for a non-finite value; %.6e beyond 1e15.
static char *put_num(char *p, double v, int dec) {
    if (!isfinite(v)) return memcpy(p, "null", 4), p + 4;
    if (fabs(v) >= 1e15) return p + sprintf(p, "%.6e", v);
    static const double POW10[10] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    if (v < 0) *p++ = '-', v = -v;
    uint64_t scaled = (uint64_t)llround(v * POW10[dec]), ip = scaled / (uint64_t)POW10[dec];
    uint64_t fp = scaled % (uint64_t)POW10[dec];
    char digits[24];
    int n = 0;
    do digits[n++] = (char)('0' + ip % 10), ip /= 10;
    while (ip);
    while (n) *p++ = digits[--n];
    if (dec > 0) {
        *p++ = '.';
        for (int i = dec - 1; i >= 0; i--) p[i] = (char)('0' + fp % 10), fp /= 10;
        p += dec;
    }
    return p;
}

static char *put_str(char *p, const char *s) {
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

// A value from the data (an action name) inside a JSON string: " \ and control bytes escaped
// (the line buffer allows 6 bytes per byte of the longest name).
static char *put_escaped(char *p, const char *s) {
    static const char HEX[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') *p++ = '\\', *p++ = (char)c;
        else if (c < 0x20) *p++ = '\\', *p++ = 'u', *p++ = '0', *p++ = '0', *p++ = HEX[c >> 4], *p++ = HEX[c & 15];
        else *p++ = (char)c;
    }
    return p;
}

static char *put_int(char *p, long long v) {
    return put_num(p, (double)v, 0);
}

static void emit(void *ctx, const LiveResult *r) {
    Out *o = ctx;
    const LossConfig *lc = &o->sc->lc;
    const real *y = r->y;
    const int K = o->K;
    char *line = o->line, *p = line; // sized for the longest action name (cmd_serve)
    static const char HEX[] = "0123456789abcdef";
    p = put_str(p, "{\"user_hash\":\"");
    for (int i = 15; i >= 0; i--) *p++ = HEX[(r->user->hash >> (4 * i)) & 15];
    p = put_str(p, "\",\"event\":"), p = put_int(p, r->event);
    p = put_str(p, ",\"time\":"), p = put_num(p, ev_time(r->record), 3);
    p = put_str(p, ",\"action\":\""), p = put_escaped(p, o->meta->vocab[0][ev_action(r->record)]);
    if (r->ev) {
        const UserScore *us = &r->user->us;
        p = put_str(p, "\",\"surprisal\":{\"action\":"), p = put_num(p, r->ev->s[PART_ACTION], 6);
        p = put_str(p, ",\"timing\":"), p = put_num(p, r->ev->s[PART_TIMING], 6);
        p = put_str(p, ",\"engagement\":"), p = put_num(p, r->ev->s[PART_ENGAGEMENT], 6);
        p = put_str(p, "},\"excess\":"), p = put_num(p, r->ev->excess, 6);
        p = put_str(p, ",\"score\":"), p = put_num(p, us->score, 9);
        p = put_str(p, us->score > o->cal->threshold ? ",\"flagged\":true" : ",\"flagged\":false");
        p = put_str(p, ",\"reason\":\""), p = put_str(p, user_score_reason_text(us));
        p = put_str(p, "\",\"peak\":["), p = put_int(p, us->peak.start);
        *p++ = ',', p = put_int(p, us->peak.end), *p++ = ']';
    } else {
        p = put_str(p, "\",\"surprisal\":null,\"excess\":null,\"score\":null,\"flagged\":false,"
                       "\"reason\":null,\"peak\":null");
    }
    double mx = y[0], z = 0;
    for (int k = 0; k < K; k++) mx = y[k] > mx ? y[k] : mx, o->order[k] = k;
    for (int k = 0; k < K; k++) z += exp(y[k] - mx);
    for (int i = 0; i < o->top && i < K; i++) // partial selection sort: the top few only
        for (int j = i + 1; j < K; j++)
            if (y[o->order[j]] > y[o->order[i]]) {
                int t = o->order[i];
                o->order[i] = o->order[j], o->order[j] = t;
            }
    p = put_str(p, ",\"next\":[");
    for (int i = 0; i < o->top && i < K; i++) {
        p = put_str(p, i ? ",{\"action\":\"" : "{\"action\":\"");
        p = put_escaped(p, o->meta->vocab[0][o->order[i]]);
        p = put_str(p, "\",\"p\":"), p = put_num(p, exp(y[o->order[i]] - mx) / z, 4), *p++ = '}';
    }
    double mu = lc->loggap_mean + lc->loggap_std * y[K], sd = lc->loggap_std * exp(y[K + 1]);
    p = put_str(p, "],\"next_gap\":{\"median\":");
    p = put_num(p, fmax(0, exp(mu) - lc->gap_offset), 3);
    p = put_str(p, ",\"mean\":"), p = put_num(p, fmax(0, exp(mu + 0.5 * sd * sd) - lc->gap_offset), 3);
    p = put_str(p, "}}\n");
    fwrite(line, 1, (size_t)(p - line), stdout);
    o->arrivals[o->n_arrivals++] = r->arrival;
}

// Runs the batch, writes its lines, and records each event's latency (read -> written).
static void flush_batch(LiveScorer *ls, Out *o) {
    if (live_pending(ls) == 0) return;
    o->n_arrivals = 0;
    o->batches++;
    live_flush(ls, emit, o);
    if (fflush(stdout) != 0) fatal("serve: writing stdout failed (%s)", strerror(errno));
    double now = now_seconds();
    for (int i = 0; i < o->n_arrivals; i++) {
        double lat = now - o->arrivals[i];
        long long bin = (long long)(lat * 1e5);
        if (bin < LAT_BINS) o->lat_bins[bin]++;
        else o->lat_over++;
        o->lat_n++;
        o->lat_max = fmax(o->lat_max, lat);
    }
}

static double lat_quantile(const Out *o, double q) {
    long long need = (long long)ceil(q * (double)o->lat_n), seen = 0;
    for (long long b = 0; b < LAT_BINS; b++)
        if ((seen += o->lat_bins[b]) >= need && need > 0) return (double)(b + 1) / 1e5;
    return o->lat_max;
}

// Splits one CSV line in place (RFC 4180 quotes: a quoted field may hold commas and ""
// escapes). Returns the field count, or -1 if a quote is left open or there are too many.
static int split_line(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        if (*p == '"') {
            char *w = ++p;
            fields[n++] = w;
            for (;;) {
                if (*p == 0) return -1;
                if (*p == '"' && p[1] == '"') *w++ = '"', p += 2;
                else if (*p == '"') break;
                else *w++ = *p++;
            }
            *w = 0;
            p++;
            if (*p == 0) return n;
            if (*p != ',') return -1;
            p++;
        } else {
            fields[n++] = p;
            char *c = strchr(p, ',');
            if (!c) return n;
            *c = 0;
            p = c + 1;
        }
    }
}

typedef struct {
    const Config *cfg;
    const DataMeta *meta;
    RowParser rp;
    int have_header;
    StrTable vt[1 + CFG_LIST_MAX];
    UserKey key;
    uint8_t *record;
    size_t event_bytes;
    long long line, rows, skipped;
} Reader;

static void skip_row(Reader *rd, const char *fmt, const char *what) {
    rd->skipped++;
    if (rd->skipped <= 1000) {
        fprintf(stderr, "warning: stdin:%lld: ", rd->line);
        fprintf(stderr, fmt, what);
        fprintf(stderr, ": row skipped\n");
    } else if (rd->skipped == 1001) {
        fprintf(stderr, "warning: more than 1000 rows skipped; counting the rest silently\n");
    }
}

// A vocabulary id of the model, or -1 for a value it never saw.
static int vocab_id(Reader *rd, int v, const char *s) {
    int id = strtab_intern(&rd->vt[v], s, strlen(s));
    return id < rd->meta->vocab_size[v] && id > 0 ? id : -1;
}

// One input line -> an event record and its user; 0 if the row was skipped (warned).
static int read_row(Reader *rd, char *line, uint64_t *user) {
    char *fields[MAX_FIELDS], why[512];
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r') line[--len] = 0;
    if (len == 0) return 0;
    int nf = split_line(line, fields, MAX_FIELDS);
    if (!rd->have_header) {
        if (nf < 0) fatal("stdin:1: malformed header row");
        row_parser_init(&rd->rp, rd->cfg, "stdin", "serve", fields, nf);
        rd->have_header = 1;
        return 0;
    }
    rd->rows++;
    Row row;
    if (nf < 0) return skip_row(rd, "%s", "unterminated quote or too many fields"), 0;
    if (row_parse(&rd->rp, fields, nf, &row, why, sizeof why) != 0) return skip_row(rd, "%s", why), 0;
    int a = vocab_id(rd, 0, row.action);
    if (a < 0) return skip_row(rd, "unknown action \"%s\" (not in the training vocabulary)", row.action), 0;
    uint8_t *e = rd->record;
    memset(e, 0, rd->event_bytes);
    *(double *)e = row.time;
    *(int32_t *)(e + 8) = a;
    for (uint32_t c = 0; c < rd->meta->n_cat; c++) {
        int id = vocab_id(rd, 1 + (int)c, row.cat[c]);
        if (id < 0) return skip_row(rd, "unknown value \"%s\" of a categorical column", row.cat[c]), 0;
        ((int32_t *)(e + 12))[c] = id;
    }
    for (uint32_t k = 0; k < rd->meta->n_num; k++) ((float *)(e + 12 + 4 * rd->meta->n_cat))[k] = (float)row.num[k];
    *user = userkey_hash_id(&rd->key, row.user, strlen(row.user));
    return 1;
}

typedef struct {
    const char *state;
    long long snapshot_every, since_snapshot;
} Snapshots;

static void snapshot(const LiveScorer *ls, Snapshots *sn) {
    if (!sn->state) return;
    char err[CFG_PATH_LEN + 256];
    if (live_snapshot_write(ls, sn->state, err, sizeof err) != 0) fatal("serve: snapshot: %s", err);
    sn->since_snapshot = 0;
}

// Every --snapshot-every events: every queued event is scored first, so the state is whole.
static void maybe_snapshot(LiveScorer *ls, Out *o, Snapshots *sn) {
    if (!sn->state || sn->snapshot_every <= 0 || sn->since_snapshot < sn->snapshot_every) return;
    while (live_pending(ls) > 0) flush_batch(ls, o);
    snapshot(ls, sn);
}

// Reads stdin (or --input) until end of input or a stop signal; scores as it goes.
static void serve_loop(int fd, Reader *rd, LiveScorer *ls, Out *o, Snapshots *sn,
                       double max_delay) {
    size_t cap = 1 << 20, len = 0;
    char *buf = xmalloc(cap + 2);
    int eof = 0;
    while (!eof && !signals_stop_requested()) {
        int timeout = -1;
        // Events wait up to max_delay for more to share their batch; once that is up, what
        // input is already there still joins (poll with no wait), then the batch goes.
        if (live_pending(ls) > 0) {
            double left = live_oldest(ls) + max_delay - now_seconds();
            timeout = left > 0 ? (int)ceil(left * 1000) : 0;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, timeout);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) fatal("serve: poll failed (%s)", strerror(errno));
        if (pr == 0) { // no input before the oldest event's delay is up
            flush_batch(ls, o);
            maybe_snapshot(ls, o, sn);
            continue;
        }
        if (len == cap) buf = xrealloc(buf, (cap *= 2) + 2);
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fatal("serve: read failed (%s)", strerror(errno));
        if (got == 0) {
            eof = 1;
            if (len > 0) buf[len++] = '\n'; // a last line without its newline
        }
        len += (size_t)(got > 0 ? got : 0);
        buf[len] = 0;
        double now = now_seconds();
        char *p = buf, *nl;
        while ((nl = memchr(p, '\n', (size_t)(buf + len - p)))) {
            *nl = 0;
            rd->line++;
            uint64_t user;
            if (read_row(rd, p, &user)) {
                int rc = live_push(ls, user, rd->record, now);
                if (rc < 0) skip_row(rd, "%s", "time before the user's previous event");
                if (rc > 0) sn->since_snapshot++;
                if (live_batch_full(ls)) flush_batch(ls, o);
                maybe_snapshot(ls, o, sn);
            }
            p = nl + 1;
        }
        len = (size_t)(buf + len - p);
        memmove(buf, p, len);
        if (max_delay <= 0 || eof)
            while (live_pending(ls) > 0) flush_batch(ls, o);
        maybe_snapshot(ls, o, sn);
    }
    while (live_pending(ls) > 0) flush_batch(ls, o);
    free(buf);
}

static void write_stats(const char *path, const Out *o, const Reader *rd, const LiveScorer *ls,
                        double secs, int max_batch, double max_delay_ms) {
    StrBuf js = {0};
    sb_appendf(&js,
               "{\"rows\": %lld, \"skipped\": %lld, \"events\": %lld, \"users\": %lld, "
               "\"seconds\": %.6f, \"events_per_second\": %.1f, \"max_batch\": %d, "
               "\"batches\": %lld, \"mean_batch\": %.2f, "
               "\"max_delay_ms\": %g, \"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": "
               "%.3f}}\n",
               rd->rows, rd->skipped, o->lat_n, live_users(ls), secs,
               secs > 0 ? (double)o->lat_n / secs : 0, max_batch, o->batches,
               o->batches ? (double)o->lat_n / (double)o->batches : 0, max_delay_ms,
               1e3 * lat_quantile(o, 0.5), 1e3 * lat_quantile(o, 0.99), 1e3 * o->lat_max);
    char err[512];
    if (write_file_atomic(path, js.data, js.len, err, sizeof err) != 0) fatal("%s", err);
    sb_free(&js);
}

// The vocabularies and user key a row of the live stream is read with.
static void reader_open(Reader *rd, const Scorer *sc) {
    *rd = (Reader){.cfg = &sc->cfg, .meta = &sc->ds.meta};
    for (uint32_t v = 0; v <= sc->ds.meta.n_cat; v++) {
        strtab_init(&rd->vt[v]);
        for (int i = 0; i < sc->ds.meta.vocab_size[v]; i++)
            strtab_intern(&rd->vt[v], sc->ds.meta.vocab[v][i], strlen(sc->ds.meta.vocab[v][i]));
    }
    userkey_load(&sc->cfg, &rd->key);
    rd->event_bytes = shard_event_bytes((int)sc->ds.meta.n_cat, (int)sc->ds.meta.n_num);
    rd->record = xcalloc(1, rd->event_bytes);
}

static void reader_close(Reader *rd) {
    for (uint32_t v = 0; v <= rd->meta->n_cat; v++) strtab_free(&rd->vt[v]);
    free(rd->record);
}

// The output line buffer (sized for the longest action name, escaped), latency bins.
static void out_open(Out *o, Scorer *sc, const Calibration *cal, int top, int max_batch) {
    *o = (Out){.sc = sc, .cal = cal, .meta = &sc->ds.meta, .top = top > 0 ? top : 3,
               .K = sc->model->shape.n_actions};
    o->order = xmalloc(sizeof(int) * (size_t)o->K);
    size_t longest = 0;
    for (int k = 0; k < o->K; k++) longest = fmax(longest, strlen(sc->ds.meta.vocab[0][k]));
    o->line = xmalloc(1024 + (size_t)(o->top + 1) * (6 * longest + 64));
    o->arrivals = xmalloc(sizeof(double) * (size_t)max_batch);
    o->lat_bins = xcalloc(LAT_BINS, sizeof(long long));
}

static void out_free(Out *o) {
    free(o->order), free(o->line), free(o->arrivals), free(o->lat_bins);
}

static void restore_state(LiveScorer *ls, const Snapshots *sn) {
    char err[CFG_PATH_LEN + 256];
    if (!sn->state || !path_exists(sn->state)) return;
    if (live_snapshot_read(ls, sn->state, err, sizeof err) != 0) fatal("serve: --state %s", err);
    fprintf(stderr, "serve: restored %lld users (%lld events) from %s\n", live_users(ls),
            live_events(ls), sn->state);
}

static void print_summary(const Reader *rd, const Out *o, const LiveScorer *ls,
                          const Snapshots *sn, double secs) {
    int sig = signals_stop_requested();
    fprintf(stderr,
            "serve: %lld rows, %lld skipped, %lld events scored for %lld users in %.2f s (%.0f "
            "events/s); latency p50 %.3f ms, p99 %.3f ms, max %.3f ms%s%s\n",
            rd->rows, rd->skipped, o->lat_n, live_users(ls), secs, secs > 0 ? o->lat_n / secs : 0,
            1e3 * lat_quantile(o, 0.5), 1e3 * lat_quantile(o, 0.99), 1e3 * o->lat_max,
            sig ? "; stopped by a signal" : "", sn->state ? "; state saved" : "");
}

int cmd_serve(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "serve",
              "--set --checkpoint --state --max-batch --max-delay-ms --snapshot-every --input "
              "--top --flag-rate --stats",
              1, &args);
    int max_batch = (int)cli_get_number(&args, "serve", "--max-batch", 1, 65536, 64);
    double max_delay_ms = cli_get_number(&args, "serve", "--max-delay-ms", 0, 1e6, 5);
    Snapshots sn = {cli_get(&args, "--state"),
                    (long long)cli_get_number(&args, "serve", "--snapshot-every", 0, 1e15, 100000), 0};
    double rate_arg = cli_get_number(&args, "serve", "--flag-rate", 0, 1, -1);
    const char *stats = cli_get(&args, "--stats");
    ScoreRequest req = {"serve", args.exp_path, args.n_overrides, args.overrides,
                        args.checkpoint, NULL, SPLIT_VALID, 2, 0, 0};
    // stdout carries the JSON lines only: what set-up prints goes to stderr.
    fflush(stdout);
    int json_fd = dup(1);
    if (json_fd < 0 || dup2(2, 1) < 0) fatal("serve: cannot redirect stdout (%s)", strerror(errno));
    Scorer sc;
    int rc = scorer_open(&sc, &req, &argc, &argv);
    if (rc == EXIT_OK) rc = scorer_require_single_lognormal(&sc, "serve");
    if (rc != EXIT_OK) {
        free(args.overrides);
        return rc;
    }
    if (sc.size > 1) fatal("trainer serve runs as one process (not under mpirun -np %d)", sc.size);
    int fd = 0;
    if (args.input && (fd = open(args.input, O_RDONLY)) < 0)
        fatal("serve: --input %s: cannot open (%s)", args.input, strerror(errno));
    ScoreSpec spec = score_spec_from(&sc.cfg);
    Calibration cal;
    irregular_calibrate(&sc, &spec, rate_arg >= 0 ? rate_arg : sc.cfg.score.flag_rate, &cal);
    SurpriseParams sp = surprise_params(&sc.model->shape, &sc.lc, cal.eng_sigma);
    LiveScorer *ls = live_open(&sc, &spec, &sp, max_batch);
    restore_state(ls, &sn);
    fprintf(stderr, "serve: ready (threshold %.6g from %lld validation users; batches of up to %d "
            "users, %g ms at most)\n", cal.threshold, cal.n_users, max_batch, max_delay_ms);
    signals_install(0);
    Reader rd;
    reader_open(&rd, &sc);
    Out o;
    out_open(&o, &sc, &cal, args.top, max_batch);
    fflush(stdout);
    if (dup2(json_fd, 1) < 0) fatal("serve: cannot restore stdout (%s)", strerror(errno));
    close(json_fd);
    static char out_buf[1 << 20];
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    double t0 = now_seconds();
    serve_loop(fd, &rd, ls, &o, &sn, max_delay_ms / 1e3);
    double secs = now_seconds() - t0;
    snapshot(ls, &sn);
    print_summary(&rd, &o, ls, &sn, secs);
    if (stats) write_stats(stats, &o, &rd, ls, secs, max_batch, max_delay_ms);
    reader_close(&rd);
    out_free(&o);
    if (fd > 0) close(fd);
    live_close(ls);
    calibration_free(&cal);
    scorer_close(&sc);
    free(args.overrides);
    return EXIT_OK;
}
