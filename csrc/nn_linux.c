/*
 * nn_linux.c - the netioapi notification contract over rtnetlink.
 *
 * Every registration owns a netlink socket, created by the registering thread (so it
 * watches that thread's network namespace) and subscribed before the initial dump, so
 * that no change between the dump and the first read is lost. The dump fills the
 * registration's cache (what it knows of the kernel: links, and the rows of its kind),
 * which tells ADD_INSTANCE from PARAMETER_NOTIFICATION and gives a delete its last row.
 *
 * One dispatcher thread per process serves every registration (epoll over their
 * sockets), so the thread count does not grow with registrations, and callbacks of one
 * registration are serialized by construction. Only the dispatcher touches a started
 * registration's socket and cache; other threads hand it additions and removals through
 * two queues and an eventfd.
 */
#include "netnotify.h"
#include "nn_netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/sock_diag.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NN_RCVBUF (64 * 1024 * 1024) /* receive buffer asked for: a 100,000-route burst fits (root;
                                        * others get the system's cap, and overflows are repaired) */
#define NN_READ_BUF (256 * 1024)     /* one read: a dump part or a notification */
#define NN_HOLD_MS 2                 /* a consumer keeps its socket while it reads again within this */
#define NN_HOLD_NS ((uint64_t)NN_HOLD_MS * 1000000u)
#ifndef SO_MEMINFO
#  define SO_MEMINFO 55
#endif
#define NN_DUMP_ATTEMPTS 8           /* a dump interrupted by changes is retried */
#define NN_STACK_HOPS 16             /* next hops parsed without allocating */

/* ------------------------------------------------------------------ cache entries */

typedef struct {
    uint32_t ifindex;
    uint16_t family;
    uint16_t pad;
} nn_if_key;

typedef struct {
    nn_if_key key;
    nn_if_row row;
} nn_if_entry;

typedef struct {
    uint32_t ifindex;
    uint16_t family;
    uint8_t prefix_length;
    uint8_t pad;
    uint8_t addr[16];
} nn_addr_key;

typedef struct {
    nn_addr_key key;
    nn_addr_row row;
} nn_addr_entry;

/* The kernel's identity of a route; its next hops are the rows. */
typedef struct {
    uint32_t table;
    uint32_t metric;
    uint16_t family;
    uint8_t prefix_length;
    uint8_t tos;
    uint8_t dst[16];
} nn_route_key;

typedef struct {
    nn_route_key key;
    size_t count;
    nn_route_row *rows; /* malloc'd */
} nn_route_entry;

/* ------------------------------------------------------------------ registrations */

typedef struct nn_lreg nn_lreg;
struct nn_lreg {
    nn_reg *reg;
    nn_nlsock sock;      /* subscribed: the notifications */
    nn_nlsock dump_sock; /* unsubscribed: dumps, whose replies never compete with notifications */
    unsigned groups[3];  /* what sock subscribes to, and its buffer: a repair moves them to dump_sock */
    size_t ngroups;
    int rcvbuf;
    nn_map links; /* nn_link_entry by ifindex */
    nn_map cache; /* nn_if_entry / nn_addr_entry / nn_route_entry */
    int silent;   /* filling the cache from a dump: no callbacks */
    int stopped;  /* delivery refused: the registration is cancelled */
    int reread_links; /* a link message was stale: dump the links again */
    int needs_repair; /* the socket overflowed: on the dispatcher's repair list */
    uint32_t drops;   /* the kernel's count of notifications dropped on sock, last seen */
    int suspect;      /* an overflow was seen and the queue has not drained since: watch drops */
    nn_lreg *repair_next;
    unsigned generation; /* fork generation that created it */
    int in_epoll;     /* sock is in the dispatcher's epoll set (nn_set_in_epoll) */
    int can_wait;     /* both sockets are blocking: the dispatcher may sleep in a read of sock */
    /* Reading on the consumer's thread (nn_backend_read_here), under nn_disp.lock: */
    int readable_here; /* asked for once by a consumer ... */
    int here_ok;       /* ... and seen by the dispatcher, which never sleeps in this socket's read
                        * any more, and reads it only under `reading` */
    int here;          /* a consumer thread reads it now: the dispatcher leaves it alone */
    int reading;       /* the dispatcher reads it now: a consumer waits for the dispatcher */
    int repair_wanted; /* the consumer's read saw an overflow: the dispatcher repairs */
    nn_lreg *rqnext;   /* nn_disp.repair_reqs */
    nn_session *sess;  /* the delivery session of the thread that reads (NULL: the dispatcher's) */
    unsigned char *here_buf; /* the consumer's read buffer (NN_READ_BUF), made on first use */
    int lent_epfd;     /* lent to an event loop (nn_backend_lend): sock is in this epoll set, not
                        * the dispatcher's, until the loop's read or nn_backend_lend_end; -1 */
    pthread_t here_thread; /* the thread in the consumer's read (while `here`) */
    /* A consumer reading a stream keeps the socket between its reads (nn_hold_check): */
    int holding;       /* in that regime: kept (`held`) or being read by the consumer that keeps it */
    int held;          /* kept, out of the dispatcher's epoll set, and nobody reads it now */
    int give_back_after; /* the dispatcher saw the keeper idle in its read: give it back after it */
    int poked;         /* events reached the consumer's queue as it was about to read (nn_backend_poke_here) */
    unsigned here_reads; /* the consumer's reads so far; hold_seen: at the dispatcher's last look */
    unsigned hold_seen;
    uint64_t here_returned; /* CLOCK_MONOTONIC ns when the consumer's last read returned */
    int live;          /* started by the dispatcher, not stopped yet (under nn_disp.lock) */
    int cancelling;    /* on the remove queue: no consumer may start reading it (nn_disp.lock) */
    nn_lreg *qnext;   /* add queue */
    nn_lreg *rnext;   /* remove queue: its own link, since a registration can be on both */
    nn_lreg *anext, *aprev; /* every started registration (for fork) */
};

/* The dispatcher's open delivery session, and the registrations whose socket overflowed
 * and still need a repair: only the dispatcher thread uses them. */
static nn_session nn_sess;
static nn_lreg *nn_repairs;
/* How many registrations are in the epoll set, and the one when there is one (NULL: not
 * looked up yet): the dispatcher then sleeps in a read of its socket (nn_dispatcher). */
static int nn_nactive;
static nn_lreg *nn_single;

static struct {
    pthread_mutex_t lock; /* guards the queues, the list and the fields below */
    pthread_cond_t attached_cond;
    int attached; /* the dispatcher thread has its Python thread state */
    int started;
    int epfd, evfd;
    unsigned generation;
    nn_lreg *adds, *removes;
    nn_lreg *all;
    nn_lreg *asleep; /* the registration in whose read the dispatcher sleeps, or NULL */
    pthread_cond_t woken;  /* a consumer stopped reading a socket (lr->here) */
    nn_lreg *repair_reqs;  /* overflows a consumer's read saw, for the dispatcher to repair */
    int here_asked;        /* a registration's readable_here is new: the dispatcher acknowledges */
    int holding;           /* a consumer keeps its socket: the dispatcher looks every NN_HOLD_MS */
    uint64_t hold_next;    /* when it looks next (0: not set yet) */
} nn_disp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, -1, -1, 0, NULL, NULL,
             NULL, NULL, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0};

/* The session the events of lr are delivered in: the dispatcher's, or a consumer's. */
#define NN_SESS(lr) ((lr)->sess != NULL ? (lr)->sess : &nn_sess)

static int nn_family_wanted(const nn_lreg *lr, int family)
{
    return lr->reg->family == AF_UNSPEC || lr->reg->family == family;
}

/* Hands one event to the core; returns non-zero when delivery must stop. The GIL stays
 * held for the events that follow (a delivery session): the dispatcher ends it. */
/* gil: returns-held */
static int nn_emit(nn_lreg *lr, nn_notification_type type, const void *row)
{
    nn_event ev;

    if (lr->silent)
        return 0;
    if (lr->stopped)
        return 1;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.row = row;
    if (nn_core_session_deliver(NN_SESS(lr), lr->reg, &ev) < 0) {
        lr->stopped = 1;
        return 1;
    }
    return 0;
}

static int nn_purge_ipv4_routes(nn_lreg *lr, uint32_t ifindex, int keep_local);

/* ------------------------------------------------------------------ links, interface rows */

/* gil: returns-held */
static int nn_on_link(nn_lreg *lr, const struct nlmsghdr *nlh)
{
    static const int families[2] = {AF_INET, AF_INET6};
    const struct ifinfomsg *ifi;
    nn_link_entry link, *known;
    nn_if_row rows[2];
    int nrows = 0, f, i, has_v6 = 0;

    if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
        return 0;
    ifi = (const struct ifinfomsg *)NLMSG_DATA(nlh);
    if (ifi->ifi_family != AF_UNSPEC) /* bridge port and per-family messages repeat a link */
        return 0;
    if (nn_nl_parse_link(nlh, &link, rows, &nrows) != 0)
        return 0;
    for (i = 0; i < nrows; i++)
        has_v6 |= rows[i].family == AF_INET6;
    known = (nn_link_entry *)nn_map_get(&lr->links, &link.ifindex);
    /* When the MTU climbs back to the IPv6 minimum, the kernel brings IPv6 up after it
     * sent the link message, and sends no other: read the links again afterwards. */
    if (nlh->nlmsg_type == RTM_NEWLINK && known != NULL && known->mtu < NN_IPV6_MIN_MTU &&
        link.mtu >= NN_IPV6_MIN_MTU && !has_v6 && !lr->silent)
        lr->reread_links = 1;
    if (nlh->nlmsg_type == RTM_DELLINK) {
        nn_map_del(&lr->links, &link.ifindex);
        nrows = 0;
    }
    else {
        nn_link_entry *e = (nn_link_entry *)nn_map_put(&lr->links, &link.ifindex, NULL);
        if (e != NULL)
            *e = link;
    }
    /* The kernel flushes the IPv4 routes of a link that goes down or away without
     * telling anyone (no RTM_DELROUTE): report their deletion ourselves. Going down
     * spares the local routes of its addresses (their next hop has host scope). */
    if (lr->reg->kind == NN_KIND_ROUTE && (nlh->nlmsg_type == RTM_DELLINK || !(ifi->ifi_flags & IFF_UP)))
        return nn_purge_ipv4_routes(lr, link.ifindex, nlh->nlmsg_type != RTM_DELLINK);
    if (lr->reg->kind != NN_KIND_INTERFACE)
        return 0;
    for (f = 0; f < 2; f++) {
        const nn_if_row *row = NULL;
        nn_if_key key;
        nn_if_entry *e;
        nn_if_row old;

        if (!nn_family_wanted(lr, families[f]))
            continue;
        for (i = 0; i < nrows; i++)
            if (rows[i].family == families[f])
                row = &rows[i];
        memset(&key, 0, sizeof key);
        key.ifindex = link.ifindex;
        key.family = (uint16_t)families[f];
        e = (nn_if_entry *)nn_map_get(&lr->cache, &key);
        if (row != NULL && e == NULL) {
            e = (nn_if_entry *)nn_map_put(&lr->cache, &key, NULL);
            if (e == NULL)
                continue;
            e->row = *row;
            if (nn_emit(lr, NN_ADD_INSTANCE, row))
                return 1;
        }
        else if (row != NULL) {
            if (memcmp(&e->row, row, sizeof *row) == 0)
                continue;
            e->row = *row;
            if (nn_emit(lr, NN_PARAMETER_NOTIFICATION, row))
                return 1;
        }
        else if (e != NULL) {
            old = e->row;
            nn_map_del(&lr->cache, &key);
            if (nn_emit(lr, NN_DELETE_INSTANCE, &old))
                return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ addresses */

/* gil: returns-held */
static int nn_on_addr(nn_lreg *lr, const struct nlmsghdr *nlh)
{
    nn_addr_row row, old;
    nn_addr_key key;
    nn_addr_entry *e;
    int quiet = lr->reg->kind == NN_KIND_STABLE; /* it reports tables, not rows */

    if (nn_nl_parse_addr(nlh, &lr->links, &row) != 1 || !nn_family_wanted(lr, row.address.family))
        return 0;
    memset(&key, 0, sizeof key);
    key.ifindex = row.interface_index;
    key.family = row.address.family;
    key.prefix_length = row.on_link_prefix_length;
    memcpy(key.addr, row.address.addr, sizeof key.addr);
    e = (nn_addr_entry *)nn_map_get(&lr->cache, &key);
    if (nlh->nlmsg_type == RTM_DELADDR) {
        if (e == NULL)
            return 0;
        old = e->row;
        nn_map_del(&lr->cache, &key);
        return quiet ? 0 : nn_emit(lr, NN_DELETE_INSTANCE, &old);
    }
    if (e == NULL) {
        e = (nn_addr_entry *)nn_map_put(&lr->cache, &key, NULL);
        if (e == NULL)
            return 0;
        e->row = row;
        return quiet ? 0 : nn_emit(lr, NN_ADD_INSTANCE, &row);
    }
    if (memcmp(&e->row, &row, sizeof row) == 0)
        return 0;
    e->row = row;
    return quiet ? 0 : nn_emit(lr, NN_PARAMETER_NOTIFICATION, &row);
}

static int nn_has_tentative(const nn_lreg *lr)
{
    const nn_addr_entry *e;
    size_t it = 0;

    while ((e = (const nn_addr_entry *)nn_map_next(&lr->cache, &it)) != NULL)
        if (e->row.dad_state == 1 /* IpDadStateTentative */)
            return 1;
    return 0;
}

static int nn_addr_table(const nn_lreg *lr, nn_table *table)
{
    const nn_addr_entry *e;
    size_t it = 0;

    while ((e = (const nn_addr_entry *)nn_map_next(&lr->cache, &it)) != NULL) {
        nn_addr_row *slot = (nn_addr_row *)nn_table_push(table);
        if (slot == NULL)
            return -1;
        *slot = e->row;
    }
    return 0;
}

/* ------------------------------------------------------------------ routes */

static int nn_same_hop(const nn_route_row *a, const nn_route_row *b)
{
    return a->interface_index == b->interface_index && memcmp(&a->next_hop, &b->next_hop, sizeof a->next_hop) == 0;
}

static void nn_route_entry_free(nn_route_entry *e)
{
    free(e->rows);
    e->rows = NULL;
    e->count = 0;
}

static int nn_route_entry_add(nn_route_entry *e, const nn_route_row *row)
{
    nn_route_row *rows = (nn_route_row *)realloc(e->rows, (e->count + 1) * sizeof(*rows));

    if (rows == NULL)
        return -1;
    rows[e->count++] = *row;
    e->rows = rows;
    return 0;
}

/* Applies one route message to the entry of its key; emits what changed. */
/* gil: returns-held */
static int nn_route_apply(nn_lreg *lr, const struct nlmsghdr *nlh, const nn_route_row *rows, size_t n)
{
    nn_route_key key;
    nn_route_entry *e;
    nn_route_row old;
    size_t i, j;
    int stop = 0;

    memset(&key, 0, sizeof key);
    key.table = rows[0].linux_table;
    key.metric = rows[0].metric;
    key.family = rows[0].destination_prefix.family;
    key.prefix_length = rows[0].destination_prefix_length;
    key.tos = rows[0].linux_tos;
    memcpy(key.dst, rows[0].destination_prefix.addr, sizeof key.dst);
    e = (nn_route_entry *)nn_map_get(&lr->cache, &key);

    if (nlh->nlmsg_type == RTM_DELROUTE) {
        for (i = 0; e != NULL && i < n && !stop; i++)
            for (j = 0; j < e->count; j++)
                if (nn_same_hop(&e->rows[j], &rows[i])) {
                    old = e->rows[j];
                    memmove(&e->rows[j], &e->rows[j + 1], (e->count - j - 1) * sizeof(old));
                    e->count--;
                    stop = nn_emit(lr, NN_DELETE_INSTANCE, &old);
                    break;
                }
    }
    else {
        if (e == NULL && (e = (nn_route_entry *)nn_map_put(&lr->cache, &key, NULL)) == NULL)
            return 0;
        /* A replace swaps the kernel's route for the new one: its hops that are not in
         * the new one are gone (NLM_F_REPLACE is in the notification's flags). */
        for (j = 0; (nlh->nlmsg_flags & NLM_F_REPLACE) && j < e->count && !stop;) {
            int kept = 0;
            for (i = 0; i < n; i++)
                kept |= nn_same_hop(&e->rows[j], &rows[i]);
            if (kept) {
                j++;
                continue;
            }
            old = e->rows[j];
            memmove(&e->rows[j], &e->rows[j + 1], (e->count - j - 1) * sizeof(old));
            e->count--;
            stop = nn_emit(lr, NN_DELETE_INSTANCE, &old);
        }
        for (i = 0; i < n && !stop; i++) {
            for (j = 0; j < e->count; j++)
                if (nn_same_hop(&e->rows[j], &rows[i]))
                    break;
            if (j < e->count) {
                if (memcmp(&e->rows[j], &rows[i], sizeof rows[i]) == 0)
                    continue;
                e->rows[j] = rows[i];
                stop = nn_emit(lr, NN_PARAMETER_NOTIFICATION, &rows[i]);
            }
            else if (nn_route_entry_add(e, &rows[i]) == 0)
                stop = nn_emit(lr, NN_ADD_INSTANCE, &rows[i]);
        }
    }
    /* The callbacks above may not touch this map (only this thread does), so e is valid. */
    if (e != NULL && e->count == 0) {
        nn_route_entry_free(e);
        nn_map_del(&lr->cache, &key);
    }
    return stop;
}

/* gil: returns-held */
static int nn_purge_ipv4_routes(nn_lreg *lr, uint32_t ifindex, int keep_local)
{
    nn_route_key *empty = NULL;
    nn_route_entry *e;
    size_t it = 0, nempty = 0, cap = 0, j;
    int stop = 0;

    while (!stop && (e = (nn_route_entry *)nn_map_next(&lr->cache, &it)) != NULL) {
        if (e->key.family != AF_INET)
            continue;
        for (j = 0; j < e->count && !stop;) {
            nn_route_row old = e->rows[j];
            if (old.interface_index != ifindex || (keep_local && old.linux_type == RTN_LOCAL)) {
                j++;
                continue;
            }
            memmove(&e->rows[j], &e->rows[j + 1], (e->count - j - 1) * sizeof(old));
            e->count--;
            stop = nn_emit(lr, NN_DELETE_INSTANCE, &old);
        }
        if (e->count == 0) {
            if (nempty == cap) {
                nn_route_key *grown = (nn_route_key *)realloc(empty, (cap ? cap * 2 : 16) * sizeof(*grown));
                if (grown == NULL)
                    continue; /* the empty entry stays; harmless */
                empty = grown;
                cap = cap ? cap * 2 : 16;
            }
            empty[nempty++] = e->key;
        }
    }
    for (j = 0; j < nempty; j++) {
        e = (nn_route_entry *)nn_map_get(&lr->cache, &empty[j]);
        if (e != NULL && e->count == 0) {
            nn_route_entry_free(e);
            nn_map_del(&lr->cache, &empty[j]);
        }
    }
    free(empty);
    return stop;
}

/* gil: returns-held */
static int nn_on_route(nn_lreg *lr, const struct nlmsghdr *nlh)
{
    nn_route_row stack_rows[NN_STACK_HOPS], *rows = stack_rows;
    int n, stop;

    n = nn_nl_parse_route(nlh, &lr->links, rows, NN_STACK_HOPS);
    if (n > NN_STACK_HOPS) {
        rows = (nn_route_row *)malloc((size_t)n * sizeof(*rows));
        if (rows == NULL)
            return 0;
        n = nn_nl_parse_route(nlh, &lr->links, rows, (size_t)n);
    }
    stop = n > 0 && nn_family_wanted(lr, rows[0].destination_prefix.family) ? nn_route_apply(lr, nlh, rows, (size_t)n)
                                                                              : 0;
    if (rows != stack_rows)
        free(rows);
    return stop;
}

/* ------------------------------------------------------------------ messages */

/* gil: returns-held */
static int nn_on_message(void *ctx, const struct nlmsghdr *nlh)
{
    nn_lreg *lr = (nn_lreg *)ctx;

    switch (nlh->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
        return nn_on_link(lr, nlh);
    case RTM_NEWADDR:
    case RTM_DELADDR:
        return lr->reg->kind == NN_KIND_ADDRESS || lr->reg->kind == NN_KIND_STABLE ? nn_on_addr(lr, nlh) : 0;
    case RTM_NEWROUTE:
    case RTM_DELROUTE:
        return lr->reg->kind == NN_KIND_ROUTE ? nn_on_route(lr, nlh) : 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ lifetime */

static void nn_cache_clear(nn_lreg *lr)
{
    if (lr->reg->kind == NN_KIND_ROUTE) {
        nn_route_entry *e;
        size_t it = 0;
        while ((e = (nn_route_entry *)nn_map_next(&lr->cache, &it)) != NULL)
            nn_route_entry_free(e);
    }
    nn_map_clear(&lr->cache);
    nn_map_clear(&lr->links);
}

static void nn_lreg_free(nn_lreg *lr)
{
    nn_cache_clear(lr);
    nn_map_free(&lr->cache);
    nn_map_free(&lr->links);
    nn_nl_close(&lr->sock);
    nn_nl_close(&lr->dump_sock);
    free(lr->here_buf);
    free(lr);
}

void nn_backend_release(nn_reg *reg)
{
    if (reg->backend != NULL)
        nn_lreg_free((nn_lreg *)reg->backend);
    reg->backend = NULL;
}

/* Subscribes, then dumps what the registration needs into its cache, silently. */
/* Dumps what the registration needs into its (empty) cache, silently, on the dump socket:
 * the notifications meanwhile stay queued on the subscribed one, to be applied after.
 * Retried while the kernel says the dump was interrupted. */
/* gil: no-session (lr->silent: nn_emit delivers nothing while the cache fills) */
static int nn_lreg_dump(nn_lreg *lr, nn_error *err)
{
    int kind = lr->reg->kind, family = lr->reg->family, attempt, rc = 0;

    lr->silent = 1;
    for (attempt = 0; attempt < NN_DUMP_ATTEMPTS; attempt++) {
        nn_cache_clear(lr);
        rc = nn_nl_dump(&lr->dump_sock, RTM_GETLINK, AF_UNSPEC, nn_on_message, NULL, lr, err);
        if (rc == 0 && (kind == NN_KIND_ADDRESS || kind == NN_KIND_STABLE))
            rc = nn_nl_dump(&lr->dump_sock, RTM_GETADDR, (uint8_t)family, nn_on_message, NULL, lr, err);
        else if (rc == 0 && kind == NN_KIND_ROUTE)
            rc = nn_nl_dump(&lr->dump_sock, RTM_GETROUTE, (uint8_t)family, nn_on_message, NULL, lr, err);
        if (rc != NN_DUMP_INTR)
            break;
    }
    lr->silent = 0;
    if (rc == NN_DUMP_INTR)
        return nn_error_from_errno(err, EAGAIN, "rtnetlink dump");
    return rc < 0 ? -1 : 0;
}

/* The receive buffer to ask for: NETNOTIFY_RCVBUF (bytes) overrides the default. */
static int nn_rcvbuf(void)
{
    const char *env = getenv("NETNOTIFY_RCVBUF");
    char *end = NULL;
    long v;

    if (env == NULL || *env == '\0')
        return NN_RCVBUF;
    v = strtol(env, &end, 10);
    return end != NULL && *end == '\0' && v > 0 && v <= INT_MAX ? (int)v : NN_RCVBUF;
}

/* Subscribes, then dumps what the registration needs into its cache, silently. */
static int nn_lreg_fill(nn_lreg *lr, nn_error *err)
{
    unsigned *groups = lr->groups;
    size_t ngroups = 0;
    int kind = lr->reg->kind, family = lr->reg->family;
    int v4 = family != AF_INET6, v6 = family != AF_INET;

    groups[ngroups++] = RTNLGRP_LINK;
    if (kind == NN_KIND_ADDRESS || kind == NN_KIND_STABLE) {
        if (v4)
            groups[ngroups++] = RTNLGRP_IPV4_IFADDR;
        if (v6)
            groups[ngroups++] = RTNLGRP_IPV6_IFADDR;
    }
    else if (kind == NN_KIND_ROUTE) {
        if (v4)
            groups[ngroups++] = RTNLGRP_IPV4_ROUTE;
        if (v6)
            groups[ngroups++] = RTNLGRP_IPV6_ROUTE;
    }
    lr->ngroups = ngroups;
    lr->rcvbuf = nn_rcvbuf();
    /* Subscribe first: a change made during the dump is then queued, not missed. */
    if (nn_nl_open(&lr->sock, groups, ngroups, lr->rcvbuf, err) < 0 ||
        nn_nl_open(&lr->dump_sock, NULL, 0, 0, err) < 0)
        return -1;
    /* Both blocking (they trade places in a repair), for the dispatcher's one-call wait. */
    lr->can_wait = nn_nl_set_blocking(&lr->sock) == 0 && nn_nl_set_blocking(&lr->dump_sock) == 0;
    return nn_lreg_dump(lr, err);
}

/* ------------------------------------------------------------------ overflow repair */

static void nn_route_map_free_rows(nn_map *m)
{
    nn_route_entry *e;
    size_t it = 0;

    while ((e = (nn_route_entry *)nn_map_next(m, &it)) != NULL)
        nn_route_entry_free(e);
}

/* Reports what differs between the cache before an overflow (old) and the fresh one. */
/* gil: returns-held */
static void nn_diff(nn_lreg *lr, const nn_map *old)
{
    const nn_map *now = &lr->cache;
    unsigned char *e;
    size_t it, i, j;
    int stop = 0;

    if (lr->reg->kind == NN_KIND_ROUTE) {
        const nn_route_entry *a, *b;
        for (it = 0; !stop && (a = (const nn_route_entry *)nn_map_next(old, &it)) != NULL;) {
            b = (const nn_route_entry *)nn_map_get(now, &a->key);
            for (i = 0; !stop && i < a->count; i++) {
                for (j = 0; b != NULL && j < b->count && !nn_same_hop(&a->rows[i], &b->rows[j]); j++)
                    ;
                if (b == NULL || j == b->count)
                    stop = nn_emit(lr, NN_DELETE_INSTANCE, &a->rows[i]);
            }
        }
        for (it = 0; !stop && (b = (const nn_route_entry *)nn_map_next(now, &it)) != NULL;) {
            a = (const nn_route_entry *)nn_map_get(old, &b->key);
            for (j = 0; !stop && j < b->count; j++) {
                for (i = 0; a != NULL && i < a->count && !nn_same_hop(&a->rows[i], &b->rows[j]); i++)
                    ;
                if (a == NULL || i == a->count)
                    stop = nn_emit(lr, NN_ADD_INSTANCE, &b->rows[j]);
                else if (memcmp(&a->rows[i], &b->rows[j], sizeof b->rows[j]) != 0)
                    stop = nn_emit(lr, NN_PARAMETER_NOTIFICATION, &b->rows[j]);
            }
        }
        return;
    }
    if (lr->reg->kind == NN_KIND_STABLE)
        return; /* it reports tables, not rows */
    {
        /* interface and address entries: a key, then the row */
        size_t row_off = lr->reg->kind == NN_KIND_INTERFACE ? offsetof(nn_if_entry, row) : offsetof(nn_addr_entry, row);
        size_t row_size = nn_row_size(lr->reg->kind);
        for (it = 0; !stop && (e = (unsigned char *)nn_map_next(old, &it)) != NULL;)
            if (nn_map_get(now, e) == NULL)
                stop = nn_emit(lr, NN_DELETE_INSTANCE, e + row_off);
        for (it = 0; !stop && (e = (unsigned char *)nn_map_next(now, &it)) != NULL;) {
            const unsigned char *o = (const unsigned char *)nn_map_get(old, e);
            if (o == NULL)
                stop = nn_emit(lr, NN_ADD_INSTANCE, e + row_off);
            else if (memcmp(o + row_off, e + row_off, row_size) != 0)
                stop = nn_emit(lr, NN_PARAMETER_NOTIFICATION, e + row_off);
        }
    }
}

static uint32_t nn_socket_drops(const nn_nlsock *sock);

/* Subscribes `to` and unsubscribes `from`, each to every group of the registration;
 * returns -1 with *err set if `to` could not subscribe (and leaves it unsubscribed). */
static int nn_move_groups(nn_lreg *lr, const nn_nlsock *to, const nn_nlsock *from, nn_error *err)
{
    size_t i, j;

    for (i = 0; i < lr->ngroups; i++)
        if (setsockopt(to->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &lr->groups[i], sizeof lr->groups[i]) < 0) {
            nn_error_from_errno(err, errno, "setsockopt");
            for (j = 0; j < i; j++)
                (void)setsockopt(to->fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &lr->groups[j], sizeof lr->groups[j]);
            return -1;
        }
    for (i = 0; i < lr->ngroups; i++)
        (void)setsockopt(from->fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &lr->groups[i], sizeof lr->groups[i]);
    return 0;
}

static void nn_set_in_epoll(nn_lreg *lr, int on)
{
    if (lr->in_epoll != on) {
        nn_nactive += on ? 1 : -1;
        nn_single = NULL;
    }
    lr->in_epoll = on;
}

/* Leaves what is queued on the subscribed socket behind: the two sockets trade places.
 * The messages queued on an overflowed socket are older than a dump made now, and the
 * changes that came after them may be the ones the kernel dropped: read after the dump,
 * they would bring back a state the kernel has left (a route deleted since, say). The
 * dump socket subscribes (it is of the registration's network namespace, which a socket
 * the dispatcher opened would not be) and becomes the one read for notifications; the
 * old one unsubscribes and serves the dumps, which skip what it still holds. */
static int nn_resubscribe(nn_lreg *lr, nn_error *err)
{
    nn_nlsock fresh = lr->dump_sock, old = lr->sock;
    struct epoll_event ev;

    if (lr->rcvbuf > 0 && setsockopt(fresh.fd, SOL_SOCKET, SO_RCVBUFFORCE, &lr->rcvbuf, sizeof lr->rcvbuf) < 0)
        (void)setsockopt(fresh.fd, SOL_SOCKET, SO_RCVBUF, &lr->rcvbuf, sizeof lr->rcvbuf);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = lr;
    if (epoll_ctl(nn_disp.epfd, EPOLL_CTL_ADD, fresh.fd, &ev) < 0)
        return nn_error_from_errno(err, errno, "epoll_ctl");
    if (nn_move_groups(lr, &fresh, &old, err) < 0) {
        epoll_ctl(nn_disp.epfd, EPOLL_CTL_DEL, fresh.fd, NULL);
        return -1;
    }
    if (lr->in_epoll)
        epoll_ctl(nn_disp.epfd, EPOLL_CTL_DEL, old.fd, NULL);
    nn_set_in_epoll(lr, 1);
    lr->sock = fresh;
    lr->dump_sock = old;
    lr->drops = nn_socket_drops(&lr->sock); /* drops from now on need another repair */
    return 0;
}

/* Repairs an overflow of the subscribed socket: subscribes again (nn_resubscribe), dumps
 * into a fresh cache and reports the difference from the old one. The notifications
 * that arrive meanwhile are read afterwards, as usual: each carries the whole state of
 * its object at least as new as the dump saw it. A new overflow meanwhile shows on the
 * next read, and schedules another repair. */
/* gil: returns-held */
static int nn_resync(nn_lreg *lr, nn_error *err)
{
    nn_map old_cache = lr->cache, old_links = lr->links;
    int kind = lr->reg->kind;

    if (nn_resubscribe(lr, err) < 0)
        return -1;
    nn_map_init(&lr->cache, old_cache.key_size, old_cache.entry_size);
    nn_map_init(&lr->links, old_links.key_size, old_links.entry_size);
    if (nn_lreg_dump(lr, err) < 0) {
        if (kind == NN_KIND_ROUTE)
            nn_route_map_free_rows(&lr->cache);
        nn_map_free(&lr->cache);
        nn_map_free(&lr->links);
        lr->cache = old_cache;
        lr->links = old_links;
        return -1;
    }
    nn_diff(lr, &old_cache);
    if (kind == NN_KIND_ROUTE)
        nn_route_map_free_rows(&old_cache);
    nn_map_free(&old_cache);
    nn_map_free(&old_links);
    return 0;
}

/* ------------------------------------------------------------------ dispatcher */

/* A descriptor of its own for a thread that will wake a reader asleep in the read of lr's
 * socket (nn_wake_end), taken with nn_disp.lock held, while the socket is surely open: the
 * owner may close its descriptor meanwhile, the socket lives until this one is closed too.
 * -1 if none can be made (then the sleep lasts until the socket's next notification: the
 * queued work waits, nothing is lost). */
static int nn_wake_fd(nn_lreg *lr)
{
    return fcntl(lr->sock.fd, F_DUPFD_CLOEXEC, 0);
}

/* Wakes the dispatcher for its queues, in two halves: nn_wake_begin with nn_disp.lock
 * held, nn_wake_end once it is released. Waiting in epoll_wait, the dispatcher is woken by
 * the eventfd. Asleep in the read of one socket, it wakes when the kernel acknowledges a
 * request sent on that socket (nn_nl_wake), sent by nn_wake_end without the lock, so that
 * the dispatcher, woken at once, does not wait for it. */
static int nn_wake_begin(void)
{
    uint64_t one = 1;
    ssize_t n;

    if (nn_disp.asleep != NULL)
        return nn_wake_fd(nn_disp.asleep);
    do
        n = write(nn_disp.evfd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    return -1;
}

static void nn_wake_end(int fd)
{
    if (fd < 0)
        return;
    (void)nn_nl_wake(fd); /* a failure (no memory for the request): as in nn_wake_fd */
    close(fd);
}

static void nn_check_stable(nn_lreg *lr)
{
    nn_table table;
    nn_event ev;

    if (lr->stopped || nn_has_tentative(lr))
        return;
    nn_core_session_end(&nn_sess);
    nn_table_init(&table, NN_KIND_STABLE);
    if (nn_addr_table(lr, &table) == 0) {
        memset(&ev, 0, sizeof ev);
        ev.table = &table;
        nn_core_deliver(lr->reg, &ev); /* the core ends the registration after it */
        lr->stopped = 1;
    }
    nn_table_free(&table);
}

/* The kernel's count of messages it dropped for this socket (SO_MEMINFO). ENOBUFS is
 * reported once per congestion: while the queue never drains, later drops are silent,
 * and only this count tells. */
static uint32_t nn_socket_drops(const nn_nlsock *sock)
{
    uint32_t info[SK_MEMINFO_VARS];
    socklen_t len = sizeof info;

    memset(info, 0, sizeof info);
    if (getsockopt(sock->fd, SOL_SOCKET, SO_MEMINFO, info, &len) < 0 || len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
        return 0;
    return info[SK_MEMINFO_DROPS];
}

static void nn_schedule_repair(nn_lreg *lr)
{
    if (lr->needs_repair)
        return;
    lr->needs_repair = 1;
    lr->repair_next = nn_repairs;
    nn_repairs = lr;
}

static void nn_unschedule_repair(nn_lreg *lr)
{
    nn_lreg **p;

    for (p = &nn_repairs; *p != NULL; p = &(*p)->repair_next)
        if (*p == lr) {
            *p = lr->repair_next;
            break;
        }
    lr->needs_repair = 0;
    lr->repair_next = NULL;
}

/* One repair of each registration that needs one; the dispatcher serves the others in
 * between (it polls instead of sleeping while a repair is scheduled). */
static void nn_repair_pass(void)
{
    nn_lreg *todo = nn_repairs, *lr;

    nn_repairs = NULL;
    while ((lr = todo) != NULL) {
        nn_error err = {0, 0, NULL, NULL};
        int rc;
        todo = lr->repair_next;
        lr->repair_next = NULL;
        lr->needs_repair = 0;
        if (lr->stopped)
            continue;
        rc = nn_resync(lr, &err); /* it resets lr->drops */
        nn_core_session_end(&nn_sess);
        if (rc < 0 && err.errnum == ENOBUFS)
            nn_schedule_repair(lr);
        else if (rc < 0) {
            err.detail = "the netlink socket overflowed and could not be read again: changes were lost";
            nn_core_report_error(lr->reg, &err);
        }
        if (lr->here_ok) { /* repaired (or given up): a consumer may read it again */
            pthread_mutex_lock(&nn_disp.lock);
            lr->reading = lr->needs_repair;
            pthread_mutex_unlock(&nn_disp.lock);
        }
    }
}

/* nn_on_message for a dump whose messages are delivered: the dump may wait for its next
 * part, and never with the GIL held, so each message's session ends with it (a re-read of
 * the links is rare: the extra GIL round trips cost nothing that matters). */
static int nn_on_message_unheld(void *ctx, const struct nlmsghdr *nlh)
{
    int rc = nn_on_message(ctx, nlh);
    nn_core_session_end(NN_SESS((nn_lreg *)ctx));
    return rc;
}

/* Reads what is queued on the registration's socket and delivers it; with wait, sleeps
 * first until something is (nn_dispatcher). here: a consumer's thread reads
 * (nn_backend_read_here): what only the dispatcher may do (schedule a repair, change its
 * epoll set) is left to it. Returns 0, or -1 when a signal ended the sleep. */
static int nn_read_some(nn_lreg *lr, unsigned char *buf, int wait, int here)
{
    nn_error err = {0, 0, NULL, NULL};
    int rc;

    if (lr->stopped)
        return 0;
    rc = wait ? nn_nl_read_wait(&lr->sock, buf, NN_READ_BUF, nn_on_message, lr, &err)
              : nn_nl_read(&lr->sock, buf, NN_READ_BUF, nn_on_message, lr, &err);
    nn_core_session_end(NN_SESS(lr)); /* never hold the GIL across a blocking call or a report */
    if (rc < 0 && err.errnum == EINTR)
        return -1;
    if (rc >= 0 && lr->reread_links && !lr->stopped) {
        lr->reread_links = 0;
        rc = nn_nl_dump(&lr->dump_sock, RTM_GETLINK, AF_UNSPEC, nn_on_message_unheld, NULL, lr, &err);
        /* Interrupted: the replies after the interruption were dropped, maybe the link's.
         * The change that interrupted it brings a message, whose read does it again. */
        if (rc == NN_DUMP_INTR) {
            lr->reread_links = 1;
            rc = 0;
        }
    }
    if (rc < 0 && err.errnum == ENOBUFS)
        lr->suspect = 1;
    else if (rc >= 0 && lr->suspect) {
        /* Since an overflow, the kernel drops silently until the queue has been read empty
         * once (which ends the congestion: the next drop raises ENOBUFS again): watch the
         * drop count until a read that emptied the queue saw it unchanged. */
        uint32_t drops = nn_socket_drops(&lr->sock);
        if (drops != lr->drops)
            lr->sock.overflowed = 1;
        else if (lr->sock.drained && !lr->needs_repair)
            lr->suspect = 0;
    }
    if ((rc < 0 && err.errnum == ENOBUFS) || (rc >= 0 && lr->sock.overflowed)) {
        lr->sock.overflowed = 0;
        if (here)
            lr->repair_wanted = 1; /* handed to the dispatcher when the consumer is done */
        else
            nn_schedule_repair(lr); /* not lost: repaired by a new dump */
        rc = 0;
    }
    if (rc < 0) {
        /* The socket is unusable: say so once, and stop listening to it (a consumer's read
         * took it out of the epoll set already, and does not put it back). */
        if (!here) {
            epoll_ctl(nn_disp.epfd, EPOLL_CTL_DEL, lr->sock.fd, NULL);
            nn_set_in_epoll(lr, 0);
        }
        lr->stopped = 1;
        nn_core_report_error(lr->reg, &err);
    }
    if (lr->reg->kind == NN_KIND_STABLE)
        nn_check_stable(lr);
    return 0;
}

/* The dispatcher's read of a ready socket, unless a consumer's thread reads it. */
static void nn_readable(nn_lreg *lr, unsigned char *buf)
{
    if (!lr->here_ok) {
        nn_read_some(lr, buf, 0, 0);
        return;
    }
    pthread_mutex_lock(&nn_disp.lock);
    if (lr->here || lr->held || lr->lent_epfd >= 0) {
        pthread_mutex_unlock(&nn_disp.lock);
        return; /* readiness seen before the consumer took the socket out of the set */
    }
    lr->reading = 1;
    pthread_mutex_unlock(&nn_disp.lock);
    nn_read_some(lr, buf, 0, 0);
    pthread_mutex_lock(&nn_disp.lock);
    lr->reading = lr->needs_repair; /* the socket stays the dispatcher's until it is repaired */
    pthread_mutex_unlock(&nn_disp.lock);
}

static void nn_start_one(nn_lreg *lr, unsigned char *buf)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = lr;
    if (epoll_ctl(nn_disp.epfd, EPOLL_CTL_ADD, lr->sock.fd, &ev) == 0)
        nn_set_in_epoll(lr, 1);
    else {
        nn_error err = {0, 0, NULL, NULL};
        nn_error_from_errno(&err, errno, "epoll_ctl");
        nn_core_session_end(&nn_sess);
        nn_core_report_error(lr->reg, &err);
    }
    if (lr->reg->initial_notification && lr->reg->kind != NN_KIND_STABLE)
        nn_emit(lr, NN_INITIAL_NOTIFICATION, NULL);
    nn_core_session_end(&nn_sess);
    nn_readable(lr, buf);
    pthread_mutex_lock(&nn_disp.lock);
    lr->live = lr->in_epoll && !lr->stopped;
    pthread_mutex_unlock(&nn_disp.lock);
}

static void nn_stop_one(nn_lreg *lr)
{
    nn_reg *reg = lr->reg;
    nn_lreg **p;

    /* A consumer's read of it ends first (the cancel woke it), and none starts again. */
    pthread_mutex_lock(&nn_disp.lock);
    lr->live = 0;
    while (lr->here)
        pthread_cond_wait(&nn_disp.woken, &nn_disp.lock);
    for (p = &nn_disp.repair_reqs; *p != NULL; p = &(*p)->rqnext)
        if (*p == lr) {
            *p = lr->rqnext;
            break;
        }
    lr->rqnext = NULL;
    if (lr->lent_epfd >= 0) { /* lent to an event loop: its set lets the socket go before it closes */
        epoll_ctl(lr->lent_epfd, EPOLL_CTL_DEL, lr->sock.fd, NULL);
        lr->lent_epfd = -1;
    }
    pthread_mutex_unlock(&nn_disp.lock);

    if (lr->in_epoll)
        epoll_ctl(nn_disp.epfd, EPOLL_CTL_DEL, lr->sock.fd, NULL);
    nn_set_in_epoll(lr, 0);
    lr->stopped = 1;
    if (lr->needs_repair)
        nn_unschedule_repair(lr);
    nn_nl_close(&lr->sock);
    pthread_mutex_lock(&nn_disp.lock);
    if (lr->aprev != NULL)
        lr->aprev->anext = lr->anext;
    else if (nn_disp.all == lr)
        nn_disp.all = lr->anext;
    if (lr->anext != NULL)
        lr->anext->aprev = lr->aprev;
    lr->anext = lr->aprev = NULL;
    pthread_mutex_unlock(&nn_disp.lock);
    nn_reg_decref(reg); /* the dispatcher's reference */
}

/* Reverses a queue taken from the lists (they are pushed at the head). */
static nn_lreg *nn_fifo(nn_lreg *q, int remove)
{
    nn_lreg *out = NULL;

    while (q != NULL) {
        nn_lreg *next = remove ? q->rnext : q->qnext;
        if (remove)
            q->rnext = out;
        else
            q->qnext = out;
        out = q;
        q = next;
    }
    return out;
}

static void nn_service(unsigned char *buf)
{
    nn_lreg *adds, *removes, *repairs, *lr;

    pthread_mutex_lock(&nn_disp.lock);
    adds = nn_fifo(nn_disp.adds, 0);
    removes = nn_fifo(nn_disp.removes, 1);
    repairs = nn_disp.repair_reqs;
    nn_disp.adds = nn_disp.removes = nn_disp.repair_reqs = NULL;
    if (nn_disp.here_asked) {
        nn_disp.here_asked = 0;
        for (lr = nn_disp.all; lr != NULL; lr = lr->anext)
            if (lr->readable_here && !lr->here_ok) {
                lr->here_ok = 1;
                lr->reading = lr->needs_repair; /* a repair pending: the socket is the dispatcher's */
            }
    }
    pthread_mutex_unlock(&nn_disp.lock);
    while ((lr = repairs) != NULL) { /* from a consumer's read: lr->reading is set */
        repairs = lr->rqnext;
        lr->rqnext = NULL;
        if (!lr->stopped)
            nn_schedule_repair(lr);
        else {
            pthread_mutex_lock(&nn_disp.lock);
            lr->reading = 0;
            pthread_mutex_unlock(&nn_disp.lock);
        }
    }
    while ((lr = adds) != NULL) {
        adds = lr->qnext;
        lr->qnext = NULL;
        nn_start_one(lr, buf);
    }
    while ((lr = removes) != NULL) {
        removes = lr->rnext;
        lr->rnext = NULL;
        nn_stop_one(lr);
    }
}

/* The registration whose socket the dispatcher may sleep in the read of: the only one it
 * listens to, with nothing to repair. */
static nn_lreg *nn_sleep_candidate(void)
{
    nn_lreg *lr;

    if (nn_nactive != 1 || nn_repairs != NULL)
        return NULL;
    if (nn_single == NULL) {
        pthread_mutex_lock(&nn_disp.lock);
        for (lr = nn_disp.all; lr != NULL && !lr->in_epoll; lr = lr->anext)
            ;
        pthread_mutex_unlock(&nn_disp.lock);
        nn_single = lr;
    }
    lr = nn_single;
    return lr != NULL && !lr->here_ok && lr->can_wait && !lr->stopped ? lr : NULL;
}

static int nn_here_give_back(nn_lreg *lr);

static uint64_t nn_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The dispatcher's look, every NN_HOLD_MS while any is kept, at the sockets consumers keep
 * between their reads (nn_backend_read_here): one kept and not read since the last look
 * goes back into the epoll set (its consumer is busy elsewhere: the dispatcher reads it
 * again); one whose consumer sat in the same read since the last look (nothing changes)
 * is given back by that read when it returns, and the looks stop: an idle dispatcher has
 * no timer. Returns the epoll_wait timeout, -1 when nothing is kept. */
static int nn_hold_check(void)
{
    uint64_t now;
    nn_lreg *lr;
    int any = 0;

    pthread_mutex_lock(&nn_disp.lock);
    if (!nn_disp.holding) {
        nn_disp.hold_next = 0;
        pthread_mutex_unlock(&nn_disp.lock);
        return -1;
    }
    now = nn_now_ns();
    if (nn_disp.hold_next == 0)
        nn_disp.hold_next = now + NN_HOLD_NS;
    if (now < nn_disp.hold_next) {
        int ms = (int)((nn_disp.hold_next - now + 999999u) / 1000000u);
        pthread_mutex_unlock(&nn_disp.lock);
        return ms;
    }
    for (lr = nn_disp.all; lr != NULL; lr = lr->anext) {
        int idle;
        if (!lr->holding)
            continue;
        idle = lr->here_reads == lr->hold_seen;
        lr->hold_seen = lr->here_reads;
        if (!idle)
            any = 1;
        else if (lr->held)
            (void)nn_here_give_back(lr); /* -1: a kept socket has no repair to hand over */
        else
            lr->give_back_after = 1; /* in its read */
    }
    nn_disp.holding = any;
    nn_disp.hold_next = any ? now + NN_HOLD_NS : 0;
    pthread_mutex_unlock(&nn_disp.lock);
    return any ? NN_HOLD_MS : -1;
}

static void *nn_dispatcher(void *arg)
{
    struct epoll_event events[64];
    unsigned char *buf = (unsigned char *)arg;

    nn_core_thread_attach();
    pthread_mutex_lock(&nn_disp.lock);
    nn_disp.attached = 1;
    pthread_cond_broadcast(&nn_disp.attached_cond);
    pthread_mutex_unlock(&nn_disp.lock);
    for (;;) {
        nn_lreg *one = nn_sleep_candidate();
        int n, i;
        if (one != NULL) {
            /* One socket to listen to: sleep in its read, one system call per wake-up
             * instead of epoll_wait and a read; a new registration or a cancel wakes it
             * (nn_wake), and a second socket brings epoll back. */
            pthread_mutex_lock(&nn_disp.lock);
            if (nn_disp.adds == NULL && nn_disp.removes == NULL)
                nn_disp.asleep = one;
            else
                one = NULL; /* queued work first */
            pthread_mutex_unlock(&nn_disp.lock);
            if (one != NULL) {
                (void)nn_read_some(one, buf, 1, 0); /* the dispatcher takes no signal */
                pthread_mutex_lock(&nn_disp.lock);
                nn_disp.asleep = NULL;
                pthread_mutex_unlock(&nn_disp.lock);
            }
            nn_service(buf);
            nn_repair_pass();
            continue;
        }
        n = nn_hold_check();
        n = epoll_wait(nn_disp.epfd, events, 64, nn_repairs != NULL ? 0 : n);
        if (n < 0 && errno != EINTR)
            break;
        for (i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                uint64_t count;
                ssize_t r = read(nn_disp.evfd, &count, sizeof count);
                (void)r;
            }
            else
                nn_readable((nn_lreg *)events[i].data.ptr, buf);
        }
        nn_service(buf);
        nn_repair_pass();
    }
    free(buf);
    return NULL;
}

/* Starts the dispatcher thread on first use; caller holds nn_disp.lock. */
static int nn_dispatcher_start(nn_error *err)
{
    struct epoll_event ev;
    pthread_attr_t attr;
    pthread_t thread;
    sigset_t all, old;
    unsigned char *buf;
    int rc;

    if (nn_disp.started)
        return 0;
    if (nn_disp.epfd < 0 && (nn_disp.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return nn_error_from_errno(err, errno, "epoll_create1");
    if (nn_disp.evfd < 0) {
        if ((nn_disp.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            return nn_error_from_errno(err, errno, "eventfd");
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.ptr = NULL;
        if (epoll_ctl(nn_disp.epfd, EPOLL_CTL_ADD, nn_disp.evfd, &ev) < 0) {
            rc = errno;
            close(nn_disp.evfd);
            nn_disp.evfd = -1;
            return nn_error_from_errno(err, rc, "epoll_ctl");
        }
    }
    if ((buf = (unsigned char *)malloc(NN_READ_BUF)) == NULL)
        return nn_error_from_errno(err, ENOMEM, "malloc");
    /* Signals belong to Python's main thread; the dispatcher never takes them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, nn_dispatcher, buf);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(buf);
        return nn_error_from_errno(err, rc, "pthread_create");
    }
    nn_disp.started = 1;
    /* Wait (the GIL is released here) until the thread has its Python thread state:
     * it must take the GIL once, and only while the interpreter is surely alive. */
    while (!nn_disp.attached)
        pthread_cond_wait(&nn_disp.attached_cond, &nn_disp.lock);
    return 0;
}

/* ------------------------------------------------------------------ a consumer's own read */

/* A watcher's consumer about to sleep until its registration's next event reads the
 * socket itself, on its own thread, instead of waiting for the dispatcher to read it and
 * wake it: one thread woken per event instead of two. The dispatcher reads the socket
 * whenever the consumer does not: it is taken out of the epoll set for the read, and put
 * back after it, unless the consumer reads a stream (it came back within NN_HOLD_MS): then
 * it keeps the socket between its reads (lr->held), and the dispatcher takes back one the
 * consumer has not read for a look or two (nn_hold_check), so changes wait in the kernel's
 * queue for a few ms at most while the consumer is busy. The first call only asks: the
 * dispatcher acknowledges, and from then on never sleeps in this socket's read and reads
 * it under lr->reading. An overflow the consumer's read sees is repaired by the
 * dispatcher. */

/* With nn_disp.lock held: may a consumer take lr's socket now? 1 yes (and out of the
 * dispatcher's epoll set it goes), 0 not now (the first time, the dispatcher is asked:
 * *wake for nn_wake_end), -1 no memory for the read buffer. */
static int nn_here_take(nn_lreg *lr, int *wake)
{
    if (lr->generation != nn_disp.generation || !lr->live || lr->cancelling || lr->stopped || lr->here ||
        lr->lent_epfd >= 0 || lr->reading || lr->repair_wanted || !lr->can_wait)
        return 0;
    if (!lr->here_ok) {
        if (!lr->readable_here) {
            lr->readable_here = 1;
            nn_disp.here_asked = 1;
            *wake = nn_wake_begin();
        }
        return 0;
    }
    if (lr->here_buf == NULL && (lr->here_buf = (unsigned char *)malloc(NN_READ_BUF)) == NULL)
        return -1;
    if (lr->held) {
        lr->held = 0; /* kept by its consumer since its last read: out of the set already */
        return 1;
    }
    epoll_ctl(nn_disp.epfd, EPOLL_CTL_DEL, lr->sock.fd, NULL);
    return 1;
}

/* With nn_disp.lock held: the consumer is done with the socket. Back into the dispatcher's
 * epoll set it goes, and an overflow the consumer saw is handed to the dispatcher (the
 * socket is its own until repaired). Returns a descriptor for nn_wake_end. */
static int nn_here_give_back(nn_lreg *lr)
{
    struct epoll_event ev;
    int wake = -1;

    lr->holding = lr->held = lr->give_back_after = 0;
    if (!lr->stopped) {
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.ptr = lr;
        epoll_ctl(nn_disp.epfd, EPOLL_CTL_ADD, lr->sock.fd, &ev);
    }
    if (lr->repair_wanted) {
        lr->repair_wanted = 0;
        lr->reading = 1; /* the dispatcher's until repaired */
        lr->rqnext = nn_disp.repair_reqs;
        nn_disp.repair_reqs = lr;
        wake = nn_wake_begin();
    }
    pthread_cond_broadcast(&nn_disp.woken); /* nn_stop_one may wait for it */
    return wake;
}

/* The consumer's read itself, lr->here set: what is queued (wait: after sleeping until
 * something is), delivered on this thread. 0, or -1 when a signal ended the sleep. */
static int nn_here_read(nn_lreg *lr, int wait)
{
    nn_session sess;
    int rc;

    memset(&sess, 0, sizeof sess);
    lr->sess = &sess;
    rc = nn_read_some(lr, lr->here_buf, wait, 1); /* it ends the session */
    lr->sess = NULL;
    return rc;
}

/* Called without the GIL (callbacks take it). Returns 1 after a read, 0 when the socket
 * cannot be taken now (the caller waits for the dispatcher instead), -1 with *err set
 * (EINTR: a signal ended the sleep). */
int nn_backend_read_here(nn_reg *reg, nn_error *err)
{
    nn_lreg *lr = (nn_lreg *)reg->backend;
    uint64_t now;
    int rc, wake = -1;

    if (lr == NULL || reg->kind == NN_KIND_STABLE)
        return 0;
    pthread_mutex_lock(&nn_disp.lock);
    if (lr->poked) { /* events came meanwhile (nn_backend_poke_here): no sleep */
        lr->poked = 0;
        pthread_mutex_unlock(&nn_disp.lock);
        return 1;
    }
    rc = nn_here_take(lr, &wake);
    if (rc == 1) {
        lr->here = 1;
        lr->here_thread = pthread_self();
    }
    pthread_mutex_unlock(&nn_disp.lock);
    nn_wake_end(wake);
    if (rc <= 0)
        return rc < 0 ? nn_error_from_errno(err, ENOMEM, "malloc") : 0;

    rc = nn_here_read(lr, 1);
    now = nn_now_ns();

    pthread_mutex_lock(&nn_disp.lock);
    lr->here = 0;
    lr->here_reads++;
    if (rc == 0 && !lr->repair_wanted && !lr->stopped && !lr->cancelling && !lr->give_back_after &&
        (nn_disp.holding || now - lr->here_returned < NN_HOLD_NS)) {
        /* Reading a stream: keep the socket for the next read (nn_hold_check) */
        lr->holding = lr->held = 1;
        if (!nn_disp.holding) {
            nn_disp.holding = 1;
            wake = nn_wake_begin(); /* the dispatcher starts looking */
        }
        pthread_cond_broadcast(&nn_disp.woken); /* nn_stop_one may wait for it */
    }
    else
        wake = nn_here_give_back(lr);
    lr->here_returned = now;
    pthread_mutex_unlock(&nn_disp.lock);
    nn_wake_end(wake);
    if (rc < 0)
        return nn_error_from_errno(err, EINTR, "recvmmsg");
    return 1;
}

/* Events reached the consumer's queue another way (the dispatcher read the socket before
 * the consumer took it, or a settle timer let them out) while the consumer reads, or is
 * about to read, the socket. In its read already (lr->here: the socket is out of the
 * dispatcher's set, only the consumer reads it), a request on the socket (nn_nl_wake)
 * makes the read return at once with the kernel's acknowledgement, which reads skip. Not
 * yet: its take returns at once instead (lr->poked). */
void nn_backend_poke_here(nn_reg *reg)
{
    nn_lreg *lr = (nn_lreg *)reg->backend;
    int fd = -1;

    if (lr == NULL)
        return;
    pthread_mutex_lock(&nn_disp.lock);
    if (lr->here)
        fd = nn_wake_fd(lr); /* open: nn_stop_one waits for the read to end before it closes it */
    else
        lr->poked = 1;
    pthread_mutex_unlock(&nn_disp.lock);
    nn_wake_end(fd);
}

/* The same for an event loop's consumer, which never blocks: the socket is lent to the
 * loop while a coroutine awaits the next event (nn_backend_lend puts it in the loop's own
 * epoll set epfd, which the loop watches, and out of the dispatcher's), read by the loop
 * whenever it is readable (nn_backend_lent_read), and given back to the dispatcher by that
 * read when no coroutine waits any more or when it saw an overflow (the dispatcher
 * repairs), by nn_backend_lend_end, or by a cancel (nn_stop_one). The
 * dispatcher leaves a lent socket alone (nn_readable). Without the GIL. */
int nn_backend_lend(nn_reg *reg, int epfd, nn_error *err)
{
    nn_lreg *lr = (nn_lreg *)reg->backend;
    struct epoll_event ev;
    int rc, wake = -1;

    if (lr == NULL || reg->kind == NN_KIND_STABLE)
        return 0;
    pthread_mutex_lock(&nn_disp.lock);
    rc = nn_here_take(lr, &wake);
    if (rc == 1) {
        lr->holding = 0; /* lent: the loop's to read, not a kept one */
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, lr->sock.fd, &ev) == 0)
            lr->lent_epfd = epfd;
        else {
            rc = -1;
            nn_error_from_errno(err, errno, "epoll_ctl");
            wake = nn_here_give_back(lr);
        }
    }
    else if (rc < 0)
        nn_error_from_errno(err, ENOMEM, "malloc");
    pthread_mutex_unlock(&nn_disp.lock);
    nn_wake_end(wake);
    return rc;
}

/* With nn_disp.lock held: a lent socket leaves the loop's set, back to the dispatcher
 * (nothing to do if it was given back already, or cancelled: nn_stop_one). Returns a
 * descriptor for nn_wake_end. */
static int nn_lend_stop(nn_lreg *lr)
{
    if (lr->lent_epfd < 0)
        return -1;
    epoll_ctl(lr->lent_epfd, EPOLL_CTL_DEL, lr->sock.fd, NULL);
    lr->lent_epfd = -1;
    return nn_here_give_back(lr);
}

int nn_backend_lent_read(nn_reg *reg, int give_back)
{
    nn_lreg *lr = (nn_lreg *)reg->backend;
    int wake = -1, lent;

    if (lr == NULL)
        return 0;
    pthread_mutex_lock(&nn_disp.lock);
    if (lr->lent_epfd < 0 || lr->here || lr->stopped) {
        pthread_mutex_unlock(&nn_disp.lock);
        return 0;
    }
    lr->here = 1;
    lr->here_thread = pthread_self();
    pthread_mutex_unlock(&nn_disp.lock);

    (void)nn_here_read(lr, 0); /* never sleeps: no signal ends it */

    pthread_mutex_lock(&nn_disp.lock);
    lr->here = 0;
    if (give_back || lr->repair_wanted || lr->stopped) /* the dispatcher's again (cancelled: nn_stop_one) */
        wake = nn_lend_stop(lr);
    lent = lr->lent_epfd >= 0;
    pthread_cond_broadcast(&nn_disp.woken); /* nn_stop_one, or nn_backend_lend_end, may wait for it */
    pthread_mutex_unlock(&nn_disp.lock);
    nn_wake_end(wake);
    return lent ? 1 : 2;
}

void nn_backend_lend_end(nn_reg *reg)
{
    nn_lreg *lr = (nn_lreg *)reg->backend;
    int wake;

    if (lr == NULL)
        return;
    pthread_mutex_lock(&nn_disp.lock);
    /* Lent, and the loop reads it now on another thread: wait for that read (it never
     * sleeps). On this thread (a signal handler ran inside that read's delivery), leave it:
     * the cancel that follows a close() takes it back (nn_stop_one). */
    while (lr->lent_epfd >= 0 && lr->here && !pthread_equal(lr->here_thread, pthread_self()))
        pthread_cond_wait(&nn_disp.woken, &nn_disp.lock);
    wake = lr->here ? -1 : nn_lend_stop(lr);
    pthread_mutex_unlock(&nn_disp.lock);
    nn_wake_end(wake);
}

/* ------------------------------------------------------------------ backend interface */

int nn_backend_init(nn_error *err)
{
    (void)err;
    return 0;
}

int nn_backend_register(nn_reg *reg, int *stable_now, nn_table *table, nn_error *err)
{
    nn_lreg *lr;
    int rc, wake = -1;

    *stable_now = 0;
    if (reg->kind == NN_KIND_TEREDO) {
        nn_error_set(err, NN_ERROR_NOT_SUPPORTED, "NotifyTeredoPortChange");
        err->detail = "Teredo is not supported on this platform";
        return -1;
    }
    lr = (nn_lreg *)calloc(1, sizeof(*lr));
    if (lr == NULL)
        return nn_error_from_errno(err, ENOMEM, "malloc");
    lr->reg = reg;
    lr->sock.fd = -1;
    lr->dump_sock.fd = -1;
    lr->lent_epfd = -1;
    nn_map_init(&lr->links, sizeof(uint32_t), sizeof(nn_link_entry));
    if (reg->kind == NN_KIND_INTERFACE)
        nn_map_init(&lr->cache, sizeof(nn_if_key), sizeof(nn_if_entry));
    else if (reg->kind == NN_KIND_ROUTE)
        nn_map_init(&lr->cache, sizeof(nn_route_key), sizeof(nn_route_entry));
    else
        nn_map_init(&lr->cache, sizeof(nn_addr_key), sizeof(nn_addr_entry));
    if (nn_lreg_fill(lr, err) < 0)
        goto fail;
    if (reg->kind == NN_KIND_STABLE) {
        /* Changes queued during the dump may make it unstable or stable: the dispatcher
         * reads them before it decides, unless it is stable already. */
        if (!nn_has_tentative(lr)) {
            if (nn_addr_table(lr, table) < 0) {
                nn_error_from_errno(err, ENOMEM, "malloc");
                goto fail;
            }
            *stable_now = 1;
            nn_lreg_free(lr);
            return 0;
        }
    }
    pthread_mutex_lock(&nn_disp.lock);
    rc = nn_dispatcher_start(err);
    if (rc == 0) {
        reg->backend = lr;
        lr->generation = nn_disp.generation;
        nn_reg_incref(reg); /* the dispatcher's reference, dropped by nn_stop_one */
        lr->anext = nn_disp.all;
        if (nn_disp.all != NULL)
            nn_disp.all->aprev = lr;
        nn_disp.all = lr;
        lr->qnext = nn_disp.adds;
        nn_disp.adds = lr;
        wake = nn_wake_begin();
    }
    pthread_mutex_unlock(&nn_disp.lock);
    if (rc < 0)
        goto fail;
    nn_wake_end(wake);
    return 0;
fail:
    nn_lreg_free(lr);
    return -1;
}

void nn_backend_cancel(nn_reg *reg, int from_callback)
{
    nn_lreg *lr = (nn_lreg *)reg->backend;
    int wake, here = -1;

    (void)from_callback; /* the core's cancelled flag already stops deliveries */
    pthread_mutex_lock(&nn_disp.lock);
    if (lr != NULL && lr->generation == nn_disp.generation) {
        lr->rnext = nn_disp.removes;
        nn_disp.removes = lr;
        lr->cancelling = 1;
        wake = nn_wake_begin();
        if (lr->here) /* a consumer asleep in its read: wake it too, nn_stop_one waits for it */
            here = nn_wake_fd(lr);
        pthread_mutex_unlock(&nn_disp.lock);
        nn_wake_end(wake);
        nn_wake_end(here);
        return;
    }
    pthread_mutex_unlock(&nn_disp.lock);
}

void nn_backend_after_fork_child(void)
{
    nn_lreg *lr;

    /* The dispatcher thread did not survive the fork: close what it owned, in the
     * child only, and drop its references. A new one starts on the next registration. */
    pthread_mutex_init(&nn_disp.lock, NULL);
    pthread_cond_init(&nn_disp.attached_cond, NULL);
    pthread_cond_init(&nn_disp.woken, NULL);
    nn_disp.attached = 0;
    memset(&nn_sess, 0, sizeof nn_sess); /* its thread, and its GIL hold, did not survive */
    nn_repairs = NULL;
    nn_nactive = 0;
    nn_single = NULL;
    nn_disp.asleep = NULL;
    nn_disp.repair_reqs = NULL;
    nn_disp.here_asked = 0;
    nn_disp.holding = 0;
    nn_disp.hold_next = 0;
    while ((lr = nn_disp.all) != NULL) {
        nn_disp.all = lr->anext;
        lr->anext = lr->aprev = NULL;
        lr->stopped = 1;
        nn_nl_close(&lr->sock);
        nn_nl_close(&lr->dump_sock);
        nn_reg_decref(lr->reg);
    }
    nn_disp.adds = nn_disp.removes = NULL;
    if (nn_disp.epfd >= 0)
        close(nn_disp.epfd);
    if (nn_disp.evfd >= 0)
        close(nn_disp.evfd);
    nn_disp.epfd = nn_disp.evfd = -1;
    nn_disp.started = 0;
    nn_disp.generation++;
}

int nn_backend_get_table(nn_kind kind, int family, nn_table *table, nn_error *err)
{
    return nn_nl_get_table(kind, family, table, err);
}

int nn_backend_get_entry(nn_kind kind, void *row, nn_error *err)
{
    return nn_nl_get_entry(kind, row, err);
}

int nn_backend_get_teredo_port(unsigned *port, nn_error *err)
{
    *port = 0;
    nn_error_set(err, NN_ERROR_NOT_SUPPORTED, "GetTeredoPort");
    err->detail = "Teredo is not supported on this platform";
    return -1;
}

/* ------------------------------------------------------------------ ConvertInterface* */

int nn_backend_index_to_luid(uint32_t index, uint64_t *luid, nn_error *err)
{
    nn_nlsock sock = {-1, 0, 0};
    nn_map links;
    const nn_link_entry *link;
    int rc = -1;

    nn_map_init(&links, sizeof(uint32_t), sizeof(nn_link_entry));
    if (nn_nl_open(&sock, NULL, 0, 0, err) < 0 || nn_nl_dump_links(&sock, &links, err) < 0)
        goto done;
    link = (const nn_link_entry *)nn_map_get(&links, &index);
    if (link == NULL || index == 0) {
        nn_error_set(err, NN_ERROR_NOT_FOUND, "ConvertInterfaceIndexToLuid");
        goto done;
    }
    *luid = nn_luid_make(index, link->iftype);
    rc = 0;
done:
    nn_nl_close(&sock);
    nn_map_free(&links);
    return rc;
}

int nn_backend_luid_to_index(uint64_t luid, uint32_t *index, nn_error *err)
{
    uint64_t check = 0;
    uint32_t candidate = nn_luid_index(luid);

    /* The LUID names the interface only if its index exists with that type. */
    if (nn_backend_index_to_luid(candidate, &check, err) < 0 || check != luid) {
        nn_error_set(err, NN_ERROR_NOT_FOUND, "ConvertInterfaceLuidToIndex");
        return -1;
    }
    *index = candidate;
    return 0;
}

int nn_backend_luid_to_name(uint64_t luid, char *name, size_t size, nn_error *err)
{
    char buf[IF_NAMESIZE];
    uint32_t index;

    if (nn_backend_luid_to_index(luid, &index, err) < 0) {
        err->call = "ConvertInterfaceLuidToNameW";
        return -1;
    }
    if (if_indextoname(index, buf) == NULL)
        return nn_error_from_errno(err, errno == ENXIO ? ENODEV : errno, "if_indextoname");
    if (strlen(buf) + 1 > size)
        return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, "ConvertInterfaceLuidToNameW");
    memcpy(name, buf, strlen(buf) + 1);
    return 0;
}

int nn_backend_name_to_luid(const char *name, uint64_t *luid, nn_error *err)
{
    unsigned index = if_nametoindex(name);

    if (index == 0)
        return nn_error_set(err, NN_ERROR_NOT_FOUND, "ConvertInterfaceNameToLuidW");
    if (nn_backend_index_to_luid(index, luid, err) < 0) {
        err->call = "ConvertInterfaceNameToLuidW";
        return -1;
    }
    return 0;
}
