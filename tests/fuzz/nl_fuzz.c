/*
 * nl_fuzz.c - libFuzzer harness over the pure-C netlink layer of netnotify (csrc/nn_netlink.c,
 * csrc/nn_map.c, and the caches of csrc/nn_linux.c). Build and run: tests/fuzz/build.sh, or
 * tests/test_fuzz.py; docs/reliability.md, "Fuzzing".
 *
 * The input is what the kernel would send: a stream of netlink messages. A fake kernel serves
 * it to the real socket code of nn_netlink.c (socket, recvmsg, sendto, ... are linked with
 * -Wl,--wrap and answered here for netlink sockets only; nothing reaches the host's network).
 * The stream is cut into datagrams after every NLMSG_DONE and NLMSG_ERROR, or where a header
 * is malformed (the rest is then one last datagram); a datagram whose first message is
 * NLMSG_OVERRUN stands for an overflow: recvmsg fails with ENOBUFS and the datagram is lost.
 * Every socket reads the stream from its start; its port id is the first non-zero nlmsg_pid
 * of the stream, so that captured dump replies (sequence numbers 1, 2, ... of a fresh socket)
 * are answers to nn_netlink.c's own requests.
 *
 * Each input goes through:
 *  1. the parsers (nn_nl_parse_link/addr/route) on every message, with a links map kept as
 *     the backend keeps it, checking the rows they return and their contracts;
 *  2. the message walks of nn_nl_dump (with a notification callback) and nn_nl_read, whose
 *     callbacks check that every message lies inside its datagram (a trap message follows
 *     every datagram in the receive buffer) and that the dump hands over only its own
 *     replies, never one flagged NLM_F_DUMP_INTR;
 *  3. nn_nl_get_table for interfaces, addresses and routes;
 *  4. registrations of every kind as the dispatcher runs them (csrc/nn_linux.c, included
 *     below with the Python core stubbed out): the initial dump into the cache, reads of
 *     notifications (nn_readable), the overflow repair (nn_repair_pass or nn_resync). The
 *     events they emit must take the reported state to the cache's state: an add of a row
 *     the consumer does not have, a change or delete of one it has, and at the end the
 *     consumer's rows are the cache's rows.
 * A broken invariant aborts with "nl_fuzz: invariant violated: ...". Every fake socket must
 * be closed again after each stage.
 *
 * nl_fuzz_scenarios() (at the end; run by "nl_replay --scenarios") drives the same code over
 * crafted streams, deterministically, for what no invariant can see.
 */
#include "../../csrc/nn_linux.c"

#include <net/if_arp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------- failures */

static void fz_fail(const char *what)
{
    fprintf(stderr, "nl_fuzz: invariant violated: %s\n", what);
    abort();
}

#define FZ_CHECK(cond, what)                                                                                           \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            fz_fail(what);                                                                                             \
    } while (0)

/* ---------------------------------------------------------------- the fake kernel */

#define FZ_MAX_CHUNKS 512
#define FZ_MAX_SOCKS 8
#define FZ_BATCH 64 /* the most datagrams one recvmmsg may ask for */
#define FZ_FD_BASE 0x7ff00000 /* far above any real descriptor */
#define FZ_TRAP_TYPE 0x7ffe
#define FZ_TRAP_PID 0x7ffe7ffeu

typedef struct {
    int used;
    size_t cursor; /* next datagram */
    size_t limit;  /* datagrams from here on are not served (0: no limit; set by scenarios) */
    uint32_t drops;
} fz_sock;

static struct {
    const uint8_t *data;
    size_t size;
    size_t off[FZ_MAX_CHUNKS], len[FZ_MAX_CHUNKS], nchunks, maxchunk;
    uint32_t portid;
    fz_sock socks[FZ_MAX_SOCKS];
    const unsigned char *dg; /* the datagram recvmsg returned last */
    size_t dglen;
    /* the datagrams the last recvmmsg returned (it reads several before any is walked) */
    const unsigned char *batch[FZ_BATCH];
    size_t batchlen[FZ_BATCH], nbatch;
    int in_batch;
    uint32_t request_seq; /* the sequence number of the last request sent (a dump may ask again) */
    unsigned requests;    /* requests sent since the input was loaded */
} fz;

static void fz_add_chunk(size_t start, size_t end)
{
    fz.off[fz.nchunks] = start;
    fz.len[fz.nchunks] = end - start;
    if (end - start > fz.maxchunk)
        fz.maxchunk = end - start;
    fz.nchunks++;
}

static void fz_load(const uint8_t *data, size_t size)
{
    size_t start = 0, pos = 0;

    memset(&fz, 0, sizeof fz);
    fz.data = data;
    fz.size = size;
    fz.portid = 0x4e4e;
    while (size - pos >= NLMSG_HDRLEN) {
        struct nlmsghdr h;
        memcpy(&h, data + pos, sizeof h);
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > size - pos)
            break;
        if (fz.portid == 0x4e4e && h.nlmsg_pid != 0)
            fz.portid = h.nlmsg_pid;
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step >= size - pos)
            break;
        pos += step;
        if ((h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) && fz.nchunks < FZ_MAX_CHUNKS - 1) {
            fz_add_chunk(start, pos);
            start = pos;
        }
    }
    if (size > start)
        fz_add_chunk(start, size);
}

static fz_sock *fz_sock_of(int fd)
{
    if (fd < FZ_FD_BASE || fd >= FZ_FD_BASE + FZ_MAX_SOCKS || !fz.socks[fd - FZ_FD_BASE].used)
        return NULL;
    return &fz.socks[fd - FZ_FD_BASE];
}

static void fz_check_closed(const char *stage)
{
    for (int i = 0; i < FZ_MAX_SOCKS; i++)
        if (fz.socks[i].used) {
            fprintf(stderr, "nl_fuzz: after %s\n", stage);
            fz_fail("a netlink socket was left open");
        }
}

int __real_socket(int domain, int type, int protocol);
int __real_close(int fd);
int __real_bind(int fd, const struct sockaddr *addr, socklen_t len);
int __real_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int __real_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int __real_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
ssize_t __real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len);
ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
int __real_poll(struct pollfd *fds, nfds_t nfds, int timeout);

int __wrap_socket(int domain, int type, int protocol);
int __wrap_close(int fd);
int __wrap_bind(int fd, const struct sockaddr *addr, socklen_t len);
int __wrap_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int __wrap_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len);
ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags);
int __real_recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *timeout);
int __wrap_recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *timeout);
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
/* recvmmsg as the kernel does it: recvmsg for each slot until one fails. An error other
 * than EAGAIN after some datagrams is kept for the next call (the kernel keeps it in
 * sk_err): here the datagram that raised it is served again. */
int __wrap_recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *timeout)
{
    fz_sock *s = fz_sock_of(fd);
    unsigned int i;
    if (s == NULL)
        return __real_recvmmsg(fd, msgvec, vlen, flags, timeout);
    FZ_CHECK(vlen >= 1 && vlen <= FZ_BATCH, "recvmmsg: vlen out of range");
    fz.nbatch = 0;
    fz.in_batch = 1;
    for (i = 0; i < vlen; i++) {
        uint32_t drops = s->drops;
        ssize_t n = __wrap_recvmsg(fd, &msgvec[i].msg_hdr, flags);
        if (n < 0) {
            if (i > 0 && errno != EAGAIN) {
                s->cursor--;
                s->drops = drops;
            }
            break;
        }
        msgvec[i].msg_len = (unsigned int)n;
        fz.batch[fz.nbatch] = fz.dg;
        fz.batchlen[fz.nbatch++] = fz.dglen;
        /* slots are consecutive parts of one buffer: the next recvmsg writes traps into the
         * rest of this slot only, never past it (fz_trap stays inside the iovec) */
    }
    fz.in_batch = 0;
    fz.dg = NULL;
    return i > 0 ? (int)i : -1;
}

int __wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout);

int __wrap_socket(int domain, int type, int protocol)
{
    if (domain != AF_NETLINK)
        return __real_socket(domain, type, protocol);
    FZ_CHECK(protocol == NETLINK_ROUTE, "socket: not NETLINK_ROUTE");
    for (int i = 0; i < FZ_MAX_SOCKS; i++)
        if (!fz.socks[i].used) {
            memset(&fz.socks[i], 0, sizeof fz.socks[i]);
            fz.socks[i].used = 1;
            return FZ_FD_BASE + i;
        }
    errno = EMFILE;
    return -1;
}

int __wrap_close(int fd)
{
    fz_sock *s = fz_sock_of(fd);
    if (s == NULL)
        return __real_close(fd);
    s->used = 0;
    return 0;
}

int __wrap_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fz_sock_of(fd) == NULL)
        return __real_bind(fd, addr, len);
    return 0;
}

int __wrap_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct sockaddr_nl sa;
    if (fz_sock_of(fd) == NULL)
        return __real_getsockname(fd, addr, len);
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    sa.nl_pid = fz.portid;
    memcpy(addr, &sa, *len < sizeof sa ? *len : sizeof sa);
    *len = sizeof sa;
    return 0;
}

int __wrap_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    if (fz_sock_of(fd) == NULL)
        return __real_setsockopt(fd, level, name, val, len);
    return 0;
}

int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    fz_sock *s = fz_sock_of(fd);
    if (s == NULL)
        return __real_getsockopt(fd, level, name, val, len);
    if (level == SOL_SOCKET && name == SO_MEMINFO) {
        uint32_t info[SK_MEMINFO_VARS];
        memset(info, 0, sizeof info);
        info[SK_MEMINFO_DROPS] = s->drops;
        memcpy(val, info, *len < sizeof info ? *len : sizeof info);
        *len = *len < sizeof info ? *len : sizeof info;
        return 0;
    }
    errno = ENOPROTOOPT;
    return -1;
}

ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len)
{
    struct nlmsghdr h;
    if (fz_sock_of(fd) == NULL)
        return __real_sendto(fd, buf, n, flags, addr, len);
    FZ_CHECK(n >= sizeof h, "sendto: short request");
    memcpy(&h, buf, sizeof h);
    FZ_CHECK(h.nlmsg_len == n && (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP && h.nlmsg_seq != 0,
             "sendto: not a dump request");
    fz.request_seq = h.nlmsg_seq;
    fz.requests++;
    return (ssize_t)n;
}

/* Messages after the datagram in the receive buffer, at the offsets an overrunning walk
 * would read: a callback that is handed one has read past the datagram. */
static void fz_trap(unsigned char *p, size_t room)
{
    struct nlmsghdr trap = {NLMSG_HDRLEN, FZ_TRAP_TYPE, 0, 0, FZ_TRAP_PID};
    for (size_t off = 0; off + sizeof trap <= room && off < 4 * sizeof trap; off += sizeof trap)
        memcpy(p + off, &trap, sizeof trap);
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
    fz_sock *s = fz_sock_of(fd);
    struct sockaddr_nl sa;
    if (s == NULL)
        return __real_recvmsg(fd, msg, flags);
    FZ_CHECK(!(flags & MSG_PEEK), "recvmsg: MSG_PEEK");
    if (s->cursor >= fz.nchunks || (s->limit && s->cursor >= s->limit)) {
        errno = EAGAIN;
        return -1;
    }
    size_t k = s->cursor++;
    const unsigned char *src = fz.data + fz.off[k];
    size_t n = fz.len[k];
    if (n >= NLMSG_HDRLEN) {
        struct nlmsghdr h;
        memcpy(&h, src, sizeof h);
        if (h.nlmsg_type == NLMSG_OVERRUN) {
            s->drops++;
            errno = ENOBUFS;
            return -1;
        }
    }
    FZ_CHECK(msg->msg_iovlen == 1, "recvmsg: one iovec expected");
    unsigned char *dst = msg->msg_iov[0].iov_base;
    size_t cap = msg->msg_iov[0].iov_len;
    size_t copy = n < cap ? n : cap;
    memcpy(dst, src, copy);
    size_t next = NLMSG_ALIGN(copy);
    if (next <= cap) {
        memset(dst + copy, 0, next - copy);
        fz_trap(dst + next, cap - next);
    }
    msg->msg_flags = copy < n ? MSG_TRUNC : 0;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK; /* nl_pid 0: the kernel */
    if (msg->msg_name != NULL && msg->msg_namelen >= sizeof sa) {
        memcpy(msg->msg_name, &sa, sizeof sa);
        msg->msg_namelen = sizeof sa;
    }
    fz.dg = dst;
    fz.dglen = copy;
    if (!fz.in_batch)
        fz.nbatch = 0; /* a plain recvmsg: only its datagram counts */
    return (ssize_t)copy;
}

/* epoll_ctl on a fake socket (an overflow repair moves the subscription to the dump socket
 * and changes what the dispatcher's epoll watches): accepted, nothing to watch. */
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    if (fz_sock_of(fd) == NULL)
        return __real_epoll_ctl(epfd, op, fd, event);
    (void)epfd;
    (void)op;
    (void)event;
    return 0;
}

int __wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    if (nfds != 1 || fz_sock_of(fds[0].fd) == NULL)
        return __real_poll(fds, nfds, timeout);
    /* the kernel has nothing more to say: fail at once instead of waiting 30 s */
    errno = ETIMEDOUT;
    return -1;
}

/* ---------------------------------------------------------------- row checks */

static size_t fz_alen(int family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static int fz_v6_ll(const nn_ip *ip)
{
    return ip->family == AF_INET6 && ip->addr[0] == 0xfe && (ip->addr[1] & 0xc0) == 0x80;
}

static void fz_check_ip(const nn_ip *ip, const char *what)
{
    size_t alen = fz_alen(ip->family);
    FZ_CHECK(alen != 0, what);
    FZ_CHECK(ip->reserved_ == 0, what);
    for (size_t i = alen; i < sizeof ip->addr; i++)
        FZ_CHECK(ip->addr[i] == 0, what);
}

static void fz_check_if_row(const nn_if_row *r)
{
    FZ_CHECK(r->family == AF_INET || r->family == AF_INET6, "interface row: family");
    FZ_CHECK(r->interface_index != 0 && r->interface_index <= 0x7fffffffu, "interface row: index");
    FZ_CHECK(nn_luid_index(r->interface_luid) == (r->interface_index & 0xffffffu), "interface row: LUID");
    FZ_CHECK(r->connected <= 1 && r->forwarding_enabled <= 1 && r->supports_neighbor_discovery <= 1,
             "interface row: booleans");
    FZ_CHECK(r->router_discovery_behavior == 0 || r->router_discovery_behavior == 1, "interface row: RA");
}

static void fz_check_addr_row(const nn_addr_row *r)
{
    fz_check_ip(&r->address, "address row: address");
    FZ_CHECK(r->on_link_prefix_length <= fz_alen(r->address.family) * 8, "address row: prefix length");
    FZ_CHECK(r->interface_index != 0, "address row: index");
    FZ_CHECK(r->address.scope_id == (fz_v6_ll(&r->address) ? r->interface_index : 0), "address row: scope");
    FZ_CHECK(r->dad_state >= 1 && r->dad_state <= 4, "address row: DAD state");
}

static void fz_check_route_row(const nn_route_row *r)
{
    fz_check_ip(&r->destination_prefix, "route row: destination");
    fz_check_ip(&r->next_hop, "route row: next hop");
    FZ_CHECK(r->destination_prefix_length <= fz_alen(r->destination_prefix.family) * 8,
             "route row: prefix length");
    FZ_CHECK(r->linux_table == RT_TABLE_MAIN || r->linux_table == RT_TABLE_LOCAL, "route row: table");
    FZ_CHECK((r->interface_index == 0) == (r->interface_luid == 0), "route row: LUID of no interface");
    FZ_CHECK(r->immortal == (r->valid_lifetime == 0xffffffffu), "route row: lifetime");
}

static void fz_check_row(nn_kind kind, const void *row)
{
    if (kind == NN_KIND_INTERFACE)
        fz_check_if_row(row);
    else if (kind == NN_KIND_ROUTE)
        fz_check_route_row(row);
    else
        fz_check_addr_row(row);
}

/* ---------------------------------------------------------------- 1. the parsers */

static void fz_parse_one(const struct nlmsghdr *nlh, nn_map *links)
{
    switch (nlh->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK: {
        nn_link_entry link, link2;
        nn_if_row rows[2], rows2[2];
        int n = -7, n2 = -7;
        int rc = nn_nl_parse_link(nlh, &link, rows, &n);
        int rc2 = nn_nl_parse_link(nlh, &link2, rows2, &n2);
        FZ_CHECK(rc >= -1 && rc <= 1 && n >= 0 && n <= 2, "parse_link: result");
        FZ_CHECK(rc == 0 || n == 0, "parse_link: rows of an ignored or malformed message");
        FZ_CHECK(rc == rc2 && n == n2 && memcmp(&link, &link2, sizeof link) == 0 &&
                     (n == 0 || memcmp(rows, rows2, (size_t)n * sizeof rows[0]) == 0),
                 "parse_link: two parses differ");
        for (int i = 0; i < n; i++) {
            fz_check_if_row(&rows[i]);
            FZ_CHECK(rows[i].interface_index == link.ifindex, "parse_link: row of another link");
        }
        FZ_CHECK(n < 2 || (rows[0].family == AF_INET && rows[1].family == AF_INET6), "parse_link: row order");
        if (rc == 0) {
            FZ_CHECK(link.ifindex != 0 && link.iftype == nn_iftype_from_arphrd(link.arphrd), "parse_link: link");
            if (nlh->nlmsg_type == RTM_NEWLINK) {
                nn_link_entry *e = nn_map_put(links, &link.ifindex, NULL);
                if (e != NULL)
                    *e = link;
            }
            else
                nn_map_del(links, &link.ifindex);
        }
        break;
    }
    case RTM_NEWADDR:
    case RTM_DELADDR: {
        nn_addr_row row, row2;
        int rc = nn_nl_parse_addr(nlh, links, &row);
        int rc2 = nn_nl_parse_addr(nlh, links, &row2);
        FZ_CHECK(rc >= -1 && rc <= 1 && rc == rc2, "parse_addr: result");
        if (rc == 1) {
            fz_check_addr_row(&row);
            FZ_CHECK(row.interface_luid == nn_luid_for_index(links, row.interface_index), "parse_addr: LUID");
            FZ_CHECK(memcmp(&row, &row2, sizeof row) == 0, "parse_addr: two parses differ");
        }
        break;
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
        /* "writes at most max rows": a canary after the room given */
        nn_route_row small[2], canary;
        memset(&canary, 0xa5, sizeof canary);
        small[1] = canary;
        int n = nn_nl_parse_route(nlh, links, small, 1);
        FZ_CHECK(n >= -1, "parse_route: result");
        FZ_CHECK(memcmp(&small[1], &canary, sizeof canary) == 0, "parse_route: wrote more rows than max");
        FZ_CHECK(nn_nl_parse_route(nlh, links, NULL, 0) == n, "parse_route: max 0 counts differently");
        if (n <= 0)
            break;
        nn_route_row *rows = malloc((size_t)n * sizeof *rows);
        if (rows == NULL)
            break;
        FZ_CHECK(nn_nl_parse_route(nlh, links, rows, (size_t)n) == n, "parse_route: second parse differs");
        FZ_CHECK(memcmp(&rows[0], &small[0], sizeof rows[0]) == 0, "parse_route: first row differs");
        for (int i = 0; i < n; i++) {
            fz_check_route_row(&rows[i]);
            FZ_CHECK(rows[i].interface_luid == nn_luid_for_index(links, rows[i].interface_index),
                     "parse_route: LUID");
            /* the route's identity is shared by its next hops */
            FZ_CHECK(rows[i].metric == rows[0].metric && rows[i].linux_table == rows[0].linux_table &&
                         rows[i].destination_prefix_length == rows[0].destination_prefix_length &&
                         memcmp(&rows[i].destination_prefix, &rows[0].destination_prefix,
                                sizeof rows[0].destination_prefix) == 0,
                     "parse_route: next hops of different routes");
        }
        free(rows);
        break;
    }
    default:
        break;
    }
}

static void fz_stage_parsers(void)
{
    nn_map links;
    size_t pos = 0;

    nn_map_init(&links, sizeof(uint32_t), sizeof(nn_link_entry));
    while (fz.size - pos >= NLMSG_HDRLEN) {
        struct nlmsghdr h;
        memcpy(&h, fz.data + pos, sizeof h);
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > fz.size - pos)
            break;
        /* each message alone in a buffer of exactly its length: ASan sees any overread */
        struct nlmsghdr *m = malloc(h.nlmsg_len);
        if (m == NULL)
            break;
        memcpy(m, fz.data + pos, h.nlmsg_len);
        fz_parse_one(m, &links);
        free(m);
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step >= fz.size - pos)
            break;
        pos += step;
    }
    nn_map_free(&links);
}

/* ---------------------------------------------------------------- 2. the message walks */

typedef struct {
    uint32_t portid, seq;
    int replies, others;
    nn_map links;
} fz_walk_ctx;

static int fz_inside(const struct nlmsghdr *nlh, const unsigned char *dg, size_t dglen)
{
    const unsigned char *p = (const unsigned char *)nlh;
    return dg != NULL && p >= dg && p + NLMSG_HDRLEN <= dg + dglen && nlh->nlmsg_len >= NLMSG_HDRLEN &&
           nlh->nlmsg_len <= (size_t)(dg + dglen - p);
}

static void fz_check_inside(const struct nlmsghdr *nlh)
{
    int inside = fz_inside(nlh, fz.dg, fz.dglen);
    for (size_t i = 0; i < fz.nbatch && !inside; i++)
        inside = fz_inside(nlh, fz.batch[i], fz.batchlen[i]);
    FZ_CHECK(inside, "a message handed to a callback is not inside its datagram");
}

static int fz_dump_cb(void *vctx, const struct nlmsghdr *nlh)
{
    fz_walk_ctx *c = vctx;
    fz_check_inside(nlh);
    /* a reply of the request sent last: one refused (EBUSY, ENOBUFS, no answer) may be sent again */
    FZ_CHECK(nlh->nlmsg_pid == c->portid && nlh->nlmsg_seq == fz.request_seq && nlh->nlmsg_seq - c->seq < 64,
             "dump callback: not a reply of this dump");
    FZ_CHECK(nlh->nlmsg_type >= NLMSG_MIN_TYPE, "dump callback: a control message");
    FZ_CHECK(!(nlh->nlmsg_flags & NLM_F_DUMP_INTR), "dump callback: a reply of an interrupted dump");
    c->replies++;
    fz_parse_one(nlh, &c->links);
    return 0;
}

static int fz_other_cb(void *vctx, const struct nlmsghdr *nlh)
{
    fz_walk_ctx *c = vctx;
    fz_check_inside(nlh);
    FZ_CHECK(nlh->nlmsg_pid != c->portid, "dump: a reply of ours passed on as a notification");
    FZ_CHECK(nlh->nlmsg_type >= NLMSG_MIN_TYPE, "dump: a control message passed on as a notification");
    c->others++;
    return 0;
}

static int fz_read_cb(void *vctx, const struct nlmsghdr *nlh)
{
    fz_walk_ctx *c = vctx;
    fz_check_inside(nlh);
    FZ_CHECK(nlh->nlmsg_pid != c->portid, "read: a reply to our own request passed on");
    FZ_CHECK(nlh->nlmsg_type >= NLMSG_MIN_TYPE, "read: a control message passed on");
    c->others++;
    fz_parse_one(nlh, &c->links);
    return 0;
}

static void fz_stage_walks(void)
{
    nn_nlsock s;
    nn_error err = {0, 0, NULL, NULL};
    fz_walk_ctx c;

    memset(&c, 0, sizeof c);
    nn_map_init(&c.links, sizeof(uint32_t), sizeof(nn_link_entry));
    if (nn_nl_open(&s, NULL, 0, 0, &err) == 0) {
        c.portid = s.portid;
        c.seq = s.seq + 1;
        int rc = nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, fz_dump_cb, fz_other_cb, &c, &err);
        FZ_CHECK(rc == 0 || rc == NN_DUMP_INTR || (rc == -1 && err.errnum != 0 && err.call != NULL),
                 "nn_nl_dump: result");
        nn_nl_close(&s);
    }
    nn_map_clear(&c.links);
    if (nn_nl_open(&s, NULL, 0, 0, &err) == 0) {
        /* a buffer of exactly the largest datagram: ASan sees a walk past its end */
        size_t size = fz.maxchunk ? fz.maxchunk : 1;
        void *buf = malloc(size);
        c.portid = s.portid;
        for (int i = 0; buf != NULL && i <= FZ_MAX_CHUNKS; i++) {
            int rc = nn_nl_read(&s, buf, size, fz_read_cb, &c, &err);
            FZ_CHECK(rc >= 0 || (rc == -1 && err.errnum != 0), "nn_nl_read: result");
            if (rc == 0)
                break;
        }
        free(buf);
        nn_nl_close(&s);
    }
    nn_map_free(&c.links);
}

/* ---------------------------------------------------------------- 3. tables */

static void fz_stage_tables(void)
{
    static const nn_kind kinds[] = {NN_KIND_INTERFACE, NN_KIND_ADDRESS, NN_KIND_ROUTE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        nn_table t;
        nn_error err = {0, 0, NULL, NULL};
        int rc = nn_nl_get_table(kinds[k], AF_UNSPEC, &t, &err);
        FZ_CHECK(rc == 0 || (rc == -1 && t.count == 0), "nn_nl_get_table: result");
        FZ_CHECK(t.kind == kinds[k] && t.row_size == nn_row_size(kinds[k]) && t.count <= t.capacity,
                 "nn_nl_get_table: table");
        for (size_t i = 0; i < t.count; i++)
            fz_check_row(kinds[k], (const unsigned char *)t.rows + i * t.row_size);
        nn_table_free(&t);
    }
}

/* ---------------------------------------------------------------- 4. registrations */

/* What the consumer of the events knows: the identity of every row reported and not deleted. */
typedef struct {
    unsigned char b[64];
} fz_key;

static nn_map fz_shadow;
static int fz_tracking;
static long fz_events;
/* the interface events, for the scenarios */
static struct {
    nn_notification_type type;
    uint32_t ifindex;
    uint16_t family;
} fz_log[32];
static size_t fz_nlog;

static void fz_key_of(nn_kind kind, const void *row, fz_key *k)
{
    memset(k, 0, sizeof *k);
    if (kind == NN_KIND_INTERFACE) {
        const nn_if_row *r = row;
        memcpy(k->b, &r->interface_index, 4);
        memcpy(k->b + 4, &r->family, 2);
    }
    else if (kind == NN_KIND_ROUTE) {
        const nn_route_row *r = row;
        memcpy(k->b, &r->linux_table, 4);
        memcpy(k->b + 4, &r->metric, 4);
        memcpy(k->b + 8, &r->destination_prefix.family, 2);
        k->b[10] = r->destination_prefix_length;
        k->b[11] = r->linux_tos;
        memcpy(k->b + 12, r->destination_prefix.addr, 16);
        memcpy(k->b + 28, &r->interface_index, 4);
        memcpy(k->b + 32, &r->next_hop, sizeof r->next_hop);
    }
    else {
        const nn_addr_row *r = row;
        memcpy(k->b, &r->interface_index, 4);
        memcpy(k->b + 4, &r->address.family, 2);
        k->b[6] = r->on_link_prefix_length;
        memcpy(k->b + 8, r->address.addr, 16);
    }
}

int nn_core_session_deliver(nn_session *s, nn_reg *reg, const nn_event *ev)
{
    fz_key k;
    s->reg = reg;
    fz_events++;
    if (ev->type == NN_INITIAL_NOTIFICATION)
        return 0;
    FZ_CHECK(reg->kind != NN_KIND_STABLE, "a stable-table registration emitted a row");
    FZ_CHECK(ev->row != NULL, "an event without a row");
    fz_check_row(reg->kind, ev->row);
    if (reg->kind == NN_KIND_INTERFACE && fz_nlog < sizeof fz_log / sizeof fz_log[0]) {
        const nn_if_row *r = ev->row;
        fz_log[fz_nlog].type = ev->type;
        fz_log[fz_nlog].ifindex = r->interface_index;
        fz_log[fz_nlog++].family = r->family;
    }
    if (!fz_tracking)
        return 0;
    fz_key_of(reg->kind, ev->row, &k);
    int known = nn_map_get(&fz_shadow, &k) != NULL;
    switch (ev->type) {
    case NN_ADD_INSTANCE:
        FZ_CHECK(!known, "an add of a row already reported");
        nn_map_put(&fz_shadow, &k, NULL);
        break;
    case NN_DELETE_INSTANCE:
        FZ_CHECK(known, "a delete of a row never reported");
        nn_map_del(&fz_shadow, &k);
        break;
    case NN_PARAMETER_NOTIFICATION:
        FZ_CHECK(known, "a change of a row never reported");
        break;
    default:
        fz_fail("an unknown event type");
    }
    return 0;
}

void nn_core_session_end(nn_session *s)
{
    s->reg = NULL;
}

int nn_core_deliver(nn_reg *reg, const nn_event *ev)
{
    FZ_CHECK(reg->kind == NN_KIND_STABLE && ev->table != NULL, "nn_core_deliver: only stable tables");
    for (size_t i = 0; i < ev->table->count; i++)
        fz_check_addr_row((const nn_addr_row *)((const unsigned char *)ev->table->rows + i * ev->table->row_size));
    return 0;
}

void nn_core_report_error(nn_reg *reg, const nn_error *err)
{
    (void)reg;
    FZ_CHECK(err->call != NULL, "an error report without the failed call");
}

void nn_core_thread_attach(void)
{
}

void nn_reg_incref(nn_reg *reg)
{
    reg->refcnt++;
}

void nn_reg_decref(nn_reg *reg)
{
    reg->refcnt--;
}

/* Calls f for every row of the cache; checks the route entries' own invariants. */
static void fz_cache_rows(nn_lreg *lr, void (*f)(nn_kind, const void *))
{
    nn_kind kind = lr->reg->kind;
    size_t it = 0;
    void *e;
    while ((e = nn_map_next(&lr->cache, &it)) != NULL) {
        if (kind == NN_KIND_INTERFACE) {
            const nn_if_entry *ie = e;
            FZ_CHECK(ie->key.ifindex == ie->row.interface_index && ie->key.family == ie->row.family,
                     "interface cache: key and row differ");
            f(kind, &ie->row);
        }
        else if (kind == NN_KIND_ROUTE) {
            const nn_route_entry *re = e;
            FZ_CHECK(re->count > 0 && re->rows != NULL, "route cache: an empty entry");
            for (size_t i = 0; i < re->count; i++) {
                const nn_route_row *r = &re->rows[i];
                FZ_CHECK(r->linux_table == re->key.table && r->metric == re->key.metric &&
                             r->destination_prefix.family == re->key.family &&
                             r->destination_prefix_length == re->key.prefix_length,
                         "route cache: a row under another route's key");
                for (size_t j = 0; j < i; j++)
                    FZ_CHECK(!nn_same_hop(&re->rows[j], r), "route cache: the same next hop twice");
                f(kind, r);
            }
        }
        else {
            const nn_addr_entry *ae = e;
            FZ_CHECK(ae->key.ifindex == ae->row.interface_index && ae->key.family == ae->row.address.family,
                     "address cache: key and row differ");
            f(kind, &ae->row);
        }
    }
}

static size_t fz_cache_count;

static void fz_shadow_add(nn_kind kind, const void *row)
{
    fz_key k;
    fz_check_row(kind, row);
    fz_key_of(kind, row, &k);
    nn_map_put(&fz_shadow, &k, NULL);
}

static void fz_shadow_has(nn_kind kind, const void *row)
{
    fz_key k;
    fz_key_of(kind, row, &k);
    FZ_CHECK(nn_map_get(&fz_shadow, &k) != NULL, "the cache has a row the events never reported");
    fz_cache_count++;
}

static void fz_stage_registration(nn_kind kind, int family)
{
    static unsigned char *readbuf;
    nn_reg reg;
    nn_error err = {0, 0, NULL, NULL};
    nn_lreg *lr;

    if (readbuf == NULL && (readbuf = malloc(NN_READ_BUF)) == NULL)
        return;
    memset(&reg, 0, sizeof reg);
    reg.kind = kind;
    reg.family = family;
    lr = calloc(1, sizeof *lr);
    if (lr == NULL)
        return;
    /* as nn_backend_register sets it up */
    lr->reg = &reg;
    lr->sock.fd = -1;
    lr->dump_sock.fd = -1;
    nn_map_init(&lr->links, sizeof(uint32_t), sizeof(nn_link_entry));
    if (kind == NN_KIND_INTERFACE)
        nn_map_init(&lr->cache, sizeof(nn_if_key), sizeof(nn_if_entry));
    else if (kind == NN_KIND_ROUTE)
        nn_map_init(&lr->cache, sizeof(nn_route_key), sizeof(nn_route_entry));
    else
        nn_map_init(&lr->cache, sizeof(nn_addr_key), sizeof(nn_addr_entry));

    /* the initial dump; the registration would fail if it does, but notifications on a
     * partly filled cache must be safe too, so the run goes on */
    int rc = nn_lreg_fill(lr, &err);
    FZ_CHECK(rc == 0 || (rc == -1 && err.call != NULL), "nn_lreg_fill: result");
    if (lr->sock.fd < 0 || lr->dump_sock.fd < 0)
        goto done;
    nn_map_init(&fz_shadow, sizeof(fz_key), sizeof(fz_key));
    fz_cache_rows(lr, fz_shadow_add);
    fz_tracking = kind != NN_KIND_STABLE;

    /* notifications: every datagram again, now on the subscribed socket (another port
     * id, so that dump replies read as notifications), as the dispatcher reads them */
    lr->sock.portid = fz.portid + 1;
    fz.socks[lr->dump_sock.fd - FZ_FD_BASE].cursor = 0;
    for (int i = 0; i <= FZ_MAX_CHUNKS && !lr->stopped; i++) {
        size_t before = fz.socks[lr->sock.fd - FZ_FD_BASE].cursor;
        nn_readable(lr, readbuf);
        if (fz.socks[lr->sock.fd - FZ_FD_BASE].cursor == before)
            break;
    }
    /* the overflow repair (scheduled by an ENOBUFS), else a resync all the same: the
     * dump's rows against the cache after the notifications */
    fz.socks[lr->dump_sock.fd - FZ_FD_BASE].cursor = 0;
    lr->dump_sock.seq = 0;
    if (lr->needs_repair)
        nn_repair_pass();
    else if (!lr->stopped)
        nn_resync(lr, &err);
    if (lr->needs_repair)
        nn_unschedule_repair(lr);
    FZ_CHECK(nn_repairs == NULL, "a repair left scheduled");

    if (fz_tracking && !lr->stopped) {
        fz_cache_count = 0;
        fz_cache_rows(lr, fz_shadow_has);
        FZ_CHECK(fz_cache_count == fz_shadow.count, "the events reported a row the cache does not have");
    }
    fz_tracking = 0;
    nn_map_free(&fz_shadow);
done:
    nn_lreg_free(lr);
}

/* ---------------------------------------------------------------- entry point */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_load(data, size);
    fz_stage_parsers();
    fz_stage_walks();
    fz_check_closed("the message walks");
    fz_stage_tables();
    fz_check_closed("nn_nl_get_table");
    fz_stage_registration(NN_KIND_INTERFACE, AF_UNSPEC);
    fz_stage_registration(NN_KIND_ADDRESS, AF_UNSPEC);
    fz_stage_registration(NN_KIND_ROUTE, AF_UNSPEC);
    fz_stage_registration(NN_KIND_STABLE, AF_UNSPEC);
    /* a family filter too: which one depends on the input */
    fz_stage_registration(size & 1 ? NN_KIND_ROUTE : NN_KIND_ADDRESS, size & 2 ? AF_INET6 : AF_INET);
    fz_check_closed("the registrations");
    return 0;
}

/* ---------------------------------------------------------------- scenarios */

/* Deterministic runs of the registration code over crafted kernel streams, for what no
 * invariant of the fuzzer can see. Run by the replay driver (nl_replay --scenarios). */

typedef struct {
    unsigned char b[8192];
    size_t len;
} fz_stream;

static size_t fz_put(fz_stream *st, const void *p, size_t n)
{
    size_t at = st->len;
    if (n)
        memcpy(st->b + st->len, p, n);
    st->len += n;
    while (st->len % 4)
        st->b[st->len++] = 0;
    return at;
}

static size_t fz_put_attr(fz_stream *st, uint16_t type, const void *data, size_t n)
{
    struct rtattr a = {(unsigned short)RTA_LENGTH(n), type};
    size_t at = fz_put(st, &a, sizeof a);
    if (n)
        fz_put(st, data, n);
    return at;
}

static void fz_close_attr(fz_stream *st, size_t at)
{
    unsigned short l = (unsigned short)(st->len - at);
    memcpy(st->b + at, &l, sizeof l);
}

static void fz_close_msg(fz_stream *st, size_t at)
{
    uint32_t l = (uint32_t)(st->len - at);
    memcpy(st->b + at, &l, sizeof l);
}

/* A full link message (IFLA_AF_SPEC with AF_INET, and AF_INET6 when v6). */
static void fz_put_link(fz_stream *st, int ifindex, uint32_t mtu, int v6, uint32_t seq, uint32_t pid, uint16_t flags)
{
    struct nlmsghdr h = {0, RTM_NEWLINK, flags, seq, pid};
    struct ifinfomsg ifi;
    uint32_t conf4[4] = {0};
    int32_t conf6[27] = {0}; /* up to DEVCONF_DISABLE_IPV6 (26): IPv6 on */
    uint32_t zero = 0;

    memset(&ifi, 0, sizeof ifi);
    ifi.ifi_type = ARPHRD_ETHER;
    ifi.ifi_index = ifindex;
    ifi.ifi_flags = IFF_UP | IFF_RUNNING;
    size_t at = fz_put(st, &h, sizeof h);
    fz_put(st, &ifi, sizeof ifi);
    fz_put_attr(st, IFLA_MTU, &mtu, sizeof mtu);
    size_t spec = fz_put_attr(st, IFLA_AF_SPEC, NULL, 0);
    size_t in4 = fz_put_attr(st, AF_INET, NULL, 0);
    fz_put_attr(st, 1 /* IFLA_INET_CONF */, conf4, sizeof conf4);
    fz_close_attr(st, in4);
    if (v6) {
        size_t in6 = fz_put_attr(st, AF_INET6, NULL, 0);
        fz_put_attr(st, 1 /* IFLA_INET6_FLAGS */, &zero, sizeof zero);
        fz_put_attr(st, 2 /* IFLA_INET6_CONF */, conf6, sizeof conf6);
        fz_close_attr(st, in6);
    }
    fz_close_attr(st, spec);
    fz_close_msg(st, at);
}

static void fz_put_error(fz_stream *st, uint16_t type, int32_t error, uint32_t seq, uint32_t pid, uint16_t flags)
{
    struct nlmsghdr h = {NLMSG_LENGTH(4), type, flags, seq, pid};
    fz_put(st, &h, sizeof h);
    fz_put(st, &error, sizeof error);
}

static void fz_put_control(fz_stream *st, uint16_t type, uint32_t seq, uint32_t pid, uint16_t flags)
{
    fz_put_error(st, type, 0, seq, pid, flags);
}

static int fz_logged(nn_notification_type type, uint32_t ifindex, uint16_t family)
{
    for (size_t i = 0; i < fz_nlog; i++)
        if (fz_log[i].type == type && fz_log[i].ifindex == ifindex && fz_log[i].family == family)
            return 1;
    return 0;
}

/* The links are read again after an MTU climbs back to 1280 (the kernel brings IPv6 up
 * without a message). When that dump is interrupted, the replies after the interruption
 * are dropped, so the link may not have been read: it must be read again later. */
static int fz_scenario_reread_interrupted(void)
{
    static fz_stream st;
    static unsigned char buf[NN_READ_BUF];
    const uint32_t me = 0x1234, multi = NLM_F_MULTI, intr = NLM_F_MULTI | NLM_F_DUMP_INTR;
    nn_reg reg;
    nn_error err = {0, 0, NULL, NULL};
    nn_lreg *lr;
    int failures = 0;

    memset(&st, 0, sizeof st);
    /* 0: the initial link dump: link 4 at MTU 1000 (no IPv6), link 5 */
    fz_put_link(&st, 4, 1000, 0, 1, me, multi);
    fz_put_link(&st, 5, 1500, 1, 1, me, multi);
    fz_put_control(&st, NLMSG_DONE, 1, me, multi);
    /* 1: notification: link 4 at MTU 1500, IPv6 not up yet */
    fz_put_link(&st, 4, 1500, 0, 0, 0, 0);
    fz_put_control(&st, NLMSG_ERROR, 0, 0, 0);
    /* 2: the links read again, interrupted by a change of link 5 */
    fz_put_link(&st, 5, 1500, 1, 2, me, intr);
    fz_put_link(&st, 4, 1500, 1, 2, me, intr);
    fz_put_control(&st, NLMSG_DONE, 2, me, intr);
    /* 3: that change's own notification */
    fz_put_link(&st, 5, 1400, 1, 0, 0, 0);
    fz_put_control(&st, NLMSG_ERROR, 0, 0, 0);
    /* 4: the links read again, completely */
    fz_put_link(&st, 5, 1400, 1, 3, me, multi);
    fz_put_link(&st, 4, 1500, 1, 3, me, multi);
    fz_put_control(&st, NLMSG_DONE, 3, me, multi);
    fz_load(st.b, st.len);
    if (fz.nchunks != 5 || fz.portid != me) {
        fprintf(stderr, "scenario: the stream has %zu datagrams\n", fz.nchunks);
        return 1;
    }

    memset(&reg, 0, sizeof reg);
    reg.kind = NN_KIND_INTERFACE;
    reg.family = AF_UNSPEC;
    lr = calloc(1, sizeof *lr);
    if (lr == NULL)
        return 1;
    lr->reg = &reg;
    lr->sock.fd = lr->dump_sock.fd = -1;
    nn_map_init(&lr->links, sizeof(uint32_t), sizeof(nn_link_entry));
    nn_map_init(&lr->cache, sizeof(nn_if_key), sizeof(nn_if_entry));
    fz_sock *sock = NULL, *dump = NULL;
    if (nn_lreg_fill(lr, &err) == 0) {
        sock = &fz.socks[lr->sock.fd - FZ_FD_BASE];
        dump = &fz.socks[lr->dump_sock.fd - FZ_FD_BASE];
    }
    if (sock == NULL || dump == NULL || dump->cursor != 1) {
        fprintf(stderr, "scenario: the initial dump failed\n");
        failures++;
        goto done;
    }
    fz_nlog = 0;
    sock->cursor = 1, sock->limit = 2;
    dump->cursor = 2, dump->limit = 3;
    nn_readable(lr, buf);
    if (dump->cursor != 3 || fz_logged(NN_ADD_INSTANCE, 4, AF_INET6)) {
        fprintf(stderr, "scenario: the interrupted reread did not run as crafted\n");
        failures++;
    }
    sock->cursor = 3, sock->limit = 4;
    dump->cursor = 4, dump->limit = 5;
    nn_readable(lr, buf);
    if (!fz_logged(NN_ADD_INSTANCE, 4, AF_INET6)) {
        fprintf(stderr, "scenario: after an interrupted reread of the links, link 4's IPv6 row was never "
                        "reported (the links were not read again)\n");
        failures++;
    }
done:
    nn_lreg_free(lr);
    fz_check_closed("the scenario");
    printf("scenario reread_interrupted: %s\n", failures ? "FAILED" : "ok");
    return failures;
}

static int fz_count_cb(void *vctx, const struct nlmsghdr *nlh)
{
    const struct ifinfomsg *ifi = (const struct ifinfomsg *)NLMSG_DATA(nlh);
    if (nlh->nlmsg_type == RTM_NEWLINK && ifi->ifi_index == 4)
        ++*(int *)vctx;
    else
        *(int *)vctx += 1000; /* a reply that is not the current request's */
    return 0;
}

/* A dump request the kernel refused: for a full queue (ENOBUFS: it holds the dump and sends
 * it, with the request's number, as the queue is read), or because an earlier dump of the
 * socket still ran (EBUSY: that one is read out, then the request is sent again). */
static int fz_scenario_dump_refused(void)
{
    static fz_stream st;
    const uint32_t me = 0x1234, multi = NLM_F_MULTI;
    int failures = 0;

    for (int busy = 0; busy < 2; busy++) {
        nn_nlsock s;
        nn_error err = {0, 0, NULL, NULL};
        int links = 0, rc = -2;

        memset(&st, 0, sizeof st);
        fz_put_error(&st, NLMSG_ERROR, busy ? -EBUSY : -ENOBUFS, 1, me, 0);
        if (busy) { /* the earlier dump, to its end */
            fz_put_link(&st, 9, 1500, 1, 77, me, multi);
            fz_put_control(&st, NLMSG_DONE, 77, me, multi);
        }
        fz_put_link(&st, 4, 1500, 1, busy ? 2 : 1, me, multi);
        fz_put_control(&st, NLMSG_DONE, busy ? 2 : 1, me, multi);
        fz_load(st.b, st.len);
        if (nn_nl_open(&s, NULL, 0, 0, &err) == 0) {
            rc = nn_nl_dump(&s, RTM_GETLINK, AF_UNSPEC, fz_count_cb, NULL, &links, &err);
            nn_nl_close(&s);
        }
        if (rc != 0 || links != 1 || fz.requests != (unsigned)(busy ? 2 : 1)) {
            fprintf(stderr, "scenario: a dump refused with %s: rc %d (errno %d), replies %d, requests %u\n",
                    busy ? "EBUSY" : "ENOBUFS", rc, rc < 0 ? err.errnum : 0, links, fz.requests);
            failures++;
        }
    }
    fz_check_closed("the scenario");
    printf("scenario dump_refused: %s\n", failures ? "FAILED" : "ok");
    return failures;
}

int nl_fuzz_scenarios(void);

int nl_fuzz_scenarios(void)
{
    int failures = fz_scenario_reread_interrupted();
    return failures + fz_scenario_dump_refused();
}
