/* The benchmark's floor: a raw rtnetlink reader in C, one recv() per message, no parsing beyond the header.
 *
 *   nlreader -g GROUPS -t TYPES [-b RCVBUF] [-n TARGET] [-q QUIET_MS] [-l] [-i]
 *
 * GROUPS: comma-separated RTNLGRP_* numbers to join; TYPES: comma-separated nlmsg_type values to count
 * (RTM_NEWROUTE=24,RTM_DELROUTE=25, ...). RCVBUF: bytes asked with SO_RCVBUFFORCE (0: the kernel default).
 * It prints "ready" once subscribed, counts until TARGET messages of TYPES (or QUIET_MS without one, from the
 * first message on), then prints one JSON line (counts, CPU seconds from getrusage between ready and the last
 * message, peak RSS (VmHWM), CLOCK_MONOTONIC of the last message, ENOBUFS seen, and with -l the
 * CLOCK_MONOTONIC of every counted message) and waits for its standard input to close, so that the harness
 * can read /proc/net/netlink (drops) while the socket is still open. -i (idle): no counting at all, it just
 * waits for stdin to close.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Peak RSS of this program (VmHWM): unlike ru_maxrss it does not carry the parent's over fork and exec. */
static long vm_hwm_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = atol(line + 6);
    if (f != NULL)
        fclose(f);
    return kib;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    char *copy = strdup(s), *tok, *save = NULL;

    for (tok = strtok_r(copy, ",", &save); tok != NULL && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = atoi(tok);
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    int groups[32], types[32], ngroups = 0, ntypes = 0, latency = 0, idle = 0, opt, fd, i;
    long target = -1, quiet_ms = 2000, rcvbuf = 0, counted = 0, total = 0, enobufs = 0;
    int64_t *stamps = NULL, last_ns = 0, ready_ns;
    static unsigned char buf[65536];
    struct sockaddr_nl addr;
    struct timeval tv;
    double cpu0, cpu1;
    socklen_t optlen;
    int effective = 0;
    char line[16];

    while ((opt = getopt(argc, argv, "g:t:b:n:q:li")) != -1) {
        switch (opt) {
        case 'g': ngroups = parse_list(optarg, groups, 32); break;
        case 't': ntypes = parse_list(optarg, types, 32); break;
        case 'b': rcvbuf = atol(optarg); break;
        case 'n': target = atol(optarg); break;
        case 'q': quiet_ms = atol(optarg); break;
        case 'l': latency = 1; break;
        case 'i': idle = 1; break;
        default: fprintf(stderr, "usage: see the comment at the top of nlreader.c\n"); return 2;
        }
    }
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    if (rcvbuf > 0) {
        int size = (int)rcvbuf;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) {
            perror("SO_RCVBUFFORCE");
            return 1;
        }
    }
    optlen = sizeof effective;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &optlen);
    memset(&addr, 0, sizeof addr);
    addr.nl_family = AF_NETLINK;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("bind");
        return 1;
    }
    for (i = 0; i < ngroups; i++)
        if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof groups[i]) < 0) {
            perror("NETLINK_ADD_MEMBERSHIP");
            return 1;
        }
    tv.tv_sec = quiet_ms / 1000;
    tv.tv_usec = (quiet_ms % 1000) * 1000;
    if (latency && target > 0 && (stamps = calloc((size_t)target, sizeof *stamps)) == NULL)
        return 1;
    printf("ready\n");
    fflush(stdout);
    if (idle) {
        while (fgets(line, sizeof line, stdin) != NULL)
            ;
        return 0;
    }
    cpu0 = cpu_seconds();
    ready_ns = mono_ns();
    last_ns = ready_ns;
    while (target < 0 || counted < target) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        struct nlmsghdr *h;
        int64_t now;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS) {
                enobufs++;
                continue;
            }
            break; /* EAGAIN: quiet for QUIET_MS */
        }
        now = mono_ns();
        if (total == 0) /* the quiet time counts from the first message: the harness may start the
                         * generator well after "ready" (a slow listener beside this one) */
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
            total++;
            for (i = 0; i < ntypes; i++)
                if (h->nlmsg_type == types[i]) {
                    if (stamps != NULL && counted < target)
                        stamps[counted] = now;
                    counted++;
                    last_ns = now;
                    break;
                }
        }
    }
    cpu1 = cpu_seconds();
    printf("{\"events\": %ld, \"messages\": %ld, \"cpu_s\": %.6f, \"maxrss_kib\": %ld, \"ready_ns\": %lld, "
           "\"last_ns\": %lld, \"overflows\": %ld, \"rcvbuf\": %d, \"complete\": %s, \"stamps_ns\": [",
           counted, total, cpu1 - cpu0, vm_hwm_kib(), (long long)ready_ns, (long long)last_ns, enobufs,
           effective, counted >= target ? "true" : "false");
    for (i = 0; stamps != NULL && i < counted && i < target; i++)
        printf(i ? ",%lld" : "%lld", (long long)stamps[i]);
    printf("]}\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin) != NULL)
        ;
    close(fd);
    return 0;
}
