// userkey.c: see userkey.h.
#include "userkey.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "util.h"

static int parse_hex_key(const char *s, uint8_t key[16]) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
    if (n != 32) return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        // strtoul alone would take "-1", "+f" or " f" as a byte: only hex digits make a key.
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1])) return -1;
        char byte[3] = {s[2 * i], s[2 * i + 1], 0};
        char *end;
        v = (unsigned)strtoul(byte, &end, 16);
        if (*end) return -1;
        key[i] = (uint8_t)v;
    }
    return 0;
}

static void default_key_path(const Config *cfg, char *out, size_t cap) {
    const char *env = getenv("TRAINER_KEY_FILE");
    if (cfg->data.key_file[0])
        snprintf(out, cap, "%s", cfg->data.key_file);
    else if (env && *env)
        snprintf(out, cap, "%s", env);
    else {
        const char *home = getenv("HOME");
        snprintf(out, cap, "%s/.config/lstm-trainer/user-id.key", home && *home ? home : ".");
    }
}

static void create_key_file(const char *path) {
    char dir[CFG_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir_p(dir) != 0) fatal("%s: cannot create directory (%s)", dir, strerror(errno));
    }
    uint8_t key[16];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key)
        fatal("cannot draw a random user-id key (%s)", strerror(errno));
    char hex[34];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[32] = '\n', hex[33] = 0;
    // O_EXCL: if another process creates it at the same moment, we read theirs instead.
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST) return;
        fatal("%s: cannot create the user-id key file (%s)", path, strerror(errno));
    }
    if (write(fd, hex, 33) != 33 || fsync(fd) != 0 || close(fd) != 0)
        fatal("%s: cannot write the user-id key file (%s)", path, strerror(errno));
    fprintf(stderr, "%screated user-id key file %s (mode 0600); keep it to hash ids the same way\n",
            log_prefix(), path);
}

void userkey_load(const Config *cfg, UserKey *out) {
    memset(out, 0, sizeof *out);
    const char *env = getenv("TRAINER_USER_KEY");
    if (env && *env) {
        if (parse_hex_key(env, out->key) != 0)
            fatal("TRAINER_USER_KEY must be 32 hex digits (16 bytes)");
        snprintf(out->source, sizeof out->source, "env TRAINER_USER_KEY");
    } else {
        char path[CFG_PATH_LEN];
        default_key_path(cfg, path, sizeof path);
        if (!path_exists(path)) create_key_file(path);
        struct stat st;
        if (stat(path, &st) == 0 && (st.st_mode & 077))
            warnf("%s: user-id key file is readable by others (mode %03o); chmod 600 it", path,
                  (unsigned)(st.st_mode & 0777));
        size_t n;
        char *text = read_file(path, &n);
        if (!text) fatal("%s: cannot read the user-id key file (%s)", path, strerror(errno));
        int rc = parse_hex_key(text, out->key);
        free(text);
        if (rc != 0) fatal("%s:1: user-id key file must hold 32 hex digits", path);
        snprintf(out->source, sizeof out->source, "%s", path);
    }
    out->fingerprint = hash_bytes(out->key, 16, 0x6b6579);
}

uint64_t userkey_hash_id(const UserKey *k, const char *raw_id, size_t len) {
    return siphash24(k->key, raw_id, len);
}

uint64_t userkey_split_hash(uint64_t id_hash, int split) {
    return split >= 0 ? mix64(id_hash + (uint64_t)split * 0x9e3779b97f4a7c15ULL) : id_hash;
}

int userkey_hash_split(const Config *cfg, int split) {
    int by_file = strcmp(cfg->data.source, "synth") == 0 || cfg->data.train_path[0] != 0;
    return by_file ? split : -1;
}
