/*
 * nn_netlink.c - rtnetlink sockets, parsers and the table calls of the Linux backend
 * (see nn_netlink.h and the "What a Linux row is" section of docs/api.md).
 *
 * Pure C, no Python. Every length in a message is checked before it is read and every
 * read of message data goes through memcpy, so a truncated, misaligned or hostile
 * message can make a parser return -1 but never read out of bounds.
 *
 * Constants newer than the oldest kernel headers we build against (manylinux) are
 * spelled out below with their ABI values instead of being taken from the headers.
 */
#ifndef _WIN32

#include "nn_netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/if_link.h>

/* ---------------------------------------------------------------- constants */

#ifndef SOL_NETLINK
#  define SOL_NETLINK 270
#endif
#ifndef NETLINK_ADD_MEMBERSHIP
#  define NETLINK_ADD_MEMBERSHIP 1
#endif
#ifndef NETLINK_EXT_ACK
#  define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#  define NETLINK_GET_STRICT_CHK 12
#endif
#ifndef NLM_F_DUMP_INTR
#  define NLM_F_DUMP_INTR 0x10
#endif
#ifndef NLA_TYPE_MASK
#  define NLA_TYPE_MASK 0x3fff /* strips NLA_F_NESTED and NLA_F_NET_BYTEORDER */
#endif
#ifndef RTEXT_FILTER_SKIP_STATS
#  define RTEXT_FILTER_SKIP_STATS (1 << 3)
#endif
#ifndef ARPHRD_IP6GRE
#  define ARPHRD_IP6GRE 823
#endif
#ifndef IFA_F_MANAGETEMPADDR
#  define IFA_F_MANAGETEMPADDR 0x100
#endif
#ifndef IFA_F_STABLE_PRIVACY
#  define IFA_F_STABLE_PRIVACY 0x800
#endif
#ifndef RTPROT_BGP
#  define RTPROT_BGP 186
#  define RTPROT_ISIS 187
#  define RTPROT_OSPF 188
#  define RTPROT_RIP 189
#  define RTPROT_EIGRP 192
#endif
#ifndef IFAPROT_KERNEL_LO
#  define IFAPROT_KERNEL_LO 1
#  define IFAPROT_KERNEL_RA 2
#  define IFAPROT_KERNEL_LL 3
#endif

/* enum members of <linux/if_addr.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/ipv6.h> */
#define NN_IFA_FLAGS 8
#define NN_IFA_PROTO 11
#define NN_IFA_MAX 11
#define NN_RTA_VIA 18
#define NN_RTA_EXPIRES 23
#define NN_RTA_MAX 23
#define NN_IFLA_MAX IFLA_AF_SPEC
#define NN_IFLA_INET6_FLAGS 1
#define NN_IFLA_INET6_CONF 2
#define NN_IFLA_INET6_CACHEINFO 5
#define NN_IFLA_INET6_TOKEN 7
#define NN_IFLA_INET6_ADDR_GEN_MODE 8
#define NN_IFLA_INET6_MAX 8
#define NN_IN6_ADDR_GEN_MODE_NONE 1
#define NN_IPV4_DEVCONF_FORWARDING 1 /* 1-based: index 0 of IFLA_INET_CONF */
#define NN_DEVCONF_FORWARDING 0
#define NN_DEVCONF_MTU6 2
#define NN_DEVCONF_ACCEPT_RA 3
#define NN_DEVCONF_DAD_TRANSMITS 6
#define NN_DEVCONF_DISABLE_IPV6 26
/* struct inet6_dev flags, kernel-internal (include/net/if_inet6.h) but stable ABI */
#define NN_IF_RA_MANAGED 0x40
#define NN_IF_RA_OTHERCONF 0x80

/* NL_* enumerations of netioapi */
enum { NN_DAD_TENTATIVE = 1, NN_DAD_DUPLICATE = 2, NN_DAD_DEPRECATED = 3, NN_DAD_PREFERRED = 4 };
enum { NN_PREFIX_OTHER = 0, NN_PREFIX_MANUAL = 1, NN_PREFIX_WELL_KNOWN = 2, NN_PREFIX_RA = 4 };
enum {
    NN_SUFFIX_OTHER = 0,
    NN_SUFFIX_MANUAL = 1,
    NN_SUFFIX_WELL_KNOWN = 2,
    NN_SUFFIX_LINK_LAYER = 4,
    NN_SUFFIX_RANDOM = 5
};
enum {
    NN_PROTO_OTHER = 1,
    NN_PROTO_LOCAL = 2,
    NN_PROTO_NETMGMT = 3,
    NN_PROTO_ICMP = 4,
    NN_PROTO_RIP = 8,
    NN_PROTO_ISIS = 9,
    NN_PROTO_OSPF = 13,
    NN_PROTO_BGP = 14,
    NN_PROTO_EIGRP = 16,
    NN_PROTO_DHCP = 19
};
enum { NN_ORIGIN_MANUAL = 0, NN_ORIGIN_WELL_KNOWN = 1, NN_ORIGIN_DHCP = 2, NN_ORIGIN_RA = 3 };
enum { NN_LL_ALWAYS_OFF = 0, NN_LL_ALWAYS_ON = 2 };

#define NN_INFINITE 0xffffffffu
#define NN_FILETIME_UNIX_EPOCH 116444736000000000LL /* 1970-01-01 in FILETIME */
#define NN_DUMP_TIMEOUT_MS 30000
#define NN_DUMP_RETRIES 5
#define NN_DUMP_RESENDS 8 /* a dump request the kernel did not take is sent again */
#ifndef NN_DUMP_BUF_MAX /* the fuzz build makes it small: under ASan a 4 MiB malloc costs a millisecond */
#  define NN_DUMP_BUF_MAX (4u << 20)
#endif
/* callback result for out of memory: never NN_DUMP_INTR */
#define NN_CB_NOMEM 2

/* ---------------------------------------------------------------- errors */

int nn_error_from_errno(nn_error *err, int errnum, const char *call)
{
    uint32_t w;
    switch (errnum) {
    case EINVAL:
        w = NN_ERROR_INVALID_PARAMETER;
        break;
    case ENOENT:
    case ENODEV:
    case ESRCH:
    case EADDRNOTAVAIL:
        w = NN_ERROR_NOT_FOUND;
        break;
    case EPERM:
    case EACCES:
        w = NN_ERROR_ACCESS_DENIED;
        break;
    case ENOMEM:
    case ENOBUFS:
        w = NN_ERROR_NOT_ENOUGH_MEMORY;
        break;
    case EPROTONOSUPPORT:
    case EAFNOSUPPORT:
    case EOPNOTSUPP:
        w = NN_ERROR_NOT_SUPPORTED;
        break;
    default:
        w = NN_ERROR_GEN_FAILURE;
        break;
    }
    if (err) {
        err->winerror = w;
        err->errnum = errnum;
        err->call = call;
        err->detail = NULL;
    }
    return -1;
}

/* ---------------------------------------------------------------- attributes */

/* Indexes the attributes in data[0..len) by type (flags stripped) into tb[0..max];
 * later duplicates win, types above max are ignored. -1 if an attribute overruns. */
static int nn_attrs(const unsigned char *data, size_t len, const struct rtattr **tb, unsigned max)
{
    memset(tb, 0, (max + 1) * sizeof(*tb));
    while (len >= sizeof(struct rtattr)) {
        struct rtattr rta;
        memcpy(&rta, data, sizeof(rta));
        if (rta.rta_len < sizeof(rta) || rta.rta_len > len)
            return -1;
        unsigned type = rta.rta_type & NLA_TYPE_MASK;
        if (type <= max)
            tb[type] = (const struct rtattr *)(const void *)data;
        size_t step = RTA_ALIGN(rta.rta_len);
        if (step >= len)
            break;
        data += step;
        len -= step;
    }
    return 0;
}

static size_t nn_rta_len(const struct rtattr *rta)
{
    uint16_t l;
    memcpy(&l, &rta->rta_len, sizeof(l));
    return l - RTA_LENGTH(0);
}

static const unsigned char *nn_rta_data(const struct rtattr *rta)
{
    return (const unsigned char *)rta + RTA_LENGTH(0);
}

/* Copies exactly n bytes of the attribute's payload; -1 if absent or shorter. */
static int nn_rta_get(const struct rtattr *rta, void *out, size_t n)
{
    if (!rta || nn_rta_len(rta) < n)
        return -1;
    memcpy(out, nn_rta_data(rta), n);
    return 0;
}

static uint32_t nn_rta_u32(const struct rtattr *rta, uint32_t dflt)
{
    uint32_t v;
    return nn_rta_get(rta, &v, sizeof(v)) == 0 ? v : dflt;
}

/* The fixed header of a message (copied out) and where its attributes start. */
static int nn_msg_split(const struct nlmsghdr *nlh, void *hdr, size_t hdrlen, const unsigned char **attrs,
                        size_t *attrlen)
{
    uint32_t total;
    memcpy(&total, &nlh->nlmsg_len, sizeof(total));
    if (total < NLMSG_LENGTH(hdrlen))
        return -1;
    const unsigned char *p = NLMSG_DATA(nlh);
    memcpy(hdr, p, hdrlen);
    size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);
    *attrs = p + NLMSG_ALIGN(hdrlen);
    *attrlen = total > off ? total - off : 0;
    return 0;
}

/* NLMSG_NEXT for a size_t length. NLMSG_NEXT subtracts the aligned length of the message,
 * which wraps around when the last message of a datagram has an unaligned nlmsg_len:
 * NLMSG_OK then accepts what lies past the datagram in the buffer (stale messages). */
static const struct nlmsghdr *nn_nlmsg_next(const struct nlmsghdr *nlh, size_t *len)
{
    size_t step = NLMSG_ALIGN(nlh->nlmsg_len);
    if (step >= *len) {
        *len = 0; /* NLMSG_OK fails before it reads nlh */
        return nlh;
    }
    *len -= step;
    return (const struct nlmsghdr *)(const void *)((const unsigned char *)nlh + step);
}

/* ---------------------------------------------------------------- links and LUIDs */

uint16_t nn_iftype_from_arphrd(uint16_t arphrd)
{
    switch (arphrd) {
    case ARPHRD_ETHER:
        return 6;
    case ARPHRD_LOOPBACK:
        return 24;
    case ARPHRD_IEEE80211:
    case ARPHRD_IEEE80211_PRISM:
    case ARPHRD_IEEE80211_RADIOTAP:
        return 71;
    case ARPHRD_PPP:
        return 23;
    case ARPHRD_TUNNEL:
    case ARPHRD_TUNNEL6:
    case ARPHRD_SIT:
    case ARPHRD_IPGRE:
    case ARPHRD_IP6GRE:
        return 131;
    case ARPHRD_NONE:
        return 53;
    case ARPHRD_INFINIBAND:
        return 199;
    default:
        return 1;
    }
}

uint64_t nn_luid_make(uint32_t ifindex, uint16_t iftype)
{
    return ((uint64_t)iftype << 48) | ((uint64_t)(ifindex & 0xffffffu) << 24);
}

uint32_t nn_luid_index(uint64_t luid)
{
    return (uint32_t)((luid >> 24) & 0xffffffu);
}

uint64_t nn_luid_for_index(const nn_map *links, uint32_t ifindex)
{
    if (ifindex == 0)
        return 0; /* no interface (blackhole routes): no LUID */
    const nn_link_entry *e = links ? nn_map_get(links, &ifindex) : NULL;
    return nn_luid_make(ifindex, e ? e->iftype : 1);
}

static int nn_is_v6_link_local(const uint8_t *a)
{
    return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}

static size_t nn_family_addr_len(int family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/* ---------------------------------------------------------------- link parser */

typedef struct {
    int present;
    uint32_t conf[NN_IPV4_DEVCONF_FORWARDING]; /* only the members we read */
    size_t nconf;
} nn_inet_info;

typedef struct {
    int present;
    uint32_t flags;
    int32_t conf[NN_DEVCONF_DISABLE_IPV6 + 1];
    size_t nconf;
    int has_cacheinfo;
    struct ifla_cacheinfo ci;
    uint8_t token[16];
    int addr_gen_mode; /* -1 when absent */
} nn_inet6_info;

static int nn_parse_af_inet(const struct rtattr *nest, nn_inet_info *v4)
{
    const struct rtattr *tb[2];
    if (nn_attrs(nn_rta_data(nest), nn_rta_len(nest), tb, 1) < 0)
        return -1;
    v4->present = 1;
    if (tb[1]) { /* IFLA_INET_CONF: u32 ipv4_devconf[], entry i is IPV4_DEVCONF_* i + 1 */
        size_t n = nn_rta_len(tb[1]) / 4;
        v4->nconf = n < NN_IPV4_DEVCONF_FORWARDING ? n : NN_IPV4_DEVCONF_FORWARDING;
        memcpy(v4->conf, nn_rta_data(tb[1]), v4->nconf * 4);
    }
    return 0;
}

static int nn_parse_af_inet6(const struct rtattr *nest, nn_inet6_info *v6)
{
    const struct rtattr *tb[NN_IFLA_INET6_MAX + 1];
    if (nn_attrs(nn_rta_data(nest), nn_rta_len(nest), tb, NN_IFLA_INET6_MAX) < 0)
        return -1;
    v6->present = 1;
    v6->flags = nn_rta_u32(tb[NN_IFLA_INET6_FLAGS], 0);
    if (tb[NN_IFLA_INET6_CONF]) { /* s32 devconf[DEVCONF_MAX], indexed by DEVCONF_* */
        size_t n = nn_rta_len(tb[NN_IFLA_INET6_CONF]) / 4;
        size_t cap = sizeof(v6->conf) / sizeof(v6->conf[0]);
        v6->nconf = n < cap ? n : cap;
        memcpy(v6->conf, nn_rta_data(tb[NN_IFLA_INET6_CONF]), v6->nconf * 4);
    }
    v6->has_cacheinfo = nn_rta_get(tb[NN_IFLA_INET6_CACHEINFO], &v6->ci, sizeof(v6->ci)) == 0;
    if (nn_rta_get(tb[NN_IFLA_INET6_TOKEN], v6->token, 16) < 0)
        memset(v6->token, 0, 16);
    uint8_t mode;
    v6->addr_gen_mode = nn_rta_get(tb[NN_IFLA_INET6_ADDR_GEN_MODE], &mode, 1) == 0 ? mode : -1;
    return 0;
}

static int32_t nn_v6_conf(const nn_inet6_info *v6, size_t i, int32_t dflt)
{
    return i < v6->nconf ? v6->conf[i] : dflt;
}

static void nn_if_row_common(nn_if_row *row, uint16_t family, const struct ifinfomsg *ifi, uint64_t luid)
{
    memset(row, 0, sizeof(*row));
    int loopback = (ifi->ifi_flags & IFF_LOOPBACK) || ifi->ifi_type == ARPHRD_LOOPBACK;
    int nd = !(ifi->ifi_flags & IFF_NOARP) && !loopback;
    row->family = family;
    row->interface_index = (uint32_t)ifi->ifi_index;
    row->interface_luid = luid;
    row->weak_host_send = 1;
    row->weak_host_receive = 1;
    row->use_neighbor_unreachability_detection = (uint8_t)nd;
    row->supports_neighbor_discovery = (uint8_t)nd;
    row->supports_router_discovery = (uint8_t)(family == AF_INET6 && nd);
    row->connected = (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_RUNNING);
    row->zone_indices[1] = (uint32_t)ifi->ifi_index; /* ScopeLevelInterface */
    row->zone_indices[2] = (uint32_t)ifi->ifi_index; /* ScopeLevelLink */
}

int nn_nl_parse_link(const struct nlmsghdr *nlh, nn_link_entry *link, nn_if_row rows[2], int *nrows)
{
    struct ifinfomsg ifi;
    const unsigned char *attrs;
    size_t attrlen;
    const struct rtattr *tb[NN_IFLA_MAX + 1];

    memset(link, 0, sizeof(*link));
    *nrows = 0;
    if (nn_msg_split(nlh, &ifi, sizeof(ifi), &attrs, &attrlen) < 0)
        return -1;
    /* AF_BRIDGE port messages share the type but describe something else */
    if (ifi.ifi_family != AF_UNSPEC)
        return 1;
    if (ifi.ifi_index <= 0 || nn_attrs(attrs, attrlen, tb, NN_IFLA_MAX) < 0)
        return -1;
    /* Full link messages always carry IFLA_AF_SPEC (possibly empty); partial ones
     * (wireless events) do not and say nothing about the families. */
    if (!tb[IFLA_AF_SPEC])
        return 1;

    nn_inet_info v4;
    nn_inet6_info v6;
    memset(&v4, 0, sizeof(v4));
    memset(&v6, 0, sizeof(v6));
    v6.addr_gen_mode = -1;
    const struct rtattr *spec = tb[IFLA_AF_SPEC];
    const unsigned char *p = nn_rta_data(spec);
    size_t len = nn_rta_len(spec);
    while (len >= sizeof(struct rtattr)) { /* a list keyed by AF_*: not nn_attrs */
        struct rtattr rta;
        memcpy(&rta, p, sizeof(rta));
        if (rta.rta_len < sizeof(rta) || rta.rta_len > len)
            return -1;
        const struct rtattr *nest = (const struct rtattr *)(const void *)p;
        unsigned af = rta.rta_type & NLA_TYPE_MASK;
        if (af == AF_INET && nn_parse_af_inet(nest, &v4) < 0)
            return -1;
        if (af == AF_INET6 && nn_parse_af_inet6(nest, &v6) < 0)
            return -1;
        size_t step = RTA_ALIGN(rta.rta_len);
        if (step >= len)
            break;
        p += step;
        len -= step;
    }

    link->ifindex = (uint32_t)ifi.ifi_index;
    link->arphrd = ifi.ifi_type;
    link->iftype = nn_iftype_from_arphrd(ifi.ifi_type);
    uint64_t luid = nn_luid_make(link->ifindex, link->iftype);
    uint32_t mtu = nn_rta_u32(tb[IFLA_MTU], 0);
    link->mtu = mtu;

    if (v4.present) {
        nn_if_row *r = &rows[(*nrows)++];
        nn_if_row_common(r, AF_INET, &ifi, luid);
        r->forwarding_enabled = v4.nconf >= NN_IPV4_DEVCONF_FORWARDING &&
                                v4.conf[NN_IPV4_DEVCONF_FORWARDING - 1] != 0;
        r->link_local_address_behavior = NN_LL_ALWAYS_OFF;
        r->nl_mtu = mtu;
    }
    /* A disabled IPv6 keeps its inet6_dev (and so its AF_SPEC entry) but runs nothing.
     * Below the IPv6 minimum MTU the kernel tears IPv6 down, yet the link message of
     * that MTU change still carries the old AF_INET6 entry: apply the rule here. */
    if (v6.present && nn_v6_conf(&v6, NN_DEVCONF_DISABLE_IPV6, 0) == 0 && (mtu == 0 || mtu >= NN_IPV6_MIN_MTU)) {
        nn_if_row *r = &rows[(*nrows)++];
        nn_if_row_common(r, AF_INET6, &ifi, luid);
        int32_t fwd = nn_v6_conf(&v6, NN_DEVCONF_FORWARDING, 0);
        int32_t accept_ra = nn_v6_conf(&v6, NN_DEVCONF_ACCEPT_RA, 0);
        int32_t mtu6 = nn_v6_conf(&v6, NN_DEVCONF_MTU6, 0);
        int32_t dad = nn_v6_conf(&v6, NN_DEVCONF_DAD_TRANSMITS, 0);
        r->forwarding_enabled = fwd != 0;
        /* the kernel's ipv6_accept_ra(): 1 means "unless forwarding", 2 "always";
         * without neighbour discovery (loopback, NOARP) no advertisement arrives */
        r->router_discovery_behavior =
            r->supports_router_discovery && (accept_ra >= 2 || (accept_ra == 1 && fwd == 0));
        r->managed_address_configuration_supported = (v6.flags & NN_IF_RA_MANAGED) != 0;
        r->other_stateful_configuration_supported = (v6.flags & NN_IF_RA_OTHERCONF) != 0;
        r->link_local_address_behavior =
            v6.addr_gen_mode == NN_IN6_ADDR_GEN_MODE_NONE ? NN_LL_ALWAYS_OFF : NN_LL_ALWAYS_ON;
        r->dad_transmits = dad > 0 ? (uint32_t)dad : 0;
        /* The link message of an MTU change is sent before IPv6 copies the new MTU to
         * mtu6, which is never above the link MTU: the minimum is right for decreases. */
        r->nl_mtu = mtu6 > 0 && (!mtu || (uint32_t)mtu6 < mtu) ? (uint32_t)mtu6 : mtu;
        if (v6.has_cacheinfo) {
            /* reachable_time is left 0: the kernel re-draws it at random every few
             * minutes without a message, so it would make rows differ for nothing */
            r->max_reassembly_size = v6.ci.max_reasm_len;
            r->retransmit_time = v6.ci.retrans_time;
        }
        uint64_t id = 0;
        for (int i = 8; i < 16; i++)
            id = id << 8 | v6.token[i];
        r->interface_identifier = id;
    }
    return 0;
}

/* ---------------------------------------------------------------- address parser */

/* FILETIME of CLOCK_MONOTONIC's zero, which is where the kernel's cstamp counts from.
 * Cached so that two parses of one message give byte-identical rows (the rows are
 * compared with memcmp); refreshed only when the clocks moved apart by more than a
 * second (clock step, suspend), not for the jitter of reading two clocks. Atomics,
 * not a mutex: a fork() while another thread held a mutex would hang the child. */
static int64_t nn_boot_filetime(void)
{
    static int64_t cached;
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    int64_t now = ((int64_t)rt.tv_sec - (int64_t)mono.tv_sec) * 10000000 +
                  ((int64_t)rt.tv_nsec - (int64_t)mono.tv_nsec) / 100 + NN_FILETIME_UNIX_EPOCH;
    int64_t old = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    int64_t diff = now - old;
    if (old != 0 && diff <= 10000000 && diff >= -10000000)
        return old;
    __atomic_store_n(&cached, now, __ATOMIC_RELAXED);
    return now;
}

static int nn_link_is_loopback(const nn_map *links, uint32_t ifindex)
{
    const nn_link_entry *e = links ? nn_map_get(links, &ifindex) : NULL;
    return e && e->arphrd == ARPHRD_LOOPBACK;
}

static void nn_addr_origins(nn_addr_row *row, int family, uint32_t flags, uint8_t proto, int loopback)
{
    const uint8_t *a = row->address.addr;
    int permanent = (flags & IFA_F_PERMANENT) != 0;
    /* IFA_F_TEMPORARY is IFA_F_SECONDARY's bit: it means "temporary" for IPv6 only */
    int v6 = family == AF_INET6;
    int random = v6 && (flags & (IFA_F_TEMPORARY | IFA_F_STABLE_PRIVACY));
    int prefix, suffix;

    if (loopback || proto == IFAPROT_KERNEL_LO) {
        prefix = NN_PREFIX_WELL_KNOWN;
        suffix = NN_SUFFIX_WELL_KNOWN;
    } else if (proto == IFAPROT_KERNEL_LL || (proto == 0 && v6 && !permanent && nn_is_v6_link_local(a))) {
        prefix = NN_PREFIX_WELL_KNOWN;
        suffix = random ? NN_SUFFIX_RANDOM : NN_SUFFIX_LINK_LAYER;
    } else if (proto == IFAPROT_KERNEL_RA ||
               /* kernels before IFA_PROTO: SLAAC addresses carry these flags */
               (proto == 0 && v6 && !permanent &&
                (flags & (IFA_F_TEMPORARY | IFA_F_MANAGETEMPADDR | IFA_F_STABLE_PRIVACY)))) {
        prefix = NN_PREFIX_RA;
        suffix = random ? NN_SUFFIX_RANDOM : NN_SUFFIX_LINK_LAYER;
    } else if (permanent) {
        prefix = NN_PREFIX_MANUAL;
        suffix = NN_SUFFIX_MANUAL;
    } else {
        prefix = NN_PREFIX_OTHER;
        suffix = NN_SUFFIX_OTHER;
    }
    row->prefix_origin = prefix;
    row->suffix_origin = suffix;
}

int nn_nl_parse_addr(const struct nlmsghdr *nlh, const nn_map *links, nn_addr_row *row)
{
    struct ifaddrmsg ifa;
    const unsigned char *attrs;
    size_t attrlen;
    const struct rtattr *tb[NN_IFA_MAX + 1];

    memset(row, 0, sizeof(*row));
    if (nn_msg_split(nlh, &ifa, sizeof(ifa), &attrs, &attrlen) < 0)
        return -1;
    size_t alen = nn_family_addr_len(ifa.ifa_family);
    if (alen == 0)
        return 0;
    if (ifa.ifa_prefixlen > alen * 8 || ifa.ifa_index == 0 || nn_attrs(attrs, attrlen, tb, NN_IFA_MAX) < 0)
        return -1;
    /* IFA_LOCAL is the local end of a point-to-point address; IFA_ADDRESS the peer */
    const struct rtattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
    if (nn_rta_get(a, row->address.addr, alen) < 0)
        return -1;

    uint32_t ifindex = ifa.ifa_index;
    uint32_t flags = nn_rta_u32(tb[NN_IFA_FLAGS], ifa.ifa_flags);
    uint8_t proto = 0;
    nn_rta_get(tb[NN_IFA_PROTO], &proto, 1);
    const uint8_t *ip = row->address.addr;
    static const uint8_t v6_loopback[16] = {[15] = 1};
    int loopback = nn_link_is_loopback(links, ifindex) || (alen == 4 && ip[0] == 127) ||
                   (alen == 16 && memcmp(ip, v6_loopback, 16) == 0);

    row->address.family = ifa.ifa_family;
    if (alen == 16 && nn_is_v6_link_local(ip)) {
        row->address.scope_id = ifindex;
        row->scope_id = ifindex;
    }
    row->interface_index = ifindex;
    row->interface_luid = nn_luid_for_index(links, ifindex);
    row->on_link_prefix_length = ifa.ifa_prefixlen;
    nn_addr_origins(row, ifa.ifa_family, flags, proto, loopback);
    /* a failed DAD leaves IFA_F_TENTATIVE set too */
    if (flags & IFA_F_DADFAILED)
        row->dad_state = NN_DAD_DUPLICATE;
    else if (flags & IFA_F_TENTATIVE)
        row->dad_state = NN_DAD_TENTATIVE;
    else if (flags & IFA_F_DEPRECATED)
        row->dad_state = NN_DAD_DEPRECATED;
    else
        row->dad_state = NN_DAD_PREFERRED;

    struct ifa_cacheinfo ci;
    if (nn_rta_get(tb[IFA_CACHEINFO], &ci, sizeof(ci)) == 0) {
        row->valid_lifetime = ci.ifa_valid;
        row->preferred_lifetime = ci.ifa_prefered;
        row->creation_time_stamp = nn_boot_filetime() + (int64_t)ci.cstamp * 100000; /* 10 ms units */
    } else {
        row->valid_lifetime = NN_INFINITE;
        row->preferred_lifetime = NN_INFINITE;
    }
    return 1;
}

/* ---------------------------------------------------------------- route parser */

static void nn_route_protocol(nn_route_row *row, uint8_t proto)
{
    int p = NN_PROTO_OTHER, o = NN_ORIGIN_MANUAL;
    switch (proto) {
    case RTPROT_KERNEL:
        p = NN_PROTO_LOCAL;
        o = NN_ORIGIN_WELL_KNOWN;
        break;
    case RTPROT_BOOT:
    case RTPROT_STATIC:
        p = NN_PROTO_NETMGMT;
        break;
    case RTPROT_REDIRECT:
        p = NN_PROTO_ICMP;
        break;
    case RTPROT_DHCP:
        p = NN_PROTO_DHCP;
        o = NN_ORIGIN_DHCP;
        break;
    case RTPROT_RA:
        o = NN_ORIGIN_RA;
        break;
    case RTPROT_BGP:
        p = NN_PROTO_BGP;
        break;
    case RTPROT_ISIS:
        p = NN_PROTO_ISIS;
        break;
    case RTPROT_OSPF:
        p = NN_PROTO_OSPF;
        break;
    case RTPROT_RIP:
        p = NN_PROTO_RIP;
        break;
    case RTPROT_EIGRP:
        p = NN_PROTO_EIGRP;
        break;
    default:
        break;
    }
    row->protocol = p;
    row->origin = o;
}

/* Next hop of a route or of one rtnexthop from its RTA_GATEWAY / RTA_VIA; stays the
 * unspecified address of the route's family when there is neither. */
static int nn_route_next_hop(nn_route_row *row, const struct rtattr *gw, const struct rtattr *via, size_t alen)
{
    if (gw) {
        if (nn_rta_get(gw, row->next_hop.addr, alen) < 0)
            return -1;
    } else if (via) {
        uint16_t fam;
        if (nn_rta_get(via, &fam, sizeof(fam)) < 0)
            return -1;
        size_t vlen = nn_family_addr_len(fam);
        if (vlen) { /* other families (AF_PACKET for MPLS) have no nn_ip form */
            if (nn_rta_len(via) < sizeof(fam) + vlen)
                return -1;
            memcpy(row->next_hop.addr, nn_rta_data(via) + sizeof(fam), vlen);
            row->next_hop.family = fam;
        }
    }
    if (row->next_hop.family == AF_INET6 && nn_is_v6_link_local(row->next_hop.addr))
        row->next_hop.scope_id = row->interface_index;
    return 0;
}

int nn_nl_parse_route(const struct nlmsghdr *nlh, const nn_map *links, nn_route_row *rows, size_t max)
{
    struct rtmsg rtm;
    const unsigned char *attrs;
    size_t attrlen;
    const struct rtattr *tb[NN_RTA_MAX + 1];

    if (nn_msg_split(nlh, &rtm, sizeof(rtm), &attrs, &attrlen) < 0)
        return -1;
    size_t alen = nn_family_addr_len(rtm.rtm_family);
    if (alen == 0 || (rtm.rtm_flags & RTM_F_CLONED))
        return 0;
    if (rtm.rtm_dst_len > alen * 8 || nn_attrs(attrs, attrlen, tb, NN_RTA_MAX) < 0)
        return -1;
    uint32_t table = nn_rta_u32(tb[RTA_TABLE], rtm.rtm_table);
    if (table != RT_TABLE_MAIN && table != RT_TABLE_LOCAL)
        return 0;

    nn_route_row base;
    memset(&base, 0, sizeof(base));
    base.destination_prefix.family = rtm.rtm_family;
    if (tb[RTA_DST] && nn_rta_get(tb[RTA_DST], base.destination_prefix.addr, alen) < 0)
        return -1;
    base.destination_prefix_length = rtm.rtm_dst_len;
    base.next_hop.family = rtm.rtm_family;
    base.metric = nn_rta_u32(tb[RTA_PRIORITY], 0);
    nn_route_protocol(&base, rtm.rtm_protocol);
    base.loopback = rtm.rtm_type == RTN_LOCAL;
    base.linux_table = table;
    base.linux_tos = rtm.rtm_tos;
    base.linux_type = rtm.rtm_type;
    base.valid_lifetime = NN_INFINITE;
    base.preferred_lifetime = NN_INFINITE;
    base.immortal = 1;
    /* expiry: RTA_EXPIRES in seconds, or rta_expires of RTA_CACHEINFO in USER_HZ (1/100 s) */
    uint32_t expires = nn_rta_u32(tb[NN_RTA_EXPIRES], 0);
    struct rta_cacheinfo rci;
    if (!expires && nn_rta_get(tb[RTA_CACHEINFO], &rci, sizeof(rci)) == 0 && rci.rta_expires > 0)
        expires = ((uint32_t)rci.rta_expires + 99) / 100;
    if (expires) {
        /* finite: 0xffffffff would read as NN_INFINITE (a forged or odd value; the kernel
         * caps what it sends below it) */
        if (expires >= NN_INFINITE)
            expires = NN_INFINITE - 1;
        base.valid_lifetime = expires;
        base.preferred_lifetime = expires;
        base.immortal = 0;
    }

    size_t n = 0;
    const struct rtattr *mp = tb[RTA_MULTIPATH];
    const unsigned char *p = mp ? nn_rta_data(mp) : NULL;
    size_t len = mp ? nn_rta_len(mp) : 0;
    while (len >= sizeof(struct rtnexthop)) {
        struct rtnexthop nh;
        const struct rtattr *ntb[NN_RTA_MAX + 1];
        memcpy(&nh, p, sizeof(nh));
        if (nh.rtnh_len < sizeof(nh) || nh.rtnh_len > len)
            return -1;
        size_t off = RTNH_ALIGN(sizeof(nh));
        if (nn_attrs(p + off, nh.rtnh_len > off ? nh.rtnh_len - off : 0, ntb, NN_RTA_MAX) < 0)
            return -1;
        nn_route_row r = base;
        r.interface_index = nh.rtnh_ifindex > 0 ? (uint32_t)nh.rtnh_ifindex : 0;
        r.interface_luid = nn_luid_for_index(links, r.interface_index);
        if (nn_route_next_hop(&r, ntb[RTA_GATEWAY], ntb[NN_RTA_VIA], alen) < 0)
            return -1;
        if (n < max)
            rows[n] = r;
        n++;
        size_t step = RTNH_ALIGN(nh.rtnh_len);
        if (step >= len)
            break;
        p += step;
        len -= step;
    }
    if (n == 0) { /* single next hop (or an empty RTA_MULTIPATH) */
        nn_route_row r = base;
        r.interface_index = nn_rta_u32(tb[RTA_OIF], 0);
        r.interface_luid = nn_luid_for_index(links, r.interface_index);
        if (nn_route_next_hop(&r, tb[RTA_GATEWAY], tb[NN_RTA_VIA], alen) < 0)
            return -1;
        if (max > 0)
            rows[0] = r;
        n = 1;
    }
    return n > (size_t)0x7fffffff ? -1 : (int)n;
}

/* ---------------------------------------------------------------- socket */

int nn_nl_open(nn_nlsock *s, const unsigned *groups, size_t ngroups, int rcvbuf, nn_error *err)
{
    const char *call = "socket";
    struct sockaddr_nl sa;
    socklen_t salen = sizeof(sa);
    int one = 1;

    s->fd = -1;
    s->portid = 0;
    s->seq = 0;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0)
        goto fail;
    /* both optional: older kernels lack them and work without */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
    /* SO_RCVBUFFORCE passes rmem_max but needs CAP_NET_ADMIN */
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;
    call = "bind";
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto fail;
    call = "getsockname";
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
        goto fail;
    if (salen != sizeof(sa) || sa.nl_family != AF_NETLINK) {
        errno = EINVAL;
        goto fail;
    }
    call = "setsockopt";
    for (size_t i = 0; i < ngroups; i++) {
        unsigned g = groups[i];
        if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
            goto fail;
    }
    s->fd = fd;
    s->portid = sa.nl_pid;
    return 0;

fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    return nn_error_from_errno(err, e, call);
}

void nn_nl_close(nn_nlsock *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* One datagram into buf: 1 with *len set, 0 when none is queued (EAGAIN), -1 with
 * errno set. *from_kernel and *trunc describe the datagram. EINTR is retried. */
static int nn_nl_recv(int fd, void *buf, size_t size, size_t *len, int *from_kernel, int *trunc)
{
    struct sockaddr_nl sa;
    struct iovec iov = {buf, size};
    struct msghdr msg;
    ssize_t n;
    do {
        memset(&msg, 0, sizeof(msg));
        memset(&sa, 0, sizeof(sa));
        msg.msg_name = &sa;
        msg.msg_namelen = sizeof(sa);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        n = recvmsg(fd, &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    *len = (size_t)n;
    *from_kernel = msg.msg_namelen == sizeof(sa) && sa.nl_family == AF_NETLINK && sa.nl_pid == 0;
    *trunc = (msg.msg_flags & MSG_TRUNC) != 0;
    return 1;
}

/* One recvmmsg reads up to NN_NL_BATCH datagrams (notifications are one per datagram):
 * a burst costs one system call per batch instead of one per event. Each datagram gets
 * a slot of the buffer at least NN_NL_SLOT_MIN bytes long (fewer slots in a small one). */
#define NN_NL_BATCH 16
#define NN_NL_SLOT_MIN 16384u

static void nn_nl_deliver(nn_nlsock *s, const void *buf, size_t len, int *stop, nn_nl_msg_cb cb, void *ctx)
{
    const struct nlmsghdr *nlh = buf;
    for (; NLMSG_OK(nlh, len); nlh = nn_nlmsg_next(nlh, &len)) {
        /* replies to our own requests (a dump given up): never notifications */
        if (s->portid != 0 && nlh->nlmsg_pid == s->portid)
            continue;
        if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
            continue; /* NOOP, ERROR, DONE, OVERRUN */
        int rc = cb(ctx, nlh);
        if (rc != 0) {
            *stop = rc;
            return;
        }
    }
}

static int nn_nl_read_flags(nn_nlsock *s, void *buf, size_t bufsize, nn_nl_msg_cb cb, void *ctx, nn_error *err,
                            int first_flags)
{
    struct mmsghdr msgs[NN_NL_BATCH];
    struct iovec iov[NN_NL_BATCH];
    struct sockaddr_nl sa[NN_NL_BATCH];
    unsigned slots = bufsize / NN_NL_SLOT_MIN >= NN_NL_BATCH ? NN_NL_BATCH
                     : bufsize >= NN_NL_SLOT_MIN              ? (unsigned)(bufsize / NN_NL_SLOT_MIN)
                                                              : 1;
    size_t slot = bufsize / slots;
    int count = 0;

    s->drained = 0;
    while (count < NN_NL_READ_MAX) {
        int n, i, stop = 0;
        unsigned want = NN_NL_READ_MAX - count < (int)slots ? (unsigned)(NN_NL_READ_MAX - count) : slots;
        memset(msgs, 0, sizeof msgs);
        for (i = 0; i < (int)want; i++) {
            iov[i].iov_base = (unsigned char *)buf + (size_t)i * slot;
            iov[i].iov_len = slot;
            msgs[i].msg_hdr.msg_name = &sa[i];
            msgs[i].msg_hdr.msg_namelen = sizeof sa[i];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        do
            n = recvmmsg(s->fd, msgs, want, count == 0 ? first_flags : MSG_DONTWAIT, NULL);
        while (n < 0 && errno == EINTR && (count > 0 || first_flags == MSG_DONTWAIT));
        if (n < 0 && errno == EINTR) /* a signal ended the sleep: its handler runs first */
            return nn_error_from_errno(err, EINTR, "recvmmsg");
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s->drained = 1;
            return count;
        }
        if (n < 0)
            return nn_error_from_errno(err, errno, "recvmmsg");
        for (i = 0; i < n; i++) {
            const struct msghdr *m = &msgs[i].msg_hdr;
            count++;
            if (m->msg_namelen != sizeof sa[i] || sa[i].nl_family != AF_NETLINK || sa[i].nl_pid != 0)
                continue; /* not the kernel's: forged, ignore */
            if (m->msg_flags & MSG_TRUNC) {
                s->overflowed = 1; /* cut short: unusable, and its change must come from a new dump */
                continue;
            }
            nn_nl_deliver(s, iov[i].iov_base, msgs[i].msg_len, &stop, cb, ctx);
            if (stop != 0)
                return stop;
        }
        if (n < (int)want) {
            /* recvmmsg stopped early: the queue is empty (an error after some datagrams,
             * ENOBUFS say, is kept by the kernel for the next call) */
            s->drained = 1;
            return count;
        }
    }
    return count; /* more may be queued: the caller comes back (epoll is level-triggered) */
}

int nn_nl_read(nn_nlsock *s, void *buf, size_t bufsize, nn_nl_msg_cb cb, void *ctx, nn_error *err)
{
    return nn_nl_read_flags(s, buf, bufsize, cb, ctx, err, MSG_DONTWAIT);
}

int nn_nl_read_wait(nn_nlsock *s, void *buf, size_t bufsize, nn_nl_msg_cb cb, void *ctx, nn_error *err)
{
    /* MSG_WAITFORONE: asleep until the first datagram, then what else is queued */
    return nn_nl_read_flags(s, buf, bufsize, cb, ctx, err, MSG_WAITFORONE);
}

int nn_nl_set_blocking(nn_nlsock *s)
{
    int flags = fcntl(s->fd, F_GETFL);
    if (flags < 0 || fcntl(s->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int nn_nl_wake(int fd)
{
    struct nlmsghdr req;
    struct sockaddr_nl sa;
    ssize_t n;

    memset(&req, 0, sizeof req);
    req.nlmsg_len = sizeof req;
    req.nlmsg_type = RTM_GETLINK;
    req.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nlmsg_seq = 0;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    do
        n = sendto(fd, &req, sizeof req, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof req ? 0 : -1;
}

/* Waits until fd is readable or the deadline passes: 1 readable, 0 timeout, -1 error. */
static int nn_nl_wait(int fd, const struct timespec *deadline)
{
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ms = ((int64_t)deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
        if (ms <= 0)
            return 0;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)ms);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static void nn_deadline(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += NN_DUMP_TIMEOUT_MS / 1000;
}

static int nn_nl_send_dump(nn_nlsock *s, uint16_t type, uint8_t family, uint32_t seq)
{
    struct {
        struct nlmsghdr nlh;
        union {
            struct ifinfomsg ifi;
            struct ifaddrmsg ifa;
            struct rtmsg rtm;
            struct rtgenmsg gen;
        } u;
        unsigned char attr[RTA_SPACE(sizeof(uint32_t))];
    } req;
    size_t hdrlen;

    memset(&req, 0, sizeof(req));
    switch (type) {
    case RTM_GETLINK: {
        req.u.ifi.ifi_family = family;
        hdrlen = sizeof(req.u.ifi);
        /* statistics are most of a link message and no row shows them */
        struct rtattr rta = {RTA_LENGTH(sizeof(uint32_t)), IFLA_EXT_MASK};
        uint32_t mask = RTEXT_FILTER_SKIP_STATS;
        memcpy(req.attr, &rta, sizeof(rta));
        memcpy(req.attr + RTA_LENGTH(0), &mask, sizeof(mask));
        req.nlh.nlmsg_len = NLMSG_LENGTH(NLMSG_ALIGN(hdrlen) + RTA_LENGTH(sizeof(mask)));
        break;
    }
    case RTM_GETADDR:
        req.u.ifa.ifa_family = family;
        hdrlen = sizeof(req.u.ifa);
        break;
    case RTM_GETROUTE:
        req.u.rtm.rtm_family = family;
        hdrlen = sizeof(req.u.rtm);
        break;
    default:
        req.u.gen.rtgen_family = family;
        hdrlen = sizeof(req.u.gen);
        break;
    }
    if (!req.nlh.nlmsg_len)
        req.nlh.nlmsg_len = NLMSG_LENGTH(hdrlen);
    req.nlh.nlmsg_type = type;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = seq;

    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;
    for (;;) {
        ssize_t n = sendto(s->fd, &req, req.nlh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa));
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* The error int of NLMSG_ERROR / NLMSG_DONE: 0 or a negative errno (EPROTO if odd). */
static int nn_nlmsg_error(const struct nlmsghdr *nlh)
{
    int32_t e = 0;
    if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(e)))
        memcpy(&e, NLMSG_DATA(nlh), sizeof(e));
    return e > 0 || e < -4095 ? -EPROTO : e;
}

/* A new sequence number for a request of s: 0 is what kernel notifications carry. */
static uint32_t nn_nl_next_seq(nn_nlsock *s)
{
    uint32_t seq = ++s->seq;
    if (seq == 0)
        seq = ++s->seq;
    return seq;
}

/* Dumps one table: cb gets each message of the reply, other_cb (if set) the notifications
 * read meanwhile. The request is sent again when the kernel did not take it:
 *  - ENOBUFS: the queue was full, so the kernel holds the dump and resumes it as the
 *    queue is read (the parts then come with this request's number): keep reading;
 *  - EBUSY: an earlier dump of this socket, given up by its caller, still runs: its parts
 *    are read and dropped, and the request is sent again once it has ended;
 *  - no answer at all by the time the queue is empty: the kernel answers a request
 *    before sendto returns, so the answer was dropped (an error reply to a socket that
 *    stays congested is dropped silently): ask again. */
int nn_nl_dump(nn_nlsock *s, uint16_t type, uint8_t family, nn_nl_msg_cb cb, nn_nl_msg_cb other_cb,
               void *ctx, nn_error *err)
{
    const char *call = "recvmsg";
    int e = 0, rc = 0, intr = 0, started = 0, busy = 0, resends = 0;
    size_t cap = NN_DUMP_BUF_MAX; /* pages are only touched as far as datagrams reach */
    void *buf = malloc(cap);
    if (!buf)
        return nn_error_from_errno(err, ENOMEM, "malloc");

    uint32_t seq = nn_nl_next_seq(s);
    if (nn_nl_send_dump(s, type, family, seq) < 0) {
        e = errno;
        call = "sendto";
        goto done;
    }

    struct timespec deadline;
    nn_deadline(&deadline);
    for (int finished = 0; !finished;) {
        /* No MSG_PEEK to size the datagram first: a peek lets the kernel continue a dump
         * paused by a full buffer, fail, and set ENOBUFS again, so that the real receive
         * only ever returns the error (a livelock). The buffer is as large as any dump part
         * (the kernel caps them at 32 KiB unless one message needs more). */
        int from_kernel = 0, trunc = 0, resend = 0;
        size_t len = 0;
        int got = nn_nl_recv(s->fd, buf, cap, &len, &from_kernel, &trunc);
        if (got < 0 && errno == ENOBUFS) { /* notifications lost, not our replies */
            s->overflowed = 1;
            continue;
        }
        if (got < 0) {
            e = errno;
            goto done;
        }
        if (got == 0 && !started && resends < NN_DUMP_RESENDS)
            resend = 1; /* the queue is empty and our dump neither ran nor is held */
        else if (got == 0) {
            int w = nn_nl_wait(s->fd, &deadline);
            if (w <= 0) {
                e = w == 0 ? ETIMEDOUT : errno;
                call = "poll";
                goto done;
            }
            continue;
        }
        else if (!from_kernel)
            continue;
        else if (trunc) {
            e = EMSGSIZE;
            goto done;
        }
        const struct nlmsghdr *nlh = buf;
        for (; !resend && NLMSG_OK(nlh, len); nlh = nn_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_pid != s->portid || nlh->nlmsg_seq != seq) {
                /* our own stale replies are dropped; notifications go to other_cb */
                if (nlh->nlmsg_pid == s->portid) {
                    /* the end of the earlier dump that kept ours from starting */
                    if (busy && nlh->nlmsg_type == NLMSG_DONE && resends < NN_DUMP_RESENDS)
                        resend = 1;
                    continue;
                }
                if (!other_cb || nlh->nlmsg_type < NLMSG_MIN_TYPE)
                    continue;
                rc = other_cb(ctx, nlh);
                if (rc != 0)
                    goto done;
                continue;
            }
            nn_deadline(&deadline);
            if (!started && nlh->nlmsg_type == NLMSG_ERROR) {
                int32_t derr = nn_nlmsg_error(nlh);
                if (derr == -ENOBUFS)
                    continue; /* held by the kernel: it comes as the queue is read */
                if (derr == -EBUSY) {
                    busy = 1;
                    continue;
                }
            }
            started = 1;
            if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
                intr = 1;
            if (nlh->nlmsg_type == NLMSG_DONE) {
                int32_t derr = nn_nlmsg_error(nlh);
                if (derr < 0) {
                    e = -derr;
                    call = "rtnetlink dump";
                    goto done;
                }
                finished = 1;
                break;
            }
            if (nlh->nlmsg_type == NLMSG_ERROR) {
                int32_t derr = nn_nlmsg_error(nlh);
                if (derr != 0) {
                    e = -derr;
                    call = "rtnetlink dump";
                    goto done;
                }
                continue; /* an ACK */
            }
            if (nlh->nlmsg_type < NLMSG_MIN_TYPE || intr)
                continue; /* an interrupted dump is only drained */
            rc = cb(ctx, nlh);
            if (rc != 0)
                goto done;
        }
        if (resend) {
            resends++;
            busy = 0;
            seq = nn_nl_next_seq(s);
            if (nn_nl_send_dump(s, type, family, seq) < 0) {
                e = errno;
                call = "sendto";
                goto done;
            }
            nn_deadline(&deadline);
        }
    }
    rc = intr ? NN_DUMP_INTR : 0;

done:
    free(buf);
    if (!e)
        return rc;
    nn_error_from_errno(err, e, call);
    if (err && e == ETIMEDOUT)
        err->detail = "the kernel did not answer a dump request";
    else if (err && e == EMSGSIZE)
        err->detail = "a netlink message was too large";
    return -1;
}

/* ---------------------------------------------------------------- tables */

typedef struct {
    nn_map *links;
    nn_table *table; /* interface rows when set (link dump) */
    int family;
    nn_route_row *routes; /* scratch for multipath routes */
    size_t nroutes;
} nn_dump_ctx;

static int nn_family_wanted(int want, int family)
{
    return want == AF_UNSPEC || want == family;
}

static int nn_link_cb(void *vctx, const struct nlmsghdr *nlh)
{
    nn_dump_ctx *ctx = vctx;
    nn_link_entry link;
    nn_if_row rows[2];
    int nrows;
    if (nlh->nlmsg_type != RTM_NEWLINK || nn_nl_parse_link(nlh, &link, rows, &nrows) != 0)
        return 0; /* a malformed message costs its rows, not the table */
    nn_link_entry *e = nn_map_put(ctx->links, &link.ifindex, NULL);
    if (!e)
        return NN_CB_NOMEM;
    *e = link;
    for (int i = 0; ctx->table && i < nrows; i++) {
        if (!nn_family_wanted(ctx->family, rows[i].family))
            continue;
        void *slot = nn_table_push(ctx->table);
        if (!slot)
            return NN_CB_NOMEM;
        memcpy(slot, &rows[i], sizeof(rows[i]));
    }
    return 0;
}

static int nn_addr_cb(void *vctx, const struct nlmsghdr *nlh)
{
    nn_dump_ctx *ctx = vctx;
    nn_addr_row row;
    if (nlh->nlmsg_type != RTM_NEWADDR || nn_nl_parse_addr(nlh, ctx->links, &row) != 1)
        return 0;
    if (!nn_family_wanted(ctx->family, row.address.family))
        return 0;
    void *slot = nn_table_push(ctx->table);
    if (!slot)
        return NN_CB_NOMEM;
    memcpy(slot, &row, sizeof(row));
    return 0;
}

static int nn_route_cb(void *vctx, const struct nlmsghdr *nlh)
{
    nn_dump_ctx *ctx = vctx;
    nn_route_row local[8];
    nn_route_row *rows = local;
    size_t cap = sizeof(local) / sizeof(local[0]);
    if (nlh->nlmsg_type != RTM_NEWROUTE)
        return 0;
    int n = nn_nl_parse_route(nlh, ctx->links, rows, cap);
    if (n > 0 && (size_t)n > cap) { /* a wide multipath route: parse again with room */
        if ((size_t)n > ctx->nroutes) {
            nn_route_row *r = realloc(ctx->routes, (size_t)n * sizeof(*r));
            if (!r)
                return NN_CB_NOMEM;
            ctx->routes = r;
            ctx->nroutes = (size_t)n;
        }
        rows = ctx->routes;
        n = nn_nl_parse_route(nlh, ctx->links, rows, (size_t)n);
    }
    for (int i = 0; i < n; i++) {
        if (!nn_family_wanted(ctx->family, rows[i].destination_prefix.family))
            continue;
        void *slot = nn_table_push(ctx->table);
        if (!slot)
            return NN_CB_NOMEM;
        memcpy(slot, &rows[i], sizeof(rows[i]));
    }
    return 0;
}

/* nn_nl_dump with the callbacks' out-of-memory result turned into an error. */
static int nn_dump_checked(nn_nlsock *s, uint16_t type, uint8_t family, nn_nl_msg_cb cb, nn_dump_ctx *ctx,
                           nn_error *err)
{
    int rc = nn_nl_dump(s, type, family, cb, NULL, ctx, err);
    if (rc == NN_CB_NOMEM)
        return nn_error_from_errno(err, ENOMEM, "malloc");
    return rc;
}

/* Links into ctx->links (and interface rows into ctx->table when set), retried while
 * the kernel reports the dump as interrupted; the last attempt is kept regardless. */
static int nn_dump_links_ctx(nn_nlsock *s, nn_dump_ctx *ctx, nn_kind kind, nn_error *err)
{
    int rc = NN_DUMP_INTR;
    for (int attempt = 0; rc == NN_DUMP_INTR && attempt <= NN_DUMP_RETRIES; attempt++) {
        nn_map_clear(ctx->links);
        if (ctx->table) {
            nn_table_free(ctx->table);
            nn_table_init(ctx->table, kind);
        }
        rc = nn_dump_checked(s, RTM_GETLINK, AF_UNSPEC, nn_link_cb, ctx, err);
    }
    return rc < 0 ? -1 : 0;
}

int nn_nl_dump_links(nn_nlsock *s, nn_map *links, nn_error *err)
{
    nn_dump_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.links = links;
    return nn_dump_links_ctx(s, &ctx, NN_KIND_INTERFACE, err);
}

int nn_nl_get_table(nn_kind kind, int family, nn_table *table, nn_error *err)
{
    nn_nlsock s;
    nn_map links;
    nn_dump_ctx ctx;
    int rc = -1;

    nn_table_init(table, kind);
    /* the stable table is an address table too */
    if (kind != NN_KIND_INTERFACE && kind != NN_KIND_ADDRESS && kind != NN_KIND_STABLE && kind != NN_KIND_ROUTE)
        return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, "GetTable");
    if (nn_nl_open(&s, NULL, 0, 0, err) < 0)
        return -1;
    nn_map_init(&links, sizeof(uint32_t), sizeof(nn_link_entry));
    memset(&ctx, 0, sizeof(ctx));
    ctx.links = &links;
    ctx.family = family;

    /* the whole table again when the second dump is interrupted: its rows carry LUIDs
     * from the first; after the retries the last attempt is returned as it is */
    for (int attempt = 0; attempt <= NN_DUMP_RETRIES; attempt++) {
        ctx.table = kind == NN_KIND_INTERFACE ? table : NULL;
        rc = nn_dump_links_ctx(&s, &ctx, kind, err);
        if (rc < 0 || kind == NN_KIND_INTERFACE)
            break;
        nn_table_free(table);
        nn_table_init(table, kind);
        ctx.table = table;
        if (kind != NN_KIND_ROUTE)
            rc = nn_dump_checked(&s, RTM_GETADDR, (uint8_t)family, nn_addr_cb, &ctx, err);
        else
            rc = nn_dump_checked(&s, RTM_GETROUTE, (uint8_t)family, nn_route_cb, &ctx, err);
        if (rc != NN_DUMP_INTR)
            break;
        rc = 0;
    }
    free(ctx.routes);
    nn_map_free(&links);
    nn_nl_close(&s);
    if (rc < 0) {
        nn_table_free(table);
        nn_table_init(table, kind);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- entries */

/* Interface key: the LUID's index when the LUID is set, else the index; 0 = any. */
static int nn_if_matches(uint64_t key_luid, uint32_t key_index, uint64_t luid, uint32_t index)
{
    if (key_luid)
        return nn_luid_index(luid) == nn_luid_index(key_luid);
    return key_index == 0 || key_index == index;
}

static int nn_ip_equal(const nn_ip *a, const nn_ip *b)
{
    size_t alen = nn_family_addr_len(a->family);
    return a->family == b->family && memcmp(a->addr, b->addr, alen) == 0;
}

static int nn_is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* A key next hop of family 0 stands for "unspecified", whatever the route's family. */
static int nn_next_hop_matches(const nn_ip *key, const nn_ip *nh)
{
    if (key->family == AF_UNSPEC)
        return nn_is_zero(nh->addr, sizeof(nh->addr));
    return nn_ip_equal(key, nh);
}

int nn_nl_get_entry(nn_kind kind, void *row, nn_error *err)
{
    static const char *const calls[] = {"GetIpInterfaceEntry", "GetUnicastIpAddressEntry", "GetIpForwardEntry2"};
    nn_table t;
    int family;
    size_t rowsize;

    switch (kind) {
    case NN_KIND_INTERFACE:
        family = ((const nn_if_row *)row)->family;
        rowsize = sizeof(nn_if_row);
        break;
    case NN_KIND_ADDRESS:
        family = ((const nn_addr_row *)row)->address.family;
        rowsize = sizeof(nn_addr_row);
        break;
    case NN_KIND_ROUTE: {
        const nn_route_row *k = row;
        family = k->destination_prefix.family;
        int nhf = k->next_hop.family;
        if ((nhf != AF_UNSPEC && nhf != AF_INET && nhf != AF_INET6) ||
            k->destination_prefix_length > nn_family_addr_len(family) * 8)
            return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, calls[kind]);
        rowsize = sizeof(nn_route_row);
        break;
    }
    default:
        return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, "GetEntry");
    }
    if (family != AF_INET && family != AF_INET6)
        return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, calls[kind]);
    if (nn_nl_get_table(kind, family, &t, err) < 0)
        return -1;

    const unsigned char *best = NULL;
    for (size_t i = 0; i < t.count; i++) {
        const unsigned char *r = (const unsigned char *)t.rows + i * t.row_size;
        if (kind == NN_KIND_INTERFACE) {
            const nn_if_row *k = row, *c = (const nn_if_row *)(const void *)r;
            /* an interface key has no "any": index 0 names no interface */
            if (c->family == k->family && (k->interface_luid || k->interface_index) &&
                nn_if_matches(k->interface_luid, k->interface_index, c->interface_luid, c->interface_index)) {
                best = r;
                break;
            }
        } else if (kind == NN_KIND_ADDRESS) {
            const nn_addr_row *k = row, *c = (const nn_addr_row *)(const void *)r;
            if (nn_ip_equal(&k->address, &c->address) &&
                nn_if_matches(k->interface_luid, k->interface_index, c->interface_luid, c->interface_index)) {
                best = r;
                break;
            }
        } else {
            const nn_route_row *k = row, *c = (const nn_route_row *)(const void *)r;
            if (nn_ip_equal(&k->destination_prefix, &c->destination_prefix) &&
                k->destination_prefix_length == c->destination_prefix_length &&
                nn_next_hop_matches(&k->next_hop, &c->next_hop) &&
                nn_if_matches(k->interface_luid, k->interface_index, c->interface_luid, c->interface_index) &&
                (!best || c->metric < ((const nn_route_row *)(const void *)best)->metric))
                best = r;
        }
    }
    int rc = 0;
    if (best)
        memcpy(row, best, rowsize);
    else
        rc = nn_error_set(err, NN_ERROR_NOT_FOUND, calls[kind]);
    nn_table_free(&t);
    return rc;
}

#endif /* !_WIN32 */
