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

// Bound: a mask narrower than the machine's online CPUs (the launcher chose the cores).
static int is_bound(const Placement *p) {
    return p->n_mask > 0 && p->n_mask < p->n_online;
}

static int masks_meet(const Placement *a, const Placement *b) {
    for (int k = 0; k < PLACEMENT_CPUS / 8; k++)
        if (a->mask[k] & b->mask[k]) return 1;
    return 0;
}

static int find_root(int *parent, int i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

// "0" or "0,1,5": the CPUs of mask (at most 8, then ",...").
static void cpu_list(const uint8_t *mask, char *out, size_t cap) {
    size_t len = 0;
    int shown = 0;
    out[0] = '\0';
    for (int c = 0; c < PLACEMENT_CPUS && len + 8 < cap; c++) {
        if (!(mask[c / 8] & (1u << (c % 8)))) continue;
        if (shown++ == 8) { snprintf(out + len, cap - len, ",..."); return; }
        len += (size_t)snprintf(out + len, cap - len, "%s%d", len ? "," : "", c);
    }
}

// One warning per group of bound ranks of one machine whose masks overlap (transitively)
// when the group has more ranks than CPUs: some of them must take turns on a core. Ranks
// merely sharing a cpuset (a container, a Slurm job step of 2 CPUs for 2 ranks) are fine.
static int warn_shared_cores(const Placement *all, int size) {
    int *parent = xmalloc(sizeof(int) * (size_t)size), n_warned = 0;
    for (int i = 0; i < size; i++) parent[i] = i;
    for (int i = 0; i < size; i++)
        for (int j = i + 1; j < size; j++)
            if (is_bound(&all[i]) && is_bound(&all[j]) &&
                strcmp(all[i].machine, all[j].machine) == 0 && masks_meet(&all[i], &all[j]))
                parent[find_root(parent, j)] = find_root(parent, i);
    for (int root = 0; root < size; root++) {
        if (find_root(parent, root) != root) continue;
        uint8_t cpus[PLACEMENT_CPUS / 8] = {0};
        int n_ranks = 0, n_cpus = 0, other = -1;
        for (int i = 0; i < size; i++) {
            if (find_root(parent, i) != root) continue;
            n_ranks++;
            if (i != root && other < 0) other = i;
            for (int k = 0; k < PLACEMENT_CPUS / 8; k++) cpus[k] |= all[i].mask[k];
        }
        for (int c = 0; c < PLACEMENT_CPUS; c++) n_cpus += (cpus[c / 8] >> (c % 8)) & 1;
        if (n_ranks <= n_cpus || n_warned++ >= 4) continue;
        char list[96];
        cpu_list(cpus, list, sizeof list);
        warnf("%d ranks (%d on host %s, %d on host %s%s) are bound to %d CPU%s (%s) of one "
              "machine: they take turns (comm wait rises, steps slow down); start them with "
              "`mpirun --bind-to none` or give each rank its own cores",
              n_ranks, root, all[root].host, other, all[other].host, n_ranks > 2 ? ", ..." : "",
              n_cpus, n_cpus > 1 ? "s" : "", list);
    }
    free(parent);
    return n_warned;
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
