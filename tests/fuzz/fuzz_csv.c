// fuzz_csv.c: the CSV reader, the row parser and the ISO-8601 time parser on arbitrary
// bytes. The header is the input's first row (the encoding checks look at it); rows are
// then parsed against the columns user,t,action,c,x (time as ISO-8601 when the input's
// first byte is odd, else as a number). Property: no crash, every row ends as fields or a
// reason; line numbers never go backwards; a parsed time is finite.
#include "fuzz_common.h"

#include <math.h>

#include "config.h"
#include "csv.h"
#include "rowparse.h"
#include "timeparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Config cfg;
    static int have_cfg = 0;
    static char *ov[] = {"data.source=csv", "data.path=x.csv", "data.user_col=user",
                         "data.time_col=t", "data.action_col=action",
                         "data.categorical_cols=[c]", "data.numeric_cols=[x]",
                         "data.numeric_transform=log1p", "data.time_format=iso8601"};
    static RowParser iso, num;
    if (!have_cfg) {
        char *header[] = {"user", "t", "action", "c", "x"};
        if (config_load(&cfg, NULL, (int)(sizeof ov / sizeof ov[0]), ov) != 0) abort();
        row_parser_init(&iso, &cfg, "fuzz", NULL, header, 5);
        static Config cfg_num;
        cfg_num = cfg;
        snprintf(cfg_num.data.time_format, sizeof cfg_num.data.time_format, "number");
        row_parser_init(&num, &cfg_num, "fuzz", NULL, header, 5);
        have_cfg = 1;
    }
    const RowParser *rp = size && (data[0] & 1) ? &iso : &num;
    CsvReader *r = csv_open(fuzz_file(data, size));
    if (!r) abort();
    char **f;
    int nf, rc;
    long long last_line = 0;
    char why[512];
    Row row;
    while ((rc = csv_next(r, &f, &nf)) != 0) {
        long long line = csv_line(r);
        if (line < last_line) abort();
        last_line = line;
        if (rc < 0) {
            if (!csv_error(r)[0]) abort(); // a bad row always says why
            continue;
        }
        if (nf < 1) abort();
        if (row_parse(rp, f, nf, &row, why, sizeof why) == 0) {
            if (!isfinite(row.time)) abort();
        } else if (!why[0])
            abort();
        for (int i = 0; i < nf; i++) {
            double t;
            const char *reason = NULL;
            if (parse_iso8601(f[i], &t, &reason) == 0 && !isfinite(t)) abort();
        }
    }
    csv_close(r);
    return 0;
}
