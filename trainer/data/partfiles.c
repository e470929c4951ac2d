// partfiles.c: see partfiles.h.
#include "partfiles.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *dup_path(const char *a, const char *b) {
    size_t n = strlen(a) + (b ? strlen(b) + 1 : 0) + 1;
    char *p = xmalloc(n);
    if (b) snprintf(p, n, "%s/%s", a, b);
    else snprintf(p, n, "%s", a);
    return p;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **list_dir(const char *dir, const char *key, int max_files, int *n) {
    DIR *d = opendir(dir);
    if (!d) fatal("%s: %s: cannot list directory (%s)", key, dir, strerror(errno));
    char **out = NULL;
    int cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
        char *p = dup_path(dir, e->d_name);
        if (is_dir(p)) {
            free(p);
            continue;
        }
        if (*n == max_files)
            fatal_status(EXIT_USAGE, "%s: %s: more than %d part files", key, dir, max_files);
        if (*n == cap) out = xrealloc(out, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 16));
        out[(*n)++] = p;
    }
    closedir(d);
    if (*n == 0)
        fatal_status(EXIT_USAGE, "%s: %s: directory has no data files (hidden files and "
                     "names starting with '_' are skipped)", key, dir);
    qsort(out, (size_t)*n, sizeof *out, by_name);
    return out;
}

static char **list_glob(const char *pattern, const char *key, int max_files, int *n) {
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g); // sorted by name
    if (rc == GLOB_NOMATCH)
        fatal_status(EXIT_USAGE, "%s: %s: no file matches the pattern", key, pattern);
    if (rc != 0) fatal("%s: %s: cannot expand the pattern (glob error %d)", key, pattern, rc);
    char **out = xmalloc(sizeof(char *) * (g.gl_pathc ? g.gl_pathc : 1));
    *n = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (is_dir(g.gl_pathv[i])) continue;
        if (*n == max_files)
            fatal_status(EXIT_USAGE, "%s: %s: more than %d part files", key, pattern, max_files);
        out[(*n)++] = dup_path(g.gl_pathv[i], NULL);
    }
    globfree(&g);
    if (*n == 0) fatal_status(EXIT_USAGE, "%s: %s: the pattern matches only directories", key, pattern);
    return out;
}

char **partfiles_list(const char *path, const char *key, int max_files, int *n) {
    if (strpbrk(path, "*?[")) return list_glob(path, key, max_files, n);
    if (is_dir(path)) return list_dir(path, key, max_files, n);
    char **out = xmalloc(sizeof(char *));
    out[0] = dup_path(path, NULL);
    *n = 1;
    return out;
}

void partfiles_free(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
