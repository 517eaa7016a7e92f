#!/bin/sh
# Raise the soft open-file limit to the hard limit, then run `csms ARGS` as PID 1.
#
# A gateway holds one file descriptor per station connection (CSMS_MAX_CONNECTIONS, 19,000
# by default), but container runtimes commonly start processes with a soft limit of 1024
# (containerd 2, Docker under systemd); the hard limit is much higher. Python does not raise
# the soft limit by itself, and a pod spec cannot set ulimits, so the image does it here.
set -eu
hard=$(ulimit -Hn)
if [ "$(ulimit -Sn)" != "$hard" ] && ! ulimit -Sn "$hard" 2>/dev/null; then
    echo "csms-entrypoint: cannot raise the open-file limit from $(ulimit -Sn) to $hard" >&2
fi
exec csms "$@"
