/*
 * nl_selftest.c - white-box self-test of csrc/nn_map.c and csrc/nn_netlink.c against
 * the running kernel. Build and run with tests/c/run_selftest.sh, which runs it in a
 * private network namespace (unshare -n) with a veth pair configured.
 *
 * It includes the two sources so that it can check their private constants against
 * the kernel headers. It changes network state (with ip) only when its network
 * namespace is not the one of PID 1, so a stray run on a host changes nothing.
 */
#include "../../csrc/nn_map.c"
#include "../../csrc/nn_util.c"
#include "../../csrc/nn_netlink.c"

#include <arpa/inet.h>
#include <pthread.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>



/* ---------------------------------------------------------------- checks */

/* the private ABI constants of nn_netlink.c against this machine's headers */
_Static_assert(NN_IFA_FLAGS == IFA_FLAGS, "IFA_FLAGS");
_Static_assert(NN_IFA_PROTO == IFA_PROTO, "IFA_PROTO");
_Static_assert(NN_RTA_VIA == RTA_VIA, "RTA_VIA");
_Static_assert(NN_RTA_EXPIRES == RTA_EXPIRES, "RTA_EXPIRES");
_Static_assert(NN_IFLA_INET6_FLAGS == IFLA_INET6_FLAGS, "IFLA_INET6_FLAGS");
_Static_assert(NN_IFLA_INET6_CONF == IFLA_INET6_CONF, "IFLA_INET6_CONF");
_Static_assert(NN_IFLA_INET6_CACHEINFO == IFLA_INET6_CACHEINFO, "IFLA_INET6_CACHEINFO");
_Static_assert(NN_IFLA_INET6_TOKEN == IFLA_INET6_TOKEN, "IFLA_INET6_TOKEN");
_Static_assert(NN_IFLA_INET6_ADDR_GEN_MODE == IFLA_INET6_ADDR_GEN_MODE, "IFLA_INET6_ADDR_GEN_MODE");
_Static_assert(NN_IN6_ADDR_GEN_MODE_NONE == IN6_ADDR_GEN_MODE_NONE, "IN6_ADDR_GEN_MODE_NONE");
_Static_assert(NN_IPV4_DEVCONF_FORWARDING == IPV4_DEVCONF_FORWARDING, "IPV4_DEVCONF_FORWARDING");
_Static_assert(NN_DEVCONF_FORWARDING == DEVCONF_FORWARDING, "DEVCONF_FORWARDING");
_Static_assert(NN_DEVCONF_MTU6 == DEVCONF_MTU6, "DEVCONF_MTU6");
_Static_assert(NN_DEVCONF_ACCEPT_RA == DEVCONF_ACCEPT_RA, "DEVCONF_ACCEPT_RA");
_Static_assert(NN_DEVCONF_DAD_TRANSMITS == DEVCONF_DAD_TRANSMITS, "DEVCONF_DAD_TRANSMITS");
_Static_assert(NN_DEVCONF_DISABLE_IPV6 == DEVCONF_DISABLE_IPV6, "DEVCONF_DISABLE_IPV6");

static int failures;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!ok)
        failures++;
}

/* Changes are made only when this netns is provably not the host's: run_selftest.sh
 * passes the host's netns inode (PID 1's is often unreadable in containers). */
static int in_private_netns(void)
{
    struct stat self, other;
    if (stat("/proc/self/ns/net", &self) < 0)
        return 0;
    const char *host = getenv("NN_SELFTEST_HOST_NETNS");
    if (host && *host)
        return strtoull(host, NULL, 10) != (unsigned long long)self.st_ino;
    if (stat("/proc/1/ns/net", &other) < 0)
        return 0;
    return self.st_ino != other.st_ino || self.st_dev != other.st_dev;
}

static void run(const char *cmd)
{
    if (!in_private_netns()) {
        printf("skip (not in a private netns): %s\n", cmd);
        return;
    }
    int rc = system(cmd);
    if (rc != 0)
        printf("     command failed (%d): %s\n", rc, cmd);
}

/* ---------------------------------------------------------------- printing */

static const char *ip_str(const nn_ip *ip, char *buf, size_t n)
{
    if (ip->family != AF_INET && ip->family != AF_INET6) {
        snprintf(buf, n, "<family %u>", ip->family);
        return buf;
    }
    inet_ntop(ip->family, ip->addr, buf, (socklen_t)n);
    if (ip->scope_id) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%%%u", ip->scope_id);
    }
    return buf;
}

static void print_if(const nn_if_row *r)
{
    printf("  if %u %-5s luid=%016llx mtu=%u conn=%u fwd=%u nd=%u rd=%u/%u ll=%d dad=%u reach=%u/%u "
           "retr=%u reasm=%u m/o=%u/%u token=%016llx\n",
           r->interface_index, r->family == AF_INET ? "inet" : "inet6", (unsigned long long)r->interface_luid,
           r->nl_mtu, r->connected, r->forwarding_enabled, r->supports_neighbor_discovery,
           r->supports_router_discovery, r->router_discovery_behavior, r->link_local_address_behavior,
           r->dad_transmits, r->reachable_time, r->base_reachable_time, r->retransmit_time,
           r->max_reassembly_size, r->managed_address_configuration_supported,
           r->other_stateful_configuration_supported, (unsigned long long)r->interface_identifier);
}

static void print_addr(const char *tag, const nn_addr_row *r)
{
    char a[64];
    time_t t = (time_t)((r->creation_time_stamp - NN_FILETIME_UNIX_EPOCH) / 10000000);
    char ts[32] = "-";
    if (r->creation_time_stamp)
        strftime(ts, sizeof(ts), "%H:%M:%S", gmtime(&t));
    printf("  %s %u %s/%u luid=%016llx dad=%d origin=%d/%d valid=%u pref=%u scope=%u created=%s\n", tag,
           r->interface_index, ip_str(&r->address, a, sizeof(a)), r->on_link_prefix_length,
           (unsigned long long)r->interface_luid, r->dad_state, r->prefix_origin, r->suffix_origin,
           r->valid_lifetime, r->preferred_lifetime, r->scope_id, ts);
}

static void print_route(const char *tag, const nn_route_row *r)
{
    char d[64], n[64];
    printf("  %s %s/%u via %s dev %u table %u type %u proto %d origin %d metric %u loop=%u immortal=%u "
           "valid=%u luid=%016llx\n",
           tag, ip_str(&r->destination_prefix, d, sizeof(d)), r->destination_prefix_length,
           ip_str(&r->next_hop, n, sizeof(n)), r->interface_index, r->linux_table, r->linux_type, r->protocol,
           r->origin, r->metric, r->loopback, r->immortal, r->valid_lifetime,
           (unsigned long long)r->interface_luid);
}

/* ---------------------------------------------------------------- map */

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

typedef struct {
    uint32_t key;
    uint32_t value;
} kv;

static void test_map(void)
{
    enum { KEYS = 300, OPS = 200000 };
    static int ref_present[KEYS];
    static uint32_t ref_value[KEYS];
    nn_map m;
    int bad = 0;
    nn_map_init(&m, sizeof(uint32_t), sizeof(kv));
    for (int op = 0; op < OPS && !bad; op++) {
        uint32_t k = rnd() % KEYS;
        switch (rnd() % 3) {
        case 0: {
            int created = -1;
            kv *e = nn_map_put(&m, &k, &created);
            if (!e || created != !ref_present[k] || e->key != k || (created && e->value != 0))
                bad = 1;
            else {
                e->value = rnd();
                ref_present[k] = 1;
                ref_value[k] = e->value;
            }
            break;
        }
        case 1:
            if (nn_map_del(&m, &k) != ref_present[k])
                bad = 2;
            ref_present[k] = 0;
            break;
        default: {
            kv *e = nn_map_get(&m, &k);
            if ((e != NULL) != ref_present[k] || (e && e->value != ref_value[k]))
                bad = 3;
        }
        }
        if (op % 1000 == 0) { /* full consistency: every key, the count, iteration */
            size_t n = 0, it = 0;
            kv *e;
            for (uint32_t i = 0; i < KEYS; i++) {
                e = nn_map_get(&m, &i);
                if ((e != NULL) != ref_present[i] || (e && e->value != ref_value[i]))
                    bad = 4;
                n += ref_present[i];
            }
            size_t seen = 0;
            while ((e = nn_map_next(&m, &it)))
                seen++;
            if (n != m.count || seen != n || m.count * 10 > m.capacity * 7)
                bad = 5;
        }
    }
    check(!bad, "map: %d random put/del/get against a reference (code %d), capacity %zu", OPS, bad, m.capacity);
    nn_map_clear(&m);
    uint32_t k = 7;
    check(m.count == 0 && !nn_map_get(&m, &k), "map: clear");
    nn_map_free(&m);
    check(!nn_map_get(&m, &k) && !nn_map_del(&m, &k), "map: get/del on an empty map");
    size_t it = 0;
    check(!nn_map_next(&m, &it), "map: next on an empty map");
}

/* ---------------------------------------------------------------- tables */

static int find_index(const char *name)
{
    return (int)if_nametoindex(name);
}

static int test_tables(void)
{
    nn_table t;
    nn_error err = {0};
    int va = find_index("va");

    if (nn_nl_get_table(NN_KIND_INTERFACE, AF_UNSPEC, &t, &err) < 0) {
        check(0, "interface table: %s errno %d win %u", err.call, err.errnum, err.winerror);
        return -1;
    }
    printf("interface table (%zu rows):\n", t.count);
    int va4 = 0, va6 = 0;
    for (size_t i = 0; i < t.count; i++) {
        const nn_if_row *r = (const nn_if_row *)t.rows + i;
        print_if(r);
        if ((int)r->interface_index == va && r->family == AF_INET)
            va4 = r->nl_mtu == 1500 && r->connected && r->interface_luid == nn_luid_make(va, 6);
        if ((int)r->interface_index == va && r->family == AF_INET6)
            va6 = r->nl_mtu == 1500 && r->supports_router_discovery && r->link_local_address_behavior == 2;
    }
    nn_table_free(&t);
    if (va)
        check(va4 && va6, "interface table: va has correct inet and inet6 rows");

    if (nn_nl_get_table(NN_KIND_ADDRESS, AF_UNSPEC, &t, &err) < 0) {
        check(0, "address table: %s errno %d", err.call, err.errnum);
        return -1;
    }
    printf("address table (%zu rows):\n", t.count);
    int found = 0;
    for (size_t i = 0; i < t.count; i++) {
        const nn_addr_row *r = (const nn_addr_row *)t.rows + i;
        print_addr("addr", r);
        if ((int)r->interface_index == va && r->address.family == AF_INET && r->address.addr[0] == 10 &&
            r->address.addr[3] == 3)
            found = r->on_link_prefix_length == 24 && r->prefix_origin == 1 && r->dad_state == 4 &&
                    r->valid_lifetime == NN_INFINITE;
    }
    nn_table_free(&t);
    if (va)
        check(found, "address table: 10.1.2.3/24 on va, manual, preferred, infinite");

    if (nn_nl_get_table(NN_KIND_ROUTE, AF_INET, &t, &err) < 0) {
        check(0, "route table: %s errno %d", err.call, err.errnum);
        return -1;
    }
    size_t n4 = t.count;
    nn_table_free(&t);
    if (nn_nl_get_table(NN_KIND_ROUTE, AF_UNSPEC, &t, &err) < 0) {
        check(0, "route table: %s errno %d", err.call, err.errnum);
        return -1;
    }
    printf("route table (%zu rows):\n", t.count);
    int mp = 0;
    size_t v4 = 0;
    for (size_t i = 0; i < t.count; i++) {
        const nn_route_row *r = (const nn_route_row *)t.rows + i;
        print_route("route", r);
        v4 += r->destination_prefix.family == AF_INET;
        if (r->destination_prefix.family == AF_INET && r->destination_prefix.addr[1] == 60 &&
            r->destination_prefix_length == 16)
            mp++;
    }
    nn_table_free(&t);
    check(v4 == n4, "route table: AF_INET filter gives the inet rows of AF_UNSPEC (%zu)", n4);
    if (va)
        check(mp == 2, "route table: multipath 10.60.0.0/16 is two rows");
    return 0;
}

static void test_entries(void)
{
    nn_error err = {0};
    int va = find_index("va");
    if (!va) {
        printf("skip entries: no link va\n");
        return;
    }

    nn_if_row ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.family = AF_INET6;
    ifr.interface_index = (uint32_t)va;
    check(nn_nl_get_entry(NN_KIND_INTERFACE, &ifr, &err) == 0 && ifr.interface_luid == nn_luid_make(va, 6),
          "get_entry interface by index");
    uint64_t luid = ifr.interface_luid;
    memset(&ifr, 0, sizeof(ifr));
    ifr.family = AF_INET;
    ifr.interface_luid = luid;
    ifr.interface_index = 999; /* the LUID wins */
    check(nn_nl_get_entry(NN_KIND_INTERFACE, &ifr, &err) == 0 && (int)ifr.interface_index == va,
          "get_entry interface by LUID");
    memset(&ifr, 0, sizeof(ifr));
    ifr.family = AF_INET;
    ifr.interface_index = 9999;
    check(nn_nl_get_entry(NN_KIND_INTERFACE, &ifr, &err) < 0 && err.winerror == NN_ERROR_NOT_FOUND,
          "get_entry interface absent: NOT_FOUND");
    ifr.family = 17;
    check(nn_nl_get_entry(NN_KIND_INTERFACE, &ifr, &err) < 0 && err.winerror == NN_ERROR_INVALID_PARAMETER,
          "get_entry interface bad family: INVALID_PARAMETER");

    nn_addr_row ar;
    memset(&ar, 0, sizeof(ar));
    ar.address.family = AF_INET;
    inet_pton(AF_INET, "10.1.2.3", ar.address.addr);
    check(nn_nl_get_entry(NN_KIND_ADDRESS, &ar, &err) == 0 && (int)ar.interface_index == va &&
              ar.on_link_prefix_length == 24,
          "get_entry address, any interface");
    memset(&ar, 0, sizeof(ar));
    ar.address.family = AF_INET;
    inet_pton(AF_INET, "10.1.2.3", ar.address.addr);
    ar.interface_index = 1;
    check(nn_nl_get_entry(NN_KIND_ADDRESS, &ar, &err) < 0 && err.winerror == NN_ERROR_NOT_FOUND,
          "get_entry address on the wrong interface: NOT_FOUND");
    memset(&ar, 0, sizeof(ar));
    check(nn_nl_get_entry(NN_KIND_ADDRESS, &ar, &err) < 0 && err.winerror == NN_ERROR_INVALID_PARAMETER,
          "get_entry address family 0: INVALID_PARAMETER");

    nn_route_row rr;
    memset(&rr, 0, sizeof(rr));
    rr.destination_prefix.family = AF_INET;
    inet_pton(AF_INET, "10.60.0.0", rr.destination_prefix.addr);
    rr.destination_prefix_length = 16;
    rr.next_hop.family = AF_INET;
    inet_pton(AF_INET, "10.1.2.9", rr.next_hop.addr);
    check(nn_nl_get_entry(NN_KIND_ROUTE, &rr, &err) == 0 && (int)rr.interface_index == va && rr.immortal,
          "get_entry route, one next hop of a multipath route");
    memset(&rr, 0, sizeof(rr));
    rr.destination_prefix.family = AF_INET;
    inet_pton(AF_INET, "10.1.2.0", rr.destination_prefix.addr);
    rr.destination_prefix_length = 24;
    check(nn_nl_get_entry(NN_KIND_ROUTE, &rr, &err) == 0 && rr.protocol == 2 && rr.origin == 1 &&
              rr.next_hop.family == AF_INET,
          "get_entry on-link route with a family-0 next hop");
    memset(&rr, 0, sizeof(rr));
    rr.destination_prefix.family = AF_INET;
    inet_pton(AF_INET, "10.70.0.0", rr.destination_prefix.addr);
    rr.destination_prefix_length = 16;
    rr.next_hop.family = AF_INET;
    inet_pton(AF_INET, "10.1.2.8", rr.next_hop.addr);
    check(nn_nl_get_entry(NN_KIND_ROUTE, &rr, &err) == 0 && rr.metric == 5,
          "get_entry route: the lowest of several metrics");
    rr.destination_prefix_length = 33;
    check(nn_nl_get_entry(NN_KIND_ROUTE, &rr, &err) < 0 && err.winerror == NN_ERROR_INVALID_PARAMETER,
          "get_entry route, prefix length 33: INVALID_PARAMETER");
}

/* ---------------------------------------------------------------- notifications */

typedef struct {
    nn_map links;
    int events, bad;
} ev_ctx;

static int print_event(void *vctx, const struct nlmsghdr *nlh)
{
    ev_ctx *ctx = vctx;
    ctx->events++;
    switch (nlh->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK: {
        nn_link_entry l;
        nn_if_row rows[2];
        int n;
        int rc = nn_nl_parse_link(nlh, &l, rows, &n);
        printf("  %s ifindex %u rc %d rows %d\n", nlh->nlmsg_type == RTM_NEWLINK ? "NEWLINK" : "DELLINK",
               l.ifindex, rc, n);
        ctx->bad += rc < 0;
        if (rc == 0 && nlh->nlmsg_type == RTM_NEWLINK)
            *(nn_link_entry *)nn_map_put(&ctx->links, &l.ifindex, NULL) = l;
        for (int i = 0; i < n; i++)
            print_if(&rows[i]);
        break;
    }
    case RTM_NEWADDR:
    case RTM_DELADDR: {
        nn_addr_row r;
        int rc = nn_nl_parse_addr(nlh, &ctx->links, &r);
        ctx->bad += rc < 0;
        if (rc == 1)
            print_addr(nlh->nlmsg_type == RTM_NEWADDR ? "NEWADDR" : "DELADDR", &r);
        break;
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
        nn_route_row r[4];
        int n = nn_nl_parse_route(nlh, &ctx->links, r, 4);
        ctx->bad += n < 0;
        for (int i = 0; i < n && i < 4; i++)
            print_route(nlh->nlmsg_type == RTM_NEWROUTE ? "NEWROUTE" : "DELROUTE", &r[i]);
        break;
    }
    default:
        printf("  message type %u\n", nlh->nlmsg_type);
    }
    return 0;
}

static int count_cb(void *vctx, const struct nlmsghdr *nlh)
{
    (void)nlh;
    ++*(int *)vctx;
    return 0;
}

static void test_notifications(void)
{
    static const unsigned groups[] = {RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV4_ROUTE,
                                      RTNLGRP_IPV6_ROUTE};
    nn_nlsock s;
    nn_error err = {0};
    ev_ctx ctx;
    static uint64_t buf[65536 / 8];

    if (!in_private_netns()) {
        printf("skip notifications: not in a private netns\n");
        return;
    }
    memset(&ctx, 0, sizeof(ctx));
    nn_map_init(&ctx.links, sizeof(uint32_t), sizeof(nn_link_entry));
    if (nn_nl_open(&s, groups, sizeof(groups) / sizeof(groups[0]), 1 << 20, &err) < 0) {
        check(0, "open subscribed socket: %s %d", err.call, err.errnum);
        return;
    }
    int rc = nn_nl_dump_links(&s, &ctx.links, &err);
    check(rc == 0 && ctx.links.count >= 3, "dump_links: %zu links", ctx.links.count);
    check(nn_nl_read(&s, buf, sizeof(buf), print_event, &ctx, &err) == 0, "read with nothing queued returns 0");

    run("ip addr add 10.1.2.44/24 dev va valid_lft 300 preferred_lft 100; "
        "ip route add 10.80.0.0/16 via 10.1.2.9 metric 7; ip -6 route add 2001:db8:80::/48 via fe80::1 dev va "
        "expires 120; ip link set vb mtu 1400; ip route del 10.80.0.0/16");
    printf("notifications:\n");
    struct pollfd pfd = {s.fd, POLLIN, 0};
    int total = 0;
    while (poll(&pfd, 1, 300) > 0) {
        int n = nn_nl_read(&s, buf, sizeof(buf), print_event, &ctx, &err);
        if (n < 0) {
            check(0, "nn_nl_read: %s %d", err.call, err.errnum);
            break;
        }
        total += n;
    }
    nn_if_row ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.family = AF_INET6;
    ifr.interface_index = (uint32_t)find_index("vb");
    int got = nn_nl_get_entry(NN_KIND_INTERFACE, &ifr, &err);
    check(got == 0 && ifr.nl_mtu == 1400, "vb inet6 nl_mtu %u after mtu 1400", ifr.nl_mtu);
    check(total > 0 && ctx.events >= 5 && !ctx.bad, "nn_nl_read: %d datagrams, %d messages, %d malformed", total,
          ctx.events, ctx.bad);

    /* notifications queued before a dump reach other_cb; the dump still completes */
    run("ip addr add 10.1.2.45/24 dev va; ip addr del 10.1.2.45/24 dev va");
    int dumped = 0, others = 0;
    rc = nn_nl_dump(&s, RTM_GETADDR, AF_INET, count_cb, count_cb, &dumped, &err);
    int rc2 = nn_nl_dump(&s, RTM_GETADDR, AF_INET, count_cb, NULL, &others, &err);
    check(rc == 0 && rc2 == 0 && dumped > others && others >= 3,
          "dump on a subscribed socket: %d messages with notifications, %d without", dumped, others);

    /* overflow: a tiny receive buffer and a burst of changes give ENOBUFS */
    nn_nlsock small;
    unsigned g = RTNLGRP_IPV4_IFADDR;
    if (nn_nl_open(&small, &g, 1, 1, &err) == 0) {
        run("for i in $(seq 1 60); do ip addr add 10.9.0.$i/32 dev va; done");
        int n = nn_nl_read(&small, buf, sizeof(buf), count_cb, &total, &err);
        check(n < 0 && err.errnum == ENOBUFS && err.winerror == NN_ERROR_NOT_ENOUGH_MEMORY,
              "overflow reported as ENOBUFS (rc %d errno %d)", n, err.errnum);
        n = nn_nl_read(&small, buf, sizeof(buf), count_cb, &total, &err);
        check(n >= 0, "reading goes on after ENOBUFS (%d datagrams)", n);
        nn_nl_close(&small);
        run("for i in $(seq 1 60); do ip addr del 10.9.0.$i/32 dev va; done");
    }

    nn_nl_close(&s);
    nn_map_free(&ctx.links);
}

static int stop_cb(void *vctx, const struct nlmsghdr *nlh)
{
    (void)nlh;
    ++*(int *)vctx;
    return 7;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Dump requests the kernel does not take at once: each dump still completes, promptly. */
static void test_dump_recovery(void)
{
    nn_error err;
    nn_nlsock small;
    unsigned g = RTNLGRP_IPV4_IFADDR;
    struct timespec t0;
    int rc;

    memset(&err, 0, sizeof(err));
    /* A full, congested queue: the kernel holds the dump (ENOBUFS) and resumes it as the
     * stale queue is read. */
    if (nn_nl_open(&small, &g, 1, 1, &err) == 0) {
        run("for i in $(seq 1 60); do ip addr add 10.9.1.$i/32 dev va; done");
        int links = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = nn_nl_dump(&small, RTM_GETLINK, AF_UNSPEC, count_cb, NULL, &links, &err);
        double took = seconds_since(&t0);
        check(rc == 0 && links >= 3 && took < 5.0,
              "dump on a full, congested socket: rc %d (errno %d), %d links, %.3f s", rc, rc < 0 ? err.errnum : 0,
              links, took);
        nn_nl_close(&small);
        run("for i in $(seq 1 60); do ip addr del 10.9.1.$i/32 dev va; done");
    }

    /* A dump given up by its caller (its callback stopped it after the first message) goes
     * on in the kernel while the socket's small queue lets it: the next request on the
     * socket is refused (EBUSY, or no answer at all when the refusal is dropped from the
     * full queue). The next dump reads the old one out and asks again. */
    if (!in_private_netns())
        return;
    run("i=0; while [ $i -lt 2000 ]; do echo \"route add 10.200.$((i / 250)).$((i % 250))/32 via 10.1.2.9\";"
        " i=$((i + 1)); done | ip -batch -");
    if (nn_nl_open(&small, NULL, 0, 1, &err) == 0) {
        int seen = 0, routes = 0;
        rc = nn_nl_dump(&small, RTM_GETROUTE, AF_INET, stop_cb, NULL, &seen, &err);
        check(rc == 7 && seen == 1, "a dump stopped by its callback returns its value (%d, %d calls)", rc, seen);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = nn_nl_dump(&small, RTM_GETROUTE, AF_INET, count_cb, NULL, &routes, &err);
        double took = seconds_since(&t0);
        check(rc == 0 && routes >= 2000 && took < 5.0,
              "dump after one given up on the same socket: rc %d (errno %d), %d routes, %.3f s", rc,
              rc < 0 ? err.errnum : 0, routes, took);
        nn_nl_close(&small);
    }
    run("i=0; while [ $i -lt 2000 ]; do echo \"route del 10.200.$((i / 250)).$((i % 250))/32 via 10.1.2.9\";"
        " i=$((i + 1)); done | ip -batch -");
}

/* nn_nl_read_wait sleeps until a datagram comes; nn_nl_wake, from another thread, ends
 * the sleep with an acknowledgement that no callback sees; a notification ends it too. */
typedef struct {
    nn_nlsock *s;
    int calls, rc, done;
    pthread_mutex_t lock;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    nn_error err;
    unsigned char buf[65536];
    int calls = 0;

    memset(&err, 0, sizeof(err));
    int rc = nn_nl_read_wait(w->s, buf, sizeof(buf), count_cb, &calls, &err);
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->calls = calls;
    w->done = 1;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static int waiter_done(waiter *w, double seconds)
{
    struct timespec t0, pause = {0, 2000000};
    int done = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!done && seconds_since(&t0) < seconds) {
        pthread_mutex_lock(&w->lock);
        done = w->done;
        pthread_mutex_unlock(&w->lock);
        if (!done)
            nanosleep(&pause, NULL);
    }
    return done;
}

static void test_wait_and_wake(void)
{
    nn_error err;
    nn_nlsock s;
    unsigned g = RTNLGRP_IPV4_IFADDR;
    unsigned char buf[65536];
    pthread_t t;
    waiter w;
    int calls = 0;

    memset(&err, 0, sizeof(err));
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    w.s = &s;
    if (nn_nl_open(&s, &g, 1, 0, &err) < 0) {
        check(0, "nn_nl_open: %s %d", err.call, err.errnum);
        return;
    }
    check(nn_nl_set_blocking(&s) == 0 && !(fcntl(s.fd, F_GETFL) & O_NONBLOCK), "nn_nl_set_blocking clears O_NONBLOCK");
    check(nn_nl_read(&s, buf, sizeof(buf), count_cb, &calls, &err) == 0 && s.drained,
          "nn_nl_read on a blocking socket with nothing queued returns at once");

    pthread_create(&t, NULL, wait_thread, &w);
    check(!waiter_done(&w, 0.2), "nn_nl_read_wait sleeps while nothing is queued");
    check(nn_nl_wake(s.fd) == 0, "nn_nl_wake sends its request");
    int woke = waiter_done(&w, 5.0);
    check(woke && w.rc == 1 && w.calls == 0, "nn_nl_wake wakes it: rc %d, %d callbacks (the acknowledgement is skipped)",
          w.rc, w.calls);
    if (!woke) { /* a thread asleep for good: the test failed, do not hang it */
        pthread_detach(t);
        return;
    }
    pthread_join(t, NULL);

    if (in_private_netns()) {
        w.done = 0;
        pthread_create(&t, NULL, wait_thread, &w);
        check(!waiter_done(&w, 0.1), "asleep again");
        run("ip addr add 10.9.3.1/32 dev va");
        woke = waiter_done(&w, 5.0);
        check(woke && w.rc >= 1 && w.calls >= 1, "a notification wakes it: rc %d, %d callbacks", w.rc, w.calls);
        if (woke)
            pthread_join(t, NULL);
        else {
            nn_nl_wake(s.fd);
            pthread_join(t, NULL);
        }
        run("ip addr del 10.9.3.1/32 dev va");
    }
    nn_nl_close(&s);
    pthread_mutex_destroy(&w.lock);
}

static int link_seen, link_ignored, link_bad, capture_n;

static int classify_link(void *ctx, const struct nlmsghdr *nlh)
{
    nn_link_entry l;
    nn_if_row rows[2];
    int n;
    (void)ctx;
    if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
        return 0;
    int rc = nn_nl_parse_link(nlh, &l, rows, &n);
    link_seen++;
    link_ignored += rc == 1 && l.ifindex == 0 && n == 0;
    link_bad += rc < 0;
    return 0;
}

/* ---------------------------------------------------------------- less common objects */

static int get_if(int family, const char *name, nn_if_row *r)
{
    nn_error err = {0};
    memset(r, 0, sizeof(*r));
    r->family = (uint16_t)family;
    r->interface_index = (uint32_t)find_index(name);
    return r->interface_index ? nn_nl_get_entry(NN_KIND_INTERFACE, r, &err) : -1;
}

static int get_route(const char *dst, int len, const char *via, nn_route_row *r)
{
    nn_error err = {0};
    memset(r, 0, sizeof(*r));
    r->destination_prefix.family = AF_INET;
    inet_pton(AF_INET, dst, r->destination_prefix.addr);
    r->destination_prefix_length = (uint8_t)len;
    if (via) {
        r->next_hop.family = strchr(via, ':') ? AF_INET6 : AF_INET;
        inet_pton(r->next_hop.family, via, r->next_hop.addr);
    }
    int rc = nn_nl_get_entry(NN_KIND_ROUTE, r, &err);
    if (rc == 0)
        print_route("entry", r);
    return rc;
}

static void test_extras(void)
{
    nn_if_row ir;
    nn_route_row rr;
    nn_addr_row ar;
    nn_error err = {0};

    if (!in_private_netns() || !find_index("va")) {
        printf("skip extras: not in the prepared private netns\n");
        return;
    }
    run("echo 1 > /proc/sys/net/ipv6/conf/vb/disable_ipv6");
    check(get_if(AF_INET6, "vb", &ir) < 0 && get_if(AF_INET, "vb", &ir) == 0,
          "disable_ipv6: no inet6 row, the inet row stays");
    run("echo 0 > /proc/sys/net/ipv6/conf/vb/disable_ipv6");
    check(get_if(AF_INET6, "vb", &ir) == 0, "enable_ipv6: the inet6 row is back");

    run("echo 1 > /proc/sys/net/ipv4/conf/va/forwarding; echo 1 > /proc/sys/net/ipv6/conf/va/forwarding");
    check(get_if(AF_INET, "va", &ir) == 0 && ir.forwarding_enabled, "ipv4 forwarding");
    check(get_if(AF_INET6, "va", &ir) == 0 && ir.forwarding_enabled && ir.router_discovery_behavior == 0,
          "ipv6 forwarding, accept_ra 1: router discovery disabled");
    run("echo 2 > /proc/sys/net/ipv6/conf/va/accept_ra; echo 3 > /proc/sys/net/ipv6/conf/va/dad_transmits");
    check(get_if(AF_INET6, "va", &ir) == 0 && ir.router_discovery_behavior == 1 && ir.dad_transmits == 3,
          "accept_ra 2: router discovery enabled; dad_transmits 3");
    run("echo 0 > /proc/sys/net/ipv4/conf/va/forwarding; echo 0 > /proc/sys/net/ipv6/conf/va/forwarding");

    run("ip token set ::1:2:3:4/64 dev va; ip link set vb addrgenmode none");
    int got = get_if(AF_INET6, "va", &ir);
    check(got == 0 && ir.interface_identifier == 0x0001000200030004ull, "token: interface_identifier %016llx",
          (unsigned long long)ir.interface_identifier);
    check(get_if(AF_INET6, "vb", &ir) == 0 && ir.link_local_address_behavior == 0, "addrgenmode none: AlwaysOff");

    run("ip link set va down");
    check(get_if(AF_INET, "va", &ir) == 0 && !ir.connected, "link down: not connected");
    run("ip link set va up");

    run("ip tuntap add mode tun name tn0 && ip link set tn0 up");
    check(get_if(AF_INET, "tn0", &ir) == 0 && ir.interface_luid == nn_luid_make(ir.interface_index, 53) &&
              !ir.connected && !ir.supports_neighbor_discovery,
          "tun: propVirtual LUID, NOARP, no carrier");

    run("ip addr add 10.3.3.1 peer 10.3.3.2 dev va");
    memset(&ar, 0, sizeof(ar));
    ar.address.family = AF_INET;
    inet_pton(AF_INET, "10.3.3.1", ar.address.addr);
    check(nn_nl_get_entry(NN_KIND_ADDRESS, &ar, &err) == 0 && ar.on_link_prefix_length == 32,
          "point-to-point address: the local end");

    run("ip route add 10.90.0.0/16 via inet6 fe80::1 dev va");
    check(get_route("10.90.0.0", 16, "fe80::1", &rr) == 0 && rr.next_hop.scope_id == rr.interface_index,
          "RTA_VIA: IPv4 route with an IPv6 next hop");
    run("ip nexthop add id 1 via 10.1.2.8 dev va && ip route add 10.91.0.0/16 nhid 1");
    check(get_route("10.91.0.0", 16, "10.1.2.8", &rr) == 0 || get_route("10.91.0.0", 16, NULL, &rr) == 0,
          "nexthop object route reported");
    run("ip route add 10.92.0.0/16 via 10.1.2.8 table 100");
    check(get_route("10.92.0.0", 16, "10.1.2.8", &rr) < 0, "table 100: not reported");
    run("ip route add blackhole 10.93.0.0/16 proto 188");
    check(get_route("10.93.0.0", 16, NULL, &rr) == 0 && rr.interface_index == 0 && rr.interface_luid == 0 &&
              rr.protocol == 13 && rr.linux_type == RTN_BLACKHOLE,
          "blackhole route: no interface, OSPF protocol");
    run("ip route add 10.94.0.0/16 via 10.1.2.8 proto dhcp; ip route add 10.95.0.0/16 via 10.1.2.8 proto ra");
    check(get_route("10.94.0.0", 16, "10.1.2.8", &rr) == 0 && rr.protocol == 19 && rr.origin == 2, "proto dhcp");
    check(get_route("10.95.0.0", 16, "10.1.2.8", &rr) == 0 && rr.protocol == 1 && rr.origin == 3, "proto ra");

    /* bridge port messages (AF_BRIDGE) are not link rows */
    static const unsigned g[] = {RTNLGRP_LINK};
    nn_nlsock s;
    static uint64_t buf[65536 / 8];
    if (nn_nl_open(&s, g, 1, 0, &err) == 0) {
        run("ip link add name br0 type bridge && ip link set vb master br0");
        struct pollfd pfd = {s.fd, POLLIN, 0};
        capture_n = 0;
        while (poll(&pfd, 1, 200) > 0 && nn_nl_read(&s, buf, sizeof(buf), classify_link, NULL, &err) > 0)
            ;
        check(link_ignored > 0 && link_bad == 0, "bridge: %d link messages, %d ignored (AF_BRIDGE), %d malformed",
              link_seen, link_ignored, link_bad);
        nn_nl_close(&s);
    }
}

/* ---------------------------------------------------------------- robustness */

typedef struct {
    unsigned char *msgs[4096];
    size_t n;
} capture;

static int capture_cb(void *vctx, const struct nlmsghdr *nlh)
{
    capture *c = vctx;
    if (c->n < sizeof(c->msgs) / sizeof(c->msgs[0])) {
        c->msgs[c->n] = malloc(nlh->nlmsg_len);
        if (!c->msgs[c->n])
            return NN_CB_NOMEM;
        memcpy(c->msgs[c->n++], nlh, nlh->nlmsg_len);
    }
    return 0;
}

static int parse_any(const unsigned char *m, const nn_map *links)
{
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)(const void *)m;
    nn_link_entry l;
    nn_if_row ir[2];
    nn_addr_row ar;
    nn_route_row rr[3];
    int n;
    switch (nlh->nlmsg_type) {
    case RTM_NEWLINK:
        return nn_nl_parse_link(nlh, &l, ir, &n) < 0 ? -1 : 0;
    case RTM_NEWADDR:
        return nn_nl_parse_addr(nlh, links, &ar) < 0 ? -1 : 0;
    default:
        return nn_nl_parse_route(nlh, links, rr, 3) < 0 ? -1 : 0;
    }
}

/* Every truncation and random corruption of real messages, in buffers of exactly the
 * claimed size: meant to run under -fsanitize=address,undefined. */
static void test_robustness(void)
{
    nn_nlsock s;
    nn_error err = {0};
    static capture c;
    nn_map links;
    nn_map_init(&links, sizeof(uint32_t), sizeof(nn_link_entry));
    if (nn_nl_open(&s, NULL, 0, 0, &err) < 0)
        return;
    nn_nl_dump_links(&s, &links, &err);
    nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, capture_cb, NULL, &c, &err);
    nn_nl_dump(&s, RTM_GETADDR, AF_UNSPEC, capture_cb, NULL, &c, &err);
    nn_nl_dump(&s, RTM_GETROUTE, AF_UNSPEC, capture_cb, NULL, &c, &err);
    nn_nl_close(&s);

    long parsed = 0, rejected = 0;
    int whole_ok = 1;
    for (size_t i = 0; i < c.n; i++) {
        uint32_t len = ((struct nlmsghdr *)(void *)c.msgs[i])->nlmsg_len;
        whole_ok &= parse_any(c.msgs[i], &links) == 0;
        for (uint32_t cut = NLMSG_HDRLEN; cut <= len; cut++) {
            unsigned char *m = malloc(cut);
            memcpy(m, c.msgs[i], cut);
            ((struct nlmsghdr *)(void *)m)->nlmsg_len = cut;
            rejected += parse_any(m, &links) < 0;
            parsed++;
            free(m);
        }
        for (int round = 0; round < 200; round++) {
            unsigned char *m = malloc(len);
            memcpy(m, c.msgs[i], len);
            for (int k = 0; k < 4; k++) {
                size_t at = NLMSG_HDRLEN + rnd() % (len - NLMSG_HDRLEN + 1);
                if (at < len)
                    m[at] = (unsigned char)rnd();
            }
            rejected += parse_any(m, &links) < 0;
            parsed++;
            free(m);
        }
        free(c.msgs[i]);
    }
    check(whole_ok && c.n > 0, "robustness: %zu real messages parse; %ld mutations parsed, %ld rejected", c.n,
          parsed, rejected);
    nn_map_free(&links);
}

/* ---------------------------------------------------------------- malformed input */

/* Forged kernel replies. run_selftest.sh links with -Wl,--wrap=recvmsg,--wrap=sendto: while
 * a script is set, a request is not sent (its sequence number is kept) and every netlink
 * receive returns the next datagram of the script as coming from the kernel, with the
 * messages marked "ours" addressed to the receiving socket (its port id, the sequence number
 * of its last request). When the script runs out, a receive fails with end_errno (EAGAIN:
 * nothing queued; EIO ends a dump, which would otherwise wait for more). */
typedef struct {
    unsigned char b[2048];
    size_t len;
} msgbuf;

typedef struct {
    unsigned char b[4096];
    size_t len;
    size_t ours[16]; /* offsets of the messages to address */
    size_t nours;
} dgram;

static struct {
    int active;
    const dgram *dg;
    size_t n, next;
    int end_errno;
    uint32_t seq;
    const unsigned char *last; /* what the last receive returned */
    size_t lastlen;
} script;

ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len);
ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags);
int __real_recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *timeout);
int __wrap_recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *timeout);
ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len);

ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len)
{
    struct nlmsghdr h;
    if (!script.active || n < sizeof(h))
        return __real_sendto(fd, buf, n, flags, addr, len);
    memcpy(&h, buf, sizeof(h));
    script.seq = h.nlmsg_seq;
    return (ssize_t)n;
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (!script.active)
        return __real_recvmsg(fd, msg, flags);
    if (script.next >= script.n) {
        errno = script.end_errno;
        return -1;
    }
    const dgram *d = &script.dg[script.next++];
    struct sockaddr_nl me, kernel;
    socklen_t melen = sizeof(me);
    memset(&me, 0, sizeof(me));
    getsockname(fd, (struct sockaddr *)&me, &melen);
    unsigned char *dst = msg->msg_iov[0].iov_base;
    size_t n = d->len < msg->msg_iov[0].iov_len ? d->len : msg->msg_iov[0].iov_len;
    memcpy(dst, d->b, n); /* the rest of the buffer keeps what it held */
    for (size_t i = 0; i < d->nours; i++)
        if (d->ours[i] + 16 <= n) {
            memcpy(dst + d->ours[i] + 8, &script.seq, 4);
            memcpy(dst + d->ours[i] + 12, &me.nl_pid, 4);
        }
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    memcpy(msg->msg_name, &kernel, sizeof(kernel));
    msg->msg_namelen = sizeof(kernel);
    msg->msg_flags = n < d->len ? MSG_TRUNC : 0;
    script.last = dst;
    script.lastlen = n;
    return (ssize_t)n;
}

/* recvmmsg as the kernel does it, over the forged datagrams: one recvmsg per slot until one
 * fails. The walk checks (script.last) then hold for a batch of one datagram, which is what
 * the malformed-input scripts give. */
int __wrap_recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *timeout)
{
    unsigned int i;
    if (!script.active)
        return __real_recvmmsg(fd, msgvec, vlen, flags, timeout);
    for (i = 0; i < vlen; i++) {
        ssize_t n = __wrap_recvmsg(fd, &msgvec[i].msg_hdr, flags);
        if (n < 0)
            break;
        msgvec[i].msg_len = (unsigned int)n;
    }
    return i > 0 ? (int)i : -1;
}

static void script_set(const dgram *dg, size_t n, int end_errno)
{
    script.active = 1;
    script.end_errno = end_errno;
    script.dg = dg;
    script.n = n;
    script.next = 0;
    script.last = NULL;
}

static void script_clear(void)
{
    script.active = 0;
}

static void mb_put(msgbuf *m, const void *p, size_t n)
{
    if (n)
        memcpy(m->b + m->len, p, n);
    m->len += n;
}

static void mb_pad(msgbuf *m)
{
    while (m->len % 4)
        m->b[m->len++] = 0;
}

/* A message: header, family header; attributes follow; mb_end sets nlmsg_len. */
static void mb_begin(msgbuf *m, uint16_t type, uint16_t flags, const void *fam, size_t famlen)
{
    struct nlmsghdr h = {0, type, flags, 0, 0};
    memset(m, 0, sizeof(*m));
    mb_put(m, &h, sizeof(h));
    mb_put(m, fam, famlen);
    mb_pad(m);
}

static size_t mb_attr(msgbuf *m, uint16_t type, const void *data, size_t dlen)
{
    struct rtattr a = {(unsigned short)RTA_LENGTH(dlen), type};
    size_t at = m->len;
    mb_put(m, &a, sizeof(a));
    mb_put(m, data, dlen);
    mb_pad(m);
    return at;
}

static void mb_attr_u32(msgbuf *m, uint16_t type, uint32_t v)
{
    mb_attr(m, type, &v, sizeof(v));
}

static size_t mb_nest(msgbuf *m, uint16_t type)
{
    return mb_attr(m, type, NULL, 0);
}

static void mb_nest_end(msgbuf *m, size_t at)
{
    unsigned short l = (unsigned short)(m->len - at);
    memcpy(m->b + at, &l, sizeof(l));
}

static void mb_end(msgbuf *m)
{
    uint32_t l = (uint32_t)m->len;
    memcpy(m->b, &l, sizeof(l));
}

static void mb_set_len(msgbuf *m, uint32_t l)
{
    memcpy(m->b, &l, sizeof(l));
}

/* A control message (NLMSG_DONE / NLMSG_ERROR) with its error int. */
static void mb_control(msgbuf *m, uint16_t type, uint16_t flags, int32_t error)
{
    mb_begin(m, type, flags, &error, sizeof(error));
    mb_end(m);
}

/* A link message as the kernel sends it: ifinfomsg, IFLA_MTU, IFLA_AF_SPEC with AF_INET and
 * AF_INET6 entries (IPv6 forwarding off, not disabled). */
static void mb_link(msgbuf *m, uint16_t type, uint16_t flags, int ifindex, uint32_t mtu)
{
    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof(ifi));
    ifi.ifi_type = ARPHRD_ETHER;
    ifi.ifi_index = ifindex;
    ifi.ifi_flags = IFF_UP | IFF_RUNNING;
    mb_begin(m, type, flags, &ifi, sizeof(ifi));
    mb_attr_u32(m, IFLA_MTU, mtu);
    size_t spec = mb_nest(m, IFLA_AF_SPEC);
    size_t in4 = mb_nest(m, AF_INET);
    uint32_t conf4[4] = {0};
    mb_attr(m, 1 /* IFLA_INET_CONF */, conf4, sizeof(conf4));
    mb_nest_end(m, in4);
    size_t in6 = mb_nest(m, AF_INET6);
    mb_attr_u32(m, NN_IFLA_INET6_FLAGS, 0);
    int32_t conf6[NN_DEVCONF_DISABLE_IPV6 + 1] = {0};
    mb_attr(m, NN_IFLA_INET6_CONF, conf6, sizeof(conf6));
    mb_nest_end(m, in6);
    mb_nest_end(m, spec);
    mb_end(m);
}

static void mb_addr(msgbuf *m, uint8_t family, uint8_t prefixlen, int ifindex, const void *addr, size_t alen)
{
    struct ifaddrmsg ifa = {family, prefixlen, 0, RT_SCOPE_UNIVERSE, (uint32_t)ifindex};
    mb_begin(m, RTM_NEWADDR, 0, &ifa, sizeof(ifa));
    mb_attr(m, IFA_ADDRESS, addr, alen);
    mb_end(m);
}

static void mb_route(msgbuf *m, uint8_t family, uint8_t dst_len, const void *dst, size_t dlen)
{
    struct rtmsg rtm = {family, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0};
    mb_begin(m, RTM_NEWROUTE, 0, &rtm, sizeof(rtm));
    mb_attr_u32(m, RTA_TABLE, RT_TABLE_MAIN);
    if (dst)
        mb_attr(m, RTA_DST, dst, dlen);
    mb_attr_u32(m, RTA_OIF, 2);
    mb_end(m);
}

static void dg_add(dgram *d, const msgbuf *m, int ours)
{
    if (ours)
        d->ours[d->nours++] = d->len;
    memcpy(d->b + d->len, m->b, m->len);
    d->len += NLMSG_ALIGN(m->len);
}

/* The parsers on an exact-size heap copy: ASan sees any read past the message. */
static struct nlmsghdr *mb_copy(const msgbuf *m)
{
    uint32_t l;
    memcpy(&l, m->b, sizeof(l));
    struct nlmsghdr *c = malloc(l < m->len ? m->len : l);
    memcpy(c, m->b, m->len);
    return c;
}

static int mb_parse_link(const msgbuf *m, nn_link_entry *link, int *nrows)
{
    nn_if_row rows[2];
    struct nlmsghdr *c = mb_copy(m);
    int rc = nn_nl_parse_link(c, link, rows, nrows);
    free(c);
    return rc;
}

static int mb_parse_addr(const msgbuf *m, nn_addr_row *row)
{
    struct nlmsghdr *c = mb_copy(m);
    int rc = nn_nl_parse_addr(c, NULL, row);
    free(c);
    return rc;
}

static int mb_parse_route(const msgbuf *m, nn_route_row *rows, size_t max)
{
    struct nlmsghdr *c = mb_copy(m);
    int rc = nn_nl_parse_route(c, NULL, rows, max);
    free(c);
    return rc;
}

typedef struct {
    int calls, outside, types[8];
} walk_seen;

/* Counts the messages a walk hands over, and those not inside the datagram received last. */
static int walk_cb(void *vctx, const struct nlmsghdr *nlh)
{
    walk_seen *w = vctx;
    const unsigned char *p = (const unsigned char *)nlh;
    if (!script.last || p < script.last || p + NLMSG_HDRLEN > script.last + script.lastlen ||
        nlh->nlmsg_len > (size_t)(script.last + script.lastlen - p))
        w->outside++;
    if (w->calls < 8)
        w->types[w->calls] = nlh->nlmsg_type;
    w->calls++;
    return 0;
}

static void test_malformed_parsers(void)
{
    msgbuf m;
    nn_link_entry link;
    nn_addr_row ar;
    nn_route_row rr[4];
    int n;
    static const uint8_t v4[4] = {10, 0, 0, 1}, v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};

    mb_link(&m, RTM_NEWLINK, 0, 5, 1500);
    check(mb_parse_link(&m, &link, &n) == 0 && n == 2 && link.mtu == 1500, "forged link: parses, 2 rows");
    /* truncated: nlmsg_len below the family header, or cut inside an attribute */
    msgbuf t = m;
    mb_set_len(&t, NLMSG_LENGTH(sizeof(struct ifinfomsg)) - 1);
    check(mb_parse_link(&t, &link, &n) == -1 && n == 0, "link: nlmsg_len shorter than ifinfomsg: malformed");
    t = m;
    mb_set_len(&t, (uint32_t)m.len - 2);
    check(mb_parse_link(&t, &link, &n) == -1, "link: last attribute beyond the message: malformed");
    /* rta_len beyond the message, and below the attribute header */
    size_t first = NLMSG_LENGTH(sizeof(struct ifinfomsg)); /* IFLA_MTU */
    t = m;
    unsigned short bad = (unsigned short)(m.len - first + 4);
    memcpy(t.b + first, &bad, 2);
    check(mb_parse_link(&t, &link, &n) == -1, "link: rta_len beyond the message: malformed");
    t = m;
    bad = 3;
    memcpy(t.b + first, &bad, 2);
    check(mb_parse_link(&t, &link, &n) == -1, "link: rta_len 3 (< sizeof(struct rtattr)): malformed");
    /* a 2-byte IFLA_MTU reads as no MTU; unknown attributes (and flag bits) are ignored */
    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof(ifi));
    ifi.ifi_type = ARPHRD_ETHER;
    ifi.ifi_index = 6;
    mb_begin(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
    uint16_t mtu16 = 1500;
    mb_attr(&m, IFLA_MTU, &mtu16, sizeof(mtu16));
    mb_attr_u32(&m, 0x3ff0, 7);
    size_t spec = mb_nest(&m, IFLA_AF_SPEC | NLA_F_NESTED);
    size_t in6 = mb_nest(&m, AF_INET6 | NLA_F_NESTED);
    mb_attr_u32(&m, 0x3fff, 1);
    mb_nest_end(&m, in6);
    size_t other = mb_nest(&m, 200); /* an address family nobody knows */
    mb_nest_end(&m, other);
    mb_nest_end(&m, spec);
    mb_end(&m);
    check(mb_parse_link(&m, &link, &n) == 0 && n == 1 && link.mtu == 0 && link.ifindex == 6,
          "link: 2-byte IFLA_MTU read as absent; unknown attributes and families ignored");
    /* an attribute inside AF_INET6 that overruns its nest */
    t = m;
    size_t inner = in6 + RTA_LENGTH(0);
    bad = 40;
    memcpy(t.b + inner, &bad, 2);
    check(mb_parse_link(&t, &link, &n) == -1, "link: nested attribute beyond its nest: malformed");
    t = m;
    ifi.ifi_index = 0;
    memcpy(t.b + NLMSG_HDRLEN, &ifi, sizeof(ifi));
    check(mb_parse_link(&t, &link, &n) == -1, "link: ifindex 0: malformed");

    mb_addr(&m, AF_INET, 24, 3, v4, 4);
    check(mb_parse_addr(&m, &ar) == 1 && ar.on_link_prefix_length == 24, "forged address: parses");
    mb_addr(&m, AF_INET, 33, 3, v4, 4);
    check(mb_parse_addr(&m, &ar) == -1, "address: prefix length 33 for AF_INET: malformed");
    mb_addr(&m, AF_INET6, 129, 3, v6, 16);
    check(mb_parse_addr(&m, &ar) == -1, "address: prefix length 129 for AF_INET6: malformed");
    mb_addr(&m, AF_INET6, 64, 3, v6, 4);
    check(mb_parse_addr(&m, &ar) == -1, "address: 4-byte IFA_ADDRESS for AF_INET6: malformed");
    mb_addr(&m, AF_INET, 24, 3, v4, 3);
    check(mb_parse_addr(&m, &ar) == -1, "address: 3-byte IFA_ADDRESS for AF_INET: malformed");
    mb_addr(&m, AF_INET, 24, 3, NULL, 0);
    check(mb_parse_addr(&m, &ar) == -1, "address: empty IFA_ADDRESS: malformed");
    mb_addr(&m, 17 /* AF_PACKET */, 24, 3, v4, 4);
    check(mb_parse_addr(&m, &ar) == 0, "address: unknown family ignored");
    mb_addr(&m, AF_INET, 24, 3, v4, 4);
    t = m;
    mb_set_len(&t, NLMSG_LENGTH(sizeof(struct ifaddrmsg)) - 1);
    check(mb_parse_addr(&t, &ar) == -1, "address: nlmsg_len shorter than ifaddrmsg: malformed");
    t = m;
    mb_set_len(&t, NLMSG_LENGTH(sizeof(struct ifaddrmsg)) + 6);
    check(mb_parse_addr(&t, &ar) == -1, "address: message cut inside IFA_ADDRESS: malformed");

    mb_route(&m, AF_INET, 8, v4, 4);
    check(mb_parse_route(&m, rr, 4) == 1 && rr[0].interface_index == 2, "forged route: parses");
    mb_route(&m, AF_INET, 8, v4, 3);
    check(mb_parse_route(&m, rr, 4) == -1, "route: 3-byte RTA_DST for AF_INET: malformed");
    mb_route(&m, AF_INET, 33, v4, 4);
    check(mb_parse_route(&m, rr, 4) == -1, "route: prefix length 33 for AF_INET: malformed");
    mb_route(&m, AF_INET6, 129, v6, 16);
    check(mb_parse_route(&m, rr, 4) == -1, "route: prefix length 129 for AF_INET6: malformed");
    mb_route(&m, AF_INET6, 64, v6, 8);
    check(mb_parse_route(&m, rr, 4) == -1, "route: 8-byte RTA_DST for AF_INET6: malformed");
    /* gateways and multipath */
    struct rtmsg rtm = {AF_INET, 16, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0};
    mb_begin(&m, RTM_NEWROUTE, 0, &rtm, sizeof(rtm));
    mb_attr(&m, RTA_DST, v4, 4);
    mb_attr(&m, RTA_GATEWAY, v4, 2);
    mb_end(&m);
    check(mb_parse_route(&m, rr, 4) == -1, "route: 2-byte RTA_GATEWAY: malformed");
    mb_begin(&m, RTM_NEWROUTE, 0, &rtm, sizeof(rtm));
    mb_attr(&m, RTA_DST, v4, 4);
    unsigned char via[4] = {AF_INET6, 0, 0xfe, 0x80}; /* family AF_INET6, address cut short */
    mb_attr(&m, NN_RTA_VIA, via, sizeof(via));
    mb_end(&m);
    check(mb_parse_route(&m, rr, 4) == -1, "route: RTA_VIA shorter than its family's address: malformed");
    mb_begin(&m, RTM_NEWROUTE, 0, &rtm, sizeof(rtm));
    mb_attr(&m, RTA_DST, v4, 4);
    size_t mp = mb_nest(&m, RTA_MULTIPATH);
    for (int hop = 0; hop < 3; hop++) {
        struct rtnexthop nh = {0, 0, 0, 3 + hop};
        size_t at = m.len;
        mb_put(&m, &nh, sizeof(nh));
        mb_attr(&m, RTA_GATEWAY, v4, 4);
        unsigned short l = (unsigned short)(m.len - at);
        memcpy(m.b + at, &l, sizeof(l));
    }
    mb_nest_end(&m, mp);
    mb_end(&m);
    nn_route_row one;
    check(mb_parse_route(&m, rr, 4) == 3 && rr[2].interface_index == 5 && mb_parse_route(&m, &one, 1) == 3,
          "route: 3 next hops; with room for 1 the count is still 3");
    t = m;
    unsigned short nhl = 200;
    memcpy(t.b + mp + RTA_LENGTH(0), &nhl, 2);
    check(mb_parse_route(&t, rr, 4) == -1, "route: rtnh_len beyond RTA_MULTIPATH: malformed");
    t = m;
    nhl = 4;
    memcpy(t.b + mp + RTA_LENGTH(0), &nhl, 2);
    check(mb_parse_route(&t, rr, 4) == -1, "route: rtnh_len below sizeof(struct rtnexthop): malformed");
    mb_begin(&m, RTM_NEWROUTE, 0, &rtm, sizeof(rtm));
    mb_attr(&m, RTA_DST, v4, 4);
    mb_attr_u32(&m, 0x3ff1, 9);
    uint16_t oif16 = 2;
    mb_attr(&m, RTA_OIF, &oif16, sizeof(oif16));
    mb_end(&m);
    check(mb_parse_route(&m, rr, 4) == 1 && rr[0].interface_index == 0,
          "route: unknown attribute ignored; 2-byte RTA_OIF read as absent");
}

static void test_malformed_walks(void)
{
    nn_nlsock s;
    nn_error err = {0};
    static dgram d[4];
    msgbuf m;
    walk_seen w;
    static unsigned char buf[4096];

    if (nn_nl_open(&s, NULL, 0, 0, &err) < 0) {
        check(0, "open a socket for forged replies: %s %d", err.call, err.errnum);
        return;
    }

    /* nn_nl_read. A datagram whose only message has an unaligned length, in a buffer that
     * still holds an older message further on: the walk must stop at the datagram's end
     * (NLMSG_NEXT on a size_t length wraps around and walks on into the stale bytes). */
    memset(buf, 0, sizeof(buf));
    mb_link(&m, RTM_NEWLINK, 0, 4, 1500);
    memcpy(buf + 20, m.b, m.len); /* the stale message, where the next one would start */
    memset(d, 0, sizeof(d));
    mb_begin(&m, RTM_NEWLINK, 0, "x", 1);
    mb_set_len(&m, NLMSG_HDRLEN + 1); /* 17 bytes */
    memcpy(d[0].b, m.b, 17);
    d[0].len = 17;
    memset(&w, 0, sizeof(w));
    script_set(d, 1, EAGAIN);
    int rc = nn_nl_read(&s, buf, sizeof(buf), walk_cb, &w, &err);
    script_clear();
    check(rc == 1 && w.calls == 1 && w.outside == 0,
          "read: unaligned last message: %d message(s) handed over, %d outside the datagram", w.calls, w.outside);

    /* nlmsg_len beyond the datagram, below the header; unknown and control types */
    memset(d, 0, sizeof(d));
    mb_link(&m, RTM_NEWLINK, 0, 4, 1500);
    dg_add(&d[0], &m, 0);
    mb_set_len(&m, (uint32_t)m.len + 100);
    dg_add(&d[0], &m, 0);
    mb_begin(&m, RTM_NEWLINK, 0, NULL, 0);
    mb_set_len(&m, 8);
    dg_add(&d[1], &m, 0);
    mb_link(&m, RTM_NEWLINK, 0, 4, 1500); /* not reachable after a bad length */
    dg_add(&d[1], &m, 0);
    mb_begin(&m, 0x1234, 0, "abcd", 4);
    mb_end(&m);
    dg_add(&d[2], &m, 0);
    mb_control(&m, NLMSG_NOOP, 0, 0);
    dg_add(&d[2], &m, 0);
    mb_control(&m, NLMSG_ERROR, 0, -EINVAL);
    dg_add(&d[2], &m, 0);
    mb_control(&m, NLMSG_DONE, 0, 0);
    dg_add(&d[2], &m, 0);
    mb_control(&m, NLMSG_OVERRUN, 0, 0);
    dg_add(&d[2], &m, 0);
    memset(&w, 0, sizeof(w));
    script_set(d, 3, EAGAIN);
    rc = nn_nl_read(&s, buf, sizeof(buf), walk_cb, &w, &err);
    script_clear();
    check(rc == 3 && w.calls == 2 && w.types[0] == RTM_NEWLINK && w.types[1] == 0x1234 && w.outside == 0,
          "read: message longer than its datagram and one shorter than a header dropped, unknown type handed "
          "over, control messages not (%d handed over)",
          w.calls);

    /* nn_nl_dump. Same unaligned end, in its own buffer: the first datagram's message holds,
     * past offset 20, a reply and an NLMSG_DONE; a walk that overruns the second datagram
     * (17 bytes) takes them for new ones and ends the dump before the real NLMSG_DONE. */
    memset(d, 0, sizeof(d));
    mb_begin(&m, RTM_NEWLINK, NLM_F_MULTI, NULL, 0);
    mb_put(&m, "\0\0\0\0", 4);
    msgbuf inner;
    mb_link(&inner, RTM_NEWLINK, NLM_F_MULTI, 9, 1500);
    mb_set_len(&inner, 20);
    mb_put(&m, inner.b, 20);
    mb_control(&inner, NLMSG_DONE, NLM_F_MULTI, 0);
    mb_put(&m, inner.b, inner.len);
    mb_put(&m, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    mb_end(&m);
    dg_add(&d[0], &m, 1);
    d[0].ours[d[0].nours++] = 20;
    d[0].ours[d[0].nours++] = 40;
    mb_begin(&m, RTM_NEWLINK, NLM_F_MULTI, "x", 1);
    mb_set_len(&m, 17);
    dg_add(&d[1], &m, 1);
    d[1].len = 17;
    mb_control(&m, NLMSG_DONE, NLM_F_MULTI, 0);
    dg_add(&d[2], &m, 1);
    memset(&w, 0, sizeof(w));
    script_set(d, 3, EIO);
    rc = nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, walk_cb, NULL, &w, &err);
    size_t consumed = script.next;
    script_clear();
    check(rc == 0 && w.calls == 2 && consumed == 3,
          "dump: unaligned last message of a part: %d replies, %zu of 3 datagrams read", w.calls, consumed);

    /* NLM_F_DUMP_INTR: the replies from the flagged one on are not handed over, the dump is
     * drained to its NLMSG_DONE and reports NN_DUMP_INTR */
    memset(d, 0, sizeof(d));
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 4, 1500);
    dg_add(&d[0], &m, 1);
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI | NLM_F_DUMP_INTR, 5, 1500);
    dg_add(&d[0], &m, 1);
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 6, 1500);
    dg_add(&d[1], &m, 1);
    mb_control(&m, NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 0);
    dg_add(&d[1], &m, 1);
    memset(&w, 0, sizeof(w));
    script_set(d, 2, EIO);
    rc = nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, walk_cb, NULL, &w, &err);
    consumed = script.next;
    script_clear();
    check(rc == NN_DUMP_INTR && w.calls == 1 && consumed == 2,
          "dump: NLM_F_DUMP_INTR on a part: NN_DUMP_INTR (%d), %d reply before it, drained", rc, w.calls);
    /* the flag on NLMSG_DONE alone */
    memset(d, 0, sizeof(d));
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 4, 1500);
    dg_add(&d[0], &m, 1);
    mb_control(&m, NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 0);
    dg_add(&d[0], &m, 1);
    memset(&w, 0, sizeof(w));
    script_set(d, 1, EIO);
    rc = nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, walk_cb, NULL, &w, &err);
    script_clear();
    check(rc == NN_DUMP_INTR && w.calls == 1, "dump: NLM_F_DUMP_INTR on NLMSG_DONE only: NN_DUMP_INTR (%d)", rc);

    /* errors: NLMSG_ERROR, NLMSG_DONE with an error, an error out of range, no end at all;
     * unknown types are handed over (and skipped by the link dump) */
    static const struct {
        uint16_t type;
        int32_t error;
        int errnum;
    } errs[] = {{NLMSG_ERROR, -EOPNOTSUPP, EOPNOTSUPP}, {NLMSG_DONE, -EBUSY, EBUSY},
                {NLMSG_ERROR, 5, EPROTO},               {NLMSG_ERROR, -100000, EPROTO}};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        memset(d, 0, sizeof(d));
        mb_control(&m, errs[i].type, 0, errs[i].error);
        dg_add(&d[0], &m, 1);
        script_set(d, 1, EIO);
        memset(&err, 0, sizeof(err));
        rc = nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, walk_cb, NULL, &w, &err);
        script_clear();
        check(rc == -1 && err.errnum == errs[i].errnum && err.call && !strcmp(err.call, "rtnetlink dump"),
              "dump: %s %d: error errno %d", errs[i].type == NLMSG_ERROR ? "NLMSG_ERROR" : "NLMSG_DONE",
              (int)errs[i].error, err.errnum);
    }
    memset(d, 0, sizeof(d));
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 4, 1500);
    dg_add(&d[0], &m, 1);
    script_set(d, 1, EIO);
    rc = nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, walk_cb, NULL, &w, &err);
    script_clear();
    check(rc == -1 && err.errnum == EIO, "dump: replies without NLMSG_DONE, then a receive error: fails");

    nn_map links;
    nn_map_init(&links, sizeof(uint32_t), sizeof(nn_link_entry));
    memset(d, 0, sizeof(d));
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 4, 1500);
    dg_add(&d[0], &m, 1);
    mb_begin(&m, 0x77, NLM_F_MULTI, "abcdefgh", 8);
    mb_end(&m);
    dg_add(&d[0], &m, 1);
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 0, 1500); /* malformed: ifindex 0 */
    dg_add(&d[0], &m, 1);
    mb_control(&m, NLMSG_DONE, NLM_F_MULTI, 0);
    dg_add(&d[0], &m, 1);
    script_set(d, 1, EIO);
    rc = nn_nl_dump_links(&s, &links, &err);
    script_clear();
    uint32_t four = 4;
    check(rc == 0 && links.count == 1 && nn_map_get(&links, &four),
          "dump_links: an unknown message type and a malformed link skipped (%zu links)", links.count);
    nn_map_free(&links);
    nn_nl_close(&s);
}

/* The callers of an interrupted dump start again: the table holds only the last attempt. */
static void test_interrupted_tables(void)
{
    static dgram d[8];
    msgbuf m;
    nn_table t;
    nn_error err = {0};
    static const uint8_t v4a[4] = {10, 0, 0, 1}, v4b[4] = {10, 0, 0, 2};

    memset(d, 0, sizeof(d));
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 4, 1500); /* attempt 1: interrupted */
    dg_add(&d[0], &m, 1);
    mb_control(&m, NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 0);
    dg_add(&d[0], &m, 1);
    mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 5, 1500); /* attempt 2 */
    dg_add(&d[1], &m, 1);
    mb_control(&m, NLMSG_DONE, NLM_F_MULTI, 0);
    dg_add(&d[1], &m, 1);
    script_set(d, 2, EIO);
    int rc = nn_nl_get_table(NN_KIND_INTERFACE, AF_UNSPEC, &t, &err);
    script_clear();
    const nn_if_row *ir = t.rows;
    check(rc == 0 && t.count == 2 && ir[0].interface_index == 5 && ir[1].interface_index == 5,
          "interface table: an interrupted dump is done again (%zu rows, from the second)", t.count);
    nn_table_free(&t);

    /* the address dump interrupted: links and addresses again */
    memset(d, 0, sizeof(d));
    for (int attempt = 0; attempt < 2; attempt++) {
        mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 4, 1500);
        dg_add(&d[2 * attempt], &m, 1);
        mb_control(&m, NLMSG_DONE, NLM_F_MULTI, 0);
        dg_add(&d[2 * attempt], &m, 1);
        mb_addr(&m, AF_INET, 24, 4, attempt ? v4b : v4a, 4);
        dg_add(&d[2 * attempt + 1], &m, 1);
        mb_control(&m, NLMSG_DONE, NLM_F_MULTI | (attempt ? 0 : NLM_F_DUMP_INTR), 0);
        dg_add(&d[2 * attempt + 1], &m, 1);
    }
    script_set(d, 4, EIO);
    rc = nn_nl_get_table(NN_KIND_ADDRESS, AF_UNSPEC, &t, &err);
    size_t consumed = script.next;
    script_clear();
    const nn_addr_row *ar = t.rows;
    check(rc == 0 && t.count == 1 && ar[0].address.addr[3] == 2 && consumed == 4,
          "address table: an interrupted address dump is done again with the links (%zu rows)", t.count);
    nn_table_free(&t);

    /* interrupted every time: the last attempt is returned as it is, after the retries */
    memset(d, 0, sizeof(d));
    for (int i = 0; i < 8; i++) {
        mb_link(&m, RTM_NEWLINK, NLM_F_MULTI, 4, 1500);
        dg_add(&d[i], &m, 1);
        mb_control(&m, NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 0);
        dg_add(&d[i], &m, 1);
    }
    script_set(d, 8, EIO);
    rc = nn_nl_get_table(NN_KIND_INTERFACE, AF_UNSPEC, &t, &err);
    consumed = script.next;
    script_clear();
    check(rc == 0 && consumed == NN_DUMP_RETRIES + 1,
          "interface table: interrupted every time: %zu attempts, then the last kept", consumed);
    nn_table_free(&t);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("private netns: %s\n", in_private_netns() ? "yes" : "no");
    test_map();
    run("ip route add 10.70.0.0/16 via 10.1.2.8 metric 9; ip route add 10.70.0.0/16 via 10.1.2.8 metric 5");
    if (test_tables() == 0)
        test_entries();
    test_notifications();
    test_dump_recovery();
    test_wait_and_wake();
    test_extras();
    test_robustness();
    test_malformed_parsers();
    test_malformed_walks();
    test_interrupted_tables();
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures != 0;
}
