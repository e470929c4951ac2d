// placement.c: where the ranks run (host names, machines, CPU binding), gathered once at
// start through comm_allgatherv_bytes.
//
// Why a machine id besides the host name: "hosts" that are containers or network namespaces
// of one machine have different host names but share its cores. A launcher that binds each
// host's first rank to core 0 then puts every rank on one core (400 steps took 10 s instead
// of 0.5 s, 95% comm wait). The kernel's boot id is the same in every namespace of one
// machine, so ranks with equal boot ids share cores whatever their host names say.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "util.h"

#define PLACEMENT_CPUS 1024 // CPUs described per rank (more are not checked)

typedef struct {
    char machine[48];  // /proc/sys/kernel/random/boot_id, else the host name
    char host[64];     // gethostname()
    int32_t n_online;  // CPUs online on the machine
    int32_t n_mask;    // CPUs in this rank's affinity mask
    uint8_t mask[PLACEMENT_CPUS / 8];
} Placement;

static void read_machine_id(char *out, size_t cap, const char *host) {
    snprintf(out, cap, "%s", host);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f) return;
    char line[64];
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0]) snprintf(out, cap, "%s", line);
    }
    fclose(f);
}

static void local_placement(Placement *p) {
    memset(p, 0, sizeof *p);
    if (gethostname(p->host, sizeof p->host - 1) != 0) snprintf(p->host, sizeof p->host, "?");
    read_machine_id(p->machine, sizeof p->machine, p->host);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    p->n_online = online > 0 ? (int32_t)online : 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return; // unknown: never "bound"
    for (int c = 0; c < PLACEMENT_CPUS && c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) p->mask[c / 8] |= (uint8_t)(1u << (c % 8)), p->n_mask++;
}

// "0" or "0,1,5": the CPUs in both masks (at most a few, then "...").
static void shared_cpus(const Placement *a, const Placement *b, char *out, size_t cap) {
    size_t len = 0;
    int shown = 0;
    out[0] = '\0';
    for (int c = 0; c < PLACEMENT_CPUS && len + 8 < cap; c++) {
        if (!(a->mask[c / 8] & b->mask[c / 8] & (1u << (c % 8)))) continue;
        if (shown++ == 8) { snprintf(out + len, cap - len, ",..."); return; }
        len += (size_t)snprintf(out + len, cap - len, "%s%d", len ? "," : "", c);
    }
}

// Bound: a mask narrower than the machine's online CPUs (the launcher chose the cores).
static int is_bound(const Placement *p) {
    return p->n_mask > 0 && p->n_mask < p->n_online;
}

static int warn_shared_cores(const Placement *all, int size) {
    int n_pairs = 0;
    for (int i = 0; i < size; i++)
        for (int j = i + 1; j < size; j++) {
            const Placement *a = &all[i], *b = &all[j];
            if (strcmp(a->machine, b->machine) != 0 || !is_bound(a) || !is_bound(b)) continue;
            char cpus[96];
            shared_cpus(a, b, cpus, sizeof cpus);
            if (!cpus[0]) continue;
            if (n_pairs++ < 4)
                warnf("ranks %d (host %s) and %d (host %s) are bound to the same CPU(s) %s of "
                      "one machine: they take turns on it (comm wait rises, steps slow down); "
                      "start them with `mpirun --bind-to none` or give each rank its own cores",
                      i, a->host, j, b->host, cpus);
        }
    if (n_pairs > 4) warnf("... and %d more pairs of ranks bound to shared CPUs", n_pairs - 4);
    return n_pairs;
}

static int count_hosts(const Placement *all, int size) {
    int n = 0;
    for (int i = 0; i < size; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = strcmp(all[i].host, all[j].host) == 0;
        n += !seen;
    }
    return n;
}

int comm_placement_check(void) {
    Placement mine;
    local_placement(&mine);
    size_t total = 0;
    Placement *all = comm_allgatherv_bytes(&mine, sizeof mine, &total);
    int size = comm_size();
    if (total != sizeof mine * (size_t)size) fatal("placement: %zu bytes gathered", total);
    int n_hosts = count_hosts(all, size);
    if (comm_rank() == 0) warn_shared_cores(all, size);
    free(all);
    return n_hosts;
}
