/* The latency workload's writer: adds COUNT IPv4 host routes, one RTM_NEWROUTE at a time, INTERVAL_US apart.
 *
 *   nlwriter COUNT INTERVAL_US FIRST_DST GATEWAY IFINDEX
 *
 * It sends each request itself on a raw NETLINK_ROUTE socket, so that "the writer's send returning" is a
 * point it can stamp: rtnetlink handles a request inside sendmsg(), notifications included, so when send()
 * returns every listener's socket already holds the message. Right after each send() returns it reads
 * CLOCK_MONOTONIC (and CLOCK_REALTIME, for `ip monitor`, which stamps in real time), then reads the kernel's
 * acknowledgement. It also reads CLOCK_MONOTONIC just before each send(). It prints one JSON line:
 * {"send_ns": [...], "send_rt_ns": [...], "send_start_ns": [...]}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t ns_of(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void add_attr(struct nlmsghdr *h, unsigned short type, const void *data, unsigned short len)
{
    struct rtattr *rta = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

int main(int argc, char **argv)
{
    struct sockaddr_nl addr;
    struct in_addr first, gateway;
    struct timespec next;
    int64_t *sent, *sent_rt, *started, step;
    long count, i;
    int fd, ifindex;
    static char req[512], reply[8192];

    if (argc != 6 || inet_pton(AF_INET, argv[3], &first) != 1 || inet_pton(AF_INET, argv[4], &gateway) != 1) {
        fprintf(stderr, "usage: nlwriter COUNT INTERVAL_US FIRST_DST GATEWAY IFINDEX\n");
        return 2;
    }
    count = atol(argv[1]);
    step = atol(argv[2]) * 1000;
    ifindex = atoi(argv[5]);
    sent = calloc((size_t)count, sizeof *sent);
    sent_rt = calloc((size_t)count, sizeof *sent_rt);
    started = calloc((size_t)count, sizeof *started);
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    memset(&addr, 0, sizeof addr);
    addr.nl_family = AF_NETLINK;
    if (fd < 0 || sent == NULL || sent_rt == NULL || started == NULL || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("nlwriter");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (i = 0; i < count; i++) {
        struct nlmsghdr *h = (struct nlmsghdr *)req;
        struct rtmsg *rtm = (struct rtmsg *)NLMSG_DATA(h);
        uint32_t dst = htonl(ntohl(first.s_addr) + (uint32_t)i);
        struct nlmsgerr *e;
        ssize_t n;

        next.tv_nsec += step;
        while (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        memset(req, 0, sizeof req);
        h->nlmsg_len = NLMSG_LENGTH(sizeof *rtm);
        h->nlmsg_type = RTM_NEWROUTE;
        h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        h->nlmsg_seq = (uint32_t)i + 1;
        rtm->rtm_family = AF_INET;
        rtm->rtm_dst_len = 32;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_STATIC;
        rtm->rtm_scope = RT_SCOPE_UNIVERSE;
        rtm->rtm_type = RTN_UNICAST;
        add_attr(h, RTA_DST, &dst, 4);
        add_attr(h, RTA_GATEWAY, &gateway, 4);
        add_attr(h, RTA_OIF, &ifindex, 4);
        started[i] = ns_of(CLOCK_MONOTONIC);
        if (send(fd, req, h->nlmsg_len, 0) < 0) {
            perror("send");
            return 1;
        }
        sent[i] = ns_of(CLOCK_MONOTONIC);
        sent_rt[i] = ns_of(CLOCK_REALTIME);
        n = recv(fd, reply, sizeof reply, 0);
        e = (struct nlmsgerr *)NLMSG_DATA((struct nlmsghdr *)reply);
        if (n < 0 || (((struct nlmsghdr *)reply)->nlmsg_type == NLMSG_ERROR && e->error != 0)) {
            fprintf(stderr, "RTM_NEWROUTE %ld: %s\n", i, strerror(n < 0 ? errno : -e->error));
            return 1;
        }
    }
    printf("{\"send_ns\": [");
    for (i = 0; i < count; i++)
        printf(i ? ",%lld" : "%lld", (long long)sent[i]);
    printf("], \"send_rt_ns\": [");
    for (i = 0; i < count; i++)
        printf(i ? ",%lld" : "%lld", (long long)sent_rt[i]);
    printf("], \"send_start_ns\": [");
    for (i = 0; i < count; i++)
        printf(i ? ",%lld" : "%lld", (long long)started[i]);
    printf("]}\n");
    return 0;
}
