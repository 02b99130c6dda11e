# Sourced by the check scripts: starts `consentd dev` in a scratch folder and stops it (and its cluster) on exit.
# After `start_dev_server NAME PORT`: $work (the scratch folder), $log (dev's output), $base (its URL),
# `key SCOPE` prints the key dev issued for SCOPE, and $owner_url is the owner's database URL.
# Extra environment for dev goes in the array dev_environment (VAR=value entries).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
binary="${CONSENTD_BINARY:-$root/.build/debug/consentd}"
[ -x "$binary" ] || (cd "$root" && swift build --product consentd)
dev_environment=()

stop_dev_server() {
    if [ -n "${dev_pid:-}" ] && kill -0 "$dev_pid" 2>/dev/null; then
        kill -INT "$dev_pid"
        wait "$dev_pid" || true
    fi
    rm -rf "$work"
}

start_dev_server() {  # name port
    local name="$1"
    base="http://127.0.0.1:$2"
    work="$(mktemp -d)"
    chmod 755 "$work"
    log="$work/dev.log"
    trap stop_dev_server EXIT
    (cd "$work" && exec env ${dev_environment[@]+"${dev_environment[@]}"} "$binary" dev --port "$2") >"$log" 2>&1 &
    dev_pid=$!
    for _ in $(seq 1 300); do
        grep -q "ConsentLedger is running" "$log" && break
        kill -0 "$dev_pid" 2>/dev/null || { cat "$log"; echo "$name: consentd dev exited" >&2; exit 1; }
        sleep 0.2
    done
    grep -q "ConsentLedger is running" "$log" || { cat "$log"; echo "$name: consentd dev did not start" >&2; exit 1; }
    # The banner is written in one piece, but wait for its last key line all the same.
    for _ in $(seq 1 50); do [ -n "$(key admin)" ] && break; sleep 0.1; done
    owner_url=$(sed -n "s/.*psql '\(.*\)'.*/\1/p" "$log")
}

key() { awk -v scope="$1" '$1 == scope { print $2 }' "$log"; }
