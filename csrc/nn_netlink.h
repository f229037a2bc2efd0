/*
 * nn_netlink.h - rtnetlink for the Linux backend. Pure C: no Python.h, so that a fuzzer
 * and a sanitizer build can link it alone. Every parser validates every length it reads
 * and never trusts the kernel's message to be well formed.
 */
#ifndef NN_NETLINK_H
#define NN_NETLINK_H

#include "netnotify.h"
#include "nn_map.h"

#ifndef _WIN32
#  include <linux/netlink.h>
#  include <linux/rtnetlink.h>

/* ---------------------------------------------------------------- links and LUIDs */

/* What the backend remembers of every link, to derive LUIDs of address and route rows. */
typedef struct {
    uint32_t ifindex; /* the map key */
    uint16_t arphrd;  /* ifi_type, ARPHRD_* */
    uint16_t iftype;  /* IANA ifType, IF_TYPE_* (see nn_iftype_from_arphrd) */
    uint32_t mtu;     /* IFLA_MTU */
} nn_link_entry;

#  define NN_IPV6_MIN_MTU 1280u

/* IANA ifType for an ARPHRD_* value: ETHER->6 (ethernetCsmacd), LOOPBACK->24
 * (softwareLoopback), IEEE80211*->71, PPP->23, tunnels (TUNNEL, TUNNEL6, SIT, IPGRE,
 * IP6GRE)->131, NONE (tun, wireguard)->53 (propVirtual), INFINIBAND->199, anything else->1. */
uint16_t nn_iftype_from_arphrd(uint16_t arphrd);
/* NET_LUID: bits 48..63 IfType, bits 24..47 NetLuidIndex (= ifindex & 0xffffff), bits 0..23 0. */
uint64_t nn_luid_make(uint32_t ifindex, uint16_t iftype);
uint32_t nn_luid_index(uint64_t luid);
/* LUID of ifindex using the links map (iftype 1 "other" if the link is unknown). */
uint64_t nn_luid_for_index(const nn_map *links, uint32_t ifindex);

/* ---------------------------------------------------------------- socket */

typedef struct {
    int fd;
    uint32_t portid;
    uint32_t seq;
    int overflowed; /* set when changes were lost: ENOBUFS during nn_nl_dump, a datagram
                     * nn_nl_read had to cut short; the owner clears it */
    int drained;    /* nn_nl_read's last call read until the queue was empty */
} nn_nlsock;

/* Return 0 to go on, non-zero to stop reading (the value is passed back). */
typedef int (*nn_nl_msg_cb)(void *ctx, const struct nlmsghdr *nlh);

/* Opens a NETLINK_ROUTE socket (SOCK_CLOEXEC, non-blocking), subscribed to the given
 * RTNLGRP_* groups with NETLINK_ADD_MEMBERSHIP (none if ngroups is 0), with
 * NETLINK_NO_ENOBUFS off, and the receive buffer raised to rcvbuf bytes (0 = leave
 * the default; SO_RCVBUFFORCE is tried first, then SO_RCVBUF). */
int nn_nl_open(nn_nlsock *s, const unsigned *groups, size_t ngroups, int rcvbuf, nn_error *err);
void nn_nl_close(nn_nlsock *s);

#  define NN_DUMP_INTR 1
/* Sends an RTM_GET* dump request (NLM_F_REQUEST|NLM_F_DUMP) for family and reads the
 * whole reply (blocking, with poll), calling cb for each RTM_NEW* message of the reply.
 * Messages from other senders or with another sequence number (multicast notifications
 * on a subscribed socket) are passed to other_cb if it is not NULL, else dropped.
 * An overflow of the socket meanwhile (ENOBUFS: notifications were lost; the dump's own
 * replies never are) sets s->overflowed and the dump goes on.
 * Returns 0 when done, NN_DUMP_INTR when the kernel flagged NLM_F_DUMP_INTR (the
 * result may be inconsistent: the caller starts again), the non-zero value a callback
 * returned, or -1 with *err set (NLMSG_ERROR in the reply, recv failure). */
int nn_nl_dump(nn_nlsock *s, uint16_t type, uint8_t family, nn_nl_msg_cb cb, nn_nl_msg_cb other_cb,
               void *ctx, nn_error *err);

/* A socket that never empties (changes come faster than callbacks take them) must not keep
 * its reader from every other socket: the rest waits for the next call (epoll reports the
 * socket again, level-triggered). */
#define NN_NL_READ_MAX 64

/* Reads the messages queued now (non-blocking), at most NN_NL_READ_MAX datagrams, with
 * recvmmsg batches (buf is split into up to 16 slots of at least 16 KiB, or one slot if it
 * is smaller), and calls cb for each. Only messages whose sender is the kernel (nl_pid 0)
 * are passed on; a datagram larger than its slot is dropped and sets s->overflowed (its
 * change must come from a new dump). s->drained tells whether the queue was read empty.
 * Returns the number of datagrams read (0 when nothing was queued), the non-zero value a
 * callback returned (as a negative number is ambiguous, callbacks return positive values),
 * or -1 with *err set; err->errnum == ENOBUFS means the socket overflowed and events were
 * lost. */
int nn_nl_read(nn_nlsock *s, void *buf, size_t bufsize, nn_nl_msg_cb cb, void *ctx, nn_error *err);
/* nn_nl_read that first sleeps until a datagram is queued: one system call per wake-up
 * where a poll or epoll_wait and a read take two. The socket must be blocking
 * (nn_nl_set_blocking); nn_nl_wake, from any thread, ends the sleep, and so does a signal
 * (-1, err->errnum EINTR: nothing was read). Never with the GIL. */
int nn_nl_read_wait(nn_nlsock *s, void *buf, size_t bufsize, nn_nl_msg_cb cb, void *ctx, nn_error *err);
/* Clears O_NONBLOCK: every read of this module but nn_nl_read_wait's first passes
 * MSG_DONTWAIT, so only that one sleeps. 0, or -1 with errno set. */
int nn_nl_set_blocking(nn_nlsock *s);
/* Wakes a thread asleep in nn_nl_read_wait on socket fd (the socket's own descriptor,
 * or a duplicate a waker can use while the socket may close): sends the kernel an empty
 * request that asks for an acknowledgement, which the kernel queues on the socket at once,
 * without a lock (an rtnetlink message without a family byte is acknowledged unread). The
 * acknowledgement is a reply to the socket itself, so reads skip it; its sequence number,
 * 0, is none a dump uses. Needs no privilege (the kernel takes requests from anyone; a
 * unicast to another socket would need CAP_NET_ADMIN). A queue already full drops it (and
 * counts a drop), but then the reader is not asleep. 0, or -1 with errno set. */
int nn_nl_wake(int fd);

/* ---------------------------------------------------------------- parsers */

/* RTM_NEWLINK / RTM_DELLINK. Fills *link, and one interface row per address family the
 * link runs (AF_INET when IFLA_AF_SPEC holds AF_INET; AF_INET6 when it holds AF_INET6,
 * IPv6 is not disabled and the MTU is at least 1280), in that order, into
 * rows[0..*nrows-1]. Returns 0 when filled, 1 when the message describes no interface
 * (another family, or no IFLA_AF_SPEC: ignore it; *link zeroed), -1 if malformed. */
int nn_nl_parse_link(const struct nlmsghdr *nlh, nn_link_entry *link, nn_if_row rows[2], int *nrows);

/* RTM_NEWADDR / RTM_DELADDR. links gives the LUID. Returns 1 when *row was filled, 0 when
 * the message is not an address netioapi reports (not AF_INET/AF_INET6), -1 if malformed. */
int nn_nl_parse_addr(const struct nlmsghdr *nlh, const nn_map *links, nn_addr_row *row);

/* RTM_NEWROUTE / RTM_DELROUTE. One row per next hop (RTA_MULTIPATH is expanded).
 * Only routes of the main and local tables are reported, never RTM_F_CLONED ones.
 * Writes at most max rows; returns the number of rows of the route (which may exceed
 * max: call again with more room), 0 when the route is not reported, -1 if malformed. */
int nn_nl_parse_route(const struct nlmsghdr *nlh, const nn_map *links, nn_route_row *rows, size_t max);

/* ---------------------------------------------------------------- tables */

/* Get*Table over a fresh socket created in the calling thread (so in its network
 * namespace). kind is NN_KIND_INTERFACE, NN_KIND_ADDRESS or NN_KIND_ROUTE; family is
 * AF_UNSPEC, AF_INET or AF_INET6 (already validated by the caller). */
int nn_nl_get_table(nn_kind kind, int family, nn_table *table, nn_error *err);
/* Get*Entry: completes *row in place, or fails with NN_ERROR_NOT_FOUND. Keys as in
 * netioapi: the LUID takes precedence over the index when it is non-zero.
 *   interface: family + interface_luid / interface_index
 *   address:   address + interface_luid / interface_index
 *   route:     destination_prefix (+ length) + next_hop + interface_luid / interface_index
 *              (several routes with different metrics: the lowest metric wins) */
int nn_nl_get_entry(nn_kind kind, void *row, nn_error *err);
/* Dumps all links into *links (cleared first). */
int nn_nl_dump_links(nn_nlsock *s, nn_map *links, nn_error *err);

#endif /* !_WIN32 */
#endif /* NN_NETLINK_H */
