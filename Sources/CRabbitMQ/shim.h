// librabbitmq (rabbitmq-c) for Swift: headers moved under rabbitmq-c/ in 0.12; Debian 12 ships 0.11.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#endif

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

// amqp_login is variadic, which Swift cannot call; this fixes the SASL method to PLAIN.
static inline amqp_rpc_reply_t infmllm_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                        int channel_max, int frame_max, int heartbeat,
                                                        const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// Logs in with the capability `consumer_cancel_notify` (so that the broker sends basic.cancel to a consumer whose
// queue was deleted, instead of leaving it waiting on a queue that is gone; librabbitmq merges it with its own
// capabilities) and, when `name` is not NULL, the client property `connection_name` (what the broker's tools show
// for the connection).
static inline amqp_rpc_reply_t infmllm_amqp_login_named(amqp_connection_state_t state, const char *vhost,
                                                        int channel_max, int frame_max, int heartbeat,
                                                        const char *user, const char *password, const char *name) {
    amqp_table_entry_t capability;
    capability.key = amqp_cstring_bytes("consumer_cancel_notify");
    capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    capability.value.value.boolean = 1;
    amqp_table_entry_t entries[2];
    entries[0].key = amqp_cstring_bytes("capabilities");
    entries[0].value.kind = AMQP_FIELD_KIND_TABLE;
    entries[0].value.value.table.num_entries = 1;
    entries[0].value.value.table.entries = &capability;
    int count = 1;
    if (name != NULL) {
        entries[1].key = amqp_cstring_bytes("connection_name");
        entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[1].value.value.bytes = amqp_cstring_bytes(name);
        count = 2;
    }
    amqp_table_t properties = {count, entries};
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, &properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// TCP keepalive on a connected socket: probes after `idle` seconds of silence, every `interval` seconds, `count`
// times; and unacknowledged data fails the connection after `user_timeout_ms`. Returns 0, or -1 with errno.
static inline int infmllm_tcp_keepalive(int fd, int idle, int interval, int count, unsigned int user_timeout_ms) {
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0) return -1;
    return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}
