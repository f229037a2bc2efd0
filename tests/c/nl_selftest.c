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

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("private netns: %s\n", in_private_netns() ? "yes" : "no");
    test_map();
    run("ip route add 10.70.0.0/16 via 10.1.2.8 metric 9; ip route add 10.70.0.0/16 via 10.1.2.8 metric 5");
    if (test_tables() == 0)
        test_entries();
    test_notifications();
    test_extras();
    test_robustness();
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures != 0;
}
