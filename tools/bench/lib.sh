# Shared by the benchmark scripts (builds, local services, a test server): source it from the repository root.
#
#   release_build          builds this tree's release binary when out of date and prints its path
#   binaries "$@"          sets base (the first argument) and new (the second, or this tree's release build)
#   drop_database NAME     drops a database of the local server
#   drop_queues PREFIX     deletes the local broker's queues named PREFIX.*
#   start_nginx WORK       serves WORK/www with Debian's nginx on a free loopback port (sets port; its pid file is
#                          WORK/nginx.pid, for the caller's exit trap)
#   median_ratios FILE DIGITS [SUFFIX]
#                          for FILE's lines "KEY RATIO" (alternating pairs), each key's median ratio and range with
#                          DIGITS decimals and how many pairs were at or above 1; SUFFIX follows the key ("beam(s)")

release_build() {
    swift build -c release --product infmllm >/dev/null
    echo "$(swift build -c release --show-bin-path)/infmllm"
}

binaries() {
    base=$1
    new=${2:-$(release_build)}
}

drop_queues() {
    rabbitmqctl -q list_queues name --no-table-headers </dev/null 2>/dev/null | grep "^$1\." | while read -r queue; do
        rabbitmqctl -q delete_queue "$queue" </dev/null >/dev/null 2>&1 || true
    done
}

# Without FORCE, which a non-superuser cannot use while autovacuum works in the database (DROP DATABASE itself stops
# autovacuum workers); retried while a benchmarked command's own connection is still closing.
drop_database() {
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        PGPASSWORD=infmllm psql -q -h 127.0.0.1 -U infmllm -d infmllm -c "DROP DATABASE IF EXISTS $1" 2>/dev/null &&
            return 0
        sleep 1
    done
    echo "cannot drop the database $1" >&2
}

start_nginx() {
    local work=$1
    mkdir -p "$work/www" "$work/logs" "$work/temp"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$work/nginx.conf" <<CONF
daemon on;
user root;
error_log $work/logs/error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/temp/body; proxy_temp_path $work/temp/proxy; fastcgi_temp_path $work/temp/fastcgi;
    uwsgi_temp_path $work/temp/uwsgi; scgi_temp_path $work/temp/scgi;
    keepalive_requests 100000;
    server { listen 127.0.0.1:$port; root $work/www; }
}
CONF
    /usr/sbin/nginx -p "$work" -c "$work/nginx.conf"
}

median_ratios() {
    python3 - "$1" "$2" "${3:-}" <<'PY'
import statistics, sys
path, digits, suffix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ratios = {}
for line in open(path):
    key, ratio = line.split()
    ratios.setdefault(key, []).append(float(ratio))
for key, values in ratios.items():
    label = f"{key} {suffix}" if suffix else key
    print(f"{label}: median ratio {statistics.median(values):.{digits}f} (range {min(values):.{digits}f}-"
          f"{max(values):.{digits}f}, {sum(v >= 1 for v in values)} of {len(values)} pairs at or above 1)")
PY
}
