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

// Logs in with the client property `connection_name` (what the broker's tools show for the connection) when
// `name` is not NULL.
static inline amqp_rpc_reply_t infmllm_amqp_login_named(amqp_connection_state_t state, const char *vhost,
                                                        int channel_max, int frame_max, int heartbeat,
                                                        const char *user, const char *password, const char *name) {
    if (name == NULL) return infmllm_amqp_login_plain(state, vhost, channel_max, frame_max, heartbeat, user, password);
    amqp_table_entry_t entry;
    entry.key = amqp_cstring_bytes("connection_name");
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = amqp_cstring_bytes(name);
    amqp_table_t properties = {1, &entry};
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
