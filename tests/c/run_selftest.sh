#!/bin/sh
# Builds tests/c/nl_selftest (plain and with ASan/UBSan) and runs it in a private
# network namespace with a veth pair, addresses and routes configured. Needs root
# (unshare -n). Nothing outside the new namespace is changed.
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=${TMPDIR:-/tmp}/nn_selftest
mkdir -p "$out"
# recvmsg and sendto are wrapped so that the malformed-input tests can forge kernel replies
flags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -I$here/../../csrc
       -pthread -Wl,--wrap=recvmsg -Wl,--wrap=recvmmsg -Wl,--wrap=sendto"
gcc $flags -O2 -o "$out/nl_selftest" "$here/nl_selftest.c"
gcc $flags -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
    -o "$out/nl_selftest_asan" "$here/nl_selftest.c"
setup='ip link set lo up
ip link add name va type veth peer name vb
ip addr add 10.1.2.3/24 dev va
ip -6 addr add 2001:db8::1/64 dev va nodad
ip link set va up
ip link set vb up
ip route add 10.50.0.0/16 via 10.1.2.9
ip route add 10.60.0.0/16 nexthop via 10.1.2.8 nexthop via 10.1.2.9
ip -6 route add 2001:db8:5::/48 nexthop via 2001:db8::8 nexthop via 2001:db8::9'
# the test makes changes only in a netns other than this one
NN_SELFTEST_HOST_NETNS=$(stat -L -c %i /proc/self/ns/net)
export NN_SELFTEST_HOST_NETNS
for bin in nl_selftest nl_selftest_asan; do
    echo "== $bin"
    unshare -n sh -c "$setup
$out/$bin; rc=\$?
echo '-- ip -o addr'; ip -o addr
echo '-- ip -o route show table all'; ip -o route show table all
exit \$rc"
done
