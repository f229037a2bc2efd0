#!/bin/sh
# Builds the netlink fuzz harness: OUT/nl_fuzz (clang, libFuzzer + ASan + UBSan) and
# OUT/nl_replay (gcc, ASan + UBSan: replays files or directories without libFuzzer).
# Usage: tests/fuzz/build.sh [OUT] (default $TMPDIR/nn_fuzz); CC_FUZZ / CC_REPLAY override
# the compilers; "replay" or "fuzz" as the second argument builds only that one.
set -e
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../csrc
out=${1:-${TMPDIR:-/tmp}/nn_fuzz}
what=${2:-all}
mkdir -p "$out"
flags="-std=c11 -D_GNU_SOURCE -U_FORTIFY_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers -Wno-cast-function-type -g -O1 -I$src"
# the fake kernel of nl_fuzz.c answers these calls for netlink sockets
wrap=""
for f in socket close bind getsockname setsockopt getsockopt sendto recvmsg recvmmsg poll epoll_ctl; do
    wrap="$wrap -Wl,--wrap=$f"
done
# a small dump buffer: under ASan each 4 MiB malloc of nn_nl_dump costs a millisecond
flags="$flags -DNN_DUMP_BUF_MAX=65536u"
sources="$here/nl_fuzz.c $src/nn_netlink.c $src/nn_map.c $src/nn_util.c"
if [ "$what" != replay ]; then
    ${CC_FUZZ:-clang} $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        $wrap -o "$out/nl_fuzz" $sources -lpthread
fi
if [ "$what" != fuzz ]; then
    ${CC_REPLAY:-gcc} $flags -fsanitize=address,undefined -fno-sanitize-recover=undefined \
        $wrap -o "$out/nl_replay" "$here/replay.c" $sources -lpthread
fi
