# Makes sure the local services the tests talk to are up, starting any that stopped.
# Each test creates its own uniquely named database or stream and removes it after.

steward_wait_port() { # host port seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

if command -v pg_ctlcluster >/dev/null 2>&1 && ! steward_wait_port 127.0.0.1 5432 1; then
    echo "scripts/test: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    steward_wait_port 127.0.0.1 5432 30 || echo "scripts/test: PostgreSQL did not come up" >&2
fi
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    if ! steward_wait_port 127.0.0.1 4222 1; then
        echo "scripts/test: starting NATS JetStream" >&2
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
            -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
        steward_wait_port 127.0.0.1 4222 30 || echo "scripts/test: NATS did not come up" >&2
    fi
fi
