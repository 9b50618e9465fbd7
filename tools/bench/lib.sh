# Shared by the benchmark scripts that compare two builds on the local PostgreSQL: source it from the repository root.
#
#   binaries "$@"          sets base (the first argument) and new (the second, or this tree's release build)
#   drop_database NAME     drops a database of the local server

binaries() {
    base=$1
    if [[ -n ${2:-} ]]; then
        new=$2
    else
        swift build -c release --product infmllm >/dev/null
        new=$(swift build -c release --show-bin-path)/infmllm
    fi
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
